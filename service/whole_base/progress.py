"""The progress bar of a run: one line per input file, on a terminal only (not in a log)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, TaskID

from service.whole_base.pieces import Piece


class FileProgress:
    """Advances each file's bar by what its pieces report (rows of Parquet, bytes of CSV)."""

    def __init__(self, pieces: Sequence[Piece]) -> None:
        console = Console(stderr=True)
        self._progress = Progress(console=console, disable=not console.is_terminal)
        totals: Counter[Path] = Counter()
        for piece in pieces:
            totals[piece.path] += piece.size
        self._tasks: dict[Path, TaskID] = {
            path: self._progress.add_task(path.name, total=total) for path, total in totals.items()
        }

    def __enter__(self) -> FileProgress:
        self._progress.start()
        return self

    def advance(self, path: Path, amount: int) -> None:
        self._progress.advance(self._tasks[path], amount)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()
