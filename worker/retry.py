"""When an article is tried again, and when it is given up.

Delivery is at least once. An article is counted before it starts
(:mod:`worker.attempts`): one whose count is over NEWSFLOW_MAX_ATTEMPTS killed
its child every time and is given up (``worker_lost``) without being run
again. A Python exception is an attempt too: the article alone is requeued
with backoff, and given up (``processing_error``) on the last attempt.
"""

from __future__ import annotations

from worker.article import valid_id
from worker.config import Settings
from worker.result_body import PROCESSING_ERROR, WORKER_LOST, Failure

LOST = Failure(WORKER_LOST, "the worker processing this article died or hung every time")


class RetryPolicy:
    """Decides retries from the settings (NEWSFLOW_MAX_ATTEMPTS, NEWSFLOW_VISIBILITY_TIMEOUT)."""

    def __init__(self, settings: Settings) -> None:
        self.max_attempts = settings.max_attempts
        self._visibility_timeout = settings.visibility_timeout

    @property
    def batched_first_delivery(self) -> bool:
        """Whether a first delivery counts and decides its articles together.

        With one attempt allowed, every article must be counted as it starts,
        so every delivery runs article by article.
        """
        return self.max_attempts > 1

    def lost(self, attempt: int) -> bool:
        """Whether an article about to start its ``attempt``-th time already died every time before."""
        return attempt > self.max_attempts

    def give_up(self, attempt: int, article_id: object) -> bool:
        """Whether an article that raised on its ``attempt``-th try is given up rather than retried."""
        return attempt >= self.max_attempts or not valid_id(article_id)

    def delay(self, attempt: int) -> float:
        """Seconds before the next try: exponential, capped.

        A delayed task waits unacked in a worker: the delay stays well inside
        the visibility timeout or kombu would hand it out a second time.
        """
        return min(60.0, 2.0**attempt, self._visibility_timeout / 4)

    @staticmethod
    def error(exc: Exception) -> Failure:
        """The failure recorded for an article whose last try raised ``exc``."""
        return Failure(PROCESSING_ERROR, f"{type(exc).__name__}: {exc}")
