"""Submitting articles: stamp them, group them into batches, put the batches on the queue.

It needs only Redis and Celery's client side; jieba is never imported here.
The queue protocol itself (stash, list, task) is :mod:`worker.batchqueue`'s.

A batch counts as submitted once the queue confirms it: with
NEWSFLOW_MIN_REPLICAS=N, once N replicas hold it. A batch that is not
confirmed, or that Redis drops mid-way (a failover), is put again with the
same ids, which is idempotent, until NEWSFLOW_CONFIRM_TIMEOUT runs out; then
:class:`~worker.errors.NotReplicated` names every article not confirmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from worker.article import new_id, text_hash, valid_id
from worker.batchqueue import BatchQueue
from worker.config import Settings
from worker.connection import UNAVAILABLE
from worker.errors import NotReplicated


@dataclass(frozen=True)
class Submitted:
    """One article as sent: its id (None if it had no usable one) and text hash."""

    id: str | None
    text_hash: str

    @property
    def trackable(self) -> bool:
        return valid_id(self.id)


class Submitter:
    """Queues articles in batches, waiting first whenever the queue is over its bound.

    Args:
        settings: batch size and batch character budget.
        queue: the batch queue.
    """

    def __init__(self, settings: Settings, queue: BatchQueue) -> None:
        self.settings = settings
        self.queue = queue

    def submit_many(
        self,
        articles: Iterable[Any],
        *,
        countdown: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Submitted]:
        """Queue ``articles``.

        Args:
            articles: article objects (anything else is queued too, and rejected by the worker).
            countdown: seconds before the workers may start them.
            progress: called with the number of articles in each batch queued.

        Returns:
            One :class:`Submitted` per article, in order.
        """
        sent: list[Submitted] = []
        batches = self.batches(articles)
        for batch in batches:
            try:
                self.enqueue(batch, countdown=countdown, retry_unavailable=bool(sent))
            except NotReplicated as exc:
                left = [a for rest in batches for a in rest]
                raise _not_confirmed(exc, batch + left, len(sent)) from None
            sent.extend(submitted(a) for a in batch)
            if progress:
                progress(len(batch))
        return sent

    def enqueue(
        self, batch: list[Any], *, countdown: float | None = None, retry_unavailable: bool = True
    ) -> str:
        """Queue one batch of stamped articles once the queue has room; returns the batch id.

        A batch not confirmed (too few replicas took it, or Redis failed over
        under it) is put again, with backoff, until NEWSFLOW_CONFIRM_TIMEOUT.
        ``retry_unavailable=False`` lets a Redis that was never reached fail at once.

        Raises:
            NotReplicated: the batch was still not confirmed at the deadline.
        """
        deadline = time.monotonic() + self.settings.confirm_timeout
        delay = 0.1
        while True:
            try:
                self.queue.wait_for_room()
                return self.queue.put(batch, countdown=countdown)
            except UNAVAILABLE as exc:
                if not (retry_unavailable or isinstance(exc, NotReplicated)):
                    raise
                if time.monotonic() + delay > deadline:
                    if isinstance(exc, NotReplicated):
                        raise
                    raise NotReplicated(f"Redis did not take the batch ({exc})") from None
            time.sleep(delay)  # a failover or a lagging replica: try the whole batch again
            delay = min(2.0, delay * 2)

    def batches(self, articles: Iterable[Any]) -> Iterator[list[Any]]:
        """Stamp articles (id, submit time) and group them by NEWSFLOW_BATCH_SIZE and _MAX_CHARS."""
        size, max_chars = self.settings.batch_size, self.settings.batch_max_chars
        batch: list[Any] = []
        chars = 0
        for article in articles:
            article = stamp(article)
            length = len(article.get("text") or "") if isinstance(article, dict) else 0
            if batch and (len(batch) >= size or chars + length > max_chars):
                yield batch
                batch, chars = [], 0
            batch.append(article)
            chars += length if isinstance(length, int) else 0
        if batch:
            yield batch


def stamp(article: Any) -> Any:
    """A copy of ``article`` with an id (a new one if it has none) and its submit time."""
    if not isinstance(article, dict):
        return article
    article = dict(article)
    article.setdefault("id", new_id())
    article.setdefault("_submitted_at", time.time())
    return article


def submitted(article: Any) -> Submitted:
    """What :meth:`Submitter.submit_many` reports for one stamped article."""
    if not isinstance(article, dict):
        return Submitted(None, "")
    text = article.get("text")
    article_id = article.get("id")
    return Submitted(
        article_id if isinstance(article_id, str) else None,
        text_hash(text) if isinstance(text, str) else "",
    )


def _not_confirmed(exc: NotReplicated, articles: list[Any], confirmed: int) -> NotReplicated:
    """One line naming every article not confirmed, after the ``confirmed`` that were."""
    ids = tuple(a["id"] if isinstance(a, dict) else "(no id)" for a in articles)
    return NotReplicated(
        f"{len(ids)} articles not confirmed after {confirmed} were ({exc}); "
        f"submit them again once the replicas are back: {' '.join(ids)}",
        ids,
    )
