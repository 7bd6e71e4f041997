"""The Python client: submit articles, wait for their results, read them.

It needs only Redis and Celery's client side; jieba is never imported here.
Apps that would rather not import newsflow at all can send the public task by
name (``newsflow.submit``) from any Celery app, or XADD to ``<prefix>:inbox``.
Articles are stashed in Redis one batch per key and the Celery message names
the batch, so a queued article costs about its UTF-8 size in Redis rather than
the ~5x that JSON escapes, base64 and Celery's ``argsrepr`` would make of it.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from worker.article import new_id, text_hash, valid_id
from worker.config import Settings
from worker.config import settings as env_settings
from worker.connection import connect
from worker.keys import BATCH_TTL, Keys
from worker.store import ResultStore


@dataclass(frozen=True)
class Submitted:
    """One article as sent: its id (None if it had no usable one) and text hash."""

    id: str | None
    text_hash: str

    @property
    def trackable(self) -> bool:
        return valid_id(self.id)


class Client:
    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or env_settings()
        self.keys = Keys(self.settings.prefix)
        self.redis = connect(self.settings.redis_url)
        self.results_redis = (
            self.redis
            if self.settings.results_redis_url == self.settings.redis_url
            else connect(self.settings.results_redis_url)
        )
        self.store = ResultStore(self.results_redis, self.keys, self.settings)
        self._app = None

    @property
    def app(self):  # noqa: ANN201 - celery.Celery, imported lazily
        if self._app is None:
            from worker.app import make_app

            self._app = make_app(self.settings)
        return self._app

    # -- submitting -----------------------------------------------------------

    def submit(self, article: dict[str, Any]) -> Submitted:
        return self.submit_many([article])[0]

    def submit_many(
        self,
        articles: Iterable[Any],
        *,
        countdown: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Submitted]:
        """Queue articles in batches; wait first whenever the queue is over its bound."""
        sent: list[Submitted] = []
        for batch in self.batches(articles):
            self.enqueue(batch, countdown=countdown)
            sent.extend(_submitted(a) for a in batch)
            if progress:
                progress(len(batch))
        return sent

    def enqueue(self, batch: list[Any], *, countdown: float | None = None) -> str:
        """Queue one batch of stamped articles once the queue has room; returns the batch id.

        When this returns, the batch is safely in Redis: the stash first, then
        the task that names it.
        """
        self.wait_for_room()
        batch_id = "b" + new_id()
        pipe = self.redis.pipeline()
        pipe.set(self.keys.batch(batch_id), orjson.dumps(batch), ex=BATCH_TTL)
        # Until a worker finishes it, the batch is listed: if its Celery
        # message is lost, worker.janitor queues it again.
        pipe.zadd(self.keys.batches, {batch_id: time.time() + (countdown or 0)})
        pipe.execute()
        self.app.send_task(
            "newsflow.process_batch", args=[batch_id], queue=self.keys.queue, countdown=countdown
        )
        return batch_id

    def batches(self, articles: Iterable[Any]) -> Iterator[list[Any]]:
        """Stamp articles (id, submit time) and group them by NEWSFLOW_BATCH_SIZE and _MAX_CHARS."""
        size, max_chars = self.settings.batch_size, self.settings.batch_max_chars
        batch: list[Any] = []
        chars = 0
        for article in articles:
            article = _stamp(article)
            length = len(article.get("text") or "") if isinstance(article, dict) else 0
            if batch and (len(batch) >= size or chars + length > max_chars):
                yield batch
                batch, chars = [], 0
            batch.append(article)
            chars += length if isinstance(length, int) else 0
        if batch:
            yield batch

    def queue_depth(self) -> int:
        """Batches waiting in the Celery queue."""
        return int(self.redis.llen(self.keys.queue_list))

    def wait_for_room(self) -> None:
        """Backpressure: block while the queue holds NEWSFLOW_QUEUE_BOUND articles or more.

        The queue is counted in batches of up to NEWSFLOW_BATCH_SIZE articles, so
        after the next batch it holds at most the bound plus one batch.
        """
        limit = max(1, self.settings.queue_bound // self.settings.batch_size)
        delay = 0.05
        while self.queue_depth() >= limit:
            time.sleep(delay)  # workers drain the queue meanwhile; re-checked each round
            delay = min(1.0, delay * 1.5)

    # -- the dead stream ------------------------------------------------------

    def replay_dead(self, entry: str) -> str:
        """Submit a dead entry again, after a fix; returns the article id it runs under.

        The id's record is released first (see :meth:`ResultStore.release`), so
        the same text is processed again and its outcome is a new results entry
        with the next revision. A failed article is queued again as it was; a
        malformed inbox entry goes back into the inbox with its raw fields (and
        the id it was reported under, if it brought none). The dead entry is
        removed once the replay is queued.
        """
        fields = self.store.dead_entry(entry)
        if fields is None:
            raise KeyError(f"no dead entry {entry}")
        article_id = fields["id"].decode() if "id" in fields else None
        if valid_id(article_id):
            self.store.release(article_id)
        if "article" in fields:
            article = orjson.loads(fields["article"])
            if not isinstance(article, dict):
                raise ValueError(f"dead entry {entry} holds no article object")
            article["_submitted_at"] = time.time()
            self.enqueue([article])
        else:
            raw = {k[len("raw.") :]: v for k, v in fields.items() if k.startswith("raw.")}
            if "id" not in raw and article_id:
                raw["id"] = article_id
            self.redis.xadd(self.keys.inbox, raw)
        self.store.drop_dead(entry)
        return article_id or ""

    # -- reading --------------------------------------------------------------

    def get(self, article_id: str) -> dict[str, Any] | None:
        return self.store.get(article_id)

    def wait(
        self,
        submitted: Iterable[Submitted],
        timeout: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Block until each trackable article has its result for the text sent.

        Returns ``{id: result}``. Raises ``TimeoutError`` listing what is missing.
        """
        pending = {s.id: s.text_hash for s in submitted if s.trackable}
        done: dict[str, dict[str, Any]] = {}
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.02
        while pending:
            ids = list(pending)
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                pipe = self.results_redis.pipeline(transaction=False)
                for article_id in part:
                    pipe.hget(self.keys.result(article_id), "hash")
                for article_id, digest in zip(part, pipe.execute(), strict=True):
                    if digest is not None and digest.decode() == pending[article_id]:
                        del pending[article_id]
                        result = self.get(article_id)
                        if result is not None:
                            done[article_id] = result
                        if progress:
                            progress(1)
            if not pending:
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} articles have no result yet, e.g. {ids[:3]}")
            time.sleep(delay)  # polling Redis; the condition is re-checked each round
            delay = min(0.5, delay * 1.5)
        return done

    def iter_results(
        self,
        *,
        group: str | None = None,
        consumer: str | None = None,
        follow: bool = False,
        start: str = "0",
        count: int = 100,
        block_ms: int = 1000,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(stream entry id, result)`` from the results stream, oldest first.

        Without ``group`` it is a plain read from ``start``. With ``group`` it reads
        through that consumer group (created at the stream's start if missing):
        first this consumer's own pending entries, which a crash left
        unacknowledged, then new ones. An entry is acknowledged only when the
        caller asks for the next one, so what was handed out and not finished
        is delivered again next time. ``follow`` keeps waiting for new results.
        """
        if group is None:
            yield from self._read_plain(start, follow, count, block_ms)
        else:
            yield from self._read_group(group, consumer or socket.gethostname(), follow, count, block_ms)

    def _read_plain(self, last: str, follow: bool, count: int, block_ms: int):
        stream = self.keys.results
        while True:
            got = self.results_redis.xread({stream: last}, count=count, block=block_ms if follow else None)
            if not got:
                if follow:
                    continue
                return
            for entry, fields in got[0][1]:
                last = entry
                yield entry.decode(), orjson.loads(fields[b"result"])

    def _read_group(self, group: str, consumer: str, follow: bool, count: int, block_ms: int):
        r, stream = self.results_redis, self.keys.results
        ensure_group(r, stream, group)
        cursor = "0"  # "0": this consumer's pending entries; then ">": new ones
        while True:
            block = block_ms if follow and cursor == ">" else None
            got = r.xreadgroup(group, consumer, {stream: cursor}, count=count, block=block)
            entries = got[0][1] if got else []
            if not entries:
                if cursor != ">":
                    cursor = ">"
                    continue
                if follow:
                    continue
                return
            for entry, fields in entries:
                if cursor != ">":
                    cursor = entry
                if fields:  # a pending entry trimmed away meanwhile has no fields left
                    yield entry.decode(), orjson.loads(fields[b"result"])
                r.xack(stream, group, entry)


def ensure_group(r: redis.Redis, stream: str, group: str, start: str = "0") -> None:
    """Create a consumer group at ``start`` (and the stream if missing); an existing group is kept."""
    try:
        r.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def consumer_name() -> str:
    """A consumer name unique to this process: ``<host>/<pid>``."""
    return f"{socket.gethostname()}/{os.getpid()}"


def _stamp(article: Any) -> Any:
    if not isinstance(article, dict):
        return article
    article = dict(article)
    article.setdefault("id", new_id())
    article.setdefault("_submitted_at", time.time())
    return article


def _submitted(article: Any) -> Submitted:
    if not isinstance(article, dict):
        return Submitted(None, "")
    text = article.get("text")
    article_id = article.get("id")
    return Submitted(
        article_id if isinstance(article_id, str) else None,
        text_hash(text) if isinstance(text, str) else "",
    )
