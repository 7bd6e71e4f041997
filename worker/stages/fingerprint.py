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

import numpy as np
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
# The permutations are datasketch's draw (scheme "affine32", seed 1): sketches
# already stored must stay comparable, so the draw and the arithmetic below are
# datasketch's, bit for bit (tests/test_sketch_reference.py holds them to it).
# Drawing them costs more than sketching an article, so it happens once.
_TEMPLATE = MinHash(num_perm=NUM_PERM, seed=_SEED, hashfunc=xxhash.xxh32_intdigest, scheme="affine32")
_PERM_A = np.ascontiguousarray(_TEMPLATE.permutations[0], dtype=np.uint32)
_PERM_B = np.ascontiguousarray(_TEMPLATE.permutations[1], dtype=np.uint32)
# Grams per block of the grams x NUM_PERM matrix. The matrix is built flat (a
# row of NUM_PERM values per gram) against the permutations tiled once: numpy
# runs a flat operation in one vector loop, while a broadcast one pays a call
# per row, which cost more than the arithmetic. 512 rows (256 KB) stay in L2.
_BLOCK = 512
_TILED_A = np.tile(_PERM_A, _BLOCK)
_TILED_B = np.tile(_PERM_B, _BLOCK)
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)

# xxh32 (seed 0) of a gram of three code points in U+0800..U+FFFF, which is
# nine UTF-8 bytes: two 4-byte lanes and one byte. Almost every gram of Chinese
# text is one, so they are hashed as arrays; any other gram is hashed by xxhash.
_P1, _P2, _P3, _P4, _P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
_M32 = 0xFFFFFFFF
_NINE_SEED = (_P5 + 9) & _M32


def _utf8_of_three_byte_code_points() -> tuple[np.ndarray, ...]:
    """Per code point below U+10000: its UTF-8 bytes' parts in the nine-byte gram's lanes.

    A code point's three bytes ``e`` (little-endian in a uint32) fall in lane 1
    (first letter), lanes 1 and 2 (second), or lane 2 and the last byte (third);
    each table holds that part already multiplied by the xxh32 prime it meets,
    as multiplication distributes over the disjoint bytes of a lane.
    """
    cp = np.arange(0x10000, dtype=np.uint64)
    e = (0xE0 | (cp >> 12)) | ((0x80 | ((cp >> 6) & 0x3F)) << 8) | ((0x80 | (cp & 0x3F)) << 16)
    m = np.uint64(_M32)
    first = (e * _P3) & m
    second_lane1 = (((e << 24) & m) * _P3) & m
    second_lane2 = ((e >> 8) * _P3) & m
    third_lane2 = (((e << 16) & m) * _P3) & m
    third_last = ((e >> 16) * _P5) & m
    return tuple(t.astype(np.uint32) for t in (first, second_lane1, second_lane2, third_lane2, third_last))


_FIRST, _SECOND_1, _SECOND_2, _THIRD_2, _THIRD_LAST = _utf8_of_three_byte_code_points()


def _rotl(x: np.ndarray, bits: int) -> np.ndarray:
    return (x << np.uint32(bits)) | (x >> np.uint32(32 - bits))


def _xxh32_nine(packed: np.ndarray) -> np.ndarray:
    """xxh32 of the nine UTF-8 bytes of each gram packed as three 16-bit code points."""
    c0 = (packed >> np.uint64(32)).astype(np.intp)
    c1 = ((packed >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.intp)
    c2 = (packed & np.uint64(0xFFFF)).astype(np.intp)
    h = _FIRST[c0]
    h += _SECOND_1[c1]
    h += np.uint32(_NINE_SEED)
    h = _rotl(h, 17)
    h *= np.uint32(_P4)
    h += _SECOND_2[c1]
    h += _THIRD_2[c2]
    h = _rotl(h, 17)
    h *= np.uint32(_P4)
    h += _THIRD_LAST[c2]
    h = _rotl(h, 11)
    h *= np.uint32(_P1)
    h ^= h >> np.uint32(15)
    h *= np.uint32(_P2)
    h ^= h >> np.uint32(13)
    h *= np.uint32(_P3)
    h ^= h >> np.uint32(16)
    return h


def _gram_hashes(letters_only: str) -> tuple[np.ndarray, int]:
    """xxh32 of each distinct 3-gram's UTF-8 bytes (in no particular order), and how many there are."""
    if len(letters_only) < GRAM:
        return np.array([xxhash.xxh32_intdigest(letters_only.encode("utf-8"))], dtype=np.uint32), 1
    cps = np.frombuffer(letters_only.encode("utf-32-le"), dtype=np.uint32)
    nine = (cps >= 0x800) & (cps < 0x10000)
    wide = cps.astype(np.uint64)
    packed = (wide[:-2] << np.uint64(32)) | (wide[1:-1] << np.uint64(16)) | wide[2:]
    other = None
    if not nine.all():
        in_nine = nine[:-2] & nine[1:-1] & nine[2:]
        packed = packed[in_nine]
        other = {letters_only[i : i + GRAM] for i in np.flatnonzero(~in_nine).tolist()}
    # Distinct grams by sorting: np.unique costs several sorts of this size.
    packed.sort()
    if len(packed) > 1:
        packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
    hashes = _xxh32_nine(packed)
    if not other:
        return hashes, len(packed)
    rest = np.fromiter(
        [xxhash.xxh32_intdigest(g.encode("utf-8")) for g in other], dtype=np.uint32, count=len(other)
    )
    return np.concatenate((hashes, rest)), len(packed) + len(other)


def _min_permuted(hashes: np.ndarray) -> np.ndarray:
    """datasketch's affine32 MinHash of the gram hashes: min over grams of a * fmix32(h) + b mod 2^32."""
    h = hashes ^ (hashes >> np.uint32(16))
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    out = _EMPTY
    for start in range(0, len(h), _BLOCK):
        block = h[start : start + _BLOCK]
        rows = len(block)
        values = np.repeat(block, NUM_PERM)
        values *= _TILED_A[: rows * NUM_PERM]
        values += _TILED_B[: rows * NUM_PERM]
        matrix = values.reshape(rows, NUM_PERM)
        # Halving the rows takes log2(rows) flat minima; numpy's min over
        # axis 0 pays a call per row.
        while rows > 1:
            half = rows // 2
            np.minimum(matrix[:half], matrix[rows - half : rows], out=matrix[:half])
            rows -= half
        out = np.minimum(out, matrix[0])
    return out


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
    hashes, count = _gram_hashes(letters_only)
    return _min_permuted(hashes).astype("<u4", copy=False).tobytes(), count


def jaccard(a: str, b: str) -> float:
    """The true 3-gram Jaccard similarity of two letter strings (for benchmarks and tests)."""
    ga = {a[i : i + GRAM] for i in range(max(1, len(a) - GRAM + 1))}
    gb = {b[i : i + GRAM] for i in range(max(1, len(b) - GRAM + 1))}
    return len(ga & gb) / len(ga | gb) if ga or gb else 1.0
