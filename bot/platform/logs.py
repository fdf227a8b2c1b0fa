"""Log lines: text by default, one JSON object a line with ALIGNBOT_LOG_FORMAT=json.

A JSON line carries what it was logged in: the workspace (`team_id`) and the request
(`request_id`) or job (`job_id`), set with `context()` by whoever starts that work (the
app's dispatch, the webhook route, the scheduler's `run_job`; a Slack request's workspace
is added by a middleware once the request is verified), and the `duration_s` of a line
that reports one (`extra={"duration_s": …}`).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import queue
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType

from bot.platform.config import ConfigError
from storage.db import keep_row_values_out_of_logs

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

# a context variable, so each thread (and each request in it) has its own
_fields: ContextVar[Mapping[str, str]] = ContextVar("alignbot_log_fields",
                                                    default=MappingProxyType({}))


@contextmanager
def context(**fields: str | None) -> Iterator[None]:
    """Every line logged inside carries `fields` (those not None), besides the outer ones."""
    token = enter({k: v for k, v in fields.items() if v is not None})
    try:
        yield
    finally:
        leave(token)


def enter(fields: Mapping[str, str]) -> Token:
    """`context()`'s start, for a caller that is a context manager itself (bot.platform.
    telemetry's request): lines carry `fields` until `leave(token)`."""
    return _fields.set({**_fields.get(), **fields})


def leave(token: Token) -> None:
    _fields.reset(token)


def add(**fields: str | None) -> None:
    """More fields for the rest of the enclosing `context()` block, which then drops them."""
    _fields.set({**_fields.get(), **{k: v for k, v in fields.items() if v is not None}})


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                **_fields.get()}
        if (duration := getattr(record, "duration_s", None)) is not None:
            line["duration_s"] = round(duration, 6)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:  # scrubbed of row values by then (storage.db.NoRowValues)
            line["exception"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


def configure() -> None:
    """The process's logging, from ALIGNBOT_LOG_LEVEL and ALIGNBOT_LOG_FORMAT, on stderr."""
    level = os.environ.get("ALIGNBOT_LOG_LEVEL", "INFO").strip().upper()
    fmt = os.environ.get("ALIGNBOT_LOG_FORMAT", "text").strip().lower()
    problems = [f"ALIGNBOT_LOG_LEVEL: {level!r} is not one of {', '.join(LEVELS)}"] \
        if level not in LEVELS else []
    if fmt not in FORMATS:
        problems.append(f"ALIGNBOT_LOG_FORMAT: {fmt!r} is not one of {', '.join(FORMATS)}")
    if problems:
        raise ConfigError(problems, "environment")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=level, handlers=[handler])
    # Neither format prints where a line was logged from (file, line, function) or its
    # thread or process (tests/test_observability.py checks): so no record looks them up
    # (the logging docs' "Optimization"; the caller's frame is a walk up the stack, per line).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
    keep_row_values_out_of_logs()  # on the handler just installed


@contextmanager
def in_background() -> Iterator[None]:
    """Inside, a line is formatted where it is logged (its context fields are that thread's)
    and written by one thread of its own: a server's request threads then never queue on
    the handler's lock behind a write to stderr (the logging cookbook's "Dealing with
    handlers that block"). Lines still queued are written on the way out."""
    root = logging.getLogger()
    writer = root.handlers[0]  # configure()'s, on stderr (any other stays as it is)
    formatter, filters = writer.formatter, writer.filters
    front = logging.handlers.QueueHandler(queue.SimpleQueue())
    front.setFormatter(formatter)  # what the writer printed and dropped, done before queueing
    front.filters = filters
    writer.setFormatter(logging.Formatter("%(message)s"))
    writer.filters = []
    listener = logging.handlers.QueueListener(front.queue, writer)
    root.handlers = [front, *root.handlers[1:]]
    listener.start()
    try:
        yield
    finally:
        listener.stop()
        root.handlers = [writer, *(h for h in root.handlers if h is not front)]
        writer.setFormatter(formatter)
        writer.filters = filters
