"""The stages before the dedupe sketch against slow, obvious implementations of the same rules.

parse_article, the garbled check, dewrap, drop_repeats and detect_script count
and fold over lookup tables built once for all of Unicode, skip work that a
text without line breaks or repeats does not need, and look for repeats with
a few searches before the gram search. Here each must give exactly what the
per-character rules give: on edge cases (surrogates, control characters,
letters past the BMP and letters whose NFKC form is longer, Han code points
that are not letters, repeats just under and over the minimum) and on text
cut from tests/data, mis-decoded or not.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable

import numpy as np
import pytest

from tests.support import article_pieces
from tests.test_stage_references import slow_detect_script  # the reference, written once
from worker.article import Rejection, parse_article
from worker.stages import garbled, normalise, script, segment

pytestmark = pytest.mark.unit

EDGES = [
    "",
    " ",
    "a",
    "臺灣",
    "台湾的经济在二〇二四年增长了３．５％，ＩＢＭ與臺積電的ＡＩ晶片。",
    "ﬁle ﬂow Ⅻ ㈱ ½ ｶﾀｶﾅ 𠀀𠀁𪚥 \U0002a6a5 é e\u0301 ǅ ß İ ΣΑΣ",
    "䷀䷁䷂ 易經的卦象 \U0002fff0\U0003fffd",  # Han ranges that hold symbols and unassigned code points
    "\ue000\ue123鍩虹鏂囧瓧 Ã¤Ã¶Ã¼ æ—¥æœ¬ \ufffd\ufffd",
    "English only, no Han at all: 2005-10-01, https://example.com/a.b?c=d.",
    "\u3000\u3000全角空格　和\t製表符\r\n換行\r舊式換行",
    "  兩段之間\n\n   \n  有空行  \n\n\n第三段\n",
    "第20\n0個\n人在這裡。\n\n標題\n這是第一行文字很長很長很長很長很長很長\n第二行也很長很長很長很長很長很長很長很",
    "一、第一項\n二、第二項\n三、第三項",
    "\x1c\x1d 分隔符也是空白 \x85\u2028",
]


# Pieces of real articles: Traditional and Simplified, wrapped or not.
CORPUS = article_pieces(17, 60, 1200, segment.to_simplified, unwrapped_share=0.3)
CASES = EDGES + CORPUS


# -- the tables ------------------------------------------------------------------------------


def test_code_point_classes_match_the_character_rules() -> None:
    classes = normalise.code_point_classes()
    assert len(classes) == 0x110000
    letters = np.array([unicodedata.category(chr(c))[0] in "LN" for c in range(0x110000)])
    assert np.array_equal((classes & normalise.LETTER) != 0, letters)
    assert np.array_equal(normalise.letter_table(), letters)
    every = np.arange(0x110000)
    han = np.array([normalise.is_han(chr(c)) for c in range(0x30000, 0x31000)])
    assert np.array_equal((classes[0x30000:0x31000] & normalise.HAN) != 0, han)
    assert np.array_equal((classes & normalise.HAN) != 0, normalise.han_mask(every))


def test_bmp_folds_match_the_per_letter_fold() -> None:
    folds = normalise._bmp_folds()
    for code in np.flatnonzero(normalise.letter_table()[:0x10000]).tolist():
        folded = unicodedata.normalize("NFKC", chr(code)).casefold()
        assert folds[code] == (ord(folded) if len(folded) == 1 else normalise._UNFOLDED), hex(code)


# -- dewrap ----------------------------------------------------------------------------------


def slow_dewrap(text: str) -> str:
    """dewrap as it was: every paragraph split into lines and joined, line break or not."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = normalise._PARAGRAPH_BREAK.split(text.strip())
    return "\n".join(_slow_paragraph(p) for p in paragraphs if p.strip())


def _slow_paragraph(paragraph: str) -> str:
    lines = normalise._LINE_BREAK.split(paragraph.strip())
    if len(lines) < 2:
        return normalise._join_lines(paragraph)
    keep = normalise._list_starts(lines)
    if normalise._is_headline(lines):
        keep.add(1)
    cuts = [0, *sorted(keep), len(lines)]
    return "\n".join(
        normalise._join_lines("\n".join(lines[a:b])) for a, b in zip(cuts, cuts[1:], strict=False)
    )


@pytest.mark.parametrize("text", CASES)
def test_dewrap_matches_the_reference(text: str) -> None:
    assert normalise.dewrap(text) == slow_dewrap(text)


# -- drop_repeats ----------------------------------------------------------------------------


def slow_letter_key(text: str) -> str | None:
    """The letters of ``text`` folded one by one; None if a fold is not one character."""
    folded = [unicodedata.normalize("NFKC", ch).casefold() for ch in text if normalise.is_letter(ch)]
    return "".join(folded) if all(len(c) == 1 for c in folded) else None


def has_repeat(key: str, length: int) -> bool:
    """Whether some run of ``length`` letters occurs twice in ``key`` (overlapping or not)."""
    runs = [key[i : i + length] for i in range(len(key) - length + 1)]
    return len(set(runs)) < len(runs)


def _with_repeats(rng: random.Random, alphabet: str, n: int) -> str:
    """Random letters over ``alphabet`` with a few runs of 30-50 letters copied elsewhere."""
    letters = [rng.choice(alphabet) for _ in range(n)]
    for _ in range(rng.randint(0, 3)):
        length = rng.randint(30, 50)
        if n > 2 * length:
            a, b = rng.randrange(n - length), rng.randrange(n - length)
            letters[b : b + length] = letters[a : a + length]
    return "".join(letters)


def test_the_sampled_grams_miss_no_repeat() -> None:
    # The proof in _may_repeat: no sampled gram found twice means no repeat of
    # min_repeat letters. Checked where repeats are common: few distinct letters.
    rng = random.Random(16)
    for _ in range(3000):
        key = _with_repeats(
            rng, rng.choice(["ab", "abc", "abcd", "甲乙丙丁戊", "abcdefghijklmnop"]), rng.randint(20, 300)
        )
        for min_repeat in (1, 12, 13, 20, 40, 41):
            if not normalise._may_repeat(key, min_repeat):
                assert not has_repeat(key, max(min_repeat, normalise._GRAM)), (key, min_repeat)


def test_the_sampled_grams_skip_most_real_text() -> None:
    # What the shortcut is for: articles without a repeat seldom reach the gram search.
    keys = [slow_letter_key(text) for text in CORPUS]
    long = [k for k in keys if k is not None and len(k) >= 2 * normalise.MIN_REPEAT]
    flagged = [k for k in long if normalise._may_repeat(k, normalise.MIN_REPEAT)]
    assert len(flagged) <= len(long) // 4


def _pasted(rng: random.Random, text: str) -> str:
    """``text`` with a passage of 35-90 characters (punctuated as found) pasted in again."""
    start = rng.randrange(max(1, len(text) - 60))
    passage = text[start : start + rng.randint(35, 90)]
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice(["", "，", "\n", "　", "……"]) + passage + text[at:]


REPEATS = [_pasted(random.Random(i), text) for i, text in enumerate(CORPUS)] + [
    "重复的段落重复的段落重复的段落，这是一个很长的句子需要超过四十个字母才行吧对吧。" * 3,
    "ab" * 60,
    "甲" * 100,
    "ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪ"
    + "abcdefghijklmnopqrstuvwxyz0123456789abcdefghij",
    "ǅ" + "𠀀𠀁𪚥是一個很長的句子需要超過四十個字母才行吧對吧對吧對吧對吧對吧對吧對吧" * 3,
]


def slow_drop_repeats(text: str, min_repeat: int, monkeypatch: pytest.MonkeyPatch) -> tuple[str, int]:
    """drop_repeats with the letters folded one by one and the gram search run for every text."""
    key = slow_letter_key(text)
    if key is None or len(key) < 2 * min_repeat:
        return text, 0
    with monkeypatch.context() as patch:
        patch.setattr(normalise, "_may_repeat", lambda key, min_repeat: True)
        patch.setattr(normalise, "_letter_codes_key", lambda codes: key)
        return normalise.drop_repeats(text, min_repeat)


@pytest.mark.parametrize("min_repeat", [12, 20, normalise.MIN_REPEAT, 41])
def test_drop_repeats_matches_the_reference(min_repeat: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for text in CASES + REPEATS:
        assert normalise.drop_repeats(text, min_repeat) == slow_drop_repeats(text, min_repeat, monkeypatch)


def test_the_pasted_passages_are_found() -> None:
    # The reference above is only as good as its cases: most of them must reach the search.
    assert sum(normalise.drop_repeats(text)[1] > 0 for text in REPEATS) >= len(REPEATS) // 3


def test_letter_key_of_code_points_matches_the_reference() -> None:
    for text in CASES + REPEATS + ["ΣΑΣ ﬃ ǅ İ ß 가 가 Ⅻ ㈱ Straße", "ＡＢＣａｂｃ１２３", "𝐀𝐁𝐂 𠀀"]:
        codes = normalise.code_points(text)
        letter_codes = codes[normalise.letter_table()[codes]]
        assert normalise._letter_codes_key(letter_codes) == slow_letter_key(text)


# -- the garbled check -----------------------------------------------------------------------


def slow_check(text: str) -> garbled.Verdict:
    """check as it was, with every count taken character by character."""
    han = sum(1 for c in text if normalise.is_han(c) or 0xE000 <= ord(c) <= 0xF8FF)
    common = sum(1 for c in text if c in garbled.common_characters())
    share = (han - common) / han if han else 0.0
    latin = sum(1 for c in text if "\u00c0" <= c <= "\u00ff")
    replacements = sum(1 for c in text if c == "\ufffd")
    replaced = replacements >= garbled.REPLACEMENT_MIN and replacements >= garbled.REPLACEMENT_SHARE * sum(
        1 for c in text if not c.isspace()
    )
    if (han >= garbled.MIN_HAN and share >= garbled.RARE_SHARE) or latin >= garbled.MIN_HAN:
        repaired = garbled._exact_repair(text)
        if repaired is not None:
            return repaired
        cause = garbled._best_reading(text)
        if cause is not None:
            found = (
                garbled._rare(share, han)
                if han >= garbled.MIN_HAN
                else f"{latin:,} of its characters are accented Latin letters that spell out UTF-8 bytes"
            )
            return garbled.Verdict(text, garbled=f"looks like {cause}: {found}; {garbled._FIX}")
        if han >= garbled.MIN_HAN and share >= garbled.RANDOM_SHARE and not replaced:
            return garbled.Verdict(
                text,
                garbled="looks like mis-decoded bytes or random characters: "
                f"{garbled._rare(share, han)}; {garbled._FIX}",
            )
    if replaced:
        cause = garbled._best_reading(text) or "bytes in another encoding (GBK, Big5) read as UTF-8"
        return garbled.Verdict(
            text,
            garbled=f"looks like {cause}: {replacements:,} characters are U+FFFD, what a decoder writes "
            f"for bytes it could not read; {garbled._FIX}",
        )
    return garbled.Verdict(text)


MISREAD: list[Callable[[str], str]] = [
    lambda t: t.encode("utf-8").decode("gb18030", "replace"),
    lambda t: segment.convert(t, "s2t").encode("big5", "replace").decode("gbk", "replace"),
    lambda t: segment.convert(t, "t2s").encode("gb18030").decode("big5", "replace"),
    lambda t: segment.convert(t, "t2s").encode("gbk").decode("utf-8", "replace"),
    lambda t: t.encode("utf-8").decode("cp1252", "replace"),
]
GARBLED = [MISREAD[i % len(MISREAD)](text) for i, text in enumerate(CORPUS[:30])]


@pytest.mark.parametrize("text", CASES + GARBLED + ["\ud800 lone", "Ã" * 20, "\ufffd" * 9 + "好" * 300])
def test_garbled_check_matches_the_reference(text: str) -> None:
    assert garbled.check(text) == slow_check(text)
    assert garbled.rare_share(text)[1] == sum(
        1 for c in text if normalise.is_han(c) or 0xE000 <= ord(c) <= 0xF8FF
    )


def test_the_garbled_cases_are_caught() -> None:
    assert sum(garbled.check(text).garbled is not None for text in GARBLED) >= len(GARBLED) // 2


# -- detect_script ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", CASES + ["這個國家的經濟发展很快，这个国家", "乾隆 干燥 幹部", "䷀䷁ 臺灣"])
def test_detect_script_matches_the_reference(text: str) -> None:
    simplified = segment.to_simplified(text)
    assert script.detect_script(text, simplified) == slow_detect_script(text, simplified)
    # A text whose t2s form is itself, and a made-up form that changes every character.
    assert script.detect_script(text, text) == slow_detect_script(text, text)
    shifted = "".join(chr(ord(c) ^ 1) if 0x4E00 <= ord(c) <= 0x9FFF else c for c in text)
    assert script.detect_script(text, shifted) == slow_detect_script(text, shifted)


# -- parse_article ---------------------------------------------------------------------------

CONTROL = {chr(c) for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]}


def slow_first_problem(text: str, max_chars: int) -> tuple[str, str] | None:
    """The text checks of parse_article, in their order, character by character."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        return "invalid_utf8", "text contains bytes that are not valid UTF-8"
    if len(text) > max_chars:
        return "too_large", f"text has {len(text):,} characters; the limit is {max_chars:,}"
    if not text.strip():
        return "empty_text", "text is empty or only whitespace"
    for i, c in enumerate(text):
        if c in CONTROL:
            return "control_chars", f"text contains control character U+{ord(c):04X} at {i}"
    if not any(unicodedata.category(c)[0] in "LN" for c in text):
        return (
            "no_letters",
            "text has no letters or digits (only punctuation, symbols or emoji)",
        )
    return None


TEXTS = CASES + [
    "\x01" + "好" * 10,
    "好\x7f\ud800",
    "\ud800" + "\x01" * 50,
    "\x01" * 50,
    "\x1c\x1f ",
    "\x1c好",
    "——。！？…… ★☆",
    "👍🏻 🎉",
    "\u00a0\u3000",
    "好" * 51,
    "\x0b好",
    "\t好\n\r",
]


@pytest.mark.parametrize("text", TEXTS)
def test_parse_article_checks_text_as_the_reference(text: str) -> None:
    expected = slow_first_problem(text, 50)
    try:
        article = parse_article({"id": "a", "text": text}, max_chars=50)
    except Rejection as rejection:
        assert (rejection.code, rejection.message) == expected
    else:
        assert expected is None
        assert article.text == text


def test_code_points_of_the_last_text_are_given_again_only_for_that_object() -> None:
    first = "".join(["臺灣", "的文章"])
    same_content = "".join(["臺灣的", "文章"])
    codes = normalise.code_points(first)
    assert normalise.code_points(first) is codes
    assert normalise.code_points(same_content) is not codes
    assert normalise.code_points("另一篇").tolist() == [ord(c) for c in "另一篇"]
    assert normalise.code_points(first).tolist() == [ord(c) for c in first]
    assert not codes.flags.writeable  # shared between the stages: none may change it
