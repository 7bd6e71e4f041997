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
# The grams x NUM_PERM matrix is built transposed, a row per permutation,
# against each permutation's a and b repeated along its row: numpy then runs
# each operation as one flat vector loop, where a broadcast one pays a call per
# row, which costs more than the arithmetic. A block's columns are the grams,
# padded up to a multiple of _STEP with copies of one of them (a repeat cannot
# change a minimum), so the repeated rows are kept for those few widths only.
_STEP = 64
_BLOCK = 512  # grams per block: 256 KB of values, within L2
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
_REPEATED = {
    width: (
        np.repeat(_PERM_A, width).reshape(NUM_PERM, width),
        np.repeat(_PERM_B, width).reshape(NUM_PERM, width),
    )
    for width in range(_STEP, _BLOCK + 1, _STEP)
}


def _u32(value: int) -> np.ndarray:
    # A 0-d array: numpy takes it as an operand faster than a numpy scalar.
    return np.array(value, dtype=np.uint32)


def _u64(value: int) -> np.ndarray:
    return np.array(value, dtype=np.uint64)


# xxh32 (seed 0) of a gram of three code points in U+0800..U+FFFF, which is
# nine UTF-8 bytes: two 4-byte lanes and one byte. Almost every gram of Chinese
# text is one, so they are hashed as arrays; any other gram is hashed by xxhash.
_P1, _P2, _P3, _P4, _P5 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F, 0x165667B1
_M32 = 0xFFFFFFFF
_NINE_SEED = _u32((_P5 + 9) & _M32)
_PRIME_1, _PRIME_2, _PRIME_3, _PRIME_4 = _u32(_P1), _u32(_P2), _u32(_P3), _u32(_P4)
# fmix32, the MurmurHash3 finalizer datasketch applies before the permutations
_FMIX_1, _FMIX_2 = _u32(0x85EBCA6B), _u32(0xC2B2AE35)
_BITS = {n: _u32(n) for n in (11, 13, 15, 16, 17, 21)}
_SHIFT_16, _SHIFT_32, _LOW_16 = _u64(16), _u64(32), _u64(0xFFFF)
_NINE_LOW, _NINE_SPAN = _u32(0x800), _u32(0x10000 - 0x800)


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


def _rotl(h: np.ndarray, bits: int, spare: np.ndarray) -> None:
    """Rotate ``h`` left in place; ``spare`` is scratch of its size."""
    np.right_shift(h, _BITS[32 - bits], out=spare)
    np.left_shift(h, _BITS[bits], out=h)
    np.bitwise_or(h, spare, out=h)


def _xorshift(h: np.ndarray, bits: int, spare: np.ndarray) -> None:
    np.right_shift(h, _BITS[bits], out=spare)
    np.bitwise_xor(h, spare, out=h)


def _xxh32_nine(packed: np.ndarray) -> np.ndarray:
    """xxh32 of the nine UTF-8 bytes of each gram packed as three 16-bit code points,
    and then ``h ^= h >> 16``: the first step of fmix32 (which undoes the last of xxh32)."""
    c0 = np.right_shift(packed, _SHIFT_32).astype(np.intp)
    c1 = np.bitwise_and(np.right_shift(packed, _SHIFT_16), _LOW_16).astype(np.intp)
    c2 = np.bitwise_and(packed, _LOW_16).astype(np.intp)
    spare = np.empty(len(packed), dtype=np.uint32)
    h = _FIRST[c0]
    np.add(h, _SECOND_1[c1], out=h)
    np.add(h, _NINE_SEED, out=h)
    _rotl(h, 17, spare)
    np.multiply(h, _PRIME_4, out=h)
    np.add(h, _SECOND_2[c1], out=h)
    np.add(h, _THIRD_2[c2], out=h)
    _rotl(h, 17, spare)
    np.multiply(h, _PRIME_4, out=h)
    np.add(h, _THIRD_LAST[c2], out=h)
    _rotl(h, 11, spare)
    np.multiply(h, _PRIME_1, out=h)
    _xorshift(h, 15, spare)
    np.multiply(h, _PRIME_2, out=h)
    _xorshift(h, 13, spare)
    np.multiply(h, _PRIME_3, out=h)
    # xxh32 ends with h ^= h >> 16, and the MinHash's fmix32 starts with the
    # same step, which undoes it: both are left out (see _min_permuted).
    return h


def _gram_hashes(letters_only: str) -> tuple[np.ndarray, int]:
    """fmix32's first step of the xxh32 of each distinct 3-gram's UTF-8 bytes (in no particular
    order), and how many there are."""
    if len(letters_only) < GRAM:
        lone = np.array([xxhash.xxh32_intdigest(letters_only.encode("utf-8"))], dtype=np.uint32)
        _xorshift(lone, 16, np.empty(1, dtype=np.uint32))
        return lone, 1
    cps = np.frombuffer(letters_only.encode("utf-32-le"), dtype=np.uint32)
    # U+0800..U+FFFF: below it the subtraction wraps round to a large number
    nine = np.less(np.subtract(cps, _NINE_LOW), _NINE_SPAN)
    wide = cps.astype(np.uint64)
    packed = np.left_shift(wide[:-2], _SHIFT_32)
    np.bitwise_or(packed, np.left_shift(wide[1:-1], _SHIFT_16), out=packed)
    np.bitwise_or(packed, wide[2:], out=packed)
    other = None
    if not nine.all():
        in_nine = nine[:-2] & nine[1:-1] & nine[2:]
        packed = packed[in_nine]
        other = {letters_only[i : i + GRAM] for i in np.flatnonzero(~in_nine).tolist()}
    # Distinct grams by sorting: np.unique costs several sorts of this size.
    packed.sort()
    if len(packed) > 1:
        packed = packed[np.concatenate(([True], packed[1:] != packed[:-1]))]
    mixed = _xxh32_nine(packed)
    if not other:
        return mixed, len(packed)
    rest = np.fromiter(map(xxhash.xxh32_intdigest, map(str.encode, other)), dtype=np.uint32, count=len(other))
    _xorshift(rest, 16, np.empty(len(rest), dtype=np.uint32))
    return np.concatenate((mixed, rest)), len(packed) + len(other)


def _min_permuted(mixed: np.ndarray) -> np.ndarray:
    """datasketch's affine32 MinHash of the gram hashes: min over grams of a * fmix32(h) + b mod 2^32.

    ``mixed`` holds the hashes after fmix32's first step (see _gram_hashes).
    """
    h = np.multiply(mixed, _FMIX_1)
    spare = np.empty(len(h), dtype=np.uint32)
    _xorshift(h, 13, spare)
    np.multiply(h, _FMIX_2, out=h)
    _xorshift(h, 16, spare)
    out = _EMPTY
    for start in range(0, len(h), _BLOCK):
        block = h[start : start + _BLOCK]
        grams = len(block)
        width = -(-grams // _STEP) * _STEP
        padded = np.empty(width, dtype=np.uint32)
        padded[:grams] = block
        padded[grams:] = block[0]
        repeated_a, repeated_b = _REPEATED[width]
        values = np.empty((NUM_PERM, width), dtype=np.uint32)
        values[...] = padded
        np.multiply(values, repeated_a, out=values)
        np.add(values, repeated_b, out=values)
        out = np.minimum(out, values.min(axis=1))
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
    mixed, count = _gram_hashes(letters_only)
    return _min_permuted(mixed).astype("<u4", copy=False).tobytes(), count


def jaccard(a: str, b: str) -> float:
    """The true 3-gram Jaccard similarity of two letter strings (for benchmarks and tests)."""
    ga = {a[i : i + GRAM] for i in range(max(1, len(a) - GRAM + 1))}
    gb = {b[i : i + GRAM] for i in range(max(1, len(b) - GRAM + 1))}
    return len(ga & gb) / len(ga | gb) if ga or gb else 1.0
