"""Whole-base fixtures: one Dask cluster of two single-threaded worker processes for the
session (as ``--dask local`` starts on a two-core machine), closed at its end."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """The address of a running scheduler, for ``--dask ADDRESS``."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.CRITICAL,
    ) as cluster:
        yield cluster.scheduler_address
