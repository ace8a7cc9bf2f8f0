"""OpenAPI fragments shared by routes that read their bodies themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.schemas import ErrorResponse
from service.scoring.arrow_input import ARROW_STREAM, PARQUET


def json_body(model: type[BaseModel], *, csv: bool = False, tables: bool = False) -> dict[str, Any]:
    """Document a request body that the route parses itself (to validate it in one pass);
    with ``tables``, also as an Arrow IPC stream or a Parquet file."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    content: dict[str, Any] = {"application/json": {"schema": schema}}
    if csv:
        content["text/csv"] = {
            "schema": {"type": "string"},
            "example": (
                "Customer Key,Avg_Credit_Limit,Total_Credit_Cards,Total_visits_bank,"
                "Total_visits_online,Total_calls_made\n87073,100000,2,1,1,0\n"
            ),
        }
        content["multipart/form-data"] = {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "contentMediaType": "text/csv"}},
                "required": ["file"],
            },
            "encoding": {"file": {"contentType": "text/csv"}},
        }
    if tables:
        content.update(TABLE_BODIES)
    return {"requestBody": {"required": True, "content": content}}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Declare that these statuses answer with the error shape."""
    return {status: {"model": ErrorResponse} for status in statuses}


CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
"""Page cursors are opaque base64url text (no padding) that this service hands out."""

CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
"""A route's 200 may also be CSV (beside its JSON model)."""

TABLE_BODIES: dict[str, dict[str, Any]] = {
    media_type: {"schema": {"type": "string", "contentMediaType": media_type}}
    for media_type in (ARROW_STREAM, PARQUET)
}
"""A body that is a table in binary form: Arrow IPC stream or Parquet, one row per customer,
its columns those of a CSV batch (the features, optionally ``customer_key``)."""

BATCH_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}, **TABLE_BODIES}}
}
"""A batch's 200 may also be CSV, Arrow IPC or Parquet (beside its JSON models)."""
