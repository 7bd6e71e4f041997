"""Stage 1, the garbled-text check: bytes decoded with the wrong encoding, caught before any analysis.

A feed that declares GBK but sends UTF-8 (or sends Big5 as GBK, or GB18030 as
Big5) produces text that is valid Unicode and passes every other check, yet is
gibberish: segmenting it fills search, keywords and dedupe with garbage, and
the real article, arriving later correctly encoded, is a duplicate of nothing.

The signal is character frequency. In Chinese news (either script) nearly every
Han character is one of the 3,500 most common (``worker/data/common_chars.txt``,
taken from jieba's dictionary): about 1% are not, and at most 8% in any of the
2,641 short articles cut from the SIGHAN 2005 test sets (bench.garbled_eval). Mis-decoded bytes land all
over the code table instead: about half of their Han characters are rare.
Random draws of ordinary characters keep the frequencies of the text they are
drawn from, so they are never taken for garbled text; random rare characters
are, as the cause of such text is almost always a decoding slip.

When the share of rare characters passes :data:`RARE_SHARE`, the usual
mis-decodings are undone (the text re-encoded with the wrong codec and decoded
with the right one) to name the likely cause; text that reads as news after
one of them is garbled. When that undoing is exact (strict both ways, nothing
lost on the first decode) the repaired text is analysed instead of rejected,
and the result says what was repaired. Text made mostly of U+FFFD (bytes that
a decoder gave up on) is garbled too: there is nothing left to analyse.

Everything here is one table lookup per code point and one count of the
classes (common or rare Han, accented Latin, U+FFFD), at C speed; the undoing
runs only for text already flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from worker.stages.normalise import HAN, UNICODE_SIZE, code_point_classes, code_points
from worker.stages.segment import convert, jieba_file

COMMON_CHARS = Path(__file__).resolve().parent.parent / "data" / "common_chars.txt"
# Han characters counted as common (of jieba's dictionary, by frequency).
COMMON_COUNT = 3500
# Text with at least this share of rare Han characters is examined as possibly
# mis-decoded. Natural text measures about 0.01 (at most 0.08 in a short
# article), mis-decoded text 0.45-0.70.
RARE_SHARE = 0.25
# With no mis-decoding that explains it, text is still garbled from this share
# on: random rare characters, not news (a list of rare-character names stays
# far below it: each name has common characters too).
RANDOM_SHARE = 0.5
# A reading counts as news when its rare share is under this.
PLAUSIBLE_SHARE = 0.08
# Fewer Han characters than this say nothing about frequencies (a table of
# numbers, a short English text with one Chinese name).
MIN_HAN = 16
# U+FFFD (a decoder's "could not read this") at this share of the non-space
# characters, and at least REPLACEMENT_MIN of them, is garbled text. A few in a
# long article are a damaged byte or two, not a wrong encoding.
REPLACEMENT_SHARE = 0.02
REPLACEMENT_MIN = 8

_NON_SPACE = re.compile(r"\S")

# (what the bytes were, what they were read as): the mis-decodings undone to
# name a cause, most common first.
MISREADINGS = (
    ("utf-8", "gb18030"),
    ("big5", "gbk"),
    ("gb18030", "big5"),
    ("utf-8", "big5"),
    ("utf-8", "cp1252"),
)
_NAMES = {"utf-8": "UTF-8", "gb18030": "GB18030", "gbk": "GBK", "big5": "Big5", "cp1252": "Windows-1252"}


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` found: text fit to analyse (perhaps repaired), or the reason it is not."""

    text: str
    repaired: dict[str, str] | None = None  # {"encoding": ..., "read_as": ...}
    garbled: str | None = None  # the rejection message


def shipped_common_characters() -> list[str]:
    """The Simplified common characters of ``worker/data/common_chars.txt``, most frequent first."""
    lines = COMMON_CHARS.read_text("utf-8").splitlines()
    return [c for line in lines if not line.startswith("#") for c in line.strip()]


def common_characters_from_jieba() -> list[str]:
    """What ``common_chars.txt`` holds, recomputed from jieba's dictionary.

    Each word's frequency is counted for every character it holds; ties go to
    the lower code point.
    """
    counts: dict[str, int] = {}
    for line in jieba_file("dict.txt").read_text("utf-8").splitlines():
        word, freq, *_ = line.split(" ")
        for ch in word:
            counts[ch] = counts.get(ch, 0) + int(freq)
    ranked = sorted((c for c in counts if "\u4e00" <= c <= "\u9fff"), key=lambda c: (-counts[c], c))
    return ranked[:COMMON_COUNT]


@cache
def common_characters() -> frozenset[str]:
    """The common Han characters in both scripts: a character counts when its Simplified form does.

    Built once per process (before fork in a worker) with one conversion of
    every BMP Han character, each on its own line so no phrase spans two.
    """
    simplified_common = set(shipped_common_characters())
    chars = [
        chr(o) for lo, hi in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF)) for o in range(lo, hi + 1)
    ]
    converted = convert("\n".join(chars), "t2s").split("\n")
    return frozenset(
        c for c, s in zip(chars, converted, strict=True) if c in simplified_common or s in simplified_common
    )


@cache
def common_table() -> np.ndarray:
    """:func:`common_characters` as a lookup table over the BMP (U+FFFF, where others are clipped: False)."""
    table = np.zeros(0x10000, dtype=bool)
    table[[ord(c) for c in common_characters()]] = True
    table[0xFFFF] = False
    return table


# Classes of :func:`code_point_table`, one bin each in the count of a text.
_OTHER, _COMMON, _RARE, _PRIVATE, _LATIN, _REPLACEMENT = range(6)


@cache
def code_point_table() -> np.ndarray:
    """The class of every code point: common or rare Han, private use, accented Latin (U+00C0-U+00FF), U+FFFD.

    Private-use code points are what GB18030 decoders give for GBK's
    user-defined areas, where mis-decoded bytes often land; they count as rare
    Han characters. With this table one lookup and one ``np.bincount`` count
    all that :func:`check` needs, over all of Unicode (no clipping).
    """
    every = np.arange(UNICODE_SIZE, dtype=np.uint32)
    table = np.full(UNICODE_SIZE, _OTHER, dtype=np.uint8)
    table[(code_point_classes() & HAN) != 0] = _RARE
    table[:0x10000][common_table()] = _COMMON  # the common ones are all Han
    table[(every >= 0xE000) & (every <= 0xF8FF)] = _PRIVATE
    table[0xC0:0x100] = _LATIN
    table[0xFFFD] = _REPLACEMENT
    return table


def _class_counts(text: str) -> list[int]:
    """How many of ``text``'s code points are in each class of :func:`code_point_table`."""
    return np.bincount(code_point_table()[code_points(text)], minlength=6).tolist()


def _share(counts: list[int]) -> tuple[float, int]:
    total = counts[_COMMON] + counts[_RARE] + counts[_PRIVATE]
    if not total:
        return 0.0, 0
    return (total - counts[_COMMON]) / total, total


def rare_share(text: str) -> tuple[float, int]:
    """The share of rare Han characters (private-use code points counted as rare) and the Han count."""
    # Counted over the code points as arrays: a per-character lookup cost as much as the tagging.
    return _share(_class_counts(text))


def check(text: str) -> Verdict:
    """Judge ``text``: fit to analyse as it is, exactly repairable, or garbled (with the likely cause)."""
    counts = _class_counts(text)
    share, han = _share(counts)
    latin = counts[_LATIN]
    replacements = counts[_REPLACEMENT]
    if replacements < REPLACEMENT_MIN and latin < MIN_HAN and (han < MIN_HAN or share < RARE_SHARE):
        return Verdict(text)  # news: nothing below applies
    replaced = replacements >= REPLACEMENT_MIN and replacements >= REPLACEMENT_SHARE * len(
        _NON_SPACE.findall(text)
    )
    if (han >= MIN_HAN and share >= RARE_SHARE) or latin >= MIN_HAN:
        repaired = _exact_repair(text)
        if repaired is not None:
            return repaired
        cause = _best_reading(text)
        if cause is not None:
            found = (
                _rare(share, han)
                if han >= MIN_HAN
                else f"{latin:,} of its characters are accented Latin letters that spell out UTF-8 bytes"
            )
            return Verdict(text, garbled=f"looks like {cause}: {found}; {_FIX}")
        if han >= MIN_HAN and share >= RANDOM_SHARE and not replaced:
            return Verdict(
                text,
                garbled=f"looks like mis-decoded bytes or random characters: {_rare(share, han)}; {_FIX}",
            )
    if replaced:
        cause = _best_reading(text) or "bytes in another encoding (GBK, Big5) read as UTF-8"
        return Verdict(
            text,
            garbled=f"looks like {cause}: {replacements:,} characters are U+FFFD, what a decoder writes "
            f"for bytes it could not read; {_FIX}",
        )
    return Verdict(text)


_FIX = "decode the source bytes with their real encoding"


def _rare(share: float, han: int) -> str:
    return f"{share:.0%} of its {han:,} Chinese characters are rare (news: about 1%)"


def _describe(encoding: str, read_as: str) -> str:
    return f"{_NAMES[encoding]} read as {_NAMES[read_as]}"


def _plausible(reading: str) -> bool:
    # Up to a third of the characters may be lost: Windows-1252 leaves five
    # byte values undefined, which spoils one UTF-8 character in six or so.
    if reading.count("\ufffd") > 0.3 * max(1, len(reading)):
        return False
    share, han = rare_share(reading)
    return han >= MIN_HAN and share < PLAUSIBLE_SHARE


def _exact_repair(text: str) -> Verdict | None:
    """The text the bytes really held, when one mis-decoding undoes exactly and reads as news."""
    if "\ufffd" in text:
        return None  # the first decode lost bytes: nothing can be restored exactly
    for encoding, read_as in MISREADINGS:
        try:
            reading = text.encode(read_as).decode(encoding)
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        # Exact: the repaired text read back the wrong way gives the submitted text.
        if _plausible(reading) and _roundtrips(reading, encoding, read_as, text):
            return Verdict(reading, repaired={"encoding": encoding, "read_as": read_as})
    return None


def _roundtrips(reading: str, encoding: str, read_as: str, text: str) -> bool:
    try:
        return reading.encode(encoding).decode(read_as) == text
    except (UnicodeEncodeError, UnicodeDecodeError):
        return False


def _best_reading(text: str) -> str | None:
    """The mis-decoding whose undoing reads most like news, bytes lost on the way or not."""
    best: tuple[float, str] | None = None
    for encoding, read_as in MISREADINGS:
        reading = _undo(text, encoding, read_as)
        if _plausible(reading):
            share, _ = rare_share(reading)
            if best is None or share < best[0]:
                best = (share, _describe(encoding, read_as))
    return best[1] if best else None


def _undo(text: str, encoding: str, read_as: str) -> str:
    """Undo a lossy misreading piece by piece between the U+FFFD the first decode wrote.

    A decoder that gives up on a byte goes on from the next one, which may sit
    in the middle of a character of the real encoding; so each piece is read
    from its first byte and from its second, and the reading with fewer rare
    characters is kept.
    """
    pieces = []
    for piece in text.split("\ufffd"):
        raw = piece.encode(read_as, "replace")
        readings = [raw.decode(encoding, "replace"), raw[1:].decode(encoding, "replace")]
        pieces.append(min(readings, key=lambda r: rare_share(r)[0] + r.count("\ufffd") / max(1, len(r))))
    return "".join(pieces)
