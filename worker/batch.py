"""Running one batch of articles in a worker: stages, dedupe, results, attempts.

Delivery is at least once; effects are idempotent. A redelivered batch skips
every article whose result for the same text already exists, and
emit_result.lua writes a result entry at most once per (id, text).

Attempts: before an article is processed its counter in ``<prefix>:attempts``
is raised, so a crash or a hang that kills the child (which no ``except`` can
see) still counts. A redelivered batch skips every article that is already
done; an article whose counter is over ``max_attempts`` goes to the dead stream
as ``failed`` without being run again, while its batch-mates go on. A Python
exception is counted the same way and the article alone is requeued with
backoff. The counter is deleted once the article has an outcome.

Round trips: a batch's first delivery (:meth:`BatchRunner._first_delivery`)
counts all its articles in one round trip, decides all their duplicates in
another, and writes results every ``FLUSH_SECONDS`` and at the end. A batch
delivered again (its child died, or Redis went away) runs article by article
(:meth:`BatchRunner._one`), so the article that kills its child is the one
counted: each article's result is written in the round trip that raises the
next one's count, and each is decided on its own, two round trips per article.
With NEWSFLOW_MAX_ATTEMPTS=1 every delivery runs article by article.

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

# On a batch's first delivery, results written so far go out at least this often.
FLUSH_SECONDS = 0.05

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

        def drop_stash(pipe: redis.client.Pipeline) -> None:
            pipe.delete(self.keys.batch(batch_id))
            pipe.zrem(self.keys.batches, batch_id)
            pipe.hdel(self.keys.attempts, f"resend:{batch_id}")

        return self.run_articles(orjson.loads(payload), batch_id, done=drop_stash)

    def run_articles(
        self, raws: list[Any], batch: str, done: Callable[[redis.client.Pipeline], None] | None = None
    ) -> dict[str, Any]:
        """Process ``raws``; ``done`` adds its commands to the round trip that writes the last results."""
        started = time.perf_counter()
        self._unsent = []  # left over only by a batch that Redis interrupted: it is redelivered
        ids = [r.get("id") for r in raws if isinstance(r, dict) and valid_id(r.get("id"))]
        records = self.store.records(ids)
        delivery = self._deliveries(batch)
        fast = self.settings.max_attempts > 1
        if delivery == 1 and fast:
            statuses = self._first_delivery(raws, records, batch)
        else:
            if fast and delivery in (2, 3):
                self._reconcile(raws, records, delivery)
            statuses = [self._one(raw, records, batch) for raw in raws]
        counts: Counter[str] = Counter(statuses)
        settled = [
            raw["id"]
            for raw, status in zip(raws, statuses, strict=True)
            if status != "retry" and isinstance(raw, dict) and valid_id(raw.get("id"))
        ]

        def finish(pipe: redis.client.Pipeline) -> None:
            pipe.hdel(self.keys.attempts, *settled, f"delivery:{batch}")
            if done is not None:
                done(pipe)

        self._send(finish)
        self.store.trim()  # at most once per NEWSFLOW_TRIM_INTERVAL across all workers
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "batch",
            batch=batch,
            status="done",
            n=len(raws),
            ms=ms,
            worker=self.name,
            delivery=delivery,
            **counts,
        )
        return {"batch": batch, "n": len(raws), "ms": ms, **counts}

    def _deliveries(self, batch: str) -> int:
        """How many times this batch has started, this time included."""
        pipe = self.broker.pipeline(transaction=False)
        pipe.hincrby(self.keys.attempts, f"delivery:{batch}", 1)
        pipe.expire(self.keys.attempts, BATCH_TTL)
        return int(pipe.execute()[0])

    def _first_delivery(self, raws: list[Any], records: dict[str, Record], batch: str) -> list[str]:
        """A batch's first run: every article's attempt counted at once, all decided at once.

        One round trip raises the attempt count of every article to be run
        (each is counted before it is processed, as in :meth:`_one`), one
        decides them all (:meth:`RedisIndex.decide_many`), and results go out
        every ``FLUSH_SECONDS`` and at the end: two or three round trips per
        batch instead of two per article.

        If the child dies here, the batch's later deliveries run article by
        article (:meth:`_one`) and :meth:`_reconcile` corrects the counts, so
        that a poison article is still started exactly max_attempts times.
        """
        statuses = ["noop"] * len(raws)
        todo = [
            i for i, raw in enumerate(raws) if not self._skip_done(raw, records, batch, time.perf_counter())
        ]
        attempts = self._count_attempts(
            [raws[i].get("id") if isinstance(raws[i], dict) else None for i in todo]
        )
        ready: list[tuple[int, int, pipeline.Prepared, float]] = []
        for i, tries in zip(todo, attempts, strict=True):
            raw, started = raws[i], time.perf_counter()
            if tries > self.settings.max_attempts:
                statuses[i] = self._give_up(
                    raw,
                    batch,
                    tries - 1,
                    "worker_lost",
                    "the worker processing this article died or hung every time",
                    started,
                )
                continue
            try:
                prepared = pipeline.prepare(raw, self.settings, self.name)
            except RedisUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad article must not sink its batch
                statuses[i] = self._failed_attempt(raw, batch, exc, tries, started)
                continue
            if isinstance(prepared, pipeline.Outcome):  # rejected
                statuses[i] = self._done(prepared, records, batch, tries, started)
            else:
                ready.append((i, tries, prepared, time.perf_counter() - started))
        decided = time.perf_counter()
        decisions = self.index.decide_many([prepared.entry for _, _, prepared, _ in ready])
        dedupe_ms = round((time.perf_counter() - decided) * 1000 / max(1, len(ready)), 3)
        spans = pipeline.recognise([p for _, _, p, _ in ready], decisions, self.analyser, self.settings)
        flushed = time.perf_counter()
        for (i, tries, prepared, before), decision, model_spans in zip(ready, decisions, spans, strict=True):
            raw, started = raws[i], time.perf_counter() - before
            prepared.timings["dedupe"] = dedupe_ms
            try:
                outcome = pipeline.finish(
                    prepared,
                    decision,
                    self.analyser,
                    self.settings,
                    revision=_revision(records),
                    worker=self.name,
                    model_spans=model_spans,
                )
            except RedisUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001
                statuses[i] = self._failed_attempt(raw, batch, exc, tries, started)
                continue
            statuses[i] = self._done(outcome, records, batch, tries, started)
            if time.perf_counter() - flushed >= FLUSH_SECONDS:
                self._send(lambda _pipe: None)
                flushed = time.perf_counter()
        return statuses

    def _reconcile(self, raws: list[Any], records: dict[str, Record], delivery: int) -> None:
        """Correct the counts a first delivery that died left behind.

        That run counted every article at once, but only the one it died on
        (and those before it) had started. So its second delivery takes those
        counts back, and runs article by article, counting each as it starts.
        If that run dies too, the article it died on is, barring a second
        unrelated fault, the one the first run died on: the third delivery
        gives that article (the first one still without a result) back its
        first start.
        """
        waiting = [
            raw["id"]
            for raw in raws
            if isinstance(raw, dict) and valid_id(raw.get("id")) and _done_before(raw, records) is None
        ]
        if not waiting:
            return

        def correct(pipe: redis.client.Pipeline) -> None:
            if delivery == 2:
                for article_id in waiting:
                    pipe.hincrby(self.keys.attempts, article_id, -1)
            else:
                pipe.hincrby(self.keys.attempts, waiting[0], 1)

        self._send(correct)

    def _count_attempts(self, article_ids: list[object]) -> list[int]:
        """Raise the attempt count of each article before it is processed, in one round trip.

        An invalid id counts 1: parse_article rejects it before anything can crash.
        """
        valid = [a for a in article_ids if valid_id(a)]

        def count(pipe: redis.client.Pipeline) -> None:
            for article_id in valid:
                pipe.hincrby(self.keys.attempts, article_id, 1)
            if valid:
                pipe.expire(self.keys.attempts, BATCH_TTL)

        replies = iter(self._send(count))  # in order, one per valid id (an id twice counts twice)
        counts = []
        for article_id in article_ids:
            reply = next(replies) if valid_id(article_id) else 1
            if isinstance(reply, Exception):
                raise reply
            counts.append(int(reply))
        return counts

    def _skip_done(self, raw: Any, records: dict[str, Record], batch: str, started: float) -> bool:
        """Whether the article already has its result for this very text (a redelivery); logs it."""
        record = _done_before(raw, records)
        if record is not None:
            log.info(
                "article",
                id=raw.get("id"),
                status=record.status,
                batch=batch,
                noop=True,
                ms=_ms(started),
                worker=self.name,
            )
        return record is not None

    def _done(
        self, outcome: pipeline.Outcome, records: dict[str, Record], batch: str, attempts: int, started: float
    ) -> str:
        record = records.get(outcome.id) if outcome.id is not None else None
        if valid_id(outcome.id):
            self._unsent.append((outcome, record))
        else:
            self._publish(outcome)  # a rejected bad id: no record, rare
        log.info(
            "article",
            id=outcome.id,
            status=outcome.status,
            batch=batch,
            attempt=attempts,
            ms=_ms(started),
            worker=self.name,
        )
        return outcome.status

    def _one(self, raw: Any, records: dict[str, Record], batch: str) -> str:
        started = time.perf_counter()
        if self._skip_done(raw, records, batch, started):
            return "noop"
        attempts = self._count_attempts([raw.get("id") if isinstance(raw, dict) else None])[0]
        if attempts > self.settings.max_attempts:
            return self._give_up(
                raw,
                batch,
                attempts - 1,
                "worker_lost",
                "the worker processing this article died or hung every time",
                started,
            )
        try:
            outcome = pipeline.process(
                raw, self.index, self.analyser, self.settings, revision=_revision(records), worker=self.name
            )
        except RedisUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad article must not sink its batch
            return self._failed_attempt(raw, batch, exc, attempts, started)
        return self._done(outcome, records, batch, attempts, started)

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

    def _publish_all(
        self, unsent: list[tuple[pipeline.Outcome, Record | None]], pipe: redis.client.Pipeline
    ) -> None:
        for outcome, _record in unsent:
            self._queue(pipe, outcome)
        self._settle(unsent, pipe.execute(raise_on_error=False) if unsent else [])

    def _queue(self, pipe: redis.client.Pipeline, outcome: pipeline.Outcome) -> None:
        assert outcome.id is not None  # only valid ids are deferred
        self.store.publish_later(
            pipe,
            outcome.id,
            outcome.status,
            outcome.result,
            outcome.text_hash,
            outcome.fingerprint,
            outcome.submitted_at,
        )

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
        self.store.publish_current(
            outcome.id,
            outcome.status,
            outcome.result,
            outcome.text_hash,
            outcome.fingerprint,
            outcome.submitted_at,
        )

    def _failed_attempt(
        self, raw: Any, batch: str, exc: Exception, attempts: int, started: float | None = None
    ) -> str:
        article_id = raw.get("id") if isinstance(raw, dict) else None
        log.error(
            "article_error",
            id=article_id,
            status="retry",
            batch=batch,
            attempts=attempts,
            error=repr(exc),
            ms=_ms(started),
            worker=self.name,
        )
        if attempts >= self.settings.max_attempts or not valid_id(article_id):
            return self._give_up(
                raw, batch, attempts, "processing_error", f"{type(exc).__name__}: {exc}", started
            )
        # A delayed task waits unacked in a worker: keep the delay well inside
        # the visibility timeout or kombu would hand it out a second time.
        self.requeue([raw], min(60.0, 2.0**attempts, self.settings.visibility_timeout / 4))
        return "retry"

    def _give_up(
        self, raw: Any, batch: str, attempts: int, code: str, message: str, started: float | None = None
    ) -> str:
        error = {"code": code, "message": message}
        self.store.dead(raw, error, attempts)
        outcome = pipeline.rejected(raw, Rejection(code, message), self.name)
        outcome.status = outcome.result["status"] = "failed"
        outcome.result["attempts"] = attempts
        self._publish(outcome)
        article_id = outcome.id
        if valid_id(article_id):
            self.broker.hdel(self.keys.attempts, article_id)
        log.error(
            "article",
            id=article_id,
            status="failed",
            batch=batch,
            attempts=attempts,
            ms=_ms(started),
            worker=self.name,
        )
        return "failed"


def _done_before(raw: Any, records: dict[str, Record]) -> Record | None:
    """The article's record if it already has a result for this very text (a redelivery)."""
    article_id = raw.get("id") if isinstance(raw, dict) else None
    record = records.get(article_id) if isinstance(article_id, str) else None
    text = raw.get("text") if isinstance(raw, dict) else None
    if record and isinstance(text, str) and record.text_hash == text_hash(text):
        return record
    return None


def _revision(records: dict[str, Record]) -> Callable[[str, str], int]:
    return lambda article_id, _hash: records[article_id].revision + 1 if article_id in records else 1


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 2)
