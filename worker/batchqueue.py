"""The batch queue: the one module that knows how a batch travels.

    stash -> list -> task -> take -> done | requeue | dead

Articles are stashed in Redis one batch per key (``<prefix>:batch:<id>``) and
the Celery message names only the batch, so a queued article costs about its
UTF-8 size in Redis rather than the ~5x that JSON escapes, base64 and Celery's
``argsrepr`` would make of it. Until a worker finishes it, the batch is listed
in ``<prefix>:batches`` with the time it was queued: if its Celery message is
lost, :mod:`worker.janitor` finds it there and sends it again.

The client and the bridge :meth:`BatchQueue.put` batches (after
:meth:`BatchQueue.wait_for_room`, the backpressure); the batch runner
:meth:`~BatchQueue.take`\\ s them, drops them with :meth:`~BatchQueue.done` in
the round trip that writes their last results, and puts a failed article back
with :meth:`~BatchQueue.requeue` (never waiting for room: a worker must not
block on the queue it drains). The janitor asks which listed batches are
:meth:`~BatchQueue.stale` and not :meth:`~BatchQueue.in_flight`, and sends
them again or gives them up with :meth:`~BatchQueue.give_up`.

Sending needs a Celery app, which this module never builds: the caller hands
in a :data:`Send` (see :func:`celery_send`), so the worker reuses its own app
and nothing here imports :mod:`worker.app`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any

import orjson
import redis

from worker.article import new_id
from worker.config import Settings
from worker.connection import check_replicated, replicated
from worker.deadletters import DeadLetters
from worker.keys import BATCH_TTL, Keys
from worker.result_body import BATCH_LOST, Failure
from worker.tasknames import PROCESS_BATCH

# Sends the task that names a batch: (batch id, countdown in seconds or None).
Send = Callable[[str, float | None], None]


def celery_send(app: Callable[[], Any], queue: str) -> Send:
    """A :data:`Send` through the Celery app that ``app()`` returns (called on first send).

    Args:
        app: returns a ``celery.Celery``; called lazily, so a client that only reads builds none.
        queue: the queue name (the prefix).
    """

    def send(batch_id: str, countdown: float | None) -> None:
        app().send_task(PROCESS_BATCH, args=[batch_id], queue=queue, countdown=countdown)

    return send


class BatchQueue:
    """Batches of articles on their way to the workers.

    Args:
        client: the broker Redis (where Celery's queue is).
        keys: the deployment's key names.
        settings: batch size, queue bound, attempts.
        send: sends the task that names a batch (:func:`celery_send`).
    """

    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings, send: Send) -> None:
        self.redis = client
        self.keys = keys
        self.settings = settings
        self._send = send

    # -- putting batches in ---------------------------------------------------------

    def put(self, batch: list[Any], *, countdown: float | None = None) -> str:
        """Stash and list one batch of stamped articles, then send its task; returns the batch id.

        When this returns, the batch is safely in Redis: the stash first, then
        the task that names it; with NEWSFLOW_MIN_REPLICAS=N, on N replicas too.
        It does not wait for room (see :meth:`wait_for_room`).

        Raises:
            NotReplicated: fewer than N replicas took the batch within one
                ``WAIT``. The batch may still be processed; the caller puts it
                again (articles keep their ids, so that is idempotent), since a
                failover now could lose it.
        """
        batch_id = (
            f"b{new_id()}.n{len(batch)}"  # the size in the id: status counts articles without reading them
        )
        pipe = self.redis.pipeline()
        pipe.set(self.keys.batch(batch_id), orjson.dumps(batch), ex=BATCH_TTL)
        pipe.zadd(self.keys.batches, {batch_id: time.time() + (countdown or 0)})
        pipe.execute()
        self._send(batch_id, countdown)
        self._replicated()
        return batch_id

    def _replicated(self) -> None:
        """Wait until NEWSFLOW_MIN_REPLICAS replicas hold what was just put, or raise NotReplicated."""
        replicas = self.settings.min_replicas
        if replicas <= 0:
            return
        # The task went out on Celery's own connection. WAIT covers this
        # connection's writes, so it writes once more after the task: the
        # replication stream is in order, so the task is covered too.
        pipe = self.redis.pipeline(transaction=False)
        pipe.publish(self.keys.batches, b"")
        replicated(pipe, replicas)
        check_replicated(self.redis, replicas, pipe.execute()[-1])

    def requeue(self, articles: list[Any], delay: float) -> str:
        """Put articles back after a failed attempt, to run in ``delay`` seconds; returns the batch id."""
        return self.put(articles, countdown=delay)

    def depth(self) -> int:
        """Batches waiting in the Celery queue."""
        return int(self.redis.llen(self.keys.queue_list))

    def articles_waiting(self, sample: int = 1000) -> int:
        """Articles in the batches waiting in the Celery queue, read from the batch ids.

        Each batch id ends in ``.n<articles>``; a batch queued before ids said
        so counts as a full batch. Past ``sample`` messages the rest are
        counted at the sample's average.
        """
        messages = self.redis.lrange(self.keys.queue_list, 0, sample - 1)
        if not messages:
            return 0
        counted = 0
        for raw in messages:
            batch_id = _batch_id(raw)
            size = batch_id.rpartition(".n")[2] if batch_id else ""
            counted += int(size) if size.isdigit() else self.settings.batch_size
        depth = self.depth()
        return counted if depth <= len(messages) else round(counted / len(messages) * depth)

    def wait_for_room(self) -> None:
        """Backpressure: block while the queue holds NEWSFLOW_QUEUE_BOUND articles or more.

        The queue is counted in batches of up to NEWSFLOW_BATCH_SIZE articles, so
        after the next batch it holds at most the bound plus one batch.
        """
        limit = max(1, self.settings.queue_bound // self.settings.batch_size)
        delay = 0.05
        while self.depth() >= limit:
            time.sleep(delay)  # workers drain the queue meanwhile; re-checked each round
            delay = min(1.0, delay * 1.5)

    # -- a worker's side --------------------------------------------------------------

    def take(self, batch_id: str) -> list[Any] | None:
        """The articles stashed under ``batch_id``; None (and the batch delisted) if it is gone."""
        payload = self.redis.get(self.keys.batch(batch_id))
        if payload is None:
            self.redis.zrem(self.keys.batches, batch_id)
            return None
        articles = orjson.loads(payload)
        return articles if isinstance(articles, list) else [articles]

    def done(self, pipe: redis.client.Pipeline, batch_id: str) -> None:
        """Queue on ``pipe`` what drops a finished batch: its stash, its listing, its resend count."""
        pipe.delete(self.keys.batch(batch_id))
        pipe.zrem(self.keys.batches, batch_id)
        pipe.hdel(self.keys.attempts, f"resend:{batch_id}")

    # -- the janitor's side -----------------------------------------------------------

    def stale(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Listed batches last queued before ``cutoff`` (unix seconds)."""
        return [b.decode() for b in self.redis.zrangebyscore(self.keys.batches, "-inf", cutoff, 0, limit)]

    def exists(self, batch_id: str) -> bool:
        """Whether the batch is still stashed; one that is not is delisted (it finished meanwhile)."""
        if self.redis.exists(self.keys.batch(batch_id)):
            return True
        self.redis.zrem(self.keys.batches, batch_id)
        return False

    def in_flight(self) -> set[str]:
        """Batch ids named by a message in the queue or held unacked by a worker."""
        messages = list(self.redis.lrange(self.keys.queue_list, 0, -1))
        for raw in self.redis.hvals(self.keys.unacked):
            messages.append(orjson.dumps(orjson.loads(raw)[0]))  # [message, exchange, routing key]
        return {batch_id for raw in messages if (batch_id := _batch_id(raw))}

    def resend(self, batch_id: str, now: float) -> int:
        """Send a batch whose message was lost again; returns how many times it has been resent.

        Past NEWSFLOW_MAX_ATTEMPTS it is not sent: the caller gives it up.
        """
        times = int(self.redis.hincrby(self.keys.attempts, f"resend:{batch_id}", 1))
        if times <= self.settings.max_attempts:
            self.redis.zadd(self.keys.batches, {batch_id: now})
            self._send(batch_id, None)
        return times

    def give_up(self, batch_id: str, times: int, dead: DeadLetters) -> None:
        """Park every article of a batch that never finished in the dead stream, then drop it."""
        payload = self.redis.get(self.keys.batch(batch_id))
        failure = Failure(BATCH_LOST, f"batch {batch_id} was queued {times} times and never finished")
        for raw in orjson.loads(payload) if payload else []:
            dead.park(raw, failure.as_error(), times)
        pipe = self.redis.pipeline()
        self.done(pipe, batch_id)
        pipe.execute()


def _batch_id(raw: bytes) -> str | None:
    """The batch id a queued Celery message names, or None if it is not one of ours."""
    try:
        message = orjson.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = orjson.loads(body)[0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # not one of ours (a submit task, a foreign message)
    return args[0] if args and isinstance(args[0], str) else None
