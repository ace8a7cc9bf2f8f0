"""Structured logs: one JSON object per line, with the request id and the client name."""

from __future__ import annotations

import logging
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from service.request_context import CLIENT_NAME, REQUEST_ID

# Attributes every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD_ATTRIBUTES = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
        "color_message",  # uvicorn's copy of the message with terminal colours
    }
)


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line: time, level, logger, message, request_id, client.

    Fields given with ``extra=`` are added as they are; an exception adds ``exception``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        entry = self._head(
            record.created,
            record.levelname,
            record.name,
            record.getMessage(),
            getattr(record, "request_id", None),
            getattr(record, "client", None),
        )
        for name in sorted(record.__dict__.keys() - _STANDARD_ATTRIBUTES - entry.keys()):
            entry[name] = record.__dict__[name]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(entry, default=str).decode()

    def format_access(self, created: float, message: str, fields: dict[str, Any]) -> str:
        """The line ``format`` writes for an access record of ``fields`` (see
        :func:`log_access`), made without the record."""
        entry = self._head(
            created, "INFO", ACCESS_LOGGER, message, fields.get("request_id"), fields.get("client")
        )
        for name in sorted(fields.keys() - entry.keys()):
            entry[name] = fields[name]
        return orjson.dumps(entry, default=str).decode()

    def _head(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        request_id: str | None,
        client: str | None,
    ) -> dict[str, Any]:
        """What every line starts with: time, level, logger, message, request id, client."""
        return {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": message,
            "request_id": request_id or REQUEST_ID.get(),
            "client": client or CLIENT_NAME.get(),
        }

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC with milliseconds; the date part is formatted once a second."""
        second = int(created)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"


class JsonHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Write records as they come, except the access log's, which go a few times a second.

    One write per request is one system call on the event loop, and a system call lets go
    of the GIL, which the loop then waits to get back from whichever thread took it in the
    meantime (the store's writer, for one). So the access log's lines are kept in memory
    and written by a thread of this handler's own at most ``FLUSH_INTERVAL_SECONDS`` late;
    any other record writes them first and then itself, so the order of lines is kept and
    start-up, shutdown and errors are never held back. A process killed outright loses at
    most that interval's access lines.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_often, name="log-flush", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(line)  # Handler.handle holds the handler's lock here
        if record.name != ACCESS_LOGGER:
            self.flush()

    def take_line(self, line: str) -> None:
        """Keep an access line already formatted (:func:`log_access`), as ``emit`` keeps one."""
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(line)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            lines, self._pending = self._pending, []
            if not lines:
                return
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:
                # As logging does for a failing handler: say so, and go on serving.
                if logging.raiseExceptions and sys.__stderr__ is not None:
                    sys.__stderr__.write("--- Logging error: the log stream failed\n")

    def close(self) -> None:
        self._stopping.set()
        self.flush()
        super().close()

    def _flush_often(self) -> None:
        while not self._stopping.wait(FLUSH_INTERVAL_SECONDS):
            self.flush()


ACCESS_LOGGER = "service.access"
"""The logger of the one line per request."""


class AccessRecord(logging.LogRecord):
    """One request's access-log record, made for a fraction of a general record's cost.

    ``LogRecord.__init__`` works out, for every record, what is the same for every access
    line (level name, source file, thread and process names): a tenth of the live call's
    time went on the access log. Here those attributes are copied from one record made at
    import, and only the time, the message and the line's fields are the record's own
    (``JsonFormatter`` writes the fields, as it writes any ``extra=``).
    """

    def __init__(self, message: str, fields: dict[str, Any]) -> None:
        attributes = self.__dict__
        attributes.update(_ACCESS_TEMPLATE)
        attributes.update(fields)
        self.msg = message
        created = time.time()
        self.created = created
        self.msecs = (created - int(created)) * 1000
        self.relativeCreated = (created - logging._startTime) * 1000  # type: ignore[attr-defined]


def log_access(message: str, fields: dict[str, Any]) -> None:
    """Log one request's access line (``fields`` as ``extra=``), at INFO.

    Where the service's JSON handler is the only place the line goes (as
    ``configure_logging`` leaves it), the line is rendered straight from ``fields``: making
    a record and formatting it was most of the request metrics' cost, a tenth of the live
    call. With any other set-up (a test's capture, a filter, another handler) a record goes
    through logging as any other, and comes out as the same line.
    """
    handler = _sole_json_handler(_ACCESS)
    formatter = handler.formatter if handler is not None else None
    if handler is None or not isinstance(formatter, JsonFormatter):
        _ACCESS.handle(AccessRecord(message, fields))
        return
    handler.take_line(formatter.format_access(time.time(), message, fields) + handler.terminator)


def _sole_json_handler(logger: logging.Logger) -> JsonHandler | None:
    """The JsonHandler that an INFO record of ``logger`` would reach alone, unfiltered."""
    if logger.disabled or logger.filters:
        return None
    found: list[logging.Handler] = []
    current: logging.Logger | None = logger
    while current is not None:
        found += current.handlers
        if not current.propagate:
            break
        current = current.parent
    if len(found) != 1:
        return None
    (handler,) = found
    if type(handler) is not JsonHandler or handler.filters or handler.level > logging.INFO:
        return None
    return handler


_ACCESS = logging.getLogger(ACCESS_LOGGER)


def _access_template() -> dict[str, Any]:
    """A record as ``Logger.info`` makes one when callers are not looked up, under the
    current settings of what records collect (``configure_logging`` changes them)."""
    return logging.LogRecord(
        ACCESS_LOGGER, logging.INFO, "(unknown file)", 0, "", (), None, "(unknown function)"
    ).__dict__


_ACCESS_TEMPLATE = _access_template()

FLUSH_INTERVAL_SECONDS = 0.2
"""How late a log line may reach standard error at most."""


QUIET_LOGGERS = ("alembic.runtime.plugins",)
"""Libraries' start-up chatter (Alembic announces each of its plugins): warnings only."""


def configure_logging(level: str) -> None:
    """Send every log record to standard error as JSON, at ``level`` and above.

    Idempotent: calling it again replaces (and closes) the handler it installed before and
    leaves other handlers (pytest's, for instance) alone.
    """
    # What a record would otherwise collect on every call (the caller's frame, the thread
    # and process names): no line shows it, and on the live path it cost microseconds.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    global _ACCESS_TEMPLATE
    _ACCESS_TEMPLATE = _access_template()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, JsonHandler)]:
        root.removeHandler(handler)
        handler.close()
    handler = JsonHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))


def flush_logs() -> None:
    """Write every line logged so far (at the end of serving, before the process may go)."""
    for handler in logging.getLogger().handlers:
        handler.flush()


def uvicorn_log_config(level: str) -> dict[str, Any]:
    """uvicorn's ``log_config``: its own messages as JSON too, through the root handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "json": {
                "class": f"{__name__}.JsonHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False},
            # Set before uvicorn imports the app, whose imports are what chatter.
            **{name: {"level": "WARNING"} for name in QUIET_LOGGERS},
        },
    }
