"""Cutting a CSV file's bytes at record boundaries, counting lines as an editor numbers them.

The cuts are made on raw bytes (no decoding, no parsing), so that a file of any size is
read a bounded block at a time and a piece of it can be handed to another process. A
newline ends a record unless it is inside a quoted cell: in RFC 4180 CSV that is when an
odd number of quote characters came before it in the record (an escaped quote, ``""``,
counts twice and changes nothing).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import BinaryIO


def header_record(stream: BinaryIO) -> tuple[bytes, int]:
    """The header record as it is in the file (newline included) and its number of lines."""
    first = stream.readline()
    lines = [first] if first else []
    quotes = first.count(b'"')
    while quotes % 2:
        more = stream.readline()
        if not more:
            break
        lines.append(more)
        quotes += more.count(b'"')
    return b"".join(lines), len(lines)


def record_blocks(stream: BinaryIO, lines_per_block: int) -> Iterator[tuple[bytes, int]]:
    """Consecutive blocks of whole records, each of about ``lines_per_block`` lines (more
    only to finish a quoted cell that runs over lines), and the lines each block spans.

    A block therefore holds at most ``lines_per_block`` records.
    """
    while True:
        lines = list(itertools.islice(stream, lines_per_block))
        if not lines:
            return
        data = b"".join(lines)
        count = len(lines)
        quotes = data.count(b'"')
        extra = []
        while quotes % 2:  # the last record's quoted cell runs on: finish the record
            more = stream.readline()
            if not more:
                break
            extra.append(more)
            quotes += more.count(b'"')
        yield data + b"".join(extra), count + len(extra)
