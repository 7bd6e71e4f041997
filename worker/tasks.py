"""The Celery tasks: thin wrappers that hand batches to :class:`worker.batch.BatchRunner`."""

from __future__ import annotations

import os
from typing import Any

import structlog
from celery.exceptions import Reject

from worker.app import app
from worker.batch import BatchRunner, analyser
from worker.batchqueue import BatchQueue, celery_send
from worker.config import settings
from worker.connection import UNAVAILABLE
from worker.keys import Keys
from worker.tasknames import PROCESS_BATCH, SUBMIT

log = structlog.get_logger("newsflow.worker")

_runner: tuple[int, BatchRunner] | None = None


def runner() -> BatchRunner:
    """One runner per process; a forked child makes its own Redis connections."""
    global _runner
    if _runner is None or _runner[0] != os.getpid():
        s = settings()
        # A failed article goes back through this worker's own app: no client, no second pool.
        send = celery_send(lambda: app, s.prefix)
        _runner = (
            os.getpid(),
            BatchRunner(s, analyser(s), lambda broker: BatchQueue(broker, Keys(s.prefix), s, send)),
        )
    return _runner[1]


@app.task(name=PROCESS_BATCH)
def process_batch(batch_id: str) -> dict[str, Any]:
    try:
        return runner().run_batch(batch_id)
    except UNAVAILABLE as exc:
        # Not acked: put back now if the broker answers, else kombu's sweep
        # redelivers it after the visibility timeout. Done work is skipped then.
        log.warning("batch_interrupted", batch=batch_id, error=repr(exc))
        raise Reject(repr(exc), requeue=True) from None


@app.task(name=SUBMIT, bind=True)
def submit(self: Any, articles: list[Any]) -> dict[str, Any]:
    """The public task: articles travel in the message itself.

    An article without an id gets ``<task id>.<index>``, which a redelivery of
    the same message reproduces.
    """
    batch = self.request.id or "submit"
    if not isinstance(articles, list):
        articles = [articles]
    for i, article in enumerate(articles):
        if isinstance(article, dict) and "id" not in article:
            article["id"] = f"{batch}.{i}"
    try:
        return runner().run_articles(articles, batch)
    except UNAVAILABLE as exc:
        log.warning("batch_interrupted", batch=batch, error=repr(exc))
        raise Reject(repr(exc), requeue=True) from None
