"""Stage 3: which script an article is written in: ``hant``, ``hans``, ``mixed`` or ``other``."""

from __future__ import annotations

from functools import cache

import numpy as np

from worker.stages.normalise import HAN, LETTER, UNICODE_SIZE, code_point_classes, code_points
from worker.stages.segment import convert, to_simplified

# Below this share of Han characters among the letters, the text is not Chinese.
MIN_HAN_SHARE = 0.2
# The minority script must reach this share of the script-specific characters
# for the text to count as mixed; less is taken as stray characters or quotes.
MIXED_SHARE = 0.1

# The Han blocks whose characters OpenCC maps (the BMP ones: its s2t table has
# nothing outside them worth a per-character call).
_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))


# Written in Traditional copy too, though s2t changes them and no Taiwan or
# Hong Kong variant table keeps them: 着 for 著 (穿着, 看着) in Hong Kong and
# Taiwan informal copy.
BOTH_FORMS_EXTRA = "着"


@cache
def simplified_only() -> frozenset[str]:
    """Characters that OpenCC's s2t changes on their own and Traditional copy never uses: Simplified-only.

    A character that Taiwan or Hong Kong writes as it is (OpenCC's s2tw or s2hk
    keeps it: 台 beside 臺, 群, 温, 床...) is common to both scripts and decides
    nothing; else short Taiwan copy with the usual 台 came out ``mixed``.
    Built once per process (before fork in a worker) with one conversion of
    every BMP Han character per table, each on its own line so no phrase spans
    two; a per-article s2t pass would cost as much as the t2s pass itself.
    """
    chars = [chr(o) for lo, hi in _BLOCKS for o in range(lo, hi + 1)]
    joined = "\n".join(chars)
    to_trad, to_tw, to_hk = (convert(joined, config).split("\n") for config in ("s2t", "s2tw", "s2hk"))
    return frozenset(
        c
        for c, t, tw, hk in zip(chars, to_trad, to_tw, to_hk, strict=True)
        if t != c and tw != c and hk != c and c not in BOTH_FORMS_EXTRA
    )


_BMP = 0xFFFF


@cache
def simplified_only_table() -> np.ndarray:
    """:func:`simplified_only` as a lookup table over the BMP (its last entry, U+FFFF, is False)."""
    table = np.zeros(_BMP + 1, dtype=bool)
    table[[ord(c) for c in simplified_only()]] = True
    table[_BMP] = False
    return table


# Bits of :func:`code_point_table`, above the bit that says whether t2s changed the character.
_LETTER_BIT, _HAN_BIT, _SIMPLIFIED_ONLY_BIT = 2, 4, 8
_BINS = 16


@cache
def code_point_table() -> np.ndarray:
    """For every code point: letter, Han, Simplified-only (:func:`simplified_only`), as bits above bit 0.

    Bit 0 is left for whether t2s changed the character, so that one
    ``np.bincount`` of table value plus that bit counts every combination.
    """
    classes = code_point_classes()
    table = np.zeros(UNICODE_SIZE, dtype=np.uint8)
    table[(classes & LETTER) != 0] |= _LETTER_BIT
    table[(classes & HAN) != 0] |= _HAN_BIT
    table[: _BMP + 1][simplified_only_table()] |= _SIMPLIFIED_ONLY_BIT
    return table


def _tally_weights() -> np.ndarray:
    """Which bins of the count go into letters, Han, Traditional-only and Simplified-only (columns)."""
    bins = np.arange(_BINS)
    changed = (bins & 1) != 0
    return np.stack(
        [
            (bins & _LETTER_BIT) != 0,
            (bins & _HAN_BIT) != 0,
            changed & ((bins & _HAN_BIT) != 0),
            ~changed & ((bins & _SIMPLIFIED_ONLY_BIT) != 0),
        ],
        axis=1,
    ).astype(np.int64)


_TALLY = _tally_weights()


def detect_script(text: str, simplified: str | None = None) -> str:
    """Classify by the characters that differ between the two scripts.

    A character that OpenCC's t2s changes is Traditional-only; one that s2t
    changes (:func:`simplified_only`) is Simplified-only. Characters common to
    both decide nothing, so a text made only of them is reported as ``hans``.
    """
    simplified = to_simplified(text) if simplified is None else simplified
    if len(simplified) != len(text):
        raise ValueError("the simplified form must be aligned with the text")
    # Whole-text array operations: a per-character Python loop cost as much as segmenting.
    # One lookup and one count: each code point's bin is its table bits plus whether t2s changed it.
    codes = code_points(text)
    bins = code_point_table()[codes]
    if simplified != text:  # else t2s changed nothing (Simplified text): bit 0 stays clear
        bins += codes != code_points(simplified)
    letters, han, trad, simp = (np.bincount(bins, minlength=_BINS) @ _TALLY).tolist()
    if not han or han < MIN_HAN_SHARE * letters:
        return "other"
    specific = trad + simp
    if specific and min(trad, simp) >= MIXED_SHARE * specific:
        return "mixed"
    return "hant" if trad > simp else "hans"
