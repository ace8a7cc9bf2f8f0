"""Scoring requests: reading and screening customers, scoring one or a batch, the answers."""
