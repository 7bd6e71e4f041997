"""The Python client: one object for an app that submits articles and reads their results.

    from producer import Client
    client = Client()
    sent = client.submit_many([{"text": "..."}])
    results = client.wait(sent)

It puts together the parts, each of which owns one job: submitting
(:mod:`producer.submitting`, over :mod:`worker.batchqueue`), reading results
(:mod:`producer.reading`) and replaying dead entries (:mod:`producer.replay`).
It needs only Redis and Celery's client side; jieba is never imported here.
Apps that would rather not import newsflow at all can send the public task by
name (``newsflow.submit``) from any Celery app, or XADD to ``<prefix>:inbox``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from producer.reading import ResultReader
from producer.replay import Replayer
from producer.submitting import Submitted, Submitter
from worker.batchqueue import BatchQueue, celery_send
from worker.config import Settings
from worker.config import settings as env_settings
from worker.connection import connect
from worker.deadletters import DeadLetters
from worker.keys import Keys
from worker.results import ResultStore

__all__ = ["Client", "Submitted"]


class Client:
    """Submit articles, wait for and read their results, replay dead entries.

    Args:
        settings: defaults to the environment's (:func:`worker.config.settings`).
    """

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
        self.dead = DeadLetters(self.results_redis, self.keys)
        self._app: Any = None
        self.queue = BatchQueue(
            self.redis, self.keys, self.settings, celery_send(lambda: self.app, self.keys.queue)
        )
        self.submitter = Submitter(self.settings, self.queue)
        self.reader = ResultReader(self.results_redis, self.keys, self.store)
        self.replayer = Replayer(self.redis, self.keys, self.store, self.dead, self.submitter)

    @property
    def app(self) -> Any:
        """A Celery app for sending tasks (``celery.Celery``), built on first use."""
        if self._app is None:
            from worker.appconfig import make_app

            self._app = make_app(self.settings)
        return self._app

    def submit(self, article: dict[str, Any]) -> Submitted:
        """Queue one article; see :meth:`submit_many`."""
        return self.submit_many([article])[0]

    def submit_many(
        self,
        articles: Iterable[Any],
        *,
        countdown: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> list[Submitted]:
        """Queue articles in batches (:meth:`producer.submitting.Submitter.submit_many`)."""
        return self.submitter.submit_many(articles, countdown=countdown, progress=progress)

    def queue_depth(self) -> int:
        """Batches waiting in the Celery queue."""
        return self.queue.depth()

    def get(self, article_id: str) -> dict[str, Any] | None:
        """The current result of ``article_id``, or None."""
        return self.reader.get(article_id)

    def wait(
        self,
        submitted: Iterable[Submitted],
        timeout: float | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Block until each submitted article has its result (:meth:`producer.reading.ResultReader.wait`)."""
        return self.reader.wait(submitted, timeout, progress)

    def iter_results(self, **options: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """The results stream (:meth:`producer.reading.ResultReader.iter_results`)."""
        return self.reader.iter_results(**options)

    def replay_dead(self, entry: str) -> str:
        """Submit a dead entry again (:meth:`producer.replay.Replayer.replay`); returns its article id."""
        return self.replayer.replay(entry)
