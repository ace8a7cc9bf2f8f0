"""What is measured: the servers, in order, and each server's cases with their request bodies."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import orjson

from benchmarks.report import CSV_BOTH_WAYS, SHADOWED, batch_case_name
from benchmarks.request_bodies import (
    Customer,
    arrow_batch_body,
    csv_batch_body,
    json_batch_body,
    keyed_bodies,
    mlflow_bodies,
    single_bodies,
    write_bodies,
)

logger = logging.getLogger(__name__)

SERVERS: tuple[str, ...] = (
    "ours",
    "ours-postgres",
    "ours-shadow",
    "ours-pod",
    "naive",
    "mlflow",
    "ceiling",
)
"""Every server, in the order they are run and shown. ``ours-postgres`` is our service again,
its store on PostgreSQL, for the keyed case only; ``ours-shadow`` our service with a second
version shadowing every request, for the single case only; ``ours-pod`` our service as a pod
runs it on two cores (``python -m service --workers 2``), for the largest batches only."""

KEYED_SQLITE = "ours /segment keyed, SQLite"
KEYED_POSTGRES = "ours /segment keyed, PostgreSQL"

BATCH_SIZES: tuple[int, ...] = (1, 100, 1_000, 10_000)
FOOTPRINT_BATCH_ROWS = 10_000
JSON = "application/json"
CSV = "text/csv"
ARROW = "application/vnd.apache.arrow.stream"
ARROW_BATCH_ROWS = 100_000
ARROW_NAME = f"Arrow {ARROW_BATCH_ROWS:,}"
"""Arrow IPC in and out (issue 19's columnar target); the server's MAX_BATCH_SIZE is raised
for it (``servers.OURS_LIMITS``)."""


@dataclass(frozen=True)
class Case:
    """One wrk run: a server, a path and the bodies it cycles through."""

    name: str
    server: str
    path: str
    content_type: str
    bodies_file: Path
    rows: int
    """Customers per request."""
    is_batch: bool = False
    recorded: bool = False
    """Answers must say ``"recorded": true`` (the customer carries a key)."""
    accept: str | None = None
    """The answer's media type asked for (``Accept``); None: the server's default, JSON."""


def build_cases(customers: list[Customer], work_dir: Path) -> dict[str, list[Case]]:
    """Every server's cases, their bodies written under ``work_dir``."""
    singles = write_bodies(work_dir / "single.bodies", single_bodies(customers))
    keyed = write_bodies(work_dir / "keyed.bodies", keyed_bodies(customers))
    cases: dict[str, list[Case]] = {
        "ours": [
            Case("ours /segment", "ours", "/segment", JSON, singles, rows=1),
            Case(KEYED_SQLITE, "ours", "/segment", JSON, keyed, rows=1, recorded=True),
        ],
        "ours-postgres": [
            Case(KEYED_POSTGRES, "ours-postgres", "/segment", JSON, keyed, rows=1, recorded=True)
        ],
        "ours-shadow": [Case(SHADOWED, "ours-shadow", "/segment", JSON, singles, rows=1)],
        "naive": [Case("naive /segment", "naive", "/segment", JSON, singles, rows=1)],
        "mlflow": [
            Case(
                "mlflow /invocations",
                "mlflow",
                "/invocations",
                JSON,
                write_bodies(work_dir / "mlflow.bodies", mlflow_bodies(customers)),
                rows=1,
            )
        ],
        "ceiling": [Case("ceiling /segment", "ceiling", "/segment", JSON, singles, rows=1)],
    }
    largest: dict[str, Path] = {}
    for form, content_type, render in (
        ("json", JSON, json_batch_body),
        ("csv", CSV, csv_batch_body),
    ):
        for size in BATCH_SIZES:
            bodies_file = write_bodies(
                work_dir / f"batch_{form}_{size}.bodies", [render(customers, size)]
            )
            cases["ours"].append(
                _batch_case(f"{form.upper()} {size:,}", "ours", content_type, bodies_file, size)
            )
        largest[form] = bodies_file
        # The same largest batch, answered as columns (each segment's actions once).
        cases["ours"].append(
            Case(
                f"ours /segment/batch {form.upper()} {size:,} as columns",
                "ours",
                "/segment/batch?layout=columns",
                content_type,
                bodies_file,
                rows=size,
                is_batch=True,
            )
        )
    arrow = write_bodies(
        work_dir / "batch_arrow_100000.bodies", [arrow_batch_body(customers, ARROW_BATCH_ROWS)]
    )
    # The batch targets' cases (issue 19), on one worker and on a pod's two.
    size = BATCH_SIZES[-1]

    def both_ways(server: str) -> list[Case]:
        return [
            _batch_case(
                f"CSV {size:,} {CSV_BOTH_WAYS}", server, CSV, largest["csv"], size, accept=CSV
            ),
            _batch_case(ARROW_NAME, server, ARROW, arrow, ARROW_BATCH_ROWS, accept=ARROW),
        ]

    cases["ours"] += both_ways("ours")
    # One worker's JSON case is among its batch sizes above.
    cases["ours-pod"] = [
        _batch_case(f"JSON {size:,}", "ours-pod", JSON, largest["json"], size),
        *both_ways("ours-pod"),
    ]
    return cases


def _batch_case(
    name: str,
    server: str,
    content_type: str,
    bodies_file: Path,
    rows: int,
    *,
    accept: str | None = None,
) -> Case:
    return Case(
        batch_case_name(server, name),
        server,
        "/segment/batch",
        content_type,
        bodies_file,
        rows=rows,
        is_batch=True,
        accept=accept,
    )


def first_body(case: Case) -> bytes:
    """The first body of a case's file (the one the answer check sends)."""
    content = case.bodies_file.read_bytes()
    length, _, rest = content.partition(b"\n")
    return rest[: int(length)]


def check_answer(case: Case, status: int, body: bytes) -> str | None:
    """Why one answer shows the case would measure the wrong thing, or None when it is right."""
    if not 200 <= status < 300:
        return f"answered {status} to a sample request: {body[:200]!r}"
    if case.accept == ARROW:
        return _check_arrow_answer(case, body)
    if case.accept == CSV:
        return _check_csv_answer(case, body)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"answered {status} with a body that is not JSON: {body[:200]!r}"
    expected = {
        "ours": "segment_id",
        "ours-postgres": "segment_id",
        "naive": "segment",
        "mlflow": "predictions",
    }.get(case.server)
    if case.is_batch:
        document = document if isinstance(document, dict) else {}
        if "columns" in document:
            scored, failed = len(document["columns"]["segment_id"]), len(document["errors"])
        else:
            results = document.get("results", [])
            failed = sum(1 for result in results if "error" in result)
            scored = len(results) - failed
        if scored != case.rows or failed:
            return f"{scored} customers scored ({failed} errors) of {case.rows}"
    elif expected and not (isinstance(document, dict) and expected in document):
        return f"the answer has no {expected!r}: {body[:200]!r}"
    elif case.recorded and document.get("recorded") is not True:
        return f"the answer was not recorded in the store: {body[:200]!r}"
    return None


def _check_csv_answer(case: Case, body: bytes) -> str | None:
    """Why a CSV case's answer is not a CSV of every customer scored."""
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
    failed = sum(1 for row in rows if row.get("error"))
    scored = sum(1 for row in rows if row.get("segment_id"))
    if len(rows) != case.rows or scored != case.rows or failed:
        return f"{scored} customers scored ({failed} errors) of {case.rows} in the CSV answer"
    return None


def _check_arrow_answer(case: Case, body: bytes) -> str | None:
    """Why an Arrow case's answer is not an Arrow IPC stream of every customer scored."""
    import pyarrow as arrow  # only the Arrow case needs it

    try:
        table = arrow.ipc.open_stream(body).read_all()
    except (arrow.ArrowException, OSError) as error:
        return f"the answer is not an Arrow IPC stream ({error}): {body[:200]!r}"
    if "segment_id" not in table.column_names or "error" not in table.column_names:
        return f"the Arrow answer has the columns {table.column_names}"
    failed = table.num_rows - table["error"].null_count
    scored = table.num_rows - table["segment_id"].null_count
    if table.num_rows != case.rows or scored != case.rows or failed:
        return f"{scored} customers scored ({failed} errors) of {case.rows} in the Arrow answer"
    return None
