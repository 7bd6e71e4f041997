"""The dedupe interface and the decision both indexes share.

An article presents an :class:`Entry`; the index answers with a
:class:`Decision` and, when the article is new, registers it, in one atomic
step. Rules, in order:

1. An article is never a duplicate of itself. Its own id's entries are never
   candidates: an id whose exact fingerprint it registered itself is ``unique``
   (a redelivery after a crash half-way, or a correction that changed nothing
   that counts), and its own LSH entries are skipped.
2. The same exact fingerprint, registered by another id that is still
   remembered, is ``duplicate`` of that first id, similarity 1.0. An entry
   whose document was forgotten counts for nothing.
3. Otherwise, among the registered articles that share at least one LSH band
   with it (at most :data:`MAX_CANDIDATES`, oldest bucket first), the one with
   the most equal MinHash values is compared: if its estimated similarity
   reaches the threshold, the article is ``near_duplicate`` of it. Ties go to
   the first seen.
4. Otherwise the article is ``unique`` and is registered: its exact
   fingerprint, its LSH bands and its document (sketch and id). A band field
   keeps its first owner unless that owner was forgotten. Duplicates and
   near-duplicates are not registered; the article they point at stands for them.

State is kept in time buckets of ``window / BUCKETS`` seconds; a decision reads
every bucket that can still hold state younger than the window and writes to
the newest. :class:`MemoryIndex` (``newsflow process``) and
:class:`worker.dedupe.redis_index.RedisIndex` (workers, one Lua script) hold the
same layout and follow these rules step by step; one test suite runs against both.

Everything both need to agree on bit for bit (handles, band fields, the short
sketch, the match count the threshold needs) is computed here, in Python.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import xxhash

from worker.config import Settings
from worker.stages.fingerprint import NUM_PERM

# Buckets per window: a whole bucket expires at once.
BUCKETS = 7
# LSH banding over the first BANDS * ROWS MinHash values: an article is a
# candidate with probability 1 - (1 - s^3)^24: 0.96 at similarity 0.5, 0.997 at
# 0.6, 0.99996 at 0.7, 0.05 at 0.13 (the most similar hard negative of the
# benchmark). 16 bands of 4 missed 2% of the copies with a tenth of their
# sentences replaced (similarity 0.6-0.8).
BANDS = 24
ROWS = 3
# Candidates compared per decision, at most: a bound on the work of one decision
# when a band value is very common.
MAX_CANDIDATES = 32
# Bytes of the doc handle (xxh3-64 of the id) stored instead of the id in
# every band entry.
HANDLE_BYTES = 8
# Tag of the exact-fingerprint field in a shard hash; band fields start with
# their band number (0..BANDS-1).
EXACT_TAG = b"\xff"
# Bytes of the band hash kept in a band field; the shard number is taken from
# other bits of the same hash.
BAND_FIELD_BYTES = 5
SHORT_BYTES = 2  # bytes kept of each MinHash value in the stored sketch
SKETCH_BYTES = NUM_PERM * SHORT_BYTES  # a stored document is this sketch, then its id


@dataclass(frozen=True)
class Entry:
    id: str
    fingerprint: str  # hex xxh3-128 of the letters
    sketch: bytes = b""  # MinHash values, see worker.stages.fingerprint.minhash


@dataclass(frozen=True)
class Decision:
    status: str  # "unique", "duplicate" or "near_duplicate"
    duplicate_of: str | None = None
    similarity: float | None = None

    @classmethod
    def unique(cls) -> Decision:
        return cls("unique")


class DedupeIndex(Protocol):
    def decide(self, entry: Entry) -> Decision:
        """Judge ``entry`` and register it if it is new, atomically."""

    def forget(self, article_id: str, fingerprint: str) -> None:
        """Remove what ``decide`` registered for this article."""


# --- what both indexes compute the same way ---------------------------------


def handle(article_id: str) -> bytes:
    """The short stand-in for an id in exact and band entries."""
    return xxhash.xxh3_64_digest(article_id.encode("utf-8"))


def exact_field(fingerprint: str) -> tuple[bytes, int]:
    """The exact entry's field and the number its shard is chosen by."""
    raw = bytes.fromhex(fingerprint)
    return EXACT_TAG + raw, int.from_bytes(raw[-4:], "little")


def band_fields(sketch: bytes) -> list[tuple[bytes, int]]:
    """Each LSH band's field and the number its shard is chosen by."""
    if not sketch:
        return []
    width = ROWS * 4
    out = []
    for band in range(BANDS):
        digest = xxhash.xxh3_64_digest(sketch[band * width : (band + 1) * width])
        out.append((bytes([band]) + digest[:BAND_FIELD_BYTES], int.from_bytes(digest[4:], "little")))
    return out


def short_sketch(sketch: bytes) -> bytes:
    """The stored sketch: the low 16 bits of each MinHash value.

    Two different values agree by chance once in 65,536, which moves an
    estimate by less than 0.0001.
    """
    if not sketch:
        return bytes(SKETCH_BYTES)  # never compared: an article without letters has no bands
    values = np.frombuffer(sketch, dtype="<u4")
    return (values & 0xFFFF).astype("<u2").tobytes()


def needed_matches(threshold: float) -> int:
    """Equal sketch values (of ``NUM_PERM``) that reach ``threshold``."""
    return max(1, math.ceil(threshold * NUM_PERM - 1e-9))


def matches(a: bytes, b: bytes) -> int:
    """How many stored sketch values two short sketches share."""
    return int(np.count_nonzero(np.frombuffer(a, dtype="<u2") == np.frombuffer(b, dtype="<u2")))


def similarity(matched: int) -> float:
    return round(matched / NUM_PERM, 3)


class Buckets:
    """Which time buckets a decision reads and writes, and how long they live."""

    def __init__(self, window: int, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.span = max(1, window // BUCKETS)
        self.clock = clock

    def live(self) -> list[int]:
        """Every bucket that can hold state younger than the window, oldest first."""
        now = int(self.clock()) // self.span
        return [now - i for i in range(BUCKETS, -1, -1)]

    def ttl(self, bucket: int) -> int:
        """Seconds from now until ``bucket`` holds nothing younger than the window."""
        return max(1, (bucket + 1) * self.span + self.window - int(self.clock()))


# --- the in-memory index -------------------------------------------------------


@dataclass
class _Bucket:
    fields: dict[bytes, bytes]  # exact or band field -> handle
    docs: dict[bytes, bytes]  # handle -> short sketch + id


class MemoryIndex:
    """The index for one process, with no services: ``newsflow process``."""

    def __init__(
        self, window: int = 7 * 86_400, threshold: float = 0.5, clock: Callable[[], float] = time.time
    ) -> None:
        self._buckets = Buckets(window, clock)
        self._need = needed_matches(threshold)
        self._state: dict[int, _Bucket] = {}

    @classmethod
    def from_settings(cls, s: Settings) -> MemoryIndex:
        return cls(s.dedupe_window, s.near_threshold)

    def decide(self, entry: Entry) -> Decision:
        live = self._buckets.live()
        for old in [b for b in self._state if b < live[0]]:
            del self._state[old]  # expired, as Redis would
        own = handle(entry.id)
        xfield, _ = exact_field(entry.fingerprint)
        short = short_sketch(entry.sketch)
        bands = band_fields(entry.sketch)

        for b in live:
            state = self._state.get(b)
            owner = state.fields.get(xfield) if state else None
            doc = state.docs.get(owner) if owner is not None else None
            if doc is not None:
                if owner == own:
                    return Decision.unique()
                return Decision("duplicate", doc[SKETCH_BYTES:].decode(), 1.0)

        best, best_id, seen = 0, "", 0
        compared: set[tuple[int, bytes]] = set()
        for b in live:
            state = self._state.get(b)
            if state is None:
                continue
            for field, _ in bands:
                owner = state.fields.get(field)
                if owner is None or owner == own or (b, owner) in compared or seen >= MAX_CANDIDATES:
                    continue
                compared.add((b, owner))
                doc = state.docs.get(owner)
                if doc is None:
                    continue
                seen += 1
                m = matches(doc[:SKETCH_BYTES], short)
                if m > best:
                    best, best_id = m, doc[SKETCH_BYTES:].decode()
        if best >= self._need:
            return Decision("near_duplicate", best_id, similarity(best))

        state = self._state.setdefault(live[-1], _Bucket({}, {}))
        state.docs[own] = short + entry.id.encode()
        state.fields[xfield] = own
        for field, _ in bands:
            if state.fields.get(field) not in state.docs:
                state.fields[field] = own
        return Decision.unique()

    def forget(self, article_id: str, fingerprint: str) -> None:
        own = handle(article_id)
        xfield, _ = exact_field(fingerprint)
        for state in self._state.values():
            state.docs.pop(own, None)
            if state.fields.get(xfield) == own:
                del state.fields[xfield]
