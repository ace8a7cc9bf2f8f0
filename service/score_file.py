"""`python -m service.score_file INPUT --out OUTPUT [--store]`: score a whole customer file.

INPUT is a CSV or Parquet file, or a folder of them (taken in name order), with the bank's
column names or snake_case ones. Every row goes through the same validation and scoring as
``POST /segment/batch``, chunk by chunk, with the model ``latest`` names (verified as the
service verifies it). OUTPUT gets one row per input row: ``customer_key, segment_id,
confidence, atypical, model_version`` and ``error`` (what was wrong with a refused row);
Parquet when its name ends in ``.parquet``, CSV otherwise, written whole or not at all.
With ``--store``, the assignments of rows with a key are recorded in the customer store
too. A progress bar shows on a terminal; a summary follows.

Exit status: 0 when every row was scored (and, with ``--store``, recorded); 1 when rows
were refused (each listed with its file and line, and counted) or not recorded; 2 when
nothing could be done (no such input, an unreadable file, no valid model).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import Progress

from segmentation.artifact import ArtifactError, write_bytes_atomically
from service.config import settings_for_command
from service.customer_records import CustomerRecords
from service.errors import ServiceError
from service.models.active_model import ActiveModel
from service.models.model_loading import load_model
from service.scoring.batch_scoring import score_batch
from service.scoring.customer_input import CustomerBatch, parse_csv_batch
from service.spreadsheet_csv import to_csv
from service.store.customer_store import CustomerStore

logger = logging.getLogger(__name__)

CHUNK_SIZE = 10_000
OUTPUT_COLUMNS = ("customer_key", "segment_id", "confidence", "atypical", "model_version", "error")
INPUT_SUFFIXES = (".csv", ".parquet")
_ERRORS_SHOWN = 10


def chunks(batch: CustomerBatch, size: int) -> list[CustomerBatch]:
    """Split a validated batch into consecutive pieces (errors travel with their rows)."""
    pieces = []
    for start in range(0, batch.size, size):
        stop = min(start + size, batch.size)
        rows = [row for row, index in enumerate(batch.positions) if start <= index < stop]
        pieces.append(
            CustomerBatch(
                size=stop - start,
                features=batch.features[rows] if rows else np.empty((0, batch.features.shape[1])),
                keys=[batch.keys[row] for row in rows],
                positions=[batch.positions[row] - start for row in rows],
                errors={i - start: e for i, e in batch.errors.items() if start <= i < stop},
                invalid_keys={
                    i - start: key for i, key in batch.invalid_keys.items() if start <= i < stop
                },
            )
        )
    return pieces


@dataclass
class Outcome:
    """What scoring the files gave: the output rows, and what went wrong where."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)
    unrecorded: int = 0


def main(argv: Sequence[str] | None = None) -> int:
    settings = settings_for_command()
    parser = argparse.ArgumentParser(prog="python -m service.score_file", description=__doc__)
    parser.add_argument("input", type=Path, help="a CSV or Parquet file, or a folder of them")
    parser.add_argument("--out", type=Path, required=True, help="OUTPUT: .parquet or CSV")
    parser.add_argument("--store", action="store_true", help="record keyed rows in the store")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--database-url", default=settings.database_url)
    parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE)
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        files = input_files(arguments.input)
        model, _ = load_model(
            arguments.models_dir,
            signing_keys=settings.signing_keys,
            self_test_rows=settings.self_test_rows,
        )
    except OSError as error:
        return _fail(f"{arguments.input}: {error.strerror or error}")
    except ArtifactError as error:
        return _fail(f"model: {error.code}: {error.message}")
    records = CustomerRecords(CustomerStore(arguments.database_url)) if arguments.store else None
    try:
        outcome = score_files(model, files, records, max(arguments.chunk_size, 1))
    except OSError as error:
        return _fail(f"{error.filename or arguments.input}: {error.strerror or error}")
    except ServiceError as error:
        return _fail(error.message)
    finally:
        if records is not None:
            records.close()
    write_output(arguments.out, outcome.rows)
    _report(model.version, arguments.out, outcome)
    return 1 if outcome.refused or outcome.unrecorded else 0


def input_files(path: Path) -> list[Path]:
    """The files to score: ``path`` itself, or the CSV and Parquet files in it by name."""
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in INPUT_SUFFIXES)
        if not found:
            raise FileNotFoundError(0, "no .csv or .parquet file in the folder", str(path))
        return found
    if not path.is_file():
        raise FileNotFoundError(0, "no such file or folder", str(path))
    return [path]


def score_files(
    model: ActiveModel, files: list[Path], records: CustomerRecords | None, chunk_size: int
) -> Outcome:
    """Score every file in chunks; a progress bar on a terminal."""
    outcome = Outcome()
    console = Console(stderr=True)
    with Progress(console=console, disable=not console.is_terminal) as progress:
        for path in files:
            batch, lines = read_customers(path)
            task = progress.add_task(path.name, total=batch.size)
            for number, piece in enumerate(chunks(batch, chunk_size)):
                first = number * chunk_size
                _score_piece(model, piece, records, outcome, path, lines[first:])
                progress.advance(task, piece.size)
    return outcome


def read_customers(path: Path) -> tuple[CustomerBatch, list[str]]:
    """A file's customers, validated, and where each data row is (``line N`` of a CSV, as
    an editor numbers it; ``row N`` of a Parquet file)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.csv as arrow_csv  # a command's import: the service never needs it
        import pyarrow.parquet as parquet

        table = parquet.read_table(path)
        buffer = io.BytesIO()
        arrow_csv.write_csv(table, buffer)
        batch = _parsed(path, buffer.getvalue())
        return batch, [f"row {row + 1}" for row in range(batch.size)]
    content = path.read_bytes()
    return _parsed(path, content), [f"line {line}" for line in _data_lines(content)]


def _parsed(path: Path, content: bytes) -> CustomerBatch:
    try:
        return parse_csv_batch(content, max_size=sys.maxsize)
    except ServiceError as error:
        raise ServiceError(f"{path}: {error.message}") from None


def _data_lines(content: bytes) -> Iterator[int]:
    """The first line of each data row, blank rows skipped as the parser skips them."""
    text = content.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""))
    next(reader, None)  # the header
    start = reader.line_num + 1
    for row in reader:
        if "".join(row).strip():
            yield start
        start = reader.line_num + 1


def _score_piece(
    model: ActiveModel,
    piece: CustomerBatch,
    records: CustomerRecords | None,
    outcome: Outcome,
    path: Path,
    lines: list[str],
) -> None:
    response = score_batch(model, piece, records).response  # records None: nothing kept
    for result in response["results"]:
        index = result["index"]
        error = result.get("error")
        if error is not None:
            message = "; ".join(
                f"{item['field'] or 'row'}: {item['message']} ({item['rule']})"
                for item in error["details"]
            )
            outcome.refused.append(f"{path} {lines[index]}: {message or error['message']}")
            outcome.rows.append(
                {**dict.fromkeys(OUTPUT_COLUMNS, None), "customer_key": result["customer_key"],
                 "model_version": model.version, "error": message or error["message"]}
            )  # fmt: skip
            continue
        outcome.counts[result["segment_id"]] += 1
        if result.get("recorded") is False:
            outcome.unrecorded += 1
        outcome.rows.append(
            {
                "customer_key": result["customer_key"],
                "segment_id": result["segment_id"],
                "confidence": result["confidence"],
                "atypical": result["atypical"],
                "model_version": model.version,
                "error": None,
            }
        )


def write_output(path: Path, rows: list[dict[str, Any]]) -> None:
    """All of ``rows`` into ``path`` (Parquet or CSV by its suffix), replacing it whole."""
    if path.suffix.lower() != ".parquet":
        write_bytes_atomically(path, to_csv(rows, OUTPUT_COLUMNS).encode())
        return
    import pyarrow as arrow
    import pyarrow.parquet as parquet

    table = arrow.table({column: [row[column] for row in rows] for column in OUTPUT_COLUMNS})
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        parquet.write_table(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _report(version: str, out: Path, outcome: Outcome) -> None:
    stream = sys.stdout
    scored = sum(outcome.counts.values())
    stream.write(
        f"model {version}: {len(outcome.rows)} customers, {scored} scored, "
        f"{len(outcome.refused)} refused; written to {out}\n"
    )
    for segment_id, count in outcome.counts.most_common():
        stream.write(f"  {segment_id:<28} {count:>9}\n")
    if outcome.refused:
        stream.write(f"{len(outcome.refused)} rows refused, not scored:\n")
        stream.writelines(f"  {line}\n" for line in outcome.refused[:_ERRORS_SHOWN])
        if len(outcome.refused) > _ERRORS_SHOWN:
            stream.write(f"  ... and {len(outcome.refused) - _ERRORS_SHOWN} more (see {out})\n")
    if outcome.unrecorded:
        stream.write(
            f"{outcome.unrecorded} assignments could not be recorded: the store is unavailable\n"
        )


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
