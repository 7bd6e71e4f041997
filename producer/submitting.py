"""Submitting articles: stamp them, group them into batches, put the batches on the queue.

It needs only Redis and Celery's client side; jieba is never imported here.
The queue protocol itself (stash, list, task) is :mod:`worker.batchqueue`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from worker.article import new_id, text_hash, valid_id
from worker.batchqueue import BatchQueue
from worker.config import Settings


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
        for batch in self.batches(articles):
            self.enqueue(batch, countdown=countdown)
            sent.extend(submitted(a) for a in batch)
            if progress:
                progress(len(batch))
        return sent

    def enqueue(self, batch: list[Any], *, countdown: float | None = None) -> str:
        """Queue one batch of stamped articles once the queue has room; returns the batch id."""
        self.queue.wait_for_room()
        return self.queue.put(batch, countdown=countdown)

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
