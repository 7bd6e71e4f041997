"""Running one batch of articles in a worker: stages, dedupe, results, attempts.

Delivery is at least once; effects are idempotent. A redelivered batch skips
every article whose result for the same text already exists, and
emit_result.lua writes a result entry at most once per (id, text).

Attempts: each batch counts its deliveries in ``<prefix>:attempts`` before it
starts. On the first delivery articles are not counted one by one (fast path).
A redelivered batch means a worker died in it, so it runs carefully: each
article's own counter is raised before it is processed, crediting the first
delivery, and an article over ``max_attempts`` goes to the dead stream as
``failed`` without being run again, while its batch-mates go on.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from worker import pipeline
from worker.article import Rejection, text_hash, valid_id
from worker.config import Settings
from worker.connection import connect
from worker.dedupe.redis_index import RedisIndex
from worker.keys import BATCH_TTL, Keys
from worker.store import Record, ResultStore

log = structlog.get_logger("newsflow.worker")

Requeue = Callable[[list[dict[str, Any]], float], None]


class BatchRunner:
    def __init__(self, settings: Settings, analyser: pipeline.Analyser, requeue: Requeue) -> None:
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.broker = connect(settings.redis_url)
        self.results = (
            self.broker
            if settings.results_redis_url == settings.redis_url
            else connect(settings.results_redis_url)
        )
        self.store = ResultStore(self.results, self.keys, settings)
        self.index = RedisIndex.from_settings(self.results, self.keys, settings)
        self.analyser = analyser
        self.requeue = requeue
        self.name = f"{socket.gethostname()}/{os.getpid()}"

    def run_batch(self, batch_id: str) -> dict[str, Any]:
        """Process the articles stashed under ``batch_id``, then drop the stash."""
        payload = self.broker.get(self.keys.batch(batch_id))
        if payload is None:
            log.warning("batch_missing", batch=batch_id, status="missing", ms=0.0, worker=self.name)
            return {"batch": batch_id, "missing": True}
        summary = self.run_articles(orjson.loads(payload), batch_id)
        self.broker.delete(self.keys.batch(batch_id))
        return summary

    def run_articles(self, raws: list[Any], batch: str) -> dict[str, Any]:
        started = time.perf_counter()
        attempts_key = self.keys.attempts
        pipe = self.broker.pipeline()
        pipe.hincrby(attempts_key, f"batch:{batch}", 1)
        pipe.expire(attempts_key, BATCH_TTL)
        delivery = pipe.execute()[0]
        careful = delivery > 1
        ids = [r.get("id") for r in raws if isinstance(r, dict) and valid_id(r.get("id"))]
        records = self.store.records(ids)
        counts: Counter[str] = Counter()
        for raw in raws:
            counts[self._one(raw, records, batch, careful)] += 1
        self.broker.hdel(attempts_key, f"batch:{batch}", *(ids if careful else ()))
        self.store.trim()  # at most once per NEWSFLOW_TRIM_INTERVAL across all workers
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("batch", batch=batch, status="done", n=len(raws), delivery=delivery, ms=ms, worker=self.name,
                 **counts)
        return {"batch": batch, "n": len(raws), "ms": ms, **counts}

    def _one(self, raw: Any, records: dict[str, Record], batch: str, careful: bool) -> str:
        started = time.perf_counter()
        article_id = raw.get("id") if isinstance(raw, dict) else None
        record = records.get(article_id) if isinstance(article_id, str) else None
        text = raw.get("text") if isinstance(raw, dict) else None
        if record and isinstance(text, str) and record.text_hash == text_hash(text):
            log.info("article", id=article_id, status=record.status, batch=batch, noop=True,
                     ms=_ms(started), worker=self.name)
            return "noop"
        if careful and valid_id(article_id):
            attempts = self.broker.hincrby(self.keys.attempts, article_id, 1) + 1
            if attempts > self.settings.max_attempts:
                return self._give_up(raw, batch, attempts - 1, "worker_lost",
                                     "the worker processing this article died every time", started)
        try:
            outcome = pipeline.process(
                raw,
                self.index,
                self.analyser,
                self.settings,
                revision=lambda i, _h: records[i].revision + 1 if i in records else 1,
                worker=self.name,
            )
        except Exception as exc:  # noqa: BLE001 - one bad article must not sink its batch
            return self._failed_attempt(raw, batch, exc, started)
        self._publish(outcome)
        if record and record.fingerprint not in ("", outcome.fingerprint):
            # A correction: the old text must not keep claiming its story for this id.
            self.index.forget(article_id, record.fingerprint)
        log.info("article", id=outcome.id, status=outcome.status, batch=batch, ms=_ms(started),
                 worker=self.name)
        return outcome.status

    def _publish(self, outcome: pipeline.Outcome) -> None:
        for _ in range(5):
            code, _entry, revision = self.store.publish(
                outcome.id, outcome.status, outcome.result, outcome.text_hash,
                outcome.fingerprint, outcome.submitted_at,
            )
            if code != -1:
                return
            outcome.result["revision"] = revision + 1  # a correction landed meanwhile
        raise RuntimeError(f"could not publish {outcome.id}: its revision keeps moving")

    def _failed_attempt(self, raw: Any, batch: str, exc: Exception, started: float | None = None) -> str:
        article_id = raw.get("id") if isinstance(raw, dict) else None
        attempts = self.broker.hincrby(self.keys.attempts, article_id, 1) if valid_id(article_id) else 99
        log.error("article_error", id=article_id, status="retry", batch=batch, attempts=attempts,
                  error=repr(exc), ms=_ms(started), worker=self.name)
        if attempts >= self.settings.max_attempts:
            return self._give_up(raw, batch, attempts, "processing_error", f"{type(exc).__name__}: {exc}",
                                 started)
        self.requeue([raw], min(60.0, 2.0**attempts))
        return "retry"

    def _give_up(self, raw: Any, batch: str, attempts: int, code: str, message: str,
                 started: float | None = None) -> str:
        error = {"code": code, "message": message}
        self.store.dead(raw, error, attempts)
        outcome = pipeline.rejected(raw, Rejection(code, message), self.name)
        outcome.status = outcome.result["status"] = "failed"
        outcome.result["attempts"] = attempts
        self._publish(outcome)
        article_id = outcome.id
        if valid_id(article_id):
            self.broker.hdel(self.keys.attempts, article_id)
        log.error("article", id=article_id, status="failed", batch=batch, attempts=attempts,
                  ms=_ms(started), worker=self.name)
        return "failed"


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 2)
