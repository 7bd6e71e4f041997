"""The dedupe index that workers share, in Redis, decided by one Lua script.

Layout (all under ``<prefix>:dd:``), bucketed by time so that a whole bucket
expires at once instead of one TTL per entry:

========================== ====== ==============================================
key                        type   holds
========================== ====== ==============================================
dd:exact:<bucket>          hash   exact fingerprint -> first id; TTL window + bucket
========================== ====== ==============================================

A bucket spans ``window / BUCKETS`` seconds; a lookup reads every bucket that
can still hold state younger than the window.
"""

from __future__ import annotations

import time
from importlib import resources

import redis

from worker.dedupe.index import Decision, Entry
from worker.keys import Keys

BUCKETS = 7


def lua(name: str) -> str:
    return resources.files("worker").joinpath("lua", name).read_text(encoding="utf-8")


class RedisIndex:
    def __init__(self, client: redis.Redis, keys: Keys, window: int, clock=time.time) -> None:
        self._client = client
        self._keys = keys
        self._window = window
        self._span = max(1, window // BUCKETS)
        self._clock = clock
        self._decide = client.register_script(lua("dedupe.lua"))

    def _buckets(self) -> list[int]:
        now = int(self._clock()) // self._span
        return [now - i for i in range(BUCKETS + 1)]

    def decide(self, entry: Entry) -> Decision:
        keys = [self._keys.dedupe("exact", b) for b in self._buckets()]
        status, owner = self._decide(keys=keys, args=[entry.id, entry.fingerprint, self._window + self._span])
        status = status.decode() if isinstance(status, bytes) else status
        owner = owner.decode() if isinstance(owner, bytes) else owner
        if status == "duplicate":
            return Decision("duplicate", owner, 1.0)
        return Decision.unique()

    def forget(self, article_id: str, fingerprint: str) -> None:
        pipe = self._client.pipeline()
        for bucket in self._buckets():
            pipe.hget(self._keys.dedupe("exact", bucket), fingerprint)
        owners = pipe.execute()
        pipe = self._client.pipeline()
        for bucket, owner in zip(self._buckets(), owners, strict=True):
            if owner is not None and owner.decode() == article_id:
                pipe.hdel(self._keys.dedupe("exact", bucket), fingerprint)
        pipe.execute()
