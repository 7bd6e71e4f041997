"""Results, the per-id records and the dead stream in Redis.

Where the body lives: the ``<prefix>:results`` stream entry holds the one full
copy of each result JSON. ``<prefix>:result:<id>`` is a small hash that points
at that entry (``entry``) and carries ``status``, ``rev`` and the text hash.
:meth:`ResultStore.get` follows the pointer, so readers never see the split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from worker.article import valid_id
from worker.config import Settings
from worker.dedupe.redis_index import lua
from worker.keys import STATS_MINUTE_TTL, Keys
from worker.stats import latency_field


@dataclass(frozen=True)
class Record:
    """What Redis knows about an id before its article is processed."""

    text_hash: str
    revision: int
    status: str
    entry: str


def dumps(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result)


class ResultStore:
    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings
        self._emit = client.register_script(lua("emit_result.lua"))

    def records(self, ids: list[str]) -> dict[str, Record]:
        """The current record of each valid id that has one, in one round trip."""
        wanted = [i for i in dict.fromkeys(ids) if valid_id(i)]
        pipe = self._client.pipeline(transaction=False)
        for article_id in wanted:
            pipe.hmget(self._keys.result(article_id), "hash", "rev", "status", "entry")
        found = {}
        for article_id, (digest, rev, status, entry) in zip(wanted, pipe.execute(), strict=True):
            if digest is not None:
                found[article_id] = Record(digest.decode(), int(rev), status.decode(), entry.decode())
        return found

    def publish(
        self,
        article_id: str | None,
        status: str,
        result: dict[str, Any],
        text_hash: str = "",
        fingerprint: str = "",
        submitted_at: float | None = None,
    ) -> tuple[int, str, int]:
        """Write one outcome. Returns ``(code, entry, revision)`` as emit_result.lua does.

        An outcome without a valid id (a rejected bad id) has no record: it goes
        to the results stream alone.
        """
        s, keys = self._settings, self._keys
        minute = int(time.time() // 60)
        latency_ms = None if not submitted_at else max(0.0, (time.time() - submitted_at) * 1000)
        latency = "" if latency_ms is None else f"{latency_ms:.1f}"
        if article_id is None or not valid_id(article_id):
            pipe = self._client.pipeline()
            entry = pipe.xadd(
                keys.results,
                {"id": article_id or "", "status": status, "result": dumps(result)},
                maxlen=s.results_maxlen,
                approximate=True,
            )
            pipe.hincrby(keys.stats, status, 1)
            pipe.hincrby(keys.stats_minute(minute), status, 1)
            pipe.expire(keys.stats_minute(minute), STATS_MINUTE_TTL)
            entry = pipe.execute()[0]
            return 1, entry.decode(), 0
        code, entry, revision = self._emit(
            keys=[keys.result(article_id), keys.results, keys.stats, keys.stats_minute(minute)],
            args=[
                article_id,
                status,
                dumps(result),
                text_hash,
                fingerprint,
                result.get("revision", 1),
                s.result_ttl,
                s.results_maxlen,
                STATS_MINUTE_TTL,
                latency,
                "" if latency_ms is None else latency_field(latency_ms),
            ],
        )
        return int(code), entry.decode() if isinstance(entry, bytes) else entry, int(revision)

    def get(self, article_id: str) -> dict[str, Any] | None:
        """The current result for ``article_id``, or None if there is none (or it expired)."""
        entry = self._client.hget(self._keys.result(article_id), "entry")
        if entry is None:
            return None
        found = self._client.xrange(self._keys.results, entry, entry)
        if not found:
            return None
        return orjson.loads(found[0][1][b"result"])

    def dead(self, raw: object, error: dict[str, str], attempts: int) -> str:
        """Park what could not be processed, with its original content."""
        fields = {
            "article": orjson.dumps(raw, default=str),
            "error": orjson.dumps(error),
            "attempts": attempts,
            "at": f"{time.time():.3f}",
        }
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            fields["id"] = raw["id"]
        return self._client.xadd(self._keys.dead, fields).decode()
