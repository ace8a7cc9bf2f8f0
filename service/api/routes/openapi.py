"""OpenAPI fragments shared by routes that read their bodies themselves."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.schemas import ErrorResponse


def json_body(model: type[BaseModel], *, csv: bool = False) -> dict[str, Any]:
    """Document a request body that the route parses itself (to validate it in one pass)."""
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
