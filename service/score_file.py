"""`python -m service.score_file INPUT --out OUTPUT [--dask ADDRESS|local] [--store]`: score
a whole customer base from files.

INPUT is a CSV or Parquet file, or a folder of them (taken in name order), with the bank's
column names or snake_case ones. Every row goes through the same validation and scoring as
``POST /segment/batch``, chunk by chunk, with the model ``latest`` names (verified as the
service verifies it). OUTPUT gets one row per input row, in input order: ``customer_key,
segment_id, confidence, atypical, model_version``, and for a refused row ``error`` (what is
wrong) and ``location`` (its file and line); Parquet when its name ends in ``.parquet``,
CSV otherwise. It is written as the chunks are scored, into a hidden file beside it that
takes its name only once complete: memory does not grow with the size of the base, and a
failed run leaves no partial answer behind.

With ``--dask ADDRESS`` (a scheduler such as ``tcp://10.0.0.5:8786``) the chunks are scored
on that Dask cluster, and with ``--dask local`` on a cluster of this machine's cores, by
the same function; the answer is identical. With ``--store``, the assignments of rows with
a key are recorded in the customer store too (in one process only). A progress bar shows
on a terminal; a summary follows.

Exit status: 0 when every row was scored (and, with ``--store``, recorded); 1 when rows
were refused (the first listed with their file and line, all counted) or not recorded; 2
when nothing could be done (no such input, an unreadable or damaged file, wrong columns, no
valid model, an unreachable Dask scheduler), with one line saying why.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from segmentation.artifact import ArtifactError
from service.config import Settings, settings_for_command
from service.customer_records import CustomerRecords
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.store.customer_store import CustomerStore
from service.whole_base.chunk_scoring import OUTPUT_COLUMNS
from service.whole_base.errors import WholeBaseError
from service.whole_base.output import OutputFile
from service.whole_base.pieces import Piece, input_files, plan_pieces
from service.whole_base.progress import FileProgress
from service.whole_base.single_process import score_in_process
from service.whole_base.tally import Tally

logger = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
CONNECT_TIMEOUT_SECONDS = 10.0
__all__ = ["CHUNK_SIZE", "OUTPUT_COLUMNS", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_for_command()
    arguments = _parser(settings).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if arguments.store and arguments.dask:
        return _fail(
            "--store cannot be used with --dask: every worker would need the store's address "
            "and credentials and its own connections, and the store's write rate, not "
            "scoring, bounds a recorded run; record in one process (without --dask)"
        )
    try:
        if arguments.dask:
            _require_dask()
        files = input_files(arguments.input, excluding=arguments.out)
        model = _model(arguments.models_dir, settings)
        pieces = plan_pieces(
            files, chunk_size=arguments.chunk_size, split=arguments.dask is not None
        )
        tally = (
            _score_on_dask(arguments, model, pieces)
            if arguments.dask
            else _score_in_process(arguments, model, pieces)
        )
    except WholeBaseError as error:
        return _fail(error.message)
    _report(model.version, arguments.out, tally)
    return 1 if tally.refused or tally.unrecorded else 0


def _parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m service.score_file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, help="a CSV or Parquet file, or a folder of them")
    parser.add_argument("--out", type=Path, required=True, help="OUTPUT: .parquet or CSV")
    parser.add_argument("--store", action="store_true", help="record keyed rows in the store")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--chunk-size", type=_positive, default=CHUNK_SIZE)
    parser.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="score on the Dask scheduler at ADDRESS (tcp://host:8786), or 'local' for a "
        "cluster of this machine's cores",
    )
    parser.add_argument(
        "--dask-workers",
        type=_positive,
        default=os.cpu_count() or 1,
        help="worker processes of --dask local (default: the machine's cores)",
    )
    parser.add_argument(
        "--dask-timeout",
        type=_seconds,
        default=CONNECT_TIMEOUT_SECONDS,
        help="seconds to wait for the Dask scheduler (default: %(default)s)",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} should be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} should be more than 0")
    return value


def _require_dask() -> None:
    """Fail before any work when Dask is missing: it is an optional extra, imported only
    for ``--dask``."""
    try:
        import service.whole_base.on_dask  # noqa: F401
    except ImportError as error:
        raise WholeBaseError(
            f"--dask needs Dask, which is not installed ({error}): "
            "pip install 'customer-segmentation[dask]'"
        ) from None


def _model(models_dir: Path, settings: Settings) -> ActiveModel:
    try:
        model, _ = load_model(
            models_dir,
            signing_keys=settings.signing_keys,
            self_test_rows=settings.self_test_rows,
        )
    except ArtifactError as error:
        raise WholeBaseError(f"model: {error.code}: {error.message}") from None
    return model


def _score_on_dask(arguments: argparse.Namespace, model: ActiveModel, pieces: list[Piece]) -> Tally:
    """Score on the cluster into the output file, which takes its name only when complete."""
    from service.whole_base.on_dask import dask_client, score_on_dask

    with (
        dask_client(
            arguments.dask, timeout=arguments.dask_timeout, workers=arguments.dask_workers
        ) as client,
        OutputFile(arguments.out) as output,
        FileProgress(pieces) as progress,
    ):
        tally = score_on_dask(
            client, model, pieces, output, progress, chunk_size=arguments.chunk_size
        )
        output.commit()
    return tally


def _score_in_process(
    arguments: argparse.Namespace, model: ActiveModel, pieces: list[Piece]
) -> Tally:
    """Score here into the output file, which takes its name only when complete."""
    records = CustomerRecords(CustomerStore(arguments.database_url)) if arguments.store else None
    try:
        with OutputFile(arguments.out) as output, FileProgress(pieces) as progress:
            tally = score_in_process(
                model, pieces, output, progress, chunk_size=arguments.chunk_size, records=records
            )
            output.commit()
    finally:
        if records is not None:
            records.close()
    return tally


def _report(version: str, out: Path, tally: Tally) -> None:
    stream = sys.stdout
    stream.write(
        f"model {version}: {tally.customers} customers, {tally.scored} scored, "
        f"{tally.refused} refused; written to {out}\n"
    )
    for segment_id, count in tally.counts.most_common():
        stream.write(f"  {segment_id:<28} {count:>9}\n")
    if tally.refused:
        stream.write(f"{tally.refused} rows refused, not scored:\n")
        stream.writelines(f"  {line}\n" for line in tally.first_refusals)
        if tally.refused > len(tally.first_refusals):
            more = tally.refused - len(tally.first_refusals)
            stream.write(f"  ... and {more} more (see the error column of {out})\n")
    if tally.unrecorded:
        stream.write(
            f"{tally.unrecorded} assignments could not be recorded: the store is unavailable\n"
        )


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
