# mypy: allow-untyped-calls
# (Dask's Client, LocalCluster and from_map carry no annotations.)
"""Scoring the pieces on a Dask cluster with the same per-piece scoring as in one process.

The pieces become a ``dask.dataframe`` (``from_map``: one partition per piece, so each
partition knows its file and first line). Workers build the model once each, from the
manifest this process verified (:class:`ModelOnWorkers`): no task loads or verifies a
model, the workers need no access to the models folder, and every worker scores with the
very version this process loaded, even if ``latest`` moves during the run.

The answer is gathered here, partition by partition in input order, into the one output
file. At most ``2 x`` the cluster's threads partitions are asked for at once, so memory
stays bounded on the workers (a partition waits there until collected) and here (one
partition at a time), while the workers are kept busy. This needs no file system shared
for writing; the inputs must be readable at the same path by every worker.

Only this module imports Dask: it is the ``dask`` extra, needed only with ``--dask``.
"""

from __future__ import annotations

import hashlib
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any

import dask.dataframe
import pandas as pd
import pyarrow as arrow
from distributed import Client, Future, LocalCluster, WorkerPlugin, get_worker
from distributed.client import FutureCancelledError
from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker

from segmentation.kernels import warm_up
from segmentation.manifest import Manifest
from service.models.active_model import ActiveModel
from service.whole_base.chunk_scoring import OUTPUT_SCHEMA, ScoredChunk, score_piece
from service.whole_base.errors import WholeBaseError, one_line
from service.whole_base.output import OutputFile
from service.whole_base.pieces import Piece
from service.whole_base.progress import FileProgress
from service.whole_base.tally import Tally

logger = logging.getLogger(__name__)

LOCAL = "local"
"""``--dask local``: a cluster of this machine's cores, started for the run."""
MODEL_PLUGIN_PREFIX = "customer-segmentation-model-"
PARTITIONS_IN_FLIGHT_PER_THREAD = 2

_CLUSTER_FAILURES = (KilledWorker, CommClosedError, CancelledError, FutureCancelledError, OSError)
"""What a cluster that fails mid-run raises (a worker killed, the scheduler gone)."""


class ModelOnWorkers(WorkerPlugin):
    """The model, built once in each worker process (and in workers that join later).

    Named after the version and its manifest's content, so that runs of different versions
    can share a cluster, and idempotent, so that a later run of the very same model reuses
    the one already built.
    """

    idempotent = True

    def __init__(self, version: str, manifest: Manifest) -> None:
        self.name = plugin_name(version, manifest)
        self.version = version
        self.manifest = manifest
        self.model: ActiveModel | None = None

    def setup(self, worker: Any) -> None:
        warm_up()
        self.model = ActiveModel(version=self.version, manifest=self.manifest)


def plugin_name(version: str, manifest: Manifest) -> str:
    # The manifest is a tree of frozen dataclasses: its repr is its content.
    digest = hashlib.sha256(repr(manifest).encode()).hexdigest()[:16]
    return f"{MODEL_PLUGIN_PREFIX}{version}-{digest}"


@contextmanager
def dask_client(address: str, *, timeout: float, workers: int) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or of a new local cluster of ``workers``
    single-threaded processes for ``local``; both closed on the way out.

    Raises
    ------
    WholeBaseError
        The scheduler cannot be reached within ``timeout`` seconds, has no workers, or the
        local cluster cannot start.
    """
    # Dask narrates its clusters' start and stop at INFO (its import sets that level): the
    # operator's screen is for the run's own progress and outcome.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cluster = _local_cluster(workers) if address == LOCAL else None
    target = cluster.scheduler_address if cluster is not None else address
    try:
        client = _connected(target, timeout)
        try:
            _check_workers(client, target, timeout)
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _local_cluster(workers: int) -> LocalCluster:
    try:
        # One thread per process: scoring holds the GIL, so threads would take turns.
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # a free port: never collides with a running cluster
            silence_logs=logging.CRITICAL,
        )
    except Exception as error:  # whatever stopped it, the operator needs the reason
        raise WholeBaseError(f"cannot start a local Dask cluster: {_reason(error)}") from None


def _connected(address: str, timeout: float) -> Client:
    try:
        return Client(address, timeout=timeout)
    except Exception as error:  # refused, timed out, a bad address, something else there
        raise WholeBaseError(
            f"cannot reach the Dask scheduler at {address}: {_reason(error)}"
        ) from None


def _check_workers(client: Client, address: str, timeout: float) -> None:
    """Tasks sent to a scheduler without workers would wait forever: refuse instead."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise WholeBaseError(
            f"the Dask scheduler at {address} has no workers (waited {timeout:g} s)"
        ) from None


def _reason(error: BaseException) -> str:
    if isinstance(error, MemoryError):  # a frame length read from something not Dask
        return "what answered there does not speak Dask's protocol"
    return one_line(error) or type(error).__name__


def scored_frame(pieces: Sequence[Piece], *, model: ActiveModel, chunk_size: int) -> Any:
    """The answer as a ``dask.dataframe.DataFrame``: one partition per piece, in order.

    Computing it needs :class:`ModelOnWorkers` registered with the cluster.
    """
    meta = _as_frame(OUTPUT_SCHEMA.empty_table())
    return dask.dataframe.from_map(
        _score_on_worker,
        list(pieces),
        chunk_size=chunk_size,
        plugin=plugin_name(model.version, model.manifest),
        meta=meta,
        label="score-customers",
        enforce_metadata=False,
    )


def _score_on_worker(piece: Piece, chunk_size: int, plugin: str) -> pd.DataFrame:
    model_on_worker = get_worker().plugins[plugin]
    assert isinstance(model_on_worker, ModelOnWorkers) and model_on_worker.model is not None
    model = model_on_worker.model
    tables = [chunk.table for chunk in score_piece(model, piece, chunk_size=chunk_size)]
    return _as_frame(arrow.concat_tables(tables) if tables else OUTPUT_SCHEMA.empty_table())


def _as_frame(table: Any) -> pd.DataFrame:
    """Arrow-backed columns: the answer travels to the client as Arrow buffers, and turns
    back into a table there without a copy (object columns would be pickled item by item)."""
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


def score_on_dask(
    client: Client,
    model: ActiveModel,
    pieces: Sequence[Piece],
    output: OutputFile,
    progress: FileProgress,
    *,
    chunk_size: int,
) -> Tally:
    """Score every piece on the cluster; write the answers here, in input order."""
    tally = Tally()
    if not pieces:
        return tally
    _register_model(client, model)
    partitions = scored_frame(pieces, model=model, chunk_size=chunk_size).to_delayed()
    in_flight = PARTITIONS_IN_FLIGHT_PER_THREAD * max(1, sum(client.nthreads().values()))
    waiting: deque[tuple[Piece, Future[Any]]] = deque()
    try:
        for piece, partition in zip(pieces, partitions, strict=True):
            waiting.append((piece, client.compute(partition)))
            if len(waiting) >= in_flight:
                _write_next(waiting, output, progress, tally)
        while waiting:
            _write_next(waiting, output, progress, tally)
    except BaseException:
        client.cancel([future for _, future in waiting])
        raise
    return tally


def _register_model(client: Client, model: ActiveModel) -> None:
    try:
        client.register_plugin(ModelOnWorkers(model.version, model.manifest))
    except Exception as error:  # raised on a worker: e.g. this project not installed there
        raise WholeBaseError(
            f"the Dask workers cannot build model {model.version}: {_reason(error)} "
            "(the workers need this project installed, as here)"
        ) from None


def _write_next(
    waiting: deque[tuple[Piece, Future[Any]]],
    output: OutputFile,
    progress: FileProgress,
    tally: Tally,
) -> None:
    piece, future = waiting.popleft()
    try:
        frame = future.result()
    except _CLUSTER_FAILURES as error:
        raise WholeBaseError(
            f"the Dask cluster failed while scoring {piece.path}: {_reason(error)}"
        ) from None
    table = arrow.Table.from_pandas(frame, schema=OUTPUT_SCHEMA, preserve_index=False)
    output.write(table)
    tally.add(ScoredChunk(table=table, consumed=piece.size))
    progress.advance(piece.path, piece.size)
