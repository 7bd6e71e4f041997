"""Writing a batch's outcomes: results ride on the round trips the batch makes anyway.

An :class:`~worker.pipeline.Outcome` is :meth:`ResultWriter.defer`\\ red,
rendered to JSON at once (:class:`~worker.results.Rendered`), and goes out
at the front of the next :meth:`ResultWriter.send` (results first: they were
processed first), in the same pipeline as whatever that round trip
carries (the next attempt counts, the batch's final clean-up). When results
live in a Redis of their own they take their own round trip.

Each result is written by emit_result.lua at most once per (id, text); one
call writes several of a round trip's results and adds them to the stats
once. A reply that says a correction landed meanwhile
(:func:`worker.results.moved_on`) re-renders the revision and publishes
again; a correction also makes the old text give up its dedupe registration
under this id.

With NEWSFLOW_MIN_REPLICAS=N each round trip ends with ``WAIT N``: the batch
is acked only after its results, its dedupe registrations and its clean-up
reached N replicas, so a failover cannot take back a result that was
announced. Too few replicas within one ``WAIT`` raise
:class:`~worker.errors.NotReplicated`, which ends the batch like a lost
connection: it is not acked, and what it wrote is skipped on redelivery.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis

from worker.config import Settings
from worker.connection import UNAVAILABLE, check_replicated, replicated
from worker.dedupe.redis_index import RedisIndex
from worker.pipeline import Outcome
from worker.results import Record, Rendered, ResultStore, moved_on, publish_replies, stale


class ResultWriter:
    """Buffers outcomes and writes them with the next round trip.

    Args:
        broker: the broker Redis, where the batch's own commands go.
        results: the results Redis (the same client when it is not separate).
        store: the result store on ``results``.
        index: the dedupe index, told to forget a corrected text.
        settings: NEWSFLOW_MIN_REPLICAS (none: no waiting for replicas).
    """

    def __init__(
        self,
        broker: redis.Redis,
        results: redis.Redis,
        store: ResultStore,
        index: RedisIndex,
        settings: Settings | None = None,
    ):
        self._replicas = settings.min_replicas if settings else 0
        self._broker = broker
        self._results = results
        self._store = store
        self._index = index
        self._unsent: list[tuple[Rendered, Record | None]] = []

    def reset(self) -> None:
        """Forget outcomes left over by a batch that Redis interrupted: it is redelivered."""
        self._unsent = []

    def defer(self, outcome: Outcome, record: Record | None) -> None:
        """Write ``outcome`` (of a valid id, whose record was ``record``) with the next round trip.

        It is rendered now, and its result is not kept (:class:`~worker.results.Rendered`).
        """
        self._unsent.append((Rendered.of(outcome), record))

    def publish(self, outcome: Outcome) -> None:
        """Write ``outcome`` now, in a round trip of its own."""
        self._store.publish_current(
            outcome.id,
            outcome.status,
            outcome.result,
            outcome.text_hash,
            outcome.fingerprint,
            outcome.submitted_at,
        )

    def send(self, add: Callable[[redis.client.Pipeline], None] = lambda _pipe: None) -> list[Any]:
        """One round trip: the deferred results first, then what ``add`` queues on the broker.

        Returns:
            The replies to ``add``'s commands.
        """
        unsent, self._unsent = self._unsent, []
        pipe = self._broker.pipeline(transaction=False)
        if unsent and self._results is not self._broker:  # results live elsewhere: their own round trip
            own = self._results.pipeline(transaction=False)
            self._store.publish_later(own, [rendered for rendered, _record in unsent])
            replicated(own, self._replicas)
            self._settle(unsent, self._replicated(self._results, own.execute(raise_on_error=False)))
            unsent = []
        calls = self._store.publish_later(pipe, [rendered for rendered, _record in unsent])
        add(pipe)
        if not len(pipe):
            return []
        replicated(pipe, self._replicas)
        replies = self._replicated(self._broker, pipe.execute(raise_on_error=False))
        self._settle(unsent, replies[:calls])
        return replies[calls:]

    def _replicated(self, client: redis.Redis, replies: list[Any]) -> list[Any]:
        """``replies`` without the trailing WAIT's, once enough replicas have the writes.

        An error that says Redis cannot take work (``READONLY`` from a demoted
        primary behind a fixed address) ends the batch as a lost connection
        does, never an article: it is raised, not settled.
        """
        for reply in replies:
            if isinstance(reply, UNAVAILABLE):
                raise reply
        if self._replicas <= 0:
            return replies
        check_replicated(client, self._replicas, replies[-1])
        return replies[:-1]

    def _settle(self, unsent: list[tuple[Rendered, Record | None]], replies: list[Any]) -> None:
        """Act on emit_result.lua's ``replies`` for the ``unsent`` outcomes they published."""
        if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
            # Redis lost its scripts (a restart): publish each, which loads the script; an
            # outcome a call before published is found done (code 0).
            codes: Sequence[tuple[int, str, int] | None] = [None] * len(unsent)
        else:
            codes = publish_replies(replies)
        for (rendered, record), code in zip(unsent, codes, strict=True):
            if code is None or stale(code):
                self._republish(rendered, code)
            if record and record.fingerprint not in ("", rendered.fingerprint):
                # A correction: the old text must not keep claiming its story for this id.
                self._index.forget(rendered.id, record.fingerprint)

    def _republish(self, rendered: Rendered, reply: tuple[int, str, int] | None) -> None:
        """Publish one outcome in a round trip of its own: as the revision after the one a
        correction took meanwhile (``reply`` said so), or after Redis lost its scripts (no reply)."""
        result = rendered.result()
        if reply is not None:
            moved_on(reply, result)
        self._store.publish_current(
            rendered.id,
            rendered.status,
            result,
            rendered.text_hash,
            rendered.fingerprint,
            rendered.submitted_at,
        )
