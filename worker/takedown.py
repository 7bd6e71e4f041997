"""Takedowns: ``newsflow forget ID`` removes everything newsflow holds about an article.

Its record, every results entry of every revision, its dedupe registration,
its dead entries and its attempt counter. The record lists the id's entries;
once it has expired, the streams are scanned for the id instead.
"""

from __future__ import annotations

from typing import Any, Protocol

import redis

from worker.keys import Keys


class Forgets(Protocol):
    """The dedupe index's side of a takedown."""

    def forget(self, article_id: str, fingerprint: str) -> None: ...


class Takedown:
    """Removes an article from results, the dead stream and the dedupe index.

    Args:
        client: the Redis that holds results and dedupe state.
        keys: the deployment's key names.
        index: the dedupe index (:class:`worker.dedupe.redis_index.RedisIndex`).
    """

    def __init__(self, client: redis.Redis, keys: Keys, index: Forgets) -> None:
        self._client = client
        self._keys = keys
        self._index = index

    def forget(self, article_id: str) -> dict[str, int]:
        """Take ``article_id`` down.

        Returns:
            ``{"records", "results", "dead"}``: how many of each were removed (all 0: nothing stored).
        """
        key = self._keys.result(article_id)
        record = {k.decode(): v.decode() for k, v in self._client.hgetall(key).items()}
        entries = record.get("entries", record.get("entry", "")).split()
        if not record:
            entries = [e for e, _ in self._scan(self._keys.results, article_id)]
        removed = int(self._client.xdel(self._keys.results, *entries)) if entries else 0
        if record.get("fp"):
            self._index.forget(article_id, record["fp"])
        dead = [e for e, _ in self._scan(self._keys.dead, article_id)]
        pipe = self._client.pipeline()
        pipe.delete(key)
        pipe.hdel(self._keys.attempts, article_id)
        if dead:
            pipe.xdel(self._keys.dead, *dead)
        records = pipe.execute()[0]
        return {"records": int(records), "results": removed, "dead": len(dead)}

    def _scan(self, stream: str, article_id: str, chunk: int = 500) -> list[tuple[str, Any]]:
        found: list[tuple[str, Any]] = []
        start, want = "-", article_id.encode()
        while True:
            part = self._client.xrange(stream, start, "+", count=chunk)
            found += [(e.decode(), f) for e, f in part if f.get(b"id") == want]
            if len(part) < chunk:
                return found
            start = "(" + part[-1][0].decode()
