"""PostgreSQL's bulk write: one binary COPY into a staging table, then latest and history
filled by the server (the order of the two is the store's rule: see customer_store)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import repeat
from typing import Any

import orjson
from sqlalchemy import Connection

from segmentation.features import FEATURES
from service.store.assignments import COLUMNS, Assignments
from service.store.statements import COLUMN_LIST, REPLACES_LATEST, UPDATES

# The order of _rows_to_copy: what varies per row first, then what the block shares.
_COPY_COLUMNS = {
    "ordinal": "int4",
    "customer_key": "varchar",
    "segment_id": "varchar",
    **dict.fromkeys(FEATURES, "float8"),
    "confidence": "float8",
    "atypical": "bool",
    "model_version": "varchar",
    "source": "varchar",
    "assigned_at": "timestamptz",
}


def copy_rows(connection: Connection, assignments: Assignments) -> None:
    """Bulk path for PostgreSQL: one COPY into a session-local staging table, then history
    and latest are filled by the server (COPY beats multi-row INSERT several times over).

    The staging rows keep their input order, so that the history keeps it and, for a key
    given twice, the last row is the latest; the upsert runs in key order.
    """
    driver = connection.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS incoming_assignments "
            "(ordinal integer, LIKE latest_assignments) ON COMMIT DELETE ROWS"
        )
        columns = ", ".join(_COPY_COLUMNS)
        statement = f"COPY incoming_assignments ({columns}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(list(_COPY_COLUMNS.values()))
            for row in _rows_to_copy(assignments):
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO latest_assignments ({COLUMN_LIST}) "
            f"SELECT DISTINCT ON (customer_key) {COLUMN_LIST} FROM incoming_assignments "
            "ORDER BY customer_key, ordinal DESC "
            f"ON CONFLICT (customer_key) DO UPDATE SET {UPDATES} WHERE {REPLACES_LATEST}"
        )
        cursor.execute(
            f"INSERT INTO assignment_history ({COLUMN_LIST}) "
            f"SELECT {COLUMN_LIST} FROM incoming_assignments ORDER BY ordinal"
        )


def _rows_to_copy(assignments: Assignments) -> Iterator[tuple[Any, ...]]:
    """The block's rows in ``_COPY_COLUMNS`` order, each after its ordinal.

    Binary COPY: the server reads the doubles as they are (no text to format or parse)
    and keys need no escaping; it took half the time of the text format.
    """
    return zip(
        range(len(assignments)),
        assignments.customer_keys,
        assignments.segment_ids,
        *assignments.features.T.tolist(),
        assignments.confidence,
        assignments.atypical,
        repeat(assignments.model_version),
        repeat(assignments.source),
        repeat(assignments.assigned_at),
    )


_GROUP_TYPES = {
    "customer_key": "varchar",
    "segment_id": "varchar",
    "model_version": "varchar",
    **dict.fromkeys(FEATURES, "float8"),
    "confidence": "float8",
    "atypical": "bool",
    "source": "varchar",
    "assigned_at": "timestamptz",
}
assert tuple(_GROUP_TYPES) == COLUMNS
_GROUP_FIELDS = ", ".join(
    f"(row ->> {position})::{kind} AS {name}"
    for position, (name, kind) in enumerate(_GROUP_TYPES.items())
)

GROUP_STATEMENT = f"""
WITH incoming AS (
    SELECT {_GROUP_FIELDS}, ordinal
    FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS incoming (row, ordinal)
), latest AS (
    INSERT INTO latest_assignments ({COLUMN_LIST})
    SELECT DISTINCT ON (customer_key) {COLUMN_LIST} FROM incoming
    ORDER BY customer_key, ordinal DESC
    ON CONFLICT (customer_key) DO UPDATE SET {UPDATES} WHERE {REPLACES_LATEST}
    RETURNING 1
)
INSERT INTO assignment_history ({COLUMN_LIST})
SELECT {COLUMN_LIST} FROM incoming, (SELECT count(*) FROM latest) AS upserted
ORDER BY ordinal
"""
"""Many small blocks in one statement (so one round trip, and atomic on its own), given as
one JSON array of rows in ``COLUMNS`` order.

One JSON document rendered by orjson costs the writer a tenth of what adapting a dozen
Python lists to PostgreSQL arrays did, and floats survive it exactly (the shortest text
that reads back as the same double). Data-modifying CTEs run in no set order, so the
history rows are made to wait for the upsert: they are joined with the count of its rows,
which exists only once every latest row has been written and locked. History ids are
therefore taken after the locks, as in the other write paths.
"""


def group_rows(blocks: Sequence[Assignments]) -> str:
    """The parameter of ``GROUP_STATEMENT``: every row of ``blocks``, in order."""
    return orjson.dumps([row for block in blocks for row in block.rows()]).decode()
