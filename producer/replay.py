"""Replaying dead entries after a fix: ``newsflow dead --replay``."""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from producer.submitting import Submitter
from worker.article import valid_id
from worker.deadletters import DeadLetters
from worker.errors import BadInput, NotFound
from worker.keys import Keys
from worker.results import ResultStore


class Replayer:
    """Submits dead entries again.

    Args:
        broker: the broker Redis (the inbox is there).
        keys: the deployment's key names.
        store: the result store (to release an id's record).
        dead: the dead stream.
        submitter: queues a failed article again.
    """

    def __init__(
        self, broker: redis.Redis, keys: Keys, store: ResultStore, dead: DeadLetters, submitter: Submitter
    ) -> None:
        self._broker = broker
        self._keys = keys
        self._store = store
        self._dead = dead
        self._submitter = submitter

    def replay(self, entry: str) -> str:
        """Submit a dead entry again; returns the article id it runs under.

        The id's record is released first (see :meth:`ResultStore.release`), so
        the same text is processed again and its outcome is a new results entry
        with the next revision. A failed article is queued again as it was; a
        malformed inbox entry goes back into the inbox with its raw fields (and
        the id it was reported under, if it brought none). The dead entry is
        removed once the replay is queued.

        Raises:
            NotFound: there is no such dead entry.
            BadInput: the entry holds no article object.
        """
        fields = self._dead.entry(entry)
        if fields is None:
            raise NotFound(f"no dead entry {entry}")
        article_id = fields["id"].decode() if "id" in fields else None
        if valid_id(article_id):
            assert article_id is not None
            self._store.release(article_id)
        if "article" in fields:
            article = orjson.loads(fields["article"])
            if not isinstance(article, dict):
                raise BadInput(f"dead entry {entry} holds no article object")
            article["_submitted_at"] = time.time()
            self._submitter.enqueue([article])
        else:
            raw: dict[str, Any] = {k[len("raw.") :]: v for k, v in fields.items() if k.startswith("raw.")}
            if "id" not in raw and article_id:
                raw["id"] = article_id
            self._broker.xadd(self._keys.inbox, raw)
        self._dead.drop(entry)
        return article_id or ""
