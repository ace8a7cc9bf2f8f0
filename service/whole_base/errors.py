"""What stops a whole-base run: one message an operator can act on."""

from __future__ import annotations

import os
from pathlib import Path


class WholeBaseError(Exception):
    """The run cannot go on (a file missing, unreadable or with the wrong columns; a Dask
    cluster that cannot be used). The command prints ``message`` and exits with status 2.

    Its only argument is the message, so that it pickles: raised on a Dask worker, it
    reaches the client as itself.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def unreadable(path: Path, error: Exception) -> WholeBaseError:
    """The error for a file that could not be opened or read, with the system's reason."""
    # Arrow's OSErrors carry the errno with a message of its own around the system's.
    number = error.errno if isinstance(error, OSError) else None
    reason = os.strerror(number) if number else str(error)
    return WholeBaseError(f"{path}: cannot be read: {one_line(reason)}")


def one_line(text: object) -> str:
    """``text`` with its line breaks and runs of blanks as single spaces (Arrow's messages
    run over several lines; the command's message is one), and any other control character
    escaped: a damaged file's bytes can end up in a message, and a terminal would obey them."""
    words = " ".join(str(text).split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in words)
