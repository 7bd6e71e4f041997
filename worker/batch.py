"""Running one batch of articles in a worker: stages, dedupe, results, attempts.

Delivery is at least once; effects are idempotent. A redelivered batch skips
every article whose result for the same text already exists, and
emit_result.lua writes a result entry at most once per (id, text).

Attempts: before an article is processed its counter in ``<prefix>:attempts``
is raised, so a crash or a hang that kills the child (which no ``except`` can
see) still counts. A redelivered batch skips what is already done; an article
whose counter is over ``max_attempts`` goes to the dead stream as ``failed``
without being run again, while its batch-mates go on. A Python exception is
counted the same way and the article alone is requeued with backoff. The
counter is deleted once the article has an outcome.

Round trips: an article's result is written in the same pipeline that raises
the next article's attempt count (or, for the last one, that clears the
batch's counters), so an article costs two round trips (that one and its
dedupe decision) instead of three. The result still reaches Redis before the
next article starts, so a crash there cannot lose it.

Redis going away is not the article's fault: a connection error is not counted
as a failed attempt but ends the batch (:class:`RedisUnavailable`), and the task
leaves the message to be redelivered.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
import redis
import structlog

from worker import pipeline
from worker.article import Rejection, text_hash, valid_id
from worker.config import Settings
from worker.connection import connect
from worker.dedupe.redis_index import RedisIndex
from worker.keys import BATCH_TTL, Keys
from worker.store import Record, ResultStore, publish_reply

log = structlog.get_logger("newsflow.worker")

Requeue = Callable[[list[dict[str, Any]], float], None]

# Errors that say Redis cannot take work now (unreachable after connect()'s
# retries, out of memory under noeviction, a read-only replica after a
# failover), not that an article is bad. BusyLoadingError is a ConnectionError.
RedisUnavailable = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)


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
        # Processed articles whose result rides on the next round trip.
        self._unsent: list[tuple[pipeline.Outcome, Record | None]] = []

    def run_batch(self, batch_id: str) -> dict[str, Any]:
        """Process the articles stashed under ``batch_id``, then drop the stash."""
        payload = self.broker.get(self.keys.batch(batch_id))
        if payload is None:
            self.broker.zrem(self.keys.batches, batch_id)
            log.warning("batch_missing", batch=batch_id, status="missing", ms=0.0, worker=self.name)
            return {"batch": batch_id, "missing": True}
        summary = self.run_articles(orjson.loads(payload), batch_id)
        pipe = self.broker.pipeline()
        pipe.delete(self.keys.batch(batch_id))
        pipe.zrem(self.keys.batches, batch_id)
        pipe.hdel(self.keys.attempts, f"resend:{batch_id}")
        pipe.execute()
        return summary

    def run_articles(self, raws: list[Any], batch: str) -> dict[str, Any]:
        started = time.perf_counter()
        self._unsent = []  # left over only by a batch that Redis interrupted: it is redelivered
        ids = [r.get("id") for r in raws if isinstance(r, dict) and valid_id(r.get("id"))]
        records = self.store.records(ids)
        counts: Counter[str] = Counter()
        settled: list[str] = []
        for raw in raws:
            status = self._one(raw, records, batch)
            counts[status] += 1
            article_id = raw.get("id") if isinstance(raw, dict) else None
            if status != "retry" and valid_id(article_id):
                settled.append(article_id)
        self._send(lambda pipe: pipe.hdel(self.keys.attempts, *settled) if settled else None)
        self.store.trim()  # at most once per NEWSFLOW_TRIM_INTERVAL across all workers
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("batch", batch=batch, status="done", n=len(raws), ms=ms, worker=self.name, **counts)
        return {"batch": batch, "n": len(raws), "ms": ms, **counts}

    def _one(self, raw: Any, records: dict[str, Record], batch: str) -> str:
        started = time.perf_counter()
        article_id = raw.get("id") if isinstance(raw, dict) else None
        record = records.get(article_id) if isinstance(article_id, str) else None
        text = raw.get("text") if isinstance(raw, dict) else None
        if record and isinstance(text, str) and record.text_hash == text_hash(text):
            log.info("article", id=article_id, status=record.status, batch=batch, noop=True,
                     ms=_ms(started), worker=self.name)
            return "noop"
        attempts = self._count_attempt(article_id)
        if attempts > self.settings.max_attempts:
            return self._give_up(raw, batch, attempts - 1, "worker_lost",
                                 "the worker processing this article died or hung every time", started)
        try:
            outcome = pipeline.process(
                raw,
                self.index,
                self.analyser,
                self.settings,
                revision=lambda i, _h: records[i].revision + 1 if i in records else 1,
                worker=self.name,
            )
        except RedisUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad article must not sink its batch
            return self._failed_attempt(raw, batch, exc, attempts, started)
        if valid_id(outcome.id):
            self._unsent.append((outcome, record))
        else:
            self._publish(outcome)  # a rejected bad id: no record, rare
        log.info("article", id=outcome.id, status=outcome.status, batch=batch, attempt=attempts,
                 ms=_ms(started), worker=self.name)
        return outcome.status

    def _count_attempt(self, article_id: object) -> int:
        """Raise and return the article's attempt count, before it is processed."""
        if not valid_id(article_id):
            self._send(lambda _pipe: None)
            return 1  # rejected by parse_article before anything can crash

        def count(pipe: redis.client.Pipeline) -> None:
            pipe.hincrby(self.keys.attempts, article_id, 1)
            pipe.expire(self.keys.attempts, BATCH_TTL)

        replies = self._send(count)
        if isinstance(replies[0], Exception):
            raise replies[0]
        return int(replies[0])

    def _send(self, add: Callable[[redis.client.Pipeline], None]) -> list[Any]:
        """One round trip: the unsent results first (they were processed first), then what ``add`` queues.

        Returns the replies to ``add``'s commands.
        """
        unsent, self._unsent = self._unsent, []
        pipe = self.broker.pipeline(transaction=False)
        if self.results is not self.broker:  # results live elsewhere: their own round trip
            self._publish_all(unsent, self.results.pipeline(transaction=False))
            unsent = []
        for outcome, _record in unsent:
            self._queue(pipe, outcome)
        add(pipe)
        replies = pipe.execute(raise_on_error=False) if len(pipe) else []
        self._settle(unsent, replies[: len(unsent)])
        return replies[len(unsent) :]

    def _publish_all(self, unsent: list[tuple[pipeline.Outcome, Record | None]],
                     pipe: redis.client.Pipeline) -> None:
        for outcome, _record in unsent:
            self._queue(pipe, outcome)
        self._settle(unsent, pipe.execute(raise_on_error=False) if unsent else [])

    def _queue(self, pipe: redis.client.Pipeline, outcome: pipeline.Outcome) -> None:
        assert outcome.id is not None  # only valid ids are deferred
        self.store.publish_later(pipe, outcome.id, outcome.status, outcome.result, outcome.text_hash,
                                 outcome.fingerprint, outcome.submitted_at)

    def _settle(self, unsent: list[tuple[pipeline.Outcome, Record | None]], replies: list[Any]) -> None:
        for (outcome, record), reply in zip(unsent, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                self._publish(outcome)  # Redis lost its scripts (a restart): load and publish
            else:
                code, _entry, revision = publish_reply(reply)
                if code == -1:  # a correction landed meanwhile
                    outcome.result["revision"] = revision + 1
                    self._publish(outcome)
            if record and record.fingerprint not in ("", outcome.fingerprint):
                # A correction: the old text must not keep claiming its story for this id.
                self.index.forget(outcome.id, record.fingerprint)

    def _publish(self, outcome: pipeline.Outcome) -> None:
        self.store.publish_current(outcome.id, outcome.status, outcome.result, outcome.text_hash,
                                   outcome.fingerprint, outcome.submitted_at)

    def _failed_attempt(self, raw: Any, batch: str, exc: Exception, attempts: int,
                        started: float | None = None) -> str:
        article_id = raw.get("id") if isinstance(raw, dict) else None
        log.error("article_error", id=article_id, status="retry", batch=batch, attempts=attempts,
                  error=repr(exc), ms=_ms(started), worker=self.name)
        if attempts >= self.settings.max_attempts or not valid_id(article_id):
            return self._give_up(raw, batch, attempts, "processing_error", f"{type(exc).__name__}: {exc}",
                                 started)
        # A delayed task waits unacked in a worker: keep the delay well inside
        # the visibility timeout or kombu would hand it out a second time.
        self.requeue([raw], min(60.0, 2.0**attempts, self.settings.visibility_timeout / 4))
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
