"""Scoring a whole customer base from files: plan the pieces, score them chunk by chunk
(in this process or on Dask workers), write one answer file in input order.

The command is :mod:`service.score_file`; nothing here is imported by the API.
"""
