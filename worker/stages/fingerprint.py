"""Stage 4: what dedupe compares.

The exact fingerprint ignores everything a re-send changes without changing
the story: wrapping, spacing, punctuation, full/half width (NFKC), case, and
Traditional versus Simplified script (the input is already Simplified).

The near-duplicate sketch is a MinHash (rensa's R-MinHash, computed in Rust in
one call) over the character 3-grams of those same letters. Chinese has no
spaces to make words from, and 3-grams held up better than 5-grams against
scattered edits: one changed character spoils three 3-grams but five 5-grams.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import rensa
import xxhash

from worker.stages.normalise import NOT_LETTERS, code_points, letter_table

# Letters per shingle.
GRAM = 3
# Slots in the sketch. The LSH bands use the first BANDS x ROWS of them (see
# worker.dedupe.index); all of them estimate the similarity, so the
# estimate's standard error at 0.5 is about 0.044.
NUM_PERM = 128
SEED = 1
# The sketch's family: rensa's R-MinHash of this algorithm version (rensa is
# pinned in pyproject.toml). Sketches of another family do not compare: a
# deployment that changes it starts a new near-duplicate window (docs/dedupe.md).
FAMILY = f"rensa-rminhash-{rensa.RMinHash.ALGORITHM_VERSION}"
# One call makes the sketch of one text: rensa reads the array of grams as it is.
_RMINHASH = rensa.RMinHash.digest_matrix_from_flat_token_hashes

# A 3-gram is one integer, its three code points 21 bits apart (Unicode ends at
# U+10FFFF, 21 bits): every gram its own value, made by three array operations.
# rensa takes these as its token hashes and mixes them itself with its seeded
# hash functions, so they need no hash of their own.
_CODE_POINT_BITS = 21
_SHIFT_2, _SHIFT_1 = (np.array(2 * _CODE_POINT_BITS, np.uint64), np.array(_CODE_POINT_BITS, np.uint64))
# A text shorter than a gram is one shingle: its code points under this tag,
# which no 3-gram has (a gram's top bit is 0).
_SHORT_TAG = 1 << 63


def _grams(letters_only: str) -> np.ndarray:
    """Each 3-gram of the letters as one integer (repeats included), in text order."""
    cps = np.frombuffer(letters_only.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(cps) < GRAM:
        short = _SHORT_TAG
        for i, cp in enumerate(cps.tolist()):
            short |= cp << (_CODE_POINT_BITS * i)
        return np.array([short], dtype=np.uint64)
    grams = np.left_shift(cps[:-2], _SHIFT_2)
    np.bitwise_or(grams, np.left_shift(cps[1:-1], _SHIFT_1), out=grams)
    np.bitwise_or(grams, cps[2:], out=grams)
    return grams


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
    grams = _grams(letters_only)
    (values,) = _RMINHASH(grams, [0, len(grams)], NUM_PERM, SEED).to_rows()
    grams.sort()
    distinct = 1 + int(np.count_nonzero(grams[1:] != grams[:-1]))
    return np.array(values, dtype="<u4").tobytes(), distinct


def jaccard(a: str, b: str) -> float:
    """The true 3-gram Jaccard similarity of two letter strings (for benchmarks and tests)."""
    ga = {a[i : i + GRAM] for i in range(max(1, len(a) - GRAM + 1))}
    gb = {b[i : i + GRAM] for i in range(max(1, len(b) - GRAM + 1))}
    return len(ga & gb) / len(ga | gb) if ga or gb else 1.0
