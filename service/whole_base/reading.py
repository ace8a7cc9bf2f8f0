"""Reading a piece a chunk at a time, as the CSV body ``POST /segment/batch`` takes.

Every chunk goes through the service's own CSV validation, so a Parquet chunk is first
written as CSV (by Arrow, in C++): one set of rules for every format. At most one chunk of
a file is in memory at a time: Parquet is read by record batches, CSV by lines.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as arrow
import pyarrow.csv as arrow_csv
import pyarrow.parquet as parquet

from service.whole_base.csv_records import record_blocks
from service.whole_base.errors import WholeBaseError, one_line, unreadable
from service.whole_base.pieces import CsvPiece, ParquetPiece, Piece, opened

_DELIMITERS = (",", ";", "\t")
"""How ``parse_csv_batch`` finds a CSV's separator: the first of these in the header."""


@dataclass(frozen=True)
class RawChunk:
    """At most a chunk's worth of rows of one file, as a CSV body with its header."""

    path: Path
    kind: Literal["csv", "parquet"]
    body: bytes
    data_start: int
    """Where the rows start in ``body`` (after the header)."""
    first: int
    """The first row's line (CSV) or row number (Parquet) in its file."""
    consumed: int
    """What the chunk advances its file's progress by: bytes (CSV) or rows (Parquet)."""

    def locations(self) -> list[str]:
        """Where each data row is in its file: ``line N`` of a CSV (the row's first line,
        as an editor numbers them, blank lines skipped as validation skips them) or ``row
        N`` of a Parquet file. Worked out only when a row was refused."""
        if self.kind == "parquet":
            return [f"row {self.first + row}" for row in range(self.consumed)]
        return [f"line {line}" for line in self._data_lines()]

    def span(self) -> str:
        """The lines or rows the chunk covers, for a message about the whole chunk."""
        unit = "rows" if self.kind == "parquet" else "lines"
        count = self.consumed if self.kind == "parquet" else self.body.count(b"\n", self.data_start)
        return f"{unit} {self.first}-{self.first + max(count - 1, 0)}"

    def _data_lines(self) -> Iterator[int]:
        text = self.body.decode("utf-8-sig", errors="replace")
        header_end = len(self.body[: self.data_start].decode("utf-8-sig", errors="replace"))
        header = text[:header_end]
        delimiter = next((mark for mark in _DELIMITERS if mark in header), ",")
        reader = csv.reader(io.StringIO(text[header_end:], newline=""), delimiter=delimiter)
        start = self.first
        for row in reader:
            if "".join(row).strip():
                yield start
            start = self.first + reader.line_num


def read_chunks(piece: Piece, chunk_size: int) -> Iterator[RawChunk]:
    """The piece's rows, ``chunk_size`` at most at a time, in file order.

    Raises
    ------
    WholeBaseError
        The file is gone, unreadable or damaged.
    """
    if isinstance(piece, ParquetPiece):
        return _parquet_chunks(piece, chunk_size)
    return _csv_chunks(piece, chunk_size)


def _csv_chunks(piece: CsvPiece, chunk_size: int) -> Iterator[RawChunk]:
    with opened(piece.path) as stream:
        stream.seek(piece.start)
        # A piece of a file (Dask) is a few megabytes: read at once, it ends where it should.
        source = stream if piece.stop is None else io.BytesIO(stream.read(piece.stop - piece.start))
        line = piece.first_line
        for block, lines in record_blocks(source, chunk_size):
            yield RawChunk(
                path=piece.path,
                kind="csv",
                body=piece.header + block,
                data_start=len(piece.header),
                first=line,
                consumed=len(block),
            )
            line += lines


def _parquet_chunks(piece: ParquetPiece, chunk_size: int) -> Iterator[RawChunk]:
    row = piece.first_row
    with _parquet_file(piece.path) as file:
        batches = file.iter_batches(
            batch_size=chunk_size, row_groups=piece.row_groups, columns=list(piece.columns)
        )
        while (batch := _next_batch(piece.path, batches)) is not None:
            body = _as_csv(piece.path, batch)
            header_end = body.index(b"\n") + 1 if b"\n" in body else len(body)
            yield RawChunk(
                path=piece.path,
                kind="parquet",
                body=body,
                data_start=header_end,
                first=row,
                consumed=batch.num_rows,
            )
            row += batch.num_rows


def _parquet_file(path: Path) -> Any:
    try:
        return parquet.ParquetFile(path)
    except (OSError, arrow.ArrowException) as error:
        raise unreadable(path, error) from None


def _next_batch(path: Path, batches: Iterator[Any]) -> Any:
    try:
        return next(batches, None)
    except (OSError, arrow.ArrowException) as error:
        raise unreadable(path, error) from None


def _as_csv(path: Path, batch: Any) -> bytes:
    buffer = io.BytesIO()
    try:
        arrow_csv.write_csv(batch, buffer)
    except arrow.ArrowException as error:
        raise WholeBaseError(f"{path}: cannot be read as customers: {one_line(error)}") from None
    return buffer.getvalue()
