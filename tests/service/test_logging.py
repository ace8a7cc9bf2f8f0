"""Structured logs: one JSON object a line, with the request id and the client name."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from pathlib import Path

import pytest

from service.logging_setup import (
    ACCESS_LOGGER,
    FLUSH_INTERVAL_SECONDS,
    AccessRecord,
    JsonFormatter,
    JsonHandler,
    configure_logging,
    log_access,
)
from service.request_context import CLIENT_NAME, REQUEST_ID
from tests.service.conftest import serve, settings_for
from tests.service.helpers import CRM_KEY, KEYS
from tests.service.processes import service_process, wait_for_log
from tests.service.store.conftest import store_at_migration


def record(message: str, *, logger: str = "service.test", **extra: object) -> logging.LogRecord:
    entry = logging.LogRecord(logger, logging.INFO, __file__, 1, message, (), None)
    entry.__dict__.update(extra)
    return entry


def test_formatter_writes_one_json_object_with_the_request_context() -> None:
    request_token, client_token = REQUEST_ID.set("req-1"), CLIENT_NAME.set("crm")
    try:
        line = JsonFormatter().format(record("scored\nthree customers", segment="branch-loyal"))
    finally:
        REQUEST_ID.reset(request_token)
        CLIENT_NAME.reset(client_token)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["time"].endswith("Z")
    assert entry["level"] == "INFO"
    assert entry["logger"] == "service.test"
    assert entry["message"] == "scored\nthree customers"
    assert (entry["request_id"], entry["client"]) == ("req-1", "crm")
    assert entry["segment"] == "branch-loyal"


def test_formatter_outside_a_request_has_null_context_and_keeps_tracebacks() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        entry = record("failed")
        entry.exc_info = sys.exc_info()
    parsed = json.loads(JsonFormatter().format(entry))
    assert parsed["request_id"] is None and parsed["client"] is None
    assert "ValueError: boom" in parsed["exception"]


def test_an_access_record_is_the_record_logging_would_have_made() -> None:
    fields = {"method": "POST", "route": "/segment", "status": 200, "duration_ms": 1.25}
    fast = AccessRecord("POST /segment 200 1.2ms", {**fields, "request_id": "r-1"})
    usual = logging.getLogger(ACCESS_LOGGER).makeRecord(
        ACCESS_LOGGER,
        logging.INFO,
        "(unknown file)",
        0,
        "POST /segment 200 1.2ms",
        (),
        None,
        func="(unknown function)",
        extra={**fields, "request_id": "r-1"},
    )
    assert fast.__dict__.keys() == usual.__dict__.keys()
    for name in fast.__dict__.keys() - {"created", "msecs", "relativeCreated"}:
        assert getattr(fast, name) == getattr(usual, name), name
    assert abs(fast.created - usual.created) < 1
    written, expected = (json.loads(JsonFormatter().format(r)) for r in (fast, usual))
    assert written.pop("time")[:16] == expected.pop("time")[:16]
    assert written == expected
    # What any formatter may ask of a record, a %-style one included.
    line = logging.Formatter("%(levelname)s %(name)s %(filename)s %(asctime)s %(message)s")
    assert line.format(fast).startswith("INFO service.access ")


def test_an_access_line_is_written_straight_only_where_the_json_handler_alone_takes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fields = {"method": "POST", "route": "/segment", "status": 200, "duration_ms": 1.25}
    stream = io.StringIO()
    handler = JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    records: list[logging.LogRecord] = []
    capture = logging.Handler()
    capture.emit = records.append  # type: ignore[method-assign]
    root, access = logging.getLogger(), logging.getLogger(ACCESS_LOGGER)
    try:
        # As configure_logging leaves it: rendered straight, the line a record would give.
        monkeypatch.setattr(root, "handlers", [handler])
        log_access("POST /segment 200 1.2ms", {**fields, "request_id": "r-1", "client": "crm"})
        # Another handler beside it (a test's capture): a record, to both.
        monkeypatch.setattr(root, "handlers", [handler, capture])
        log_access("POST /segment 200 1.2ms", {**fields, "request_id": "r-2", "client": None})
        # A filter on the access logger is obeyed.
        monkeypatch.setattr(root, "handlers", [handler])
        refuse = logging.Filter("somewhere.else")
        access.addFilter(refuse)
        try:
            log_access("POST /segment 200 1.2ms", {**fields, "request_id": "r-3", "client": None})
        finally:
            access.removeFilter(refuse)
        handler.flush()
    finally:
        handler.close()
    straight, through_logging = (json.loads(text) for text in stream.getvalue().splitlines())
    assert [r.request_id for r in records] == ["r-2"]  # type: ignore[attr-defined]
    expected = json.loads(handler.formatter.format(records[0]))  # type: ignore[union-attr]
    assert through_logging == expected
    for line in (straight, expected):
        line.pop("time")
    assert {**expected, "request_id": "r-1", "client": "crm"} == straight
    assert list(straight) == list(expected)  # the same fields in the same order


def test_configure_logging_installs_one_handler_however_often_called() -> None:
    root = logging.getLogger()
    level = root.level
    try:
        configure_logging("warning")
        configure_logging("info")
        ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
        assert len(ours) == 1
        assert root.level == logging.INFO
    finally:
        for handler in [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]:
            root.removeHandler(handler)
        root.setLevel(level)


async def test_access_log_lines_are_json_with_id_and_client(
    models_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with serve(settings_for(models_dir, **KEYS)) as client:
        await client.get("/segments", headers={"X-API-Key": CRM_KEY, "X-Request-ID": "abc-123"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (access,) = [line for line in lines if line.get("request_id") == "abc-123"]
    assert access["logger"] == "service.access"
    assert access["client"] == "crm"
    assert access["route"] == "/segments"
    assert access["status"] == 200
    assert access["method"] == "GET"
    assert isinstance(access["duration_ms"], float)


def test_lines_reach_the_stream_in_order_soon_after_logging_and_at_once_on_flush() -> None:
    stream = io.StringIO()
    handler = JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    try:
        for number in range(3):
            handler.handle(record(f"line {number}", logger=ACCESS_LOGGER))
        deadline = time.monotonic() + 10 * FLUSH_INTERVAL_SECONDS
        while not stream.getvalue() and time.monotonic() < deadline:
            time.sleep(FLUSH_INTERVAL_SECONDS / 4)
        messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
        assert messages == ["line 0", "line 1", "line 2"]  # without anyone flushing
        handler.handle(record("line 3", logger=ACCESS_LOGGER))
        handler.flush()
        assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "line 3"
        handler.handle(record("line 4", logger=ACCESS_LOGGER))
    finally:
        handler.close()
    assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "line 4"  # close flushes


def test_a_record_other_than_an_access_line_is_written_at_once_after_those_before_it() -> None:
    stream = io.StringIO()
    handler = JsonHandler(stream)
    handler.setFormatter(JsonFormatter())
    try:
        handler.handle(record("POST /segment 200", logger=ACCESS_LOGGER))
        handler.handle(record("Application shutdown complete."))
        messages = [json.loads(line)["message"] for line in stream.getvalue().splitlines()]
        assert messages == ["POST /segment 200", "Application shutdown complete."]
    finally:
        handler.close()


def test_a_start_logs_no_library_chatter(models_dir: Path, tmp_path: Path) -> None:
    # A store from an older migration, so that Alembic runs (a new store needs it not).
    store_at_migration(f"sqlite:///{tmp_path / 'store.db'}", "0003")
    with service_process(models_dir, tmp_path, workers=1) as (process, _, log):
        wait_for_log(process, log, "Application startup complete.", 1)
    text = log.read_text()
    assert "Running upgrade" in text  # Alembic's own news is kept
    assert "setup plugin" not in text


TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("traceparent", "logged"),
    [
        (f"00-{TRACE_ID}-{PARENT_ID}-01", (TRACE_ID, PARENT_ID)),
        (f"01-{TRACE_ID}-{PARENT_ID}-00-what-a-later-version-adds", (TRACE_ID, PARENT_ID)),
        (f"00-{TRACE_ID}-{PARENT_ID}-01-extra", None),  # version 00 has four fields
        (f"ff-{TRACE_ID}-{PARENT_ID}-01", None),
        (f"00-{'0' * 32}-{PARENT_ID}-01", None),
        (f"00-{TRACE_ID.upper()}-{PARENT_ID}-01", None),
        ("garbage", None),
    ],
)
async def test_a_w3c_traceparent_is_written_into_the_access_line(
    models_dir: Path, capsys: pytest.CaptureFixture[str], traceparent: str, logged: object
) -> None:
    async with serve(settings_for(models_dir)) as client:
        response = await client.get(
            "/segments", headers={"traceparent": traceparent, "X-Request-ID": "traced"}
        )
    assert response.status_code == 200
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    (access,) = [line for line in lines if line.get("request_id") == "traced"]
    if logged is None:
        assert "trace_id" not in access
    else:
        assert (access["trace_id"], access["parent_id"]) == logged
