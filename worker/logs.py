"""structlog set-up: JSON lines in production, readable lines on a terminal, never a secret.

Our own events (``article``, ``batch``, ...) and the stdlib records of Celery
and kombu go through the same processors, so every line of a worker's output
has the same shape, and every line is scrubbed of passwords in URLs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from worker.config import redact


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """Mask passwords in URLs anywhere in the event, nested values and tracebacks included."""
    return {key: _scrub(value) for key, value in event.items()}


class RedactingFilter(logging.Filter):
    """Scrubs passwords from stdlib log records too (Celery and kombu log URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and "@" in record.msg:
            record.msg = redact(record.msg)
        return True


def configure(fmt: str = "auto", stream: Any = None, level: int | str = logging.INFO) -> None:
    """Route structlog and stdlib logging to ``stream`` (stderr), as JSON or, on a terminal, readable."""
    stream = stream or sys.stderr
    tty = hasattr(stream, "isatty") and stream.isatty()
    console = fmt == "console" or (fmt == "auto" and tty)
    renderer = structlog.dev.ConsoleRenderer(colors=tty) if console else structlog.processors.JSONRenderer()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, redact_event, renderer],
        logger_factory=structlog.PrintLoggerFactory(stream),
        # Our own events obey the level too (a worker's --loglevel WARNING drops the
        # per-article lines), and one below it costs a no-op call, not a rendering.
        wrapper_class=structlog.make_filtering_bound_logger(_level(level)),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(_level(level))


def _level(level: int | str) -> int:
    """A level as logging's number: ``"warning"``, ``"WARNING"`` and ``30`` alike."""
    if isinstance(level, int):
        return level
    number = logging.getLevelName(level.upper())
    return number if isinstance(number, int) else logging.INFO
