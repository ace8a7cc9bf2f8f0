"""Scoring routes: one customer on the live path, or a whole batch."""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.responses import Response

from service import metrics
from service.api.batch_threads import BatchThreads
from service.api.deps import (
    BatchThreadsDep,
    RecordsDep,
    ServingDep,
    SettingsDep,
    ShadowDep,
    WindowDep,
    records_for,
    serving_for,
    shadow_for,
    window_for,
)
from service.api.media_types import JSON_TYPES, body_media_type, unsupported
from service.api.responses import JSONBytesResponse
from service.api.routes.openapi import BATCH_ANSWERS, errors, json_body
from service.customer_records import CustomerRecords
from service.errors import InvalidInput, detail
from service.models.active_model import ActiveModel
from service.models.shadow import Shadow
from service.schemas import (
    BatchRequest,
    BatchResponse,
    ColumnarBatchResponse,
    CustomerFeatures,
    SegmentAssignment,
)
from service.scoring.arrow_answer import TableFormat, render_table, table_answer
from service.scoring.arrow_input import (
    ARROW_STREAM,
    PARQUET,
    parse_arrow_batch,
    parse_parquet_batch,
)
from service.scoring.batch_scoring import (
    BatchAnswer,
    Layout,
    atypical_reasons,
    reject_invalid_items,
    score_batch,
)
from service.scoring.csv_answer import results_as_csv
from service.scoring.customer_input import CustomerBatch, parse_csv_batch, parse_json_batch
from service.scoring.drift_window import DriftWindow
from service.scoring.single_scoring import score_one
from service.scoring.table_scoring import ScoredTable, score_table, segment_counts

router = APIRouter(tags=["scoring"])

LIVE_PATH = "/segment"
"""Answered ahead of the router in the running service (``routes.live_path``), with the same
domain call as :func:`score_customer`, which documents it."""


@router.post(
    LIVE_PATH,
    response_model=SegmentAssignment,
    responses=errors(400, 413, 415, 422, 503),
    openapi_extra=json_body(CustomerFeatures),
)
async def score_customer(request: Request) -> Response:
    """Assign one customer to a segment, with the recommended actions."""
    media_type = body_media_type(request.scope)
    if media_type not in JSON_TYPES:
        raise unsupported(media_type, "application/json")
    model = serving_for(request).model
    body = await request.body()
    shadow = shadow_for(request)
    answer = await score_one(model, records_for(request), window_for(request), body, shadow=shadow)
    return JSONBytesResponse(answer)


AnswerFormat = Literal["json", "csv", "arrow", "parquet"]

_ANSWER_TYPES: dict[AnswerFormat, str] = {
    "json": "application/json",
    "csv": "text/csv",
    "arrow": ARROW_STREAM,
    "parquet": PARQUET,
}


_BATCH_FORMATS = f"""Assign many customers to segments; results in input order.

The body is JSON, CSV (raw or as a `file` upload), an Arrow IPC stream (`{ARROW_STREAM}`)
or a Parquet file (`{PARQUET}`). A CSV, Arrow or Parquet body has one customer per row,
its columns named as in the bank's export or in snake_case: the five features, optionally
`customer_key` and the export's row number (not read); any other column is refused (422).
In Arrow and Parquet the features may be of any integer, floating-point or decimal type and
the key text or integers; a column of another type is refused naming it and its type (422,
`column_type`). Bad rows get CSV's errors (a null is a missing field); a truncated or
unreadable body is 400, more than MAX_BATCH_SIZE rows 413 (found before decoding where the
body states its size), as is a stream of more than 1,000 record batches, a stream with
compressed buffers 415.

The answer is JSON, or CSV, Arrow IPC or Parquet (`format`, else `Accept`): one row per
item in input order with the CSV answer's columns, typed in Arrow and Parquet (segment ids
and names dictionary-encoded, scores float64, flags bool, `error` null on scored rows);
their schema metadata holds `model_version`, `counts` and `n_errors`.
"""


@router.post(
    "/segment/batch",
    response_model=BatchResponse | ColumnarBatchResponse,
    responses={**errors(400, 413, 415, 422, 503), **BATCH_ANSWERS},
    openapi_extra=json_body(BatchRequest, csv=True, tables=True),
    description=_BATCH_FORMATS,
)
async def score_customers(
    request: Request,
    serving: ServingDep,
    records: RecordsDep,
    settings: SettingsDep,
    window: WindowDep,
    shadow: ShadowDep,
    threads: BatchThreadsDep,
    strict: Annotated[
        bool, Query(description="Reject the whole batch if any item is invalid.")
    ] = False,
    layout: Annotated[
        Layout,
        Query(
            description="`rows` (one result per item, in input order) or `columns` (one "
            "list per field, each segment's name and actions once under `segments`, items "
            "not scored under `errors`)."
        ),
    ] = "rows",
    format: Annotated[
        AnswerFormat | None,
        Query(
            description="The answer's format; without it, the first of `text/csv`, "
            f"`{ARROW_STREAM}` and `{PARQUET}` that `Accept` names, else JSON. A CSV, "
            "Arrow or Parquet answer has one row per item, in input order (the layout is "
            "for JSON)."
        ),
    ] = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """Assign many customers (JSON, CSV, Arrow or Parquet) to segments; results in input order."""
    answer_format = format or _asked_format(accept)
    batch = await _read_batch(request, settings.max_batch_size, threads)
    if strict:
        reject_invalid_items(batch)
    model = serving.model
    if answer_format in ("arrow", "parquet"):
        body, table = await threads.run(
            _score_as_table, model, batch, records, window, answer_format
        )
        later = (
            BackgroundTask(_observe_table, shadow, model, table)
            if shadow.version is not None and len(table.positions)
            else None
        )
        return Response(body, media_type=_ANSWER_TYPES[answer_format], background=later)
    as_csv = answer_format == "csv"
    if as_csv:
        layout = "rows"  # a CSV answer has one row per customer, whatever the layout asked
    answer = await threads.run(_score_and_render, model, batch, records, window, layout, as_csv)
    assert answer.body is not None
    # After the answer has gone: the shadow never holds an answer back.
    later = (
        BackgroundTask(shadow.observe, answer.segment_ids, answer.features)  # in a thread
        if shadow.version is not None and answer.segment_ids and answer.features is not None
        else None
    )
    return Response(answer.body, media_type=_ANSWER_TYPES[answer_format], background=later)


def _asked_format(accept: str | None) -> AnswerFormat:
    """The first of CSV, Arrow and Parquet that ``Accept`` names (and does not refuse with
    ``q=0``); JSON when it names none (a client that accepts anything, or JSON among
    others, has always been answered JSON). Other q-values are not weighed."""
    for media_range in (accept or "").split(","):
        media_type, *parameters = (part.strip().lower() for part in media_range.split(";"))
        if any(_refuses(parameter) for parameter in parameters):
            continue
        for answer_format, answer_type in _ANSWER_TYPES.items():
            if answer_format != "json" and media_type == answer_type:
                return answer_format
    return "json"


def _refuses(parameter: str) -> bool:
    name, _, value = parameter.partition("=")
    try:
        return name.strip() == "q" and float(value) == 0
    except ValueError:  # a q-value that is not a number refuses nothing
        return False


def _score_as_table(
    model: ActiveModel,
    batch: CustomerBatch,
    records: CustomerRecords,
    window: DriftWindow,
    form: TableFormat,
) -> tuple[memoryview, ScoredTable]:
    table = score_table(model, batch, records, window=window)
    body = render_table(table_answer(model, table), form)
    metrics.record_segment_counts(segment_counts(model, table))
    metrics.record_atypical(Counter(table.reason_counts()).elements())
    return body, table


def _observe_table(shadow: Shadow, model: ActiveModel, table: ScoredTable) -> None:
    shadow.observe(model.segment_ids_of(table.scored.labels), table.features)


def _score_and_render(
    model: ActiveModel,
    batch: CustomerBatch,
    records: CustomerRecords,
    window: DriftWindow,
    layout: Layout,
    as_csv: bool,
) -> BatchAnswer:
    # A CSV answer is rendered from the rows' columns: no JSON results are built for it.
    answer = score_batch(
        model,
        batch,
        records,
        window=window,
        render=partial(_render_csv, model.segment_ids) if as_csv else _render_json,
        layout=layout,
        rendered_as="csv" if as_csv else "json",
    )
    metrics.record_segment_counts(answer.response["counts"])
    metrics.record_atypical(atypical_reasons(answer.response))
    return answer


def _render_json(response: dict[str, Any]) -> bytes:
    # Columns hold the scorer's arrays as they are: orjson writes them without a list.
    return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)


def _render_csv(segment_ids: list[str], response: dict[str, Any]) -> bytes:
    return results_as_csv(response, segment_ids).encode()


async def _read_batch(request: Request, max_size: int, threads: BatchThreads) -> CustomerBatch:
    media_type = body_media_type(request.scope)
    if media_type in JSON_TYPES:
        return await threads.run(parse_json_batch, await request.body(), max_size=max_size)
    if media_type in {"text/csv", "application/csv"}:
        return await threads.run(parse_csv_batch, await request.body(), max_size=max_size)
    if media_type == ARROW_STREAM:
        return await threads.run(parse_arrow_batch, await request.body(), max_size=max_size)
    if media_type == PARQUET:
        return await threads.run(parse_parquet_batch, await request.body(), max_size=max_size)
    if media_type == "multipart/form-data":
        async with request.form(max_files=1, max_fields=1) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise InvalidInput(
                    'the upload needs a CSV file in the form field "file"',
                    details=[detail("file", "missing", "no file field")],
                )
            content = await upload.read()
        return await threads.run(parse_csv_batch, content, max_size=max_size)
    raise unsupported(
        media_type,
        f"application/json, text/csv, a multipart/form-data upload, {ARROW_STREAM} or {PARQUET}",
    )
