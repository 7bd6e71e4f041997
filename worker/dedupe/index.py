"""The dedupe interface and the decision both indexes share.

An article presents a :class:`Registration` (what it registers); the index answers with a
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
   or the lead with it (at most :data:`MAX_CANDIDATES`, oldest bucket first),
   those that qualify are: a candidate whose estimated Jaccard similarity
   reaches the threshold, or one that holds (or is held by) this article, a
   developing story's earlier or later version: the estimated containment of
   the smaller 3-gram set in the larger reaches :data:`CONTAIN_SHARE` (with at
   least :data:`CONTAIN_MIN_MATCHES` equal values and :data:`CONTAIN_MIN_SHINGLES`
   in the smaller). The qualifying one with the most equal MinHash values
   makes the article ``near_duplicate`` of it. Ties go to the first seen.
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
sketch, the match count the threshold needs) is computed here, in Python; the
containment test is integer arithmetic, the same in Lua.

Containment: a story's first version and its update (or a cut of it) have a
Jaccard similarity of about the shorter's share of the longer, under the
threshold for an early 40% version, although one is inside the other. From the
Jaccard estimate J and the two 3-gram set sizes a and b, the shared grams are
J(a + b) / (1 + J), and their share of the smaller set is the containment.
The lead (the first :data:`LEAD` letters) is one more candidate field, as the
versions of a story keep its opening; the bands alone find a 40% version as a
candidate only 4 times in 5.
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
from worker.stages import fingerprint as fp
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
SKETCH_BYTES = NUM_PERM * SHORT_BYTES
# A stored document is the sketch, then SIZE_TAG and its 3-gram count (4 bytes,
# little-endian), then its id. Ids never hold a NUL byte, so a document stored
# before sizes were (sketch, then id) is told apart and judged on Jaccard alone.
SIZE_TAG = b"\x00"
# Containment: the smaller set's share in the larger (as a fraction NUM/DEN so
# that Lua and Python decide in exact integers), the equal sketch values it
# needs at least (a Jaccard of 0.25: below that the estimate is too loose),
# and the smaller set's size at least (a line or two is no story).
CONTAIN_NUM, CONTAIN_DEN = 4, 5
CONTAIN_SHARE = CONTAIN_NUM / CONTAIN_DEN
CONTAIN_MIN_MATCHES = 32
CONTAIN_MIN_SHINGLES = 100
# Letters of the lead: the text's first LEAD letters are one more candidate field.
LEAD = 50
LEAD_TAG = b"\xfe"


@dataclass(frozen=True)
class Registration:
    """What an article registers in the dedupe index, and is judged by."""

    id: str
    fingerprint: str  # hex xxh3-128 of the letters
    sketch: bytes = b""  # MinHash values, see worker.stages.fingerprint.minhash
    size: int = 0  # distinct 3-grams the sketch was made of; 0: unknown
    lead: str = ""  # the first LEAD letters, "" for a shorter text

    @classmethod
    def of(cls, article_id: str, letters: str) -> Registration:
        """The registration of a text given its letters (worker.stages.fingerprint.letters)."""
        sketch, size = fp.sketch(letters)
        return cls(
            article_id, fp.fingerprint(letters), sketch, size, letters[:LEAD] if len(letters) >= LEAD else ""
        )


@dataclass(frozen=True)
class Decision:
    status: str  # "unique", "duplicate" or "near_duplicate"
    duplicate_of: str | None = None
    similarity: float | None = None
    # For a near duplicate whose sizes are known: the estimated share of the
    # smaller text's 3-grams in the larger, and which is longer: "this" article,
    # "duplicate_of" or "same".
    containment: float | None = None
    longer: str | None = None

    @classmethod
    def unique(cls) -> Decision:
        return cls("unique")

    @classmethod
    def near(cls, duplicate_of: str, matched: int, size: int, their_size: int | None) -> Decision:
        if not size or not their_size:
            return cls("near_duplicate", duplicate_of, similarity(matched))
        longer = "this" if size > their_size else "duplicate_of" if size < their_size else "same"
        return cls(
            "near_duplicate",
            duplicate_of,
            similarity(matched),
            containment(matched, size, their_size),
            longer,
        )


class DedupeIndex(Protocol):
    def decide(self, entry: Registration) -> Decision:
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


# Each band's tag byte and where its ROWS values start in the sketch.
_BAND_SLOTS = [(bytes([band]), band * ROWS * 4, (band + 1) * ROWS * 4) for band in range(BANDS)]


def band_fields(sketch: bytes) -> list[tuple[bytes, int]]:
    """Each LSH band's field and the number its shard is chosen by."""
    if not sketch:
        return []
    digest = xxhash.xxh3_64_digest
    return [
        (tag + (d := digest(sketch[start:end]))[:BAND_FIELD_BYTES], int.from_bytes(d[4:], "little"))
        for tag, start, end in _BAND_SLOTS
    ]


def lead_field(lead: str) -> list[tuple[bytes, int]]:
    """The lead's candidate field and the number its shard is chosen by (none without a lead)."""
    if not lead:
        return []
    digest = xxhash.xxh3_64_digest(lead.encode("utf-8"))
    return [(LEAD_TAG + digest[:BAND_FIELD_BYTES], int.from_bytes(digest[4:], "little"))]


def candidate_fields(entry: Registration) -> list[tuple[bytes, int]]:
    """The fields that find candidates: the LSH bands, then the lead."""
    return band_fields(entry.sketch) + lead_field(entry.lead)


def doc_tail(entry: Registration) -> bytes:
    """What a stored document holds after the sketch: the size, then the id."""
    return SIZE_TAG + min(entry.size, 2**32 - 1).to_bytes(4, "little") + entry.id.encode()


def read_doc(doc: bytes) -> tuple[bytes, int | None, str]:
    """A stored document's short sketch, size (None when stored without one) and id."""
    sketch, rest = doc[:SKETCH_BYTES], doc[SKETCH_BYTES:]
    if rest[:1] == SIZE_TAG:
        return sketch, int.from_bytes(rest[1:5], "little"), rest[5:].decode()
    return sketch, None, rest.decode()


def contained(matched: int, size: int, their_size: int | None) -> bool:
    """Whether the smaller 3-gram set is (estimated) mostly inside the larger; exact integers."""
    if not size or not their_size or matched < CONTAIN_MIN_MATCHES:
        return False
    small = min(size, their_size)
    if small < CONTAIN_MIN_SHINGLES:
        return False
    # shared = J (a + b) / (1 + J) with J = matched / NUM_PERM; shared / small >= NUM / DEN
    return matched * (size + their_size) * CONTAIN_DEN >= CONTAIN_NUM * small * (NUM_PERM + matched)


def containment(matched: int, size: int, their_size: int) -> float:
    """The estimated share of the smaller set's 3-grams that are in the larger."""
    shared = matched * (size + their_size) / (NUM_PERM + matched)
    return round(min(1.0, shared / min(size, their_size)), 3)


def short_sketch(sketch: bytes) -> bytes:
    """The stored sketch: the low 16 bits of each MinHash value.

    Two different values agree by chance once in 65,536, which moves an
    estimate by less than 0.0001.
    """
    if not sketch:
        return bytes(SKETCH_BYTES)  # never compared: an article without letters has no bands
    # The low half of a little-endian uint32 is its first two bytes.
    return np.frombuffer(sketch, dtype="<u2")[::2].tobytes()


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

    def decide(self, entry: Registration) -> Decision:
        live = self._buckets.live()
        for old in [b for b in self._state if b < live[0]]:
            del self._state[old]  # expired, as Redis would
        # The live buckets that hold anything, oldest first: most are empty.
        held = [(b, state) for b in live if (state := self._state.get(b)) is not None]
        own = handle(entry.id)
        xfield, _ = exact_field(entry.fingerprint)

        for _, state in held:
            owner = state.fields.get(xfield)
            doc = state.docs.get(owner) if owner is not None else None
            if doc is not None:
                if owner == own:
                    return Decision.unique()
                return Decision("duplicate", read_doc(doc)[2], 1.0)

        short = short_sketch(entry.sketch)
        fields = [field for field, _ in candidate_fields(entry)]
        best, best_id, best_size, seen = 0, "", None, 0
        compared: set[tuple[int, bytes]] = set()
        for b, state in held:
            for field in fields:
                owner = state.fields.get(field)
                if owner is None or owner == own or (b, owner) in compared or seen >= MAX_CANDIDATES:
                    continue
                compared.add((b, owner))
                doc = state.docs.get(owner)
                if doc is None:
                    continue
                seen += 1
                their_sketch, their_size, their_id = read_doc(doc)
                m = matches(their_sketch, short)
                if m > best and (m >= self._need or contained(m, entry.size, their_size)):
                    best, best_id, best_size = m, their_id, their_size
        if best:
            return Decision.near(best_id, best, entry.size, best_size)

        state = self._state.setdefault(live[-1], _Bucket({}, {}))
        docs, owners = state.docs, state.fields
        docs[own] = short + doc_tail(entry)
        owners[xfield] = own
        for field in fields:
            if owners.get(field) not in docs:
                owners[field] = own
        return Decision.unique()

    def forget(self, article_id: str, fingerprint: str) -> None:
        own = handle(article_id)
        xfield, _ = exact_field(fingerprint)
        for state in self._state.values():
            state.docs.pop(own, None)
            if state.fields.get(xfield) == own:
                del state.fields[xfield]
