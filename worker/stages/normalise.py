"""Stage 2: make the text that is analysed.

:func:`dewrap` joins hard-wrapped lines; :func:`drop_repeats` removes passages
pasted more than once into the same article. Both are pure functions of text.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import cache

import numpy as np

# Passages shorter than this many letters (punctuation and spaces not counted)
# are never removed: a dateline or a short refrain legitimately recurs.
MIN_REPEAT = 40
# Length of the letter grams that find where a repeat starts.
_GRAM = 12

_PARAGRAPH_BREAK = re.compile(r"\n[ \t\u3000]*\n\s*")
_LINE_BREAK = re.compile(r"[ \t\u3000]*\n[ \t\u3000]*")
_CLOSING = set("。，、；：！？」』）)】》〉.,;:!?\"'”’…—")


def is_cjk(ch: str) -> bool:
    """A Han character, kana, hangul, or CJK / full-width punctuation."""
    o = ord(ch)
    return (
        0x2E80 <= o <= 0x9FFF  # radicals, CJK punctuation, kana, CJK unified
        or 0xA960 <= o <= 0xA97F
        or 0xAC00 <= o <= 0xD7AF  # hangul
        or 0xF900 <= o <= 0xFAFF  # compatibility ideographs
        or 0xFE30 <= o <= 0xFE4F  # vertical forms, CJK compatibility punctuation
        or 0xFF00 <= o <= 0xFFEF  # full-width and half-width forms
        or 0x20000 <= o <= 0x3FFFF  # extension B and beyond
    )


def is_han(ch: str) -> bool:
    o = ord(ch)
    return 0x3400 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


def code_points(text: str) -> np.ndarray:
    """The text's code points as a read-only array, for counting over a whole text at C speed.

    The garbled check, drop_repeats and detect_script of one article mostly get
    the same str object (dewrap and drop_repeats return their input when they
    change nothing), so the array of the last text asked for is kept and given
    again for that same object: one encoding per article instead of three.
    (detect_script then asks for the Simplified form's, which the fingerprint's
    letters get again in the same way.)
    """
    global _last_code_points
    last_text, last_codes = _last_code_points
    if text is last_text:
        return last_codes
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
    _last_code_points = (text, codes)  # one tuple, replaced whole
    return codes


_last_code_points: tuple[str, np.ndarray] = ("", np.frombuffer(b"", dtype="<u4"))


def han_mask(codes: np.ndarray) -> np.ndarray:
    """:func:`is_han` for each of :func:`code_points`."""
    return (
        ((codes >= 0x3400) & (codes <= 0x9FFF))
        | ((codes >= 0xF900) & (codes <= 0xFAFF))
        | ((codes >= 0x20000) & (codes <= 0x3FFFF))
    )


def is_letter(ch: str) -> bool:
    """Counts toward content: not white space, not punctuation, not a symbol."""
    return unicodedata.category(ch)[0] in "LN"


# Every code point there is (U+10FFFF is the last): a table this long is
# indexed by code_points() with no clipping.
UNICODE_SIZE = 0x110000
# Bits of :func:`code_point_classes`.
LETTER = 1
HAN = 2


@cache
def code_point_classes() -> np.ndarray:
    """For every code point, :data:`LETTER` (:func:`is_letter`) and :data:`HAN` (:func:`is_han`) as bits.

    One lookup per code point then tells the stages that count letters and Han
    characters what each is. Letters are found with ``NOT_LETTERS`` itself,
    the expression drop_repeats and the fingerprint use, over one string of all
    code points, so the table agrees with them by construction. Built once per
    process (1.1 MB, about 0.1 s).
    """
    every = np.arange(UNICODE_SIZE, dtype="<u4")
    letters = NOT_LETTERS.sub("", every.tobytes().decode("utf-32-le", "surrogatepass"))
    classes = np.where(han_mask(every), np.uint8(HAN), np.uint8(0))
    classes[code_points(letters)] |= LETTER
    return classes


@cache
def letter_table() -> np.ndarray:
    """:func:`is_letter` for every code point, as one boolean lookup (from :func:`code_point_classes`)."""
    return (code_point_classes() & LETTER) != 0


def dewrap(text: str) -> str:
    """Join hard-wrapped lines; keep blank-line paragraph breaks as one newline.

    A line break inside a paragraph is removed when the character on either side
    is CJK (Han, kana, hangul, CJK or full-width punctuation), or when a digit
    run ends at the break and CJK sits at the run's far end (``第20\\n0個``).
    Between other characters (two Latin words) it becomes a space.

    Two breaks are kept, as a newline: after a headline (:func:`_is_headline`)
    and before each item of a list (:func:`_list_starts`).
    """
    if "\n" not in text and "\r" not in text:
        return text.strip()  # one paragraph of one line: all that the steps below would do
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = (p for p in _PARAGRAPH_BREAK.split(text.strip()))
    return "\n".join(_dewrap_paragraph(p) for p in paragraphs if p.strip())


# A first line at most this share of the wrap width is "clearly shorter".
HEADLINE_SHARE = 0.75
# Lines of a paragraph shorter than this are not taken for a wrap width.
MIN_WRAP = 10
# A list item's marker: bullets, 一、 1. 1、 (1) （一） a) ①.
_LIST_ITEM = re.compile(
    r"(?:[-*•·●○■□◆◇▪▶►※]\s*\S"
    r"|[（(](?:\d{1,3}|[一二三四五六七八九十]{1,3}|[A-Za-z])[)）]"
    r"|(?:\d{1,3}|[一二三四五六七八九十]{1,3}|[A-Za-z])[、.．)）](?![0-9０-９])"
    r"|[①-⑳])"
)


def _dewrap_paragraph(paragraph: str) -> str:
    if "\n" not in paragraph:
        return paragraph.strip()  # no line to join: what _join_lines gives for it
    lines = _LINE_BREAK.split(paragraph.strip())
    if len(lines) < 2:
        return _join_lines(paragraph)
    keep = _list_starts(lines)
    if _is_headline(lines):
        keep.add(1)
    if not keep:
        return _join_lines(paragraph)
    cuts = [0, *sorted(keep), len(lines)]
    return "\n".join(_join_lines("\n".join(lines[a:b])) for a, b in zip(cuts, cuts[1:], strict=False))


def _is_headline(lines: list[str]) -> bool:
    """A first line clearly shorter than the wrap width of the lines after it, ending without punctuation.

    A line as long as the wrap width (:func:`_wrap_width`) is never a headline,
    so hard-wrapped text, however wrapped, comes out as it always did.
    """
    first = lines[0]
    width = _wrap_width(lines[1:])
    return (
        width >= MIN_WRAP
        and len(first) <= HEADLINE_SHARE * width
        and not unicodedata.category(first[-1]).startswith("P")
        and first[-1] not in _CLOSING
    )


def _wrap_width(lines: list[str]) -> int:
    """The width ``lines`` were wrapped at: their most common length (the longer on a tie).

    The last line and lines that end a paragraph are shorter; a line here and
    there may be a character longer (punctuation kept off a line's start).
    With two lines or fewer, the longer.
    """
    if len(lines) <= 2:
        return max(len(line) for line in lines)
    counts = Counter(len(line) for line in lines[:-1])
    return max(counts, key=lambda n: (counts[n], n))


def _list_starts(lines: list[str]) -> set[int]:
    """Indexes of the lines that start list items, when at least two do (one could be a wrap)."""
    starts = {i for i, line in enumerate(lines) if i and _LIST_ITEM.match(line)}
    if _LIST_ITEM.match(lines[0]):
        starts.add(0)
    if len(starts) < 2:
        return set()
    starts.discard(0)
    return starts


def _join_lines(paragraph: str) -> str:
    def joiner(match: re.Match[str]) -> str:
        left = paragraph[match.start() - 1] if match.start() > 0 else ""
        right = paragraph[match.end()] if match.end() < len(paragraph) else ""
        if not left or not right:
            return ""
        if is_cjk(left) or is_cjk(right):
            return ""
        if (
            left.isdigit()
            and right.isdigit()
            and (
                _digit_run_touches_cjk(paragraph, match.start() - 1, -1)
                or _digit_run_touches_cjk(paragraph, match.end(), 1)
            )
        ):
            return ""
        return " "

    return _LINE_BREAK.sub(joiner, paragraph.strip())


def _digit_run_touches_cjk(text: str, i: int, step: int) -> bool:
    while 0 <= i < len(text) and text[i].isdigit():
        i += step
    return 0 <= i < len(text) and is_cjk(text[i])


_LETTER = re.compile(r"[^\W_]")
# Runs of what is not a letter (anything but Unicode L* and N*): the code-point letter
# table and the dedupe fingerprint's letters (worker.stages.fingerprint) are both drawn with it.
NOT_LETTERS = re.compile(r"[\W_]+")


def _fold(letter: str) -> str:
    """A letter NFKC-normalised and case-folded on its own."""
    return unicodedata.normalize("NFKC", letter).casefold()


class _Fold(dict[int, str]):
    """A ``str.translate`` table: each letter's NFKC case fold, worked out once per character.

    A letter whose fold is not one character maps to two, so a changed length
    tells that the text cannot be compared letter for letter.
    """

    def __missing__(self, code: int) -> str:
        folded = _fold(chr(code))
        self[code] = value = folded if len(folded) == 1 else "\0\0"
        return value


_FOLDED = _Fold()


def _letter_key(letters: str) -> str | None:
    r"""Each letter NFKC-normalised and case-folded on its own; None if one becomes more or less than one.

    At C speed: ``letters`` is found with ``[^\W_]``, exactly what is_letter
    keeps (Unicode L* and N*). Letters that NFKC leaves as they are (most
    text) fold with one casefold, which works character by character; else
    with one table lookup per letter.
    """
    key = letters.casefold() if unicodedata.is_normalized("NFKC", letters) else letters.translate(_FOLDED)
    return key if len(key) == len(letters) else None


# In :func:`_bmp_folds`: no one-character fold (and U+FFFF, where the take clips code points past the BMP).
_UNFOLDED = 0xFFFFFFFF


@cache
def _bmp_folds() -> np.ndarray:
    """Each BMP letter's fold (:func:`_fold`) as a code point; :data:`_UNFOLDED` where not one character.

    Entries of non-letters are never read. Built once per process with the
    same :func:`_fold` as ``_FOLDED``, so both ways fold alike; that memo is
    left to the few letters the string path meets.
    """
    folds = np.arange(0x10000, dtype=np.uint32)
    for code in np.flatnonzero(letter_table()[:0x10000]).tolist():
        folded = _fold(chr(code))
        folds[code] = ord(folded) if len(folded) == 1 else _UNFOLDED
    folds[0xFFFF] = _UNFOLDED
    return folds


def _letter_codes_key(letter_codes: np.ndarray) -> str | None:
    """:func:`_letter_key` of the letters with these code points, with one table lookup for all.

    A letter past the BMP, or one whose fold is not one character, sends the
    letters to :func:`_letter_key` itself, which decides those exactly.
    """
    folded = _bmp_folds().take(letter_codes, mode="clip")
    if folded.max(initial=0) == _UNFOLDED:
        return _letter_key(letter_codes.tobytes().decode("utf-32-le"))
    return folded.tobytes().decode("utf-32-le")


def drop_repeats(text: str, min_repeat: int = MIN_REPEAT) -> tuple[str, int]:
    """Remove passages that already appeared earlier in the same text.

    Passages are compared on their letters alone (NFKC, case-folded; spaces,
    line breaks and punctuation ignored), so a copy that is wrapped or
    punctuated differently, or that starts mid-line, is still found. A passage
    of fewer than ``min_repeat`` letters is kept: a dateline or a refrain
    legitimately recurs. Returns the text and how many passages were removed: a
    run of copies pasted back to back counts each copy, because a passage ends
    where its source stops running on in order.

    What separated a copy from the text before it (spaces, dashes, an
    ellipsis) goes with the copy; the mark that ends the kept clause stays, and
    so does one line break if the copy was a paragraph of its own.
    """
    codes = code_points(text)
    letter_codes = codes[letter_table()[codes]]
    n = len(letter_codes)
    if n < 2 * min_repeat:
        return text, 0
    key = _letter_codes_key(letter_codes)
    if key is None:  # NFKC expanded some letter; compare by position instead
        return text, 0
    # Most articles repeat nothing: then there is nothing to find.
    if not _may_repeat(key, min_repeat):
        return text, 0
    where = [m.start() for m in _LETTER.finditer(text)]  # index in ``text`` of each letter

    first_seen: dict[str, int] = {}
    passages: list[tuple[int, int]] = []  # [start, end) in letter positions
    i = 0
    while i <= n - _GRAM:
        gram = key[i : i + _GRAM]
        source = first_seen.setdefault(gram, i)
        if source == i:
            i += 1
            continue
        # Extend while the letters go on matching their source, and the source
        # stays in text that is kept: before the copy, and before any passage
        # already removed (so copies pasted back to back count one by one).
        limit = next((start for start, _ in passages if start > source), i)
        length = _GRAM
        while i + length < n and source + length < limit and key[source + length] == key[i + length]:
            length += 1
        if length >= min_repeat:
            passages.append((i, i + length))
            for j in range(i, min(i + length, n - _GRAM + 1)):
                first_seen.setdefault(key[j : j + _GRAM], j)
            i += length
        else:
            i += 1
    if not passages:
        return text, 0

    keep: list[str] = []
    cursor = 0
    for start, end in passages:
        cut_from = max(cursor, where[start])
        gap_from = where[start - 1] + 1 if start > 0 else 0
        if gap_from >= cursor:
            # Between kept text and the copy: keep the mark that ends the kept
            # clause, drop what only separated the copies (dashes, spaces).
            cut_from = gap_from + _kept_gap(text[gap_from:cut_from])
        cut_to = where[end] if end < n else len(text)
        # A copy takes its closing punctuation and the space after it along.
        if end < n:
            j = where[end - 1] + 1
            while j < cut_to and (text[j] in _CLOSING or text[j].isspace()):
                j += 1
            cut_to = j
        keep.append(text[cursor:cut_from])
        if "\n" in text[cut_from:cut_to]:
            keep.append("\n")  # the copy was a paragraph of its own, or ended one
        cursor = cut_to
    keep.append(text[cursor:])
    out = "".join(keep)
    out = re.sub(r"[ \t\u3000]*\n\s*", "\n", out).strip()
    return out, len(passages)


def _may_repeat(key: str, min_repeat: int) -> bool:
    """False only where the gram search below finds no passage of ``min_repeat`` letters in ``key``.

    Why sampling grams is enough: a passage the search removes is a run
    ``key[i : i + L]`` equal to ``key[s : s + L]`` for some ``s < i``, with
    ``L >= min_repeat`` (the search starts one only where a gram was seen
    before, and keeps it only at that length). Its grams start at the
    ``L - _GRAM + 1 >= stride`` positions ``i .. i + L - _GRAM``, consecutive
    integers, so one of them, ``p``, is a multiple of ``stride``; and the gram
    at ``p`` is also at ``s + (p - i)``, another position. So where no gram at
    a multiple of ``stride`` occurs twice in ``key``, there is no passage. Each
    such gram is looked for with ``str.find``, at C speed: about
    ``n / stride`` searches instead of a set of all ``n`` grams. Articles that
    repeat a sampled gram (a repeat, or a shorter recurring phrase) go on to
    the search, which decides exactly as before.
    """
    stride = max(1, min_repeat - _GRAM + 1)
    find = key.find
    for p in range(0, len(key) - _GRAM + 1, stride):
        gram = key[p : p + _GRAM]
        # The first occurrence is not p itself, or there is one after it (overlapping counts: not str.count).
        if find(gram) != p or find(gram, p + 1) >= 0:
            return True
    return False


_GAP_KEEP = re.compile(r"[^。！？!?…，、；：,;:]*?(?:[。！？!?]+|…+|[，、；：,;:])[」』”’）)】》〉\"']*")


def _kept_gap(gap: str) -> int:
    """How much of the text between kept letters and a dropped copy stays."""
    match = _GAP_KEEP.match(gap)
    return match.end() if match else 0
