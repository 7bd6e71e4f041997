"""Stage 4: what dedupe compares.

The exact fingerprint ignores everything a re-send changes without changing
the story: wrapping, spacing, punctuation, full/half width (NFKC), case, and
Traditional versus Simplified script (the input is already Simplified).

The near-duplicate sketch is a MinHash over the character 3-grams of those
same letters. Chinese has no spaces to make words from, and 3-grams held up
better than 5-grams against scattered edits: one changed character spoils
three 3-grams but five 5-grams.

The MinHash is computed with numpy over all of an article's 3-grams at once.
A 3-gram is named by its three code points packed into one 63-bit integer
(21 bits each: every code point fits), so the set of 3-grams is one sort
and no gram is ever a Python string. Each is hashed to 32 bits with the
MurmurHash3 64-bit finalizer (a bijection that spreads structured input),
then put through ``NUM_PERM`` affine permutations ``a * h + b mod 2**32``
with odd ``a``, the permutations of datasketch's ``affine32`` scheme. The
sketches of datasketch (xxh32 of each gram's UTF-8, one Python call per gram)
cost more than the rest of the dedupe inputs together; these estimate the same
Jaccard similarity as well (docs/dedupe.md, "Quality"), but the two families do
not compare with each other: see ``FAMILY``.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash

_NOT_LETTERS = re.compile(r"[\W_]+")
# Letters per shingle.
GRAM = 3
# Hash functions in the sketch. The LSH bands use the first BANDS x ROWS of
# them (see worker.dedupe.index); all of them estimate the similarity, so the
# estimate's standard error at 0.5 is about 0.044.
NUM_PERM = 128
# Which MinHash family made a sketch. Sketches of different families share no
# more values than chance, so a stored sketch of another family is never a
# near-duplicate candidate (its bands differ) and never reaches a threshold:
# after a deploy that changes the family, near-duplicates are found among
# articles registered since (exact duplicates, by fingerprint, still across
# it), and the older entries expire with their window (docs/dedupe.md).
FAMILY = 2
_SEED = 1
# Drawn once, as datasketch draws affine32 permutations: every process must
# use the same ones.
_rng = np.random.RandomState(_SEED)
_A = _rng.randint(0, 1 << 31, NUM_PERM, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
_B = _rng.randint(0, 1 << 32, NUM_PERM, dtype=np.uint32)
del _rng
_U64 = np.uint64


def letters(simplified: str) -> str:
    """The letters of the text: NFKC, case-folded, no spaces or punctuation."""
    folded = unicodedata.normalize("NFKC", simplified).casefold()
    # ``[\W_]`` is exactly what is_letter drops (all but Unicode L* and N*), at C speed.
    return _NOT_LETTERS.sub("", folded)


def fingerprint(letters_only: str) -> str:
    """The exact-duplicate fingerprint of :func:`letters` output."""
    return xxhash.xxh3_128_hexdigest(letters_only.encode("utf-8"))


def minhash(letters_only: str) -> bytes:
    """The MinHash of the letters' 3-grams: ``NUM_PERM`` little-endian uint32s.

    Empty for text without letters, which has nothing to compare. A text
    shorter than a gram is one shingle.
    """
    return sketch(letters_only)[0]


def sketch(letters_only: str) -> tuple[bytes, int]:
    """:func:`minhash` and the number of distinct 3-grams it was made of.

    The count turns a Jaccard estimate into a containment estimate: how much of
    the smaller set is in the larger (worker.dedupe.index.containment).
    """
    if not letters_only:
        return b"", 0
    grams = np.unique(gram_ids(letters_only))
    hashed = (_fmix64(grams) >> _U64(32)).astype(np.uint32)
    # grams x NUM_PERM: an article's 500 grams make a table that fits the CPU cache.
    values = np.multiply.outer(hashed, _A)
    values += _B
    return values.min(axis=0).astype("<u4", copy=False).tobytes(), len(grams)


def gram_ids(letters_only: str) -> np.ndarray:
    """Each 3-gram's code points packed into one integer, in text order (with repeats).

    A text shorter than a gram is one shingle, packed the same way.
    """
    codes = np.frombuffer(letters_only.encode("utf-32-le", "surrogatepass"), dtype="<u4").astype(_U64)
    if len(codes) < GRAM:
        codes = np.concatenate([np.zeros(GRAM - len(codes), dtype=_U64), codes])
    return (codes[:-2] << _U64(42)) | (codes[1:-1] << _U64(21)) | codes[2:]


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, element-wise (wrapping multiplication is the point)."""
    h = h ^ (h >> _U64(33))
    h *= _U64(0xFF51AFD7ED558CCD)
    h ^= h >> _U64(33)
    h *= _U64(0xC4CEB9FE1A85EC53)
    h ^= h >> _U64(33)
    return h


def jaccard(a: str, b: str) -> float:
    """The true 3-gram Jaccard similarity of two letter strings (for benchmarks and tests)."""
    ga = {a[i : i + GRAM] for i in range(max(1, len(a) - GRAM + 1))}
    gb = {b[i : i + GRAM] for i in range(max(1, len(b) - GRAM + 1))}
    return len(ga & gb) / len(ga | gb) if ga or gb else 1.0
