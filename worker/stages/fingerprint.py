"""Stage 4: what dedupe compares.

The exact fingerprint ignores everything a re-send changes without changing
the story: wrapping, spacing, punctuation, full/half width (NFKC), case, and
Traditional versus Simplified script (the input is already Simplified).

The near-duplicate sketch is a MinHash (datasketch's affine32 family) over
the character 3-grams of those same letters. Chinese has no spaces to make
words from, and 3-grams held up better than 5-grams against scattered edits:
one changed character spoils three 3-grams but five 5-grams.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash

from worker.stages.normalise import NOT_LETTERS, code_points, letter_table

# Letters per shingle.
GRAM = 3
# Hash functions in the sketch. The LSH bands use the first BANDS x ROWS of
# them (see worker.dedupe.index); all of them estimate the similarity, so the
# estimate's standard error at 0.5 is about 0.044.
NUM_PERM = 128
_SEED = 1


def _affine32_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's draw of the ``affine32`` permutations (``MinHash._init_permutations``):
    ``a`` odd, then ``b``, from numpy's ``RandomState(seed)``.

    Sketches already stored must stay comparable, so the draw and the arithmetic
    below are datasketch's, bit for bit (tests/test_sketch_reference.py holds them
    to datasketch's own MinHash). The draw is made here rather than by
    datasketch: importing datasketch imports its LSH classes and with them
    scipy, about 0.5 s and 50 MB in every process, for two arrays of 128 numbers.
    """
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


_PERM_A, _PERM_B = _affine32_permutations(NUM_PERM, _SEED)
# The grams x NUM_PERM matrix is built in slabs of _STEP grams, a row per
# permutation, against each permutation's a and b repeated along a row of
# _STEP: numpy runs each operation over the whole matrix in a few flat vector
# loops, where one broadcast over the 128 permutations pays a call per row. A
# block's grams are padded up to a multiple of _STEP with copies of some of
# them (a repeat cannot change a minimum). The repeated rows take 64 KB.
_STEP = 64
_BLOCK = 512  # grams per block: 256 KB of values, within L2
_EMPTY = np.full(NUM_PERM, 0xFFFFFFFF, dtype=np.uint32)
_REPEATED_A = np.repeat(_PERM_A, _STEP).reshape(NUM_PERM, _STEP)
_REPEATED_B = np.repeat(_PERM_B, _STEP).reshape(NUM_PERM, _STEP)


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
_PRIME_1, _PRIME_2, _PRIME_3, _PRIME_4, _PRIME_5 = (_u32(p) for p in (_P1, _P2, _P3, _P4, _P5))
# fmix32, the MurmurHash3 finalizer datasketch applies before the permutations
_FMIX_1, _FMIX_2 = _u32(0x85EBCA6B), _u32(0xC2B2AE35)
_PRIME_3_FMIX_1 = _u32((_P3 * 0x85EBCA6B) & _M32)
_BITS = {n: _u32(n) for n in (8, 11, 13, 15, 16, 17, 21, 24)}
_SHIFT_16, _SHIFT_32 = _u64(16), _u64(32)
_NINE_LOW, _NINE_SPAN = _u32(0x800), _u32(0x10000 - 0x800)


def _utf8_of_three_byte_code_points() -> np.ndarray:
    """Per code point below U+10000: its three-byte UTF-8 form, little-endian in a uint32.

    Only U+0800..U+FFFF are encoded in three bytes; the other entries are
    never used (their grams are hashed by xxhash).
    """
    cp = np.arange(0x10000, dtype=np.uint32)
    return (0xE0 | (cp >> 12)) | ((0x80 | ((cp >> 6) & 0x3F)) << 8) | ((0x80 | (cp & 0x3F)) << 16)


# One table of 256 KB, read once per code point. Five tables of parts read once
# per gram cost the whole pipeline 6% more: they pushed the other stages' data
# out of the caches.
_UTF8 = _utf8_of_three_byte_code_points()


def _rotl(h: np.ndarray, bits: int, spare: np.ndarray) -> None:
    """Rotate ``h`` left in place; ``spare`` is scratch of its size."""
    np.right_shift(h, _BITS[32 - bits], out=spare)
    np.left_shift(h, _BITS[bits], out=h)
    np.bitwise_or(h, spare, out=h)


def _xorshift(h: np.ndarray, bits: int, spare: np.ndarray) -> None:
    np.right_shift(h, _BITS[bits], out=spare)
    np.bitwise_xor(h, spare, out=h)


def _xxh32_nine(utf8: np.ndarray) -> np.ndarray:
    """xxh32 of the nine UTF-8 bytes of each gram of three consecutive code points, carried
    on into fmix32 up to its second multiplication (see _min_permuted).

    ``utf8`` holds each code point's three bytes (:data:`_UTF8`); the grams are
    its consecutive triples, in text order. A gram's bytes fill xxh32's two
    4-byte lanes and one byte: the first letter's three and the second's first
    (lane 1), the second's last two and the third's first two (lane 2), the
    third's last.
    """
    first, second, third = utf8[:-2], utf8[1:-1], utf8[2:]
    spare = np.empty(len(first), dtype=np.uint32)
    h = np.left_shift(second, _BITS[24])  # lane 1
    np.bitwise_or(h, first, out=h)
    np.multiply(h, _PRIME_3, out=h)
    np.add(h, _NINE_SEED, out=h)
    _rotl(h, 17, spare)
    np.multiply(h, _PRIME_4, out=h)
    lane = np.right_shift(second, _BITS[8])  # lane 2
    np.left_shift(third, _BITS[16], out=spare)
    np.bitwise_or(lane, spare, out=lane)
    np.multiply(lane, _PRIME_3, out=lane)
    np.add(h, lane, out=h)
    _rotl(h, 17, spare)
    np.multiply(h, _PRIME_4, out=h)
    np.right_shift(third, _BITS[16], out=lane)  # the last byte
    np.multiply(lane, _PRIME_5, out=lane)
    np.add(h, lane, out=h)
    _rotl(h, 11, spare)
    np.multiply(h, _PRIME_1, out=h)
    _xorshift(h, 15, spare)
    np.multiply(h, _PRIME_2, out=h)
    _xorshift(h, 13, spare)
    # xxh32 ends with h ^= h >> 16 and fmix32 starts with it, which undoes it,
    # so xxh32's last multiplication meets fmix32's first: one multiplication.
    np.multiply(h, _PRIME_3_FMIX_1, out=h)
    return h


def _gram_hashes(letters_only: str) -> tuple[np.ndarray, int]:
    """Each 3-gram's xxh32 of its UTF-8 bytes carried on into fmix32 (see _xxh32_nine),
    repeats included (they cannot change a minimum), and how many distinct grams there are."""
    if len(letters_only) < GRAM:
        return _carried_on([xxhash.xxh32_intdigest(letters_only.encode("utf-8"))]), 1
    cps = np.frombuffer(letters_only.encode("utf-32-le"), dtype=np.uint32)
    # U+0800..U+FFFF: below it the subtraction wraps round to a large number
    nine = np.less(np.subtract(cps, _NINE_LOW), _NINE_SPAN)
    mixed = _xxh32_nine(_UTF8.take(cps, mode="clip"))
    wide = cps.astype(np.uint64)
    packed = np.left_shift(wide[:-2], _SHIFT_32)
    np.bitwise_or(packed, np.left_shift(wide[1:-1], _SHIFT_16), out=packed)
    np.bitwise_or(packed, wide[2:], out=packed)
    other: set[str] = set()
    if not nine.all():
        # grams with a letter outside U+0800..U+FFFF: hashed apart, by xxhash
        in_nine = nine[:-2] & nine[1:-1] & nine[2:]
        packed = packed[in_nine]
        mixed = mixed[in_nine]
        other = {letters_only[i : i + GRAM] for i in np.flatnonzero(~in_nine).tolist()}
    packed.sort()
    distinct = len(other) + (1 + int(np.count_nonzero(packed[1:] != packed[:-1])) if len(packed) else 0)
    if not other:
        return mixed, distinct
    return np.concatenate(
        (mixed, _carried_on(list(map(xxhash.xxh32_intdigest, map(str.encode, other)))))
    ), distinct


def _carried_on(hashes: list[int]) -> np.ndarray:
    """xxh32 values carried on as _xxh32_nine carries its own: h ^= h >> 16, then fmix32's first step."""
    h = np.array(hashes, dtype=np.uint32)
    _xorshift(h, 16, np.empty(len(h), dtype=np.uint32))
    np.multiply(h, _FMIX_1, out=h)
    return h


def _min_permuted(mixed: np.ndarray) -> np.ndarray:
    """datasketch's affine32 MinHash of the gram hashes: min over grams of a * fmix32(h) + b mod 2^32.

    ``mixed`` holds the hashes up to fmix32's first multiplication (see _gram_hashes);
    it is carried on in place.
    """
    spare = np.empty(len(mixed), dtype=np.uint32)
    _xorshift(mixed, 13, spare)
    np.multiply(mixed, _FMIX_2, out=mixed)
    _xorshift(mixed, 16, spare)
    out = _EMPTY
    for start in range(0, len(mixed), _BLOCK):
        block = mixed[start : start + _BLOCK]
        grams = len(block)
        width = -(-grams // _STEP) * _STEP
        if width > grams:
            block = (
                np.resize(block, width)
                if width > 2 * grams
                else np.concatenate((block, block[: width - grams]))
            )
        # slab, permutation, gram: the slab's grams broadcast down its rows
        values = np.multiply(block.reshape(-1, 1, _STEP), _REPEATED_A)
        np.add(values, _REPEATED_B, out=values)
        out = np.minimum(out, np.minimum.reduce(values, axis=0).min(axis=1))
    return out


def _letters_in_context(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    # ``[\W_]`` is exactly what is_letter drops (all but Unicode L* and N*), at C speed.
    return NOT_LETTERS.sub("", folded)


# Text made only of these characters needs no NFKC in context: each of them
# decomposes to a sequence that starts with a character that neither attaches
# (a combining mark) nor composes to the one before it, so no character's
# normalisation reaches into its neighbours', and NFKC, case folding and
# dropping non-letters map each character on its own
# (tests/test_sketch_reference.py checks every one of them). Chinese news is
# almost always made only of them (all 600 articles of bench.stages are), and
# then NFKC of the whole text, most of the cost, is not needed.
_PLAIN = (
    (0x0000, 0x024F),  # Latin
    (0x2000, 0x20A7),  # general punctuation, super- and subscripts, currency
    (0x213C, 0x249B),  # number forms, arrows, mathematical and technical signs, circled numbers
    (0x24EA, 0x27BF),  # box drawing, shapes, symbols, dingbats
    (0x3000, 0x3029),  # CJK punctuation; U+302A..U+302F are combining tone marks
    (0x3030, 0x3098),  # and hiragana; U+3099 and U+309A are combining voicing marks
    (0x309B, 0x30FF),  # katakana
    (0x3100, 0x312F),  # bopomofo
    (0x3400, 0x4DBF),  # CJK ideographs, extension A
    (0x4E00, 0x9FFF),  # CJK ideographs
    (0xFE10, 0xFE1F),  # vertical forms
    (0xFE30, 0xFE6F),  # CJK compatibility and small forms
    (0xFF01, 0xFF9D),  # full- and half-width forms; U+FF9E and U+FF9F are voicing marks
)
_IDEOGRAPHS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF))  # letters that are their own letters
_NOT_PLAIN = re.compile("[^" + "".join(f"\\u{lo:04x}-\\u{hi:04x}" for lo, hi in _PLAIN) + "]")
# The plain letters whose letters differ from themselves (upper case, full width,
# "½" and the like), and runs of them.
_FOLDED = {
    cp: folded
    for lo, hi in _PLAIN
    if (lo, hi) not in _IDEOGRAPHS
    for cp in range(lo, hi + 1)
    if not NOT_LETTERS.match(chr(cp)) and (folded := _letters_in_context(chr(cp))) != chr(cp)
}
_TO_FOLD = re.compile("[" + "".join(f"\\u{cp:04x}" for cp in _FOLDED) + "]+")


def _fold_run(run: re.Match[str]) -> str:
    return run.group().translate(_FOLDED)


def letters(simplified: str) -> str:
    """The letters of the text: NFKC, case-folded, no spaces or punctuation."""
    if _NOT_PLAIN.search(simplified) is None:
        # character by character (see _PLAIN): keep the letters (one table lookup per
        # code point, the table NOT_LETTERS itself drew), fold the few that fold
        codes = code_points(simplified)
        kept = codes[letter_table()[codes]].tobytes().decode("utf-32-le")
        return _TO_FOLD.sub(_fold_run, kept)
    return _letters_in_context(simplified)


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
