"""The Celery tasks: thin wrappers that hand batches to :class:`worker.batch.BatchRunner`."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import structlog
from celery.exceptions import Reject

from worker import pipeline
from worker.app import PROCESS_BATCH, SUBMIT, app
from worker.batch import BatchRunner, RedisUnavailable
from worker.config import settings


@cache
def analyser() -> pipeline.Analyser:
    return pipeline.Analyser.from_settings(settings())


_runner: tuple[int, BatchRunner] | None = None


def runner() -> BatchRunner:
    """One runner per process; a forked child makes its own Redis connections."""
    global _runner
    if _runner is None or _runner[0] != os.getpid():
        _runner = (os.getpid(), BatchRunner(settings(), analyser(), _requeue))
    return _runner[1]


def _requeue(articles: list[dict[str, Any]], delay: float) -> None:
    from producer.client import Client

    Client(settings()).submit_many(articles, countdown=delay)


log = structlog.get_logger("newsflow.worker")


@app.task(name=PROCESS_BATCH)
def process_batch(batch_id: str) -> dict[str, Any]:
    try:
        return runner().run_batch(batch_id)
    except RedisUnavailable as exc:
        # Not acked: put back now if the broker answers, else kombu's sweep
        # redelivers it after the visibility timeout. Done work is skipped then.
        log.warning("batch_interrupted", batch=batch_id, error=repr(exc))
        raise Reject(repr(exc), requeue=True) from None


@app.task(name=SUBMIT, bind=True)
def submit(self, articles: list[Any]) -> dict[str, Any]:
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
    except RedisUnavailable as exc:
        log.warning("batch_interrupted", batch=batch, error=repr(exc))
        raise Reject(repr(exc), requeue=True) from None
