"""CSV meant for people: what campaign tools and analysts open in a spreadsheet.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or a
carriage return before one) as a formula, so a customer key such as
``=HYPERLINK("http://…")`` would act in the analyst's spreadsheet. Following OWASP's rule
for CSV injection, such a cell is written with a leading apostrophe, which spreadsheets
show as text and do not run. Only text cells are touched; numbers are written as numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, with a text cell that a spreadsheet would run made inert."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value


_BOOLEAN = {True: "true", False: "false"}


def to_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """``rows`` as CSV with a header of ``columns``: booleans as JSON spells them, every
    text cell safe to open in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(
        [
            _BOOLEAN[value] if isinstance(value, bool) else spreadsheet_safe(value)
            for value in (row[column] for column in columns)
        ]
        for row in rows
    )
    return buffer.getvalue()
