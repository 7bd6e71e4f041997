"""The dedupe index that workers share, in Redis, decided by one Lua script.

Layout (see :mod:`worker.keys`), bucketed by time so that a whole bucket
expires at once instead of one TTL per entry, and sharded so that each hash
stays small enough for Redis's compact listpack encoding:

============================ ====== ==============================================
key                          type   holds
============================ ====== ==============================================
dd:<bucket>:<shard>          hash   exact field (0xff + 16-byte fingerprint) and
                                    band fields (band number + 5-byte hash) and
                                    the lead field (0xfe + 5-byte hash) ->
                                    doc handle (8-byte xxh3-64 of the id)
dd:<bucket>:doc              hash   doc handle -> 256-byte short sketch + NUL +
                                    3-gram count (4 bytes) + id
============================ ====== ==============================================

Every key of a bucket expires when the bucket leaves the window. A field's
shard is its hash modulo ``shards`` (NEWSFLOW_DEDUPE_SHARDS); every worker must
use the same number. One decision is one EVALSHA (one round trip).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from importlib import resources

import redis

from worker.config import Settings
from worker.dedupe.index import (
    BAND_FIELD_BYTES,
    CONTAIN_DEN,
    CONTAIN_MIN_MATCHES,
    CONTAIN_MIN_SHINGLES,
    CONTAIN_NUM,
    MAX_CANDIDATES,
    Buckets,
    Decision,
    Registration,
    candidate_fields,
    doc_tail,
    exact_field,
    handle,
    needed_matches,
    short_sketch,
)
from worker.keys import Keys

# dedupe.lua reads the candidate fields packed in one argument, 6 bytes apart:
# a tag byte, then the band's or the lead's hash.
assert 1 + BAND_FIELD_BYTES == 6


def lua(name: str) -> str:
    return resources.files("worker").joinpath("lua", name).read_text(encoding="utf-8")


class RedisIndex:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        window: int,
        *,
        threshold: float = 0.5,
        shards: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._keys = keys
        self._buckets = Buckets(window, clock)
        self._need = needed_matches(threshold)
        self._shards = shards
        self._decide = client.register_script(lua("dedupe.lua"))
        self._forget = client.register_script(lua("dedupe_forget.lua"))

    @classmethod
    def from_settings(cls, client: redis.Redis, keys: Keys, s: Settings) -> RedisIndex:
        return cls(client, keys, s.dedupe_window, threshold=s.near_threshold, shards=s.dedupe_shards)

    def decide(self, entry: Registration) -> Decision:
        keys, args = self._call(entry)
        return _decision(self._decide(keys=keys, args=args), entry)

    def decide_many(self, entries: list[Registration]) -> list[Decision]:
        """Decide ``entries`` in order, in one round trip: each decision is its own atomic EVALSHA.

        The same decisions as calling :meth:`decide` on each in turn: Redis runs
        a pipeline's scripts in order, so a copy later in the list sees the
        article it copies registered. Entries whose script Redis lost (a
        restart) are decided again, in order, once it is loaded.
        """
        if not entries:
            return []
        pipe = self._client.pipeline(transaction=False)
        for entry in entries:
            keys, args = self._call(entry)
            pipe.evalsha(self._decide.sha, len(keys), *keys, *args)
        decisions = []
        for entry, reply in zip(entries, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                decisions.append(self.decide(entry))
            elif isinstance(reply, Exception):
                raise reply
            else:
                decisions.append(_decision(reply, entry))
        return decisions

    def _call(self, entry: Registration) -> tuple[list[str], list[object]]:
        xfield, xshard = exact_field(entry.fingerprint)
        bands = candidate_fields(entry)
        live = self._buckets.live()
        shards = self._shards
        args = [
            entry.id,
            handle(entry.id),
            xfield,
            short_sketch(entry.sketch),
            self._need,
            MAX_CANDIDATES,
            self._buckets.ttl(live[-1]),
            len(bands),
            xshard % shards,
            b"".join((n % shards).to_bytes(4, "little") for _, n in bands),
            b"".join(field for field, _ in bands),
            entry.size,
            doc_tail(entry),
            CONTAIN_MIN_MATCHES,
            CONTAIN_MIN_SHINGLES,
            CONTAIN_NUM,
            CONTAIN_DEN,
        ]
        return [self._keys.dedupe_docs(bucket) for bucket in live], args

    def forget(self, article_id: str, fingerprint: str) -> None:
        xfield, xshard = exact_field(fingerprint)
        keys: list[str] = []
        for bucket in self._buckets.live():
            keys.append(self._keys.dedupe_docs(bucket))
            keys.append(self._keys.dedupe_shard(bucket, xshard % self._shards))
        self._forget(keys=keys, args=[handle(article_id), xfield])


def _decision(reply: list[object], entry: Registration) -> Decision:
    status, owner, matched, their_size = (v.decode() if isinstance(v, bytes) else v for v in reply)
    if status == "duplicate":
        return Decision("duplicate", str(owner), 1.0)
    if status == "near_duplicate":
        size = int(their_size)
        return Decision.near(str(owner), int(matched), entry.size, size if size >= 0 else None)
    return Decision.unique()
