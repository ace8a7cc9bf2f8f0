"""Arrow IPC stream and Parquet bodies for the batch route's tests, and their answers read back."""

from __future__ import annotations

from typing import Any

import httpx
import pyarrow as arrow
import pyarrow.parquet as parquet

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"
MEDIA_TYPES = {"arrow": ARROW, "parquet": PARQUET}
BATCH = "/segment/batch"


_SCALAR_FIELDS = (
    "index",
    "customer_key",
    "segment_id",
    "segment_name",
    "confidence",
    "runner_up_segment_id",
    "atypical",
    "atypical_reasons",
    "model_version",
)
"""A result's fields that a table answer holds as they are (one column each)."""


def arrow_body(table: arrow.Table, *, rows_per_batch: int | None = None) -> bytes:
    """``table`` as an Arrow IPC stream (in record batches of ``rows_per_batch`` rows)."""
    sink = arrow.BufferOutputStream()
    with arrow.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=rows_per_batch)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def parquet_body(table: arrow.Table, **options: Any) -> bytes:
    sink = arrow.BufferOutputStream()
    parquet.write_table(table, sink, **options)
    body: bytes = sink.getvalue().to_pybytes()
    return body


def table_body(form: str, table: arrow.Table) -> bytes:
    return arrow_body(table) if form == "arrow" else parquet_body(table)


async def post_table(
    client: httpx.AsyncClient,
    form: str,
    body: bytes,
    *,
    accept: str | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a table body; the answer in the same format unless ``accept`` says otherwise."""
    headers = {"content-type": MEDIA_TYPES[form], "accept": accept or MEDIA_TYPES[form]}
    return await client.post(BATCH, content=body, headers=headers, params=params or {})


def read_answer(response: httpx.Response, form: str) -> arrow.Table:
    """The answer as a table, after checking that it is one of ``form``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == MEDIA_TYPES[form]
    if form == "arrow":
        return arrow.ipc.open_stream(response.content).read_all()
    return parquet.read_table(arrow.BufferReader(response.content))


def as_results(table: arrow.Table) -> list[dict[str, Any]]:
    """A table answer's rows in the JSON row answer's shape (the fields both have)."""
    distance_columns = [name for name in table.column_names if name.startswith("distance_")]
    results = []
    for row in table.to_pylist():
        if row["error"] is not None:
            results.append(
                {"index": row["index"], "customer_key": row["customer_key"], "error": row["error"]}
            )
            continue
        result = {name: row[name] for name in _SCALAR_FIELDS}
        result["distances"] = {
            name.removeprefix("distance_"): row[name] for name in distance_columns
        }
        if row["recorded"] is not None:
            result["recorded"] = row["recorded"]
        results.append(result)
    return results


def comparable(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON results cut to the fields a table answer has (an error as its CSV text)."""
    kept = (*_SCALAR_FIELDS, "distances", "recorded")
    out = []
    for result in results:
        if "error" in result:
            out.append(
                {
                    "index": result["index"],
                    "customer_key": result["customer_key"],
                    "error": error_text(result["error"]),
                }
            )
        else:
            out.append({name: result[name] for name in kept if name in result})
    return out


def error_text(error: dict[str, Any]) -> str:
    """An error as the CSV answer's ``error`` cell says it."""
    named = [f"{item['field']}: {item['message']}" for item in error["details"] if item["field"]]
    return "; ".join(named) if named else str(error["message"])
