"""Running one batch of articles in a worker: the orchestration, top to bottom.

Delivery is at least once; effects are idempotent. A redelivered batch skips
every article whose result for the same text already exists, and
emit_result.lua writes a result entry at most once per (id, text).

Every article goes through one sequence (:meth:`BatchRunner._run`): skip it if
it is done, count the attempt (:mod:`worker.attempts`), give it up if it died
every time before, try the stages, then write its outcome
(:mod:`worker.writer`) or, if it raised, retry it or give it up
(:mod:`worker.retry`). Two delivery paths run that sequence:

- a batch's first delivery runs it over the whole batch at once: one round
  trip counts every article, one decides all their duplicates, and results go
  out every ``FLUSH_SECONDS`` and at the end;
- a batch delivered again (its child died, or Redis went away) runs it article
  by article, so the article that kills its child is the one counted: each
  article's result is written in the round trip that raises the next one's
  count, and each is decided on its own. :meth:`AttemptLedger.reconcile`
  first corrects the counts the first delivery left behind. With
  NEWSFLOW_MAX_ATTEMPTS=1 every delivery runs article by article.

Redis going away is not the article's fault: a connection error is not counted
as a failed attempt but ends the batch, and the task leaves the message to be
redelivered.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import redis
import structlog

from worker import pipeline
from worker.article import text_hash, valid_id
from worker.attempts import AttemptLedger
from worker.batchqueue import BatchQueue
from worker.config import Settings
from worker.connection import UNAVAILABLE, connect, consumer_name
from worker.deadletters import DeadLetters
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.result_body import Failure, not_analysed
from worker.results import Record, ResultStore
from worker.retry import LOST, RetryPolicy
from worker.writer import ResultWriter

log = structlog.get_logger("newsflow.worker")

# On a batch's first delivery, results written so far go out at least this often.
FLUSH_SECONDS = 0.05


@cache
def analyser(settings: Settings) -> pipeline.Analyser:
    """The text stages' dictionaries, loaded once per process (in the pool's parent, before fork)."""
    return pipeline.Analyser.from_settings(settings)


@dataclass
class _Batch:
    """One run of one batch: its id, the records its ids had, and each article's status so far."""

    id: str
    records: dict[str, Record]
    statuses: list[str]


class BatchRunner:
    """Runs batches: the Celery tasks' one collaborator.

    Args:
        settings: the deployment's settings.
        analyser: the loaded text stages.
        queue: where failed articles are put back (built on the worker's own Celery app).
    """

    def __init__(
        self, settings: Settings, analyser: pipeline.Analyser, queue: Callable[[redis.Redis], BatchQueue]
    ) -> None:
        self.settings = settings
        self.analyser = analyser
        self.name = consumer_name()
        keys = Keys(settings.prefix)
        self.broker = connect(settings.redis_url)
        results = (
            self.broker
            if settings.results_redis_url == settings.redis_url
            else connect(settings.results_redis_url)
        )
        self.queue = queue(self.broker)
        self.store = ResultStore(results, keys, settings)
        self.dead = DeadLetters(results, keys)
        self.index = RedisIndex.from_settings(results, keys, settings)
        self.ledger = AttemptLedger(keys)
        self.policy = RetryPolicy(settings)
        self.writer = ResultWriter(self.broker, results, self.store, self.index, settings)

    def run_batch(self, batch_id: str) -> dict[str, Any]:
        """Process the articles stashed under ``batch_id``, then drop the stash."""
        raws = self.queue.take(batch_id)
        if raws is None:
            log.warning("batch_missing", batch=batch_id, status="missing", ms=0.0, worker=self.name)
            return {"batch": batch_id, "missing": True}
        return self.run_articles(raws, batch_id, done=lambda pipe: self.queue.done(pipe, batch_id))

    def run_articles(
        self, raws: list[Any], batch_id: str, done: Callable[[redis.client.Pipeline], None] | None = None
    ) -> dict[str, Any]:
        """Process ``raws``; ``done`` adds its commands to the round trip that writes the last results."""
        started = time.perf_counter()
        self.writer.reset()
        ids: list[str] = [r["id"] for r in raws if isinstance(r, dict) and valid_id(r.get("id"))]
        batch = _Batch(batch_id, self.store.records(ids), ["noop"] * len(raws))
        delivery = self.ledger.delivery(self.broker, batch_id)
        if delivery == 1 and self.policy.batched_first_delivery:
            self._run(raws, range(len(raws)), batch, flush=True)
        else:
            if self.policy.batched_first_delivery and delivery in (2, 3):
                self._reconcile(raws, batch, delivery)
            for i in range(len(raws)):
                self._run(raws, [i], batch, flush=False)
        settled = [
            raw["id"]
            for raw, status in zip(raws, batch.statuses, strict=True)
            if status != "retry" and isinstance(raw, dict) and valid_id(raw.get("id"))
        ]

        def finish(pipe: redis.client.Pipeline) -> None:
            self.ledger.settle(pipe, settled, batch_id)
            if done is not None:
                done(pipe)

        self.writer.send(finish)
        self.store.trim()  # at most once per NEWSFLOW_TRIM_INTERVAL across all workers
        counts: Counter[str] = Counter(batch.statuses)
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.info(
            "batch",
            batch=batch_id,
            status="done",
            n=len(raws),
            ms=ms,
            worker=self.name,
            delivery=delivery,
            **counts,
        )
        return {"batch": batch_id, "n": len(raws), "ms": ms, **counts}

    def _run(self, raws: list[Any], group: Sequence[int], batch: _Batch, *, flush: bool) -> None:
        """Skip, count, give up, try, done: the one sequence, over a group of articles at once."""
        todo = [i for i in group if not self._skip_done(raws[i], batch)]
        if not todo:
            return
        article_ids = [raws[i].get("id") if isinstance(raws[i], dict) else None for i in todo]
        tries = self.ledger.counts(article_ids, self.writer.send(lambda p: self.ledger.count(p, article_ids)))
        ready: list[tuple[int, int, pipeline.Prepared, float]] = []
        for i, attempt in zip(todo, tries, strict=True):
            raw, started = raws[i], time.perf_counter()
            if self.policy.lost(attempt):
                batch.statuses[i] = self._give_up(raw, batch.id, attempt - 1, LOST, started)
                continue
            try:
                prepared = pipeline.prepare(raw, self.settings, self.name)
            except UNAVAILABLE:
                raise
            except Exception as exc:  # one bad article must not sink its batch
                batch.statuses[i] = self._failed_attempt(raw, batch.id, exc, attempt, started)
                continue
            if isinstance(prepared, pipeline.Outcome):  # rejected
                batch.statuses[i] = self._done(prepared, batch, attempt, started)
            else:
                ready.append((i, attempt, prepared, time.perf_counter() - started))
        decisions = self._decide(raws, ready, batch)
        spans = pipeline.recognise([p for _, _, p, _ in ready], decisions, self.analyser, self.settings)
        flushed = time.perf_counter()
        for (i, attempt, prepared, before), decision, model_spans in zip(
            ready, decisions, spans, strict=True
        ):
            raw, started = raws[i], time.perf_counter() - before
            if decision is None:
                continue  # the decision raised: counted as a failed attempt
            try:
                outcome = pipeline.finish(
                    prepared,
                    decision,
                    self.analyser,
                    self.settings,
                    revision=_revision(batch.records),
                    worker=self.name,
                    model_spans=model_spans,
                )
            except UNAVAILABLE:
                raise
            except Exception as exc:
                batch.statuses[i] = self._failed_attempt(raw, batch.id, exc, attempt, started)
                continue
            batch.statuses[i] = self._done(outcome, batch, attempt, started)
            if flush and time.perf_counter() - flushed >= FLUSH_SECONDS:
                self.writer.send()
                flushed = time.perf_counter()

    def _decide(
        self, raws: list[Any], ready: list[tuple[int, int, pipeline.Prepared, float]], batch: _Batch
    ) -> list[Any]:
        """The dedupe decisions of ``ready``, in one round trip; each None if deciding raised."""
        started = time.perf_counter()
        try:
            decisions: list[Any] = self.index.decide_many([prepared.entry for _, _, prepared, _ in ready])
        except UNAVAILABLE:
            raise
        except Exception as exc:
            for i, attempt, _prepared, before in ready:
                batch.statuses[i] = self._failed_attempt(raws[i], batch.id, exc, attempt, started - before)
            return [None] * len(ready)
        dedupe_ms = round((time.perf_counter() - started) * 1000 / max(1, len(ready)), 3)
        for _, _, prepared, _ in ready:
            prepared.timings["dedupe"] = dedupe_ms
        return decisions

    def _reconcile(self, raws: list[Any], batch: _Batch, delivery: int) -> None:
        """Correct the counts a first delivery that died left behind (:meth:`AttemptLedger.reconcile`)."""
        waiting = [
            raw["id"]
            for raw in raws
            if isinstance(raw, dict) and valid_id(raw.get("id")) and _done_before(raw, batch.records) is None
        ]
        if waiting:
            self.writer.send(lambda pipe: self.ledger.reconcile(pipe, waiting, delivery))

    def _skip_done(self, raw: Any, batch: _Batch) -> bool:
        """Whether the article already has its result for this very text (a redelivery); logs it."""
        started = time.perf_counter()
        record = _done_before(raw, batch.records)
        if record is not None:
            log.info(
                "article",
                id=raw.get("id"),
                status=record.status,
                batch=batch.id,
                noop=True,
                ms=_ms(started),
                worker=self.name,
            )
        return record is not None

    def _done(self, outcome: pipeline.Outcome, batch: _Batch, attempt: int, started: float) -> str:
        if valid_id(outcome.id):
            assert outcome.id is not None
            self.writer.defer(outcome, batch.records.get(outcome.id))
        else:
            self.writer.publish(outcome)  # a rejected bad id: no record, rare
        log.info(
            "article",
            id=outcome.id,
            status=outcome.status,
            batch=batch.id,
            attempt=attempt,
            ms=_ms(started),
            worker=self.name,
        )
        return outcome.status

    def _failed_attempt(self, raw: Any, batch_id: str, exc: Exception, attempt: int, started: float) -> str:
        article_id = raw.get("id") if isinstance(raw, dict) else None
        log.error(
            "article_error",
            id=article_id,
            status="retry",
            batch=batch_id,
            attempts=attempt,
            error=repr(exc),
            ms=_ms(started),
            worker=self.name,
        )
        if self.policy.give_up(attempt, article_id):
            return self._give_up(raw, batch_id, attempt, self.policy.error(exc), started)
        self.queue.requeue([raw], self.policy.delay(attempt))
        return "retry"

    def _give_up(self, raw: Any, batch_id: str, attempts: int, failure: Failure, started: float) -> str:
        self.dead.park(raw, failure.as_error(), attempts)
        outcome = _failed(raw, failure, attempts, self.name)
        self.writer.publish(outcome)
        if valid_id(outcome.id):
            assert outcome.id is not None
            self.ledger.clear(self.broker, outcome.id)
        log.error(
            "article",
            id=outcome.id,
            status="failed",
            batch=batch_id,
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


def _failed(raw: Any, failure: Failure, attempts: int, worker: str) -> pipeline.Outcome:
    """The outcome of an article given up: status ``failed``, with the attempts it had."""
    article = raw if isinstance(raw, dict) else {}
    article_id = article.get("id") if isinstance(article.get("id"), str) else None
    text, submitted = article.get("text"), article.get("_submitted_at")
    return pipeline.Outcome(
        article_id,
        "failed",
        not_analysed(article_id, "failed", failure.as_error(), worker, attempts=attempts),
        text_hash(text) if isinstance(text, str) else "",
        # Failures count in the submit-to-result latency too.
        submitted_at=float(submitted) if isinstance(submitted, int | float) else None,
    )


def _revision(records: dict[str, Record]) -> Callable[[str, str], int]:
    return lambda article_id, _hash: records[article_id].revision + 1 if article_id in records else 1


def _ms(started: float | None) -> float | None:
    return None if started is None else round((time.perf_counter() - started) * 1000, 2)
