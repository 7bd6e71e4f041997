"""Stage 4: what dedupe compares.

The exact fingerprint ignores everything a re-send changes without changing
the story: wrapping, spacing, punctuation, full/half width (NFKC), case, and
Traditional versus Simplified script (the input is already Simplified).

The near-duplicate sketch is a MinHash (datasketch) over the character 3-grams
of those same letters. Chinese has no spaces to make words from, and 3-grams
held up better than 5-grams against scattered edits: one changed character
spoils three 3-grams but five 5-grams.
"""

from __future__ import annotations

import re
import unicodedata

import xxhash
from datasketch import MinHash

_NOT_LETTERS = re.compile(r"[\W_]+")
# Letters per shingle.
GRAM = 3
# Hash functions in the sketch. The LSH bands use the first BANDS x ROWS of
# them (see worker.dedupe.index); all of them estimate the similarity, so the
# estimate's standard error at 0.5 is about 0.044.
NUM_PERM = 128
_SEED = 1
# The permutations are drawn once: every process must draw the same ones, and
# drawing them costs more than sketching an article.
_SLICE = 512
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=xxhash.xxh32_intdigest)


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
    grams = {letters_only[i : i + GRAM] for i in range(max(1, len(letters_only) - GRAM + 1))}
    mh = MinHash(
        num_perm=NUM_PERM,
        seed=_SEED,
        hashfunc=xxhash.xxh32_intdigest,
        permutations=_TEMPLATE.permutations,
        scheme=_TEMPLATE.scheme,
    )
    shingles = [g.encode("utf-8") for g in grams]
    # In slices: datasketch builds a grams x NUM_PERM matrix per call, and one
    # that fits the CPU cache is three times faster than one for a whole article.
    for start in range(0, len(shingles), _SLICE):
        mh.update_batch(shingles[start : start + _SLICE])
    return mh.hashvalues.astype("<u4", copy=False).tobytes(), len(grams)


def jaccard(a: str, b: str) -> float:
    """The true 3-gram Jaccard similarity of two letter strings (for benchmarks and tests)."""
    ga = {a[i : i + GRAM] for i in range(max(1, len(a) - GRAM + 1))}
    gb = {b[i : i + GRAM] for i in range(max(1, len(b) - GRAM + 1))}
    return len(ga & gb) / len(ga | gb) if ga or gb else 1.0
