"""structlog set-up: JSON lines in production, readable lines on a terminal, never a secret."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from worker.config import redact


def _redact(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and "@" in value:
            event[key] = redact(value)
    return event


class RedactingFilter(logging.Filter):
    """Scrubs passwords from stdlib log records too (Celery and kombu log URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str) and "@" in record.msg:
            record.msg = redact(record.msg)
        return True


def configure(fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer = structlog.dev.ConsoleRenderer() if console else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            renderer,
        ],
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    root = logging.getLogger()
    for handler in root.handlers or [logging.StreamHandler(stream)]:
        handler.addFilter(RedactingFilter())
        if handler not in root.handlers:
            root.addHandler(handler)
