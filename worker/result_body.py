"""The result document of an article that was not analysed: ``rejected`` or ``failed``.

Every body with an ``error`` is built by :func:`not_analysed`: the worker's
rejections (:meth:`worker.article.Rejection.result`), the worker giving up
after retries, and the bridge rejecting or giving up on an inbox entry. An
analysed article's body is built by :func:`worker.pipeline.finish`; both carry
the provenance fields of :func:`provenance`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from worker import __version__

SCHEMA = 1  # the result schema version

# Failure codes: what the worker or the bridge gave up on, after retries.
WORKER_LOST = "worker_lost"
PROCESSING_ERROR = "processing_error"
BATCH_LOST = "batch_lost"
BRIDGE_LOST = "bridge_lost"


def now_iso() -> str:
    """UTC now, ISO-8601 to the millisecond: every result's ``processed_at``."""
    global _second
    second, milli = divmod(int(time.time() * 1000), 1000)
    if second != _second[0]:  # formatted once a second, not once an article
        _second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{_second[1]}.{milli:03d}Z"


# (the second, formatted): one tuple, swapped whole.
_second: tuple[int, str] = (-1, "")


@dataclass(frozen=True)
class Failure:
    """Why an article was given up (status ``failed``): not bad input, so never a :class:`Rejection`."""

    code: str
    message: str

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def not_analysed(
    article_id: str | None,
    status: str,
    error: dict[str, str],
    worker: str,
    *,
    revision: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """The body of a ``rejected`` or ``failed`` result.

    Args:
        article_id: the id the outcome is reported under (None if it had no usable one).
        status: ``rejected`` or ``failed``.
        error: ``{"code", "message"}``.
        worker: who decided.
        revision: the revision under this id.
        extra: further fields (``attempts``, ``inbox_entry``), last.

    Returns:
        The result JSON as a dict.
    """
    return {
        "id": article_id,
        "status": status,
        "error": error,
        "revision": revision,
        **provenance(worker),
        **extra,
    }


def provenance(worker: str) -> dict[str, Any]:
    """``schema``, ``worker``, ``processed_at`` and ``version``: who made a result, and when."""
    return {"schema": SCHEMA, "worker": worker, "processed_at": now_iso(), "version": __version__}
