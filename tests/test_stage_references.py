"""The fast text stages against slow, obvious implementations of the same rules.

Each rewritten stage (array operations, comprehensions, memos) must give
exactly what a plain per-character or per-token loop gives, on input chosen
to hit the edges: Traditional and Simplified, full-width letters, surrogates
and characters beyond the BMP, letters whose NFKC form is longer, repeats,
entity mentions that cover several tokens, keywords that tie.
"""

from __future__ import annotations

import dataclasses
import math
import random
import unicodedata
from collections import Counter

import numpy as np
import pytest

from tests.support import TEST_ARTICLES, article_pieces
from worker.stages import entities, garbled, keywords, normalise, script, segment
from worker.stages import fingerprint as fp

pytestmark = pytest.mark.unit

TRICKY = [
    "",
    "a",
    "ab",
    "臺灣",
    "台湾的经济在二〇二四年增长了３．５％，ＩＢＭ與臺積電的ＡＩ晶片。",
    "北韓與北韩：同一個國家，兩種寫法。着重於穿着。",
    "ﬁle ﬂow Ⅻ ㈱ ½ ｶﾀｶﾅ 𠀀𠀁𪚥 \U0002a6a5 é e\u0301 ǅ",
    "English only, no Han at all: 2005-10-01, https://example.com/a.b?c=d.",
    "重复的段落重复的段落重复的段落，这是一个很长的句子需要超过四十个字母才行吧对吧。" * 3,
    "第20\n0個\n人在這裡。\n\n標題\n這是第一行文字很長很長很長很長很長很長\n第二行也很長很長很長很長很長很長很長很",
    "\u3000\u3000全角空格　和\t製表符\r\n換行",
]


# Pieces of real articles, half of them converted to Simplified: varied, real text.
CASES = TRICKY + article_pieces(16, 40, 900, segment.to_simplified)


# -- detect_script ---------------------------------------------------------------------------


def slow_detect_script(text: str, simplified: str) -> str:
    simp_only = script.simplified_only()
    han = sum(normalise.is_han(c) for c in text)
    letters = sum(normalise.is_letter(c) for c in text)
    trad = sum(1 for a, b in zip(text, simplified, strict=True) if a != b and normalise.is_han(a))
    simp = sum(1 for a, b in zip(text, simplified, strict=True) if a == b and a in simp_only)
    if not han or han < script.MIN_HAN_SHARE * letters:
        return "other"
    specific = trad + simp
    if specific and min(trad, simp) >= script.MIXED_SHARE * specific:
        return "mixed"
    return "hant" if trad > simp else "hans"


@pytest.mark.parametrize("text", CASES)
def test_detect_script_matches_the_reference(text: str) -> None:
    simplified = segment.to_simplified(text)
    assert script.detect_script(text, simplified) == slow_detect_script(text, simplified)


def test_detect_script_mixed_and_both_ways() -> None:
    # Hand-made mixtures, so each branch is reached.
    for text in ["這個國家的經濟发展很快，这个国家", "这是简体中文的句子", "這是繁體中文的句子", "abc def"]:
        simplified = segment.to_simplified(text)
        assert script.detect_script(text, simplified) == slow_detect_script(text, simplified)


# -- drop_repeats ----------------------------------------------------------------------------


def slow_letter_key(text: str) -> tuple[str | None, list[int]]:
    """The letters of ``text`` folded one by one, and where each is; None if a fold is not one character."""
    letters, where = [], []
    for i, ch in enumerate(text):
        if unicodedata.category(ch)[0] in "LN":
            letters.append(unicodedata.normalize("NFKC", ch).casefold())
            where.append(i)
    if any(len(c) != 1 for c in letters):
        return None, where
    return "".join(letters), where


def test_letter_fold_matches_per_character_fold() -> None:
    for text in CASES + ["ΣΑΣ ﬃ ǅ İ ß 가 가 Ⅻ ㈱ Straße", "ＡＢＣａｂｃ１２３", "각 한국어"]:
        key, where = slow_letter_key(text)
        found = normalise.NOT_LETTERS.sub("", text)
        assert found == "".join(ch for ch in text if normalise.is_letter(ch))
        assert where == [m.start() for m in normalise._LETTER.finditer(text)]
        assert normalise._letter_key(found) == key


def slow_rare_share(text: str) -> tuple[float, int]:
    han = [c for c in text if normalise.is_han(c)]
    private = sum(1 for c in text if 0xE000 <= ord(c) <= 0xF8FF)
    total = len(han) + private
    if not total:
        return 0.0, 0
    common = sum(1 for c in han if c in garbled.common_characters())
    return (total - common) / total, total


@pytest.mark.parametrize("text", CASES + ["\ue000\ue123鍩虹鏂囧瓧", "Ã¤Ã¶Ã¼ æ—¥æœ¬", "\ud800 lone"])
def test_rare_share_matches_the_reference(text: str) -> None:
    assert garbled.rare_share(text) == slow_rare_share(text)


def slow_drop_repeats(text: str, min_repeat: int = normalise.MIN_REPEAT) -> tuple[str, int]:
    """The old drop_repeats' first half (per-character loop) feeding the unchanged second half."""
    key, _where = slow_letter_key(text)
    if key is None or len(key) < 2 * min_repeat:
        return text, 0
    return normalise.drop_repeats(text, min_repeat)  # the gram search is unchanged past the fast exits


@pytest.mark.parametrize("text", CASES)
def test_drop_repeats_fast_exits_change_nothing(text: str) -> None:
    # The fast exit (no 12-gram repeats) must only be taken where the search finds nothing.
    out, removed = normalise.drop_repeats(text)
    key, _ = slow_letter_key(text)
    if key is not None and len(key) >= 2 * normalise.MIN_REPEAT:
        grams = [key[i : i + normalise._GRAM] for i in range(len(key) - normalise._GRAM + 1)]
        if len(set(grams)) == len(grams):
            assert (out, removed) == (text, 0)
    assert (out, removed) == slow_drop_repeats(text)


def test_drop_repeats_still_finds_the_pasted_story() -> None:
    story = (TEST_ARTICLES / "seed_story.txt").read_text(encoding="utf-8")
    # Past the fast exits, the gram search runs as before: seven copies, six removed.
    assert normalise.drop_repeats(story * 7)[1] == 6
    assert normalise.drop_repeats(story) == (story, 0)


# -- MinHash --------------------------------------------------------------------------------


def test_minhash_estimates_jaccard() -> None:
    # Over many pairs the share of equal values tracks the true 3-gram Jaccard
    # within the sketch's standard error (about 0.044 at 0.5).
    rng = random.Random(3)
    base = fp.letters("".join(article_pieces(5, 30, 900, segment.to_simplified)))[:3000]
    errors = []
    for _ in range(60):
        a = rng.randrange(0, 1500)
        x = base[a : a + 600]
        edited = list(x)
        for _ in range(rng.randint(0, 120)):
            edited[rng.randrange(len(edited))] = rng.choice(base)
        y = "".join(edited)
        sa = np.frombuffer(fp.minhash(x), "<u4")
        sb = np.frombuffer(fp.minhash(y), "<u4")
        errors.append(float((sa == sb).mean()) - fp.jaccard(x, y))
    assert abs(sum(errors) / len(errors)) < 0.02  # no bias
    assert math.sqrt(sum(e * e for e in errors) / len(errors)) < 0.07


# -- tag offsets -----------------------------------------------------------------------------


def slow_tag(text: str, simplified: str, eng: segment.Engine) -> list[segment.Token]:
    tokens: list[segment.Token] = []
    eng.begin()
    form = segment.analysis_form(simplified)
    for start, end, protected in segment._spans(form):
        if protected:
            tokens.append((text[start:end], "eng" if form[start].isalpha() else "m", start))
            continue
        offset = start
        for word, pos in eng.tag(form[start:end]):
            if not word.isspace():
                tokens.append((text[offset : offset + len(word)], pos, offset))
            offset += len(word)
    return tokens


@pytest.mark.parametrize("name", [e for e in segment.ENGINES if segment.has_engine(e)])
def test_tag_matches_the_reference(name: str) -> None:
    eng = segment.engine(name)
    for text in CASES:
        simplified = segment.to_simplified(text)
        tokens = segment.tag(text, simplified, eng)
        assert tokens == slow_tag(text, simplified, eng)
        assert all(text[start : start + len(w)] == w for w, _pos, start in tokens)


def test_the_white_space_check_finds_exactly_what_isspace_drops() -> None:
    # tag() takes its fast path (no per-word isspace) only where this search finds nothing.
    every = "".join(map(chr, range(0x110000)))
    assert [m.group() for m in segment._SPACE.finditer(every)] == [c for c in every if c.isspace()]


def test_protected_runs_found_as_a_whole_text_search_finds_them() -> None:
    extra = [
        "見 https://a.b/c. 和 user.name+tag@mail.example.org，COVID-19、U.S.與3.5%及1,000,000和12:30",
        "x-1.2.3-y z_1 a@b @c.d e@f.g. ftp://h/i# 2024/10/01 ３．５％",
        "中文https://例子.com/路径 abc.def.ghi 1.2.3.4 e.g. i.e.",
        # one separator each: a text without any is skipped unread
        "他說O'Brien來了",
        "變數snake_case",
        "COVID-19疫情",
        "下午3:30開會",
        "共1,000人",
        "比分3/4",
        "中文3.5",
        "寄a@b",
        "沒有分隔符ABC 123 x+y",
    ]
    for text in CASES + extra:
        form = segment.analysis_form(segment.to_simplified(text))
        fast = [(m.start(), m.end()) for m in segment._protected(form)]
        assert fast == [(m.start(), m.end()) for m in segment._PROTECTED.finditer(form)]


def test_analysis_form_folds_as_the_table_does() -> None:
    for text in CASES + ["ＡＢＣ１２３＋＃＆．＿％－", "no full width"]:
        assert segment.analysis_form(text) == text.translate(segment._FOLD)


# -- keywords and entity spans ---------------------------------------------------------------


def slow_units(tokens: list[segment.Token], spans: list[entities.Span], text: str) -> list[segment.Token]:
    units: list[segment.Token] = []
    emitted: set[int] = set()
    mentions = sorted(spans)
    for word, pos, start in tokens:
        end = start + len(word)
        hit = [j for j, (a, b, _k) in enumerate(mentions) if a < end and b > start]
        for j in hit:
            if j not in emitted:
                emitted.add(j)
                a, b, kind = mentions[j]
                if kind in keywords._KEYWORD_KINDS:
                    units.append((text[a:b], "n", a))
        if not hit:
            units.append((word, pos, start))
    return units


def slow_keywords(
    tokens: list[segment.Token],
    simplified: str,
    lex: keywords.Lexicon,
    top: int,
    method: str,
    spans: list[entities.Span],
    text: str,
) -> list[dict[str, object]]:
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    order: list[str] = []
    for word, pos, start in slow_units(tokens, spans, text):
        key = segment.analysis_form(simplified[start : start + len(word)])
        if not slow_is_candidate(key, pos, lex.stopwords):
            continue
        counts[key] += 1
        shown.setdefault(key, word)
        order.append(key)
    if not counts:
        return []
    if method == "textrank":
        scores = keywords._textrank(order)
    else:
        total = sum(counts.values())
        scores = {w: c / total * lex.idf.get(w, lex.median_idf) for w, c in counts.items()}
    first = {w: i for i, w in reversed(list(enumerate(order)))}
    best = sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:top]
    return [{"w": shown[w], "weight": round(score, 4)} for w, score in best]


def slow_pos_spans(
    tokens: list[segment.Token], simplified: str, elex: entities.EntityLexicon
) -> list[entities.Span]:
    spans = []
    for word, pos, start in tokens:
        kind = entities.ENTITY_KINDS.get(pos)
        if kind is None or len(word) < 2:
            continue
        if segment.analysis_form(simplified[start : start + len(word)]) in elex.deny:
            continue
        spans.append((start, start + len(word), kind))
    return spans


@pytest.mark.parametrize("method", ["tfidf", "textrank"])
def test_keywords_and_spans_match_the_reference(method: str) -> None:
    eng, lex, elex = segment.engine("jieba"), keywords.lexicon(), entities.entity_lexicon()
    rng = random.Random(1)
    for text in CASES:
        simplified = segment.to_simplified(text)
        tokens = segment.tag(text, simplified, eng)
        spans = entities.pos_spans(tokens, simplified, elex)
        assert spans == slow_pos_spans(tokens, simplified, elex)
        # Made-up mentions too: ones that cover several tokens, start or end mid-token, or touch.
        made: list[entities.Span] = []
        cursor = 0
        while cursor < len(text) - 2 and len(made) < 8:
            a = cursor + rng.randint(0, 30)
            b = a + rng.randint(1, 6)
            if b > len(text):
                break
            made.append((a, b, rng.choice(["person", "place", "time", "organization"])))
            cursor = b + rng.choice([0, 0, 3])
        for mentions in (spans, made, []):
            assert keywords._units(tokens, mentions, text) == slow_units(tokens, mentions, text)
            got = keywords.keywords(tokens, simplified, lex, 10, method, mentions, text=text)
            assert got == slow_keywords(tokens, simplified, lex, 10, method, mentions, text)


@pytest.mark.parametrize("engine", segment.ENGINES)
def test_pos_mentions_change_no_keyword(engine: str) -> None:
    """pipeline.finish gives keywords no POS mentions: each is one token whose tag allows it already."""
    if not segment.has_engine(engine):
        pytest.skip(f"{engine} is not installed")
    eng, lex, elex = segment.engine(engine), keywords.lexicon(), entities.entity_lexicon()
    mentioned = 0
    for text in CASES:
        simplified = segment.to_simplified(text)
        tokens = segment.tag(text, simplified, eng)
        spans = entities.pos_spans(tokens, simplified, elex)
        mentioned += len(spans)
        # and with half of them denied, as a deny list would
        form = segment.analysis_form(simplified)
        denied = dataclasses.replace(elex, deny=frozenset(form[a:b] for a, b, _ in spans[::2]))
        for found in (spans, entities.pos_spans(tokens, simplified, denied)):
            for method in ("tfidf", "textrank"):
                alone = keywords.keywords(tokens, simplified, lex, 10, method, [], text=text)
                assert keywords.keywords(tokens, simplified, lex, 10, method, found, text=text) == alone
    assert mentioned > 100


def test_keyword_ties_go_to_the_first_seen() -> None:
    lex = keywords.lexicon()
    text = "甲乙丙丁 戊己庚辛 甲乙丙丁 戊己庚辛"
    tokens = [("甲乙丙丁", "n", 0), ("戊己庚辛", "n", 5), ("甲乙丙丁", "n", 10), ("戊己庚辛", "n", 15)]
    got = keywords.keywords(tokens, text, lex, 10, "tfidf", [], text=text)
    assert [k["w"] for k in got] == ["甲乙丙丁", "戊己庚辛"]
    assert got == slow_keywords(tokens, text, lex, 10, "tfidf", [], text)


def test_words_that_may_not_be_keywords_never_fill_the_top() -> None:
    """Stopwords and numbers, tagged as nouns, among fewer allowed words than asked for, known or not."""
    lex = keywords.lexicon()
    words = ["我们", "经济", "2005", "这个", "２００５年", "经济", "甲乙丙丁", "我们", "3.5%", "the", "增长"]
    text, tokens = "", []
    for word in words:
        tokens.append((word, "n", len(text)))
        text += word
    for method in ("tfidf", "textrank"):
        for top in (1, 2, 3, 10):
            got = keywords.keywords(tokens, text, lex, top, method, [], text=text)
            assert got == slow_keywords(tokens, text, lex, top, method, [], text)
    assert [k["w"] for k in keywords.keywords(tokens, text, lex, 10, "tfidf", [], text=text)] == [
        "甲乙丙丁",
        "经济",
        "增长",
    ]
    only_stopwords = [("我们", "n", 0), ("2005", "n", 2)]
    assert keywords.keywords(only_stopwords, "我们2005", lex, 10, "tfidf", [], text="我们2005") == []


def slow_is_candidate(key: str, pos: str, stopwords: frozenset[str]) -> bool:
    if len(key) < 2 or key in stopwords or key.lower() in stopwords:
        return False
    if pos != "eng" and pos.startswith(keywords._NOT_KEYWORD_POS):
        return False
    return not any(ch.isdigit() for ch in key) and any(ch.isalpha() for ch in key)


def test_candidate_check_matches_the_reference() -> None:
    lex = keywords.lexicon()
    words = [
        "中国",
        "2005",
        "２００５年",
        "3.5%",
        "AI",
        "Ａｉ",
        "我们",
        "的话",
        "x",
        "Ⅻ世纪",
        "二〇二四",
        "COVID-19",
        "ΑΒ",
    ]
    words += sorted(lex.stopwords)[:50]
    for key in words:
        for pos in ["n", "ns", "eng", "e", "m", "mq", "x", "r", "nr", "vn", "t", "tg"]:
            # As keywords() decides: the length, the tag's table, then the checks on the word.
            fast = len(key) > 1 and keywords._KEYWORD_POS[pos] and keywords._key_allowed(key, lex.stopwords)
            assert fast == slow_is_candidate(key, pos, lex.stopwords)


def test_idf_table_marks_exactly_the_words_that_can_never_be_keywords() -> None:
    # The checks on the word itself are worked out once per vocabulary entry at
    # load; every entry must say what the per-word check says, for every entry.
    lex = keywords.lexicon()
    marked = {w for w, weight in lex.idf.items() if weight == keywords.NOT_KEYWORD}
    sw = lex.stopwords

    def never(w: str) -> bool:
        return (
            w in sw or w.lower() in sw or any(ch.isdigit() for ch in w) or not any(ch.isalpha() for ch in w)
        )

    assert marked == {w for w in lex.idf if never(w)}
    assert marked and len(marked) < len(lex.idf) / 100


def test_the_idf_table_and_stopwords_are_jiebas_own() -> None:
    # keywords reads jieba's files itself, so that a process never imports jieba.analyse.
    import jieba.analyse

    tfidf = jieba.analyse.TFIDF()
    idf, median = keywords.read_idf(segment.jieba_file("analyse/idf.txt"))
    assert idf == tfidf.idf_freq and list(idf) == list(tfidf.idf_freq)
    assert median == tfidf.median_idf
    assert keywords.JIEBA_STOPWORDS == tfidf.stop_words
    lex = keywords.lexicon()
    assert lex.median_idf == median and keywords.JIEBA_STOPWORDS <= lex.stopwords
    assert set(lex.idf) == set(idf)
    assert all(lex.idf[w] in (weight, keywords.NOT_KEYWORD) for w, weight in idf.items())


def test_a_table_laid_out_by_use_holds_the_same_items_in_rank_order() -> None:
    from worker.stages.interning import laid_out_by_use

    table = {"b": 2.0, "a": 1.0, "c": 2.0, "d": 0.5, "乙": 3.0}
    laid = laid_out_by_use(table, rank=table.values())
    assert laid == table
    assert list(laid) == ["d", "a", "b", "c", "乙"]  # ties keep the table's order
    assert all(laid[w] is table[w] for w in table)  # the same value objects
    lex = keywords.lexicon()
    before = dict(lex.idf)
    keywords.lay_out(lex)  # in place, as a worker does before it forks
    assert lex.idf == before
    weights = [w for w in lex.idf.values() if w != keywords.NOT_KEYWORD]
    assert weights == sorted(weights)  # common words (low IDF) first
