"""The answer file, written chunk by chunk and put in place only when complete.

Rows go to a hidden temporary file in the destination's folder (same file system, so the
final rename is atomic), which replaces the destination once every chunk is in and synced
to disk. A run that stops for any reason removes it: nobody finds a part of an answer
where a whole one is expected, and an earlier answer stays as it was.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pyarrow as arrow
import pyarrow.parquet as parquet

from service.spreadsheet_csv import to_csv
from service.whole_base.chunk_scoring import OUTPUT_COLUMNS, OUTPUT_SCHEMA

logger = logging.getLogger(__name__)

ROW_GROUP_ROWS = 100_000
"""Rows per Parquet row group: chunks are gathered up to this many before being written,
since many small row groups make the file slower to read for every later reader."""


class OutputFile:
    """Parquet when ``path`` ends in ``.parquet``, CSV (spreadsheet-safe) otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.parquet = path.suffix.lower() == ".parquet"
        self.temporary: Path | None = None
        self._stream: IO[Any] | None = None
        self._writer: Any = None
        self._pending: list[Any] = []
        self._pending_rows = 0

    def __enter__(self) -> OutputFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".partial"
        )
        self.temporary = Path(name)
        os.fchmod(handle, 0o644)  # mkstemp's 0600 would hide the answer from other users
        if self.parquet:
            self._stream = os.fdopen(handle, "wb")
            self._writer = parquet.ParquetWriter(self._stream, OUTPUT_SCHEMA)
        else:
            self._stream = os.fdopen(handle, "w", encoding="utf-8", newline="")
            self._stream.write(to_csv([], OUTPUT_COLUMNS))
        return self

    def write(self, table: Any) -> None:
        """Append a chunk's answer rows (a table with the output schema)."""
        if not self.parquet:
            text = to_csv(table.to_pylist(), OUTPUT_COLUMNS)
            self._open_stream().write(text[text.index("\n") + 1 :])
            return
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def commit(self) -> None:
        """Put the complete answer in place of ``path``."""
        stream = self._open_stream()
        if self._writer is not None:
            self._flush()
            self._writer.close()
        stream.flush()
        os.fsync(stream.fileno())
        stream.close()
        assert self.temporary is not None
        os.replace(self.temporary, self.path)
        self.temporary = None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.temporary is None:
            return
        try:
            if self._writer is not None:
                self._writer.close()
            if self._stream is not None:
                self._stream.close()
        except (OSError, arrow.ArrowException) as failure:
            logger.warning("closing the unfinished answer %s: %s", self.temporary, failure)
        self.temporary.unlink(missing_ok=True)
        self.temporary = None

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(arrow.concat_tables(self._pending))
            self._pending, self._pending_rows = [], 0

    def _open_stream(self) -> IO[Any]:
        assert self._stream is not None, "an OutputFile is written inside its with block"
        return self._stream
