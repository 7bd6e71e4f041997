"""``newsflow bridge``: the inbox stream, from any language, into queued work.

Other apps ``XADD <prefix>:inbox * text "..." [id ...] [title ...] [meta '<json>']``.
Bridges read the inbox through one consumer group (``bridge``), so several can
run at once and each entry goes to one of them. The group is created at the
start of the stream, so entries added before any bridge ran are processed.

For each read (up to NEWSFLOW_BATCH_SIZE entries; while batches already wait
in the queue, entries arriving in the next 50 ms join the read, so busy workers
get fewer, fuller batches; with an empty queue a read goes at once):

1. Each entry becomes an article dict, or a rejection (no text, text bytes that
   are neither UTF-8 nor unambiguously GB18030 or Big5, as for files
   (:func:`producer.inputs.decode`), other fields that are not UTF-8, meta
   that is not a JSON object, a bad id, ...). A rejection is published as a
   ``rejected`` result like any other, and the entry's raw fields go to
   ``<prefix>:dead``; it never holds up the entries behind it.
2. Good articles are queued exactly as :class:`producer.client.Client` queues
   them (:mod:`worker.batchqueue`), waiting first while the queue is over its
   bound, so backpressure holds the work in the inbox rather than in the queue.
3. Only then are the entries acknowledged (XACK): with NEWSFLOW_MIN_REPLICAS=N,
   only once N replicas hold their batch. When Redis fails over mid-way, or
   the replicas do not confirm, the bridge backs off and reads its own pending
   entries again from the new primary (docs/failover.md).

A bridge that dies leaves its entries pending; the others take them over with
XAUTOCLAIM once they have been idle ``min_idle_ms``; an entry delivered more
than NEWSFLOW_MAX_ATTEMPTS times (it killed every bridge that took it) is given
up as ``failed`` and parked in the dead stream. Redelivery is harmless:
an entry without an id gets ``inbox-<entry id>``, so a second enqueue carries
the same id and text, which the worker skips, and a second rejection of the
same entry finds its result already written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from producer.client import Client
from producer.inputs import decode
from worker.article import KNOWN_FIELDS, Rejection, parse_article, valid_id
from worker.connection import UNAVAILABLE, consumer_name, ensure_group
from worker.keys import BRIDGE_GROUP
from worker.result_body import BRIDGE_LOST, Failure, not_analysed

log = structlog.get_logger("newsflow.bridge")


def inbox_id(entry: str) -> str:
    """The id of an inbox entry that brings none: stable, so a redelivery reuses it."""
    return f"inbox-{entry}"


def entry_time(entry: str) -> float:
    """When the entry was added, from its stream id: the submit time for latency."""
    return int(entry.partition("-")[0]) / 1000


def to_article(entry: str, fields: dict[bytes, bytes], max_chars: int) -> tuple[str, dict[str, Any]]:
    """Turn one inbox entry into ``(id, article)``; raise :class:`Rejection` if it is malformed.

    Only the contract's fields are read; others are ignored. The id is checked
    first so that even a rejection is reported under a usable id.
    """
    given = fields.get(b"id")
    article_id = inbox_id(entry)
    if given is not None:
        decoded = given.decode("utf-8", "replace")
        if not valid_id(decoded):
            raise Rejection("bad_id", f"id must be 1-128 characters of [A-Za-z0-9._/-], got {decoded[:80]!r}")
        article_id = decoded
    article: dict[str, Any] = {}
    for raw_name, raw_value in fields.items():
        name = raw_name.decode("utf-8", "replace")
        if name not in KNOWN_FIELDS or name == "id":
            continue
        if name == "text":
            # The same reading as a file's bytes: UTF-8, else GB18030 or Big5
            # when the bytes are unambiguously one of them.
            text, error = decode(raw_value)
            if error:
                raise Rejection(error["code"], f"field 'text': {error['message']}")
            article[name] = text
            continue
        try:
            article[name] = raw_value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejection(
                "invalid_utf8", f"field {name!r} is not valid UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    if "meta" in article:
        try:
            article["meta"] = orjson.loads(article["meta"])
        except orjson.JSONDecodeError as exc:
            raise Rejection("bad_meta", f"meta is not valid JSON: {exc}") from None
    article["id"] = article_id
    article["_submitted_at"] = entry_time(entry)
    parse_article(article, max_chars=max_chars)  # the worker's own checks, so bad input stops here
    return article_id, article


def rejection_id(entry: str, fields: dict[bytes, bytes]) -> str:
    given = (fields.get(b"id") or b"").decode("utf-8", "replace")
    return given if valid_id(given) else inbox_id(entry)


class Bridge:
    def __init__(
        self,
        client: Client,
        *,
        consumer: str | None = None,
        count: int | None = None,
        block_ms: int = 1000,
        min_idle_ms: int = 60_000,
        gather_ms: int = 50,
    ) -> None:
        self.client = client
        self.settings = client.settings
        self.redis = client.redis
        self.inbox = client.keys.inbox
        self.group = BRIDGE_GROUP
        self.consumer = consumer or consumer_name()
        self.count = count or self.settings.batch_size
        self.block_ms = block_ms
        self.min_idle_ms = min_idle_ms
        self.gather_ms = gather_ms
        self._claim_cursor = "0-0"
        self._next_claim = 0.0
        # Entries this bridge read but did not ack before Redis failed it.
        self._own_pending = False

    def run(self, stop: Callable[[], bool] = lambda: False) -> None:
        ensure_group(self.redis, self.inbox, self.group)
        log.info("bridge_started", consumer=self.consumer, inbox=self.inbox)
        delay = 0.1
        while not stop():
            try:
                self.step()
                delay = 0.1
            except UNAVAILABLE as exc:
                # A failover, or replicas too slow to confirm: what was read
                # stays pending (not acked) and is read again from this
                # consumer's own pending list once Redis takes work.
                log.warning("bridge_interrupted", error=repr(exc), retry_in=delay, consumer=self.consumer)
                self._own_pending = True
                time.sleep(delay)
                delay = min(5.0, delay * 2)

    def step(self) -> int:
        """Reclaim or read one batch of entries and hand it on; returns how many entries."""
        entries = self._reclaim() or self._pending()
        if not entries:
            got = self.redis.xreadgroup(
                self.group, self.consumer, {self.inbox: ">"}, count=self.count, block=self.block_ms
            )
            entries = got[0][1] if got else []
            if entries and len(entries) < self.count and self.client.queue.depth() > 0:
                entries += self._gather(self.count - len(entries))
        if entries:
            self.handle([(e.decode(), f) for e, f in entries])
        return len(entries)

    def _pending(self) -> list[Any]:
        """This consumer's own unacked entries, after Redis failed it mid-way (once, then new ones)."""
        if not self._own_pending:
            return []
        ensure_group(self.redis, self.inbox, self.group)  # a failover may have lost the group
        got = self.redis.xreadgroup(self.group, self.consumer, {self.inbox: "0"}, count=self.count)
        entries = [(e, f) for e, f in (got[0][1] if got else []) if f]
        self._own_pending = bool(entries)
        return entries

    def _gather(self, room: int) -> list[Any]:
        """Up to ``room`` more entries, arriving within ``gather_ms``.

        Called only while batches wait in the queue: the workers are busy, and
        one batch of several articles costs them less than several of one. When
        the queue is empty, what was read goes at once, so light traffic is not
        held back.
        """
        more: list[Any] = []
        deadline = time.monotonic() + self.gather_ms / 1000
        while len(more) < room and (left := deadline - time.monotonic()) > 0:
            got = self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.inbox: ">"},
                count=room - len(more),
                block=max(1, int(left * 1000)),
            )
            if not got:
                break
            more += got[0][1]
        return more

    def _reclaim(self) -> list[Any]:
        """Entries a dead bridge left pending, once they are ``min_idle_ms`` old."""
        if time.monotonic() < self._next_claim:
            return []
        cursor, claimed, *_ = self.redis.xautoclaim(
            self.inbox,
            self.group,
            self.consumer,
            self.min_idle_ms,
            start_id=self._claim_cursor,
            count=self.count,
        )
        self._claim_cursor = cursor.decode() if isinstance(cursor, bytes) else cursor
        if self._claim_cursor == "0-0":  # went round the whole pending list: rest a while
            self._next_claim = time.monotonic() + max(0.5, self.min_idle_ms / 2000)
        claimed = [(e, f) for e, f in claimed if f]
        if claimed:
            log.warning("bridge_reclaimed", n=len(claimed), consumer=self.consumer)
            claimed = self._give_up_poison(claimed)
        return claimed

    def _give_up_poison(self, claimed: list[Any]) -> list[Any]:
        """Fail the entries that every bridge before died on, so they stop going round."""
        deliveries = {
            p["message_id"]: p["times_delivered"]
            for p in self.redis.xpending_range(
                self.inbox,
                self.group,
                min=claimed[0][0],
                max=claimed[-1][0],
                count=len(claimed),
                consumername=self.consumer,
            )
        }
        kept = []
        for entry, fields in claimed:
            times = deliveries.get(entry, 1)
            if times > self.settings.max_attempts:
                error = Failure(BRIDGE_LOST, f"the bridge handling this entry died {times - 1} times")
                self._reject(entry.decode(), fields, error, status="failed")
            else:
                kept.append((entry, fields))
        return kept

    def handle(self, entries: list[tuple[str, dict[bytes, bytes]]]) -> None:
        good: list[tuple[str, dict[str, Any]]] = []
        rejected = 0
        for entry, fields in entries:
            try:
                _, article = to_article(entry, fields, self.settings.max_chars)
            except Rejection as error:
                self._reject(entry, fields, error)
                rejected += 1
                continue
            good.append((entry, article))
        position = 0
        submitter = self.client.submitter
        for batch in submitter.batches(article for _, article in good):
            batch_id = submitter.enqueue(batch)
            acked = [entry for entry, _ in good[position : position + len(batch)]]
            position += len(batch)
            self.redis.xack(self.inbox, self.group, *acked)
            log.info("bridge_batch", batch=batch_id, n=len(batch), consumer=self.consumer)
        if rejected:
            log.info("bridge_rejected", n=rejected, consumer=self.consumer)

    def _reject(
        self, entry: str, fields: dict[bytes, bytes], error: Rejection | Failure, status: str = "rejected"
    ) -> None:
        """Publish the rejection (or failure) and park the raw entry, once, then acknowledge it."""
        store = self.client.store
        article_id = rejection_id(entry, fields)
        record = store.records([article_id]).get(article_id)
        revision = record.revision + 1 if record else 1
        result = not_analysed(
            article_id, status, error.as_error(), self.consumer, revision=revision, inbox_entry=entry
        )
        # The entry id stands in for the text hash: a redelivery of this entry is a no-op.
        code, _, _ = store.publish_current(
            article_id, status, result, f"inbox:{entry}", "", entry_time(entry)
        )
        if code == 1:
            self.client.dead.park_raw(article_id, fields, error.as_error(), entry)
            log.info("article", id=article_id, status=status, code=error.code, inbox_entry=entry)
        self.redis.xack(self.inbox, self.group, entry)
