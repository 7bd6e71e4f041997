"""The dead stream, ``<prefix>:dead``: what could not be processed, kept with its original content.

Two kinds of entry: a ``failed`` article (``article``: the JSON as submitted,
``error``, ``attempts``) and a malformed inbox entry (``raw.<field>``: the
bytes exactly as sent, ``inbox_entry``). Both carry ``id``, ``error`` and
``at``. ``newsflow dead --replay`` (:mod:`producer.replay`) submits them again.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import redis

from worker.keys import Keys


class DeadLetters:
    """Parking, listing and dropping dead entries.

    Args:
        client: the Redis that holds results (and so the dead stream).
        keys: the deployment's key names.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._client = client
        self._keys = keys

    def park(self, raw: object, error: dict[str, str], attempts: int) -> str:
        """Park an article that could not be processed, with its original content; returns the entry id."""
        fields: dict[str, Any] = {
            "article": orjson.dumps(raw, default=str),
            "error": orjson.dumps(error),
            "attempts": attempts,
            "at": f"{time.time():.3f}",
        }
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            fields["id"] = raw["id"]
        return self._client.xadd(self._keys.dead, fields).decode()

    def park_raw(self, article_id: str, fields: dict[bytes, bytes], error: dict[str, str], entry: str) -> str:
        """Park a malformed inbox entry: its fields exactly as sent, as ``raw.<field>``."""
        dead: dict[str | bytes, Any] = {b"raw." + name: value for name, value in fields.items()}
        dead.update(
            id=article_id, error=orjson.dumps(error), inbox_entry=entry, attempts=0, at=f"{time.time():.3f}"
        )
        return self._client.xadd(self._keys.dead, dead).decode()

    def entries(self, start: str = "-", count: int = 1000) -> list[tuple[str, dict[str, bytes]]]:
        """Dead entries from ``start``, oldest first: ``(entry id, fields)``."""
        found = self._client.xrange(self._keys.dead, start, "+", count=count)
        return [(entry.decode(), {k.decode(): v for k, v in fields.items()}) for entry, fields in found]

    def entry(self, entry: str) -> dict[str, bytes] | None:
        """One dead entry's fields, or None if there is no such entry."""
        found = self._client.xrange(self._keys.dead, entry, entry)
        return {k.decode(): v for k, v in found[0][1].items()} if found else None

    def drop(self, *entries: str) -> int:
        """Remove dead entries; returns how many were removed."""
        return int(self._client.xdel(self._keys.dead, *entries)) if entries else 0
