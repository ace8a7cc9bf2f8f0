"""The work plan: which files to score, each checked before any is scored, and the pieces
they are cut into (a piece is what one process scores alone, chunk by chunk, in order).

Every file is opened and its columns checked up front, so that a bad file in a folder
stops the run before hours are spent on the files before it. In one process a piece is a
whole file; for Dask a file is cut into pieces of about ``PIECE_CHUNKS`` chunks (Parquet
at row-group boundaries, CSV at record boundaries), so that a worker holds one piece's
answer at a time whatever the file's size.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as arrow
import pyarrow.csv as arrow_csv
import pyarrow.parquet as parquet

from segmentation.features import FEATURES
from service.errors import ServiceError
from service.scoring.customer_input import parse_csv_batch
from service.whole_base.csv_records import header_record, record_blocks
from service.whole_base.errors import WholeBaseError, one_line, unreadable

INPUT_SUFFIXES = (".csv", ".parquet")
PIECE_CHUNKS = 10
"""Chunks in a piece given to a Dask worker: enough work per task to make the scheduler's
cost per task negligible, little enough that a worker's answer for it stays small."""

_PANDAS_INDEX = re.compile(r"__index_level_\d+__")
"""The column pandas adds for a frame's index when writing Parquet: not the bank's data."""


@dataclass(frozen=True)
class CsvPiece:
    """Records of a CSV file: from byte ``start`` to ``stop`` (None: the end)."""

    path: Path
    size: int
    """Bytes, for the progress bar."""
    header: bytes
    """The file's header record, put before each chunk so that it reads as a whole CSV."""
    start: int
    stop: int | None
    first_line: int
    """The line the piece starts on, as an editor numbers the file's lines."""


@dataclass(frozen=True)
class ParquetPiece:
    """Row groups of a Parquet file (None: all of them)."""

    path: Path
    size: int
    """Rows, for the progress bar."""
    row_groups: tuple[int, ...] | None
    first_row: int
    """The number of the piece's first row in the file, counting from 1."""
    columns: tuple[str, ...]


Piece = CsvPiece | ParquetPiece


def input_files(path: Path, *, excluding: Path | None = None) -> list[Path]:
    """The files to score: ``path`` itself, or the CSV and Parquet files in it by name,
    as absolute paths (a Dask worker may run in another folder, or on another machine
    that mounts the same storage).

    Names starting with ``.`` or ``_`` are left out, as Spark and Hive leave them out of a
    partitioned folder (``_SUCCESS``, checksums, files being written), and so is
    ``excluding`` (an earlier answer written into the folder is not a partition).
    """
    path = path.absolute()
    if path.is_dir():
        skipped = excluding.absolute() if excluding is not None else None
        found = sorted(
            entry
            for entry in path.iterdir()
            if entry.suffix.lower() in INPUT_SUFFIXES
            and not entry.name.startswith((".", "_"))
            and entry != skipped
        )
        if not found:
            raise WholeBaseError(f"{path}: no .csv or .parquet file in the folder")
        return found
    if not path.exists():
        raise WholeBaseError(f"{path}: no such file or folder")
    return [path]


def plan_pieces(files: list[Path], *, chunk_size: int, split: bool) -> list[Piece]:
    """Check every file and cut it into pieces (one per file unless ``split``).

    Raises
    ------
    WholeBaseError
        A file that cannot be read, is not Parquet or CSV, or has the wrong columns.
    """
    pieces: list[Piece] = []
    for path in files:
        if path.suffix.lower() == ".parquet":
            pieces += _parquet_pieces(path, chunk_size * PIECE_CHUNKS if split else None)
        else:
            pieces += _csv_pieces(path, chunk_size, PIECE_CHUNKS if split else None)
    return pieces


def check_columns(path: Path, header: bytes) -> None:
    """Refuse a file whose header is not the customer features, naming the missing and the
    unexpected columns; the rule is the one ``POST /segment/batch`` applies to a CSV."""
    try:
        parse_csv_batch(header, max_size=0)
    except ServiceError as error:
        raise WholeBaseError(f"{path}: {_columns_problem(error)}") from None


def _columns_problem(error: ServiceError) -> str:
    named: dict[str, list[str]] = {}
    for item in error.details:
        if item["field"]:
            named.setdefault(item["rule"], []).append(item["field"])
    problems = [
        f"{label} {', '.join(named[rule])}"
        for rule, label in (
            ("missing", "missing"),
            ("extra_forbidden", "unexpected"),
            ("duplicate", "repeated"),
        )
        if rule in named
    ]
    if not problems:
        return error.message
    expected = f"expected {', '.join(FEATURES)}, optionally customer_key"
    return f"wrong columns: {'; '.join(problems)} ({expected})"


def _parquet_pieces(path: Path, rows_per_piece: int | None) -> list[Piece]:
    metadata = _parquet_metadata(path)
    schema = metadata.schema.to_arrow_schema()
    columns = tuple(name for name in schema.names if not _PANDAS_INDEX.fullmatch(name))
    check_columns(path, _csv_header(path, schema, columns))
    if rows_per_piece is None:
        return [ParquetPiece(path, metadata.num_rows, None, 1, columns)]
    pieces: list[Piece] = []
    groups: list[int] = []
    rows = first_row = 0
    for group in range(metadata.num_row_groups):
        groups.append(group)
        rows += metadata.row_group(group).num_rows
        if rows >= rows_per_piece or group == metadata.num_row_groups - 1:
            pieces.append(ParquetPiece(path, rows, tuple(groups), first_row + 1, columns))
            groups, first_row, rows = [], first_row + rows, 0
    return pieces


def _parquet_metadata(path: Path) -> Any:
    try:
        with parquet.ParquetFile(path) as file:
            return file.metadata
    except (FileNotFoundError, PermissionError, IsADirectoryError) as error:
        raise unreadable(path, error) from None
    except (OSError, arrow.ArrowException) as error:
        raise WholeBaseError(f"{path}: not a readable Parquet file: {one_line(error)}") from None


def _csv_header(path: Path, schema: Any, columns: tuple[str, ...]) -> bytes:
    """The header a chunk of this file has once written as CSV (as :mod:`reading` does)."""
    buffer = io.BytesIO()
    try:
        arrow_csv.write_csv(schema.empty_table().select(list(columns)), buffer)
    except arrow.ArrowException as error:
        problem = f"columns that are not numbers or text: {one_line(error)}"
        raise WholeBaseError(f"{path}: {problem}") from None
    return buffer.getvalue()


def _csv_pieces(path: Path, lines_per_chunk: int, chunks_per_piece: int | None) -> list[Piece]:
    with opened(path) as stream:
        header, header_lines = header_record(stream)
        check_columns(path, header)
        start, line = len(header), header_lines + 1
        if chunks_per_piece is None:
            size = stream.seek(0, io.SEEK_END) - start
            return [CsvPiece(path, size, header, start, None, line)]
        return list(_csv_cuts(path, stream, header, line, lines_per_chunk, chunks_per_piece))


def _csv_cuts(
    path: Path,
    stream: BinaryIO,
    header: bytes,
    line: int,
    lines_per_chunk: int,
    chunks_per_piece: int,
) -> Iterator[Piece]:
    """Pieces of ``chunks_per_piece`` chunks, cut where :mod:`reading` will cut chunks."""
    start = offset = len(header)
    first_line = line
    for number, (block, lines) in enumerate(record_blocks(stream, lines_per_chunk), start=1):
        offset += len(block)
        line += lines
        if number % chunks_per_piece == 0:
            yield CsvPiece(path, offset - start, header, start, offset, first_line)
            start, first_line = offset, line
    if offset > start:
        yield CsvPiece(path, offset - start, header, start, offset, first_line)


@contextmanager
def opened(path: Path) -> Iterator[BinaryIO]:
    """``path`` open for reading bytes; an error to report if it cannot be (or is gone)."""
    try:
        stream = path.open("rb")
    except OSError as error:
        raise unreadable(path, error) from None
    with stream:
        try:
            yield stream
        except OSError as error:
            raise unreadable(path, error) from None
