"""Stage 7: keywords, in the article's own script.

TF-IDF (jieba's IDF table) or TextRank over the tagged tokens, with the tokens
that overlap an entity mention replaced by the whole mention, so that no keyword
is a fragment of a name (卡马 where 卡马拉 stands). Words are grouped by their
Simplified form (北韓 and 北韩 are one) and reported in the form that first
appeared in the article. docs/entities.md describes the format.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from worker.stages.entities import KINDS
from worker.stages.entity_model import Span
from worker.stages.interning import one_object_per_value
from worker.stages.segment import DATA, Token, analysis_form, read_words, to_simplified

# Entities of these kinds may be keywords, in their whole form.
_KEYWORD_KINDS = frozenset(KINDS)
# POS that can never be keywords: function words, numbers, measure words,
# pronouns, punctuation, onomatopoeia, time words.
_NOT_KEYWORD_POS = ("x", "m", "mq", "q", "r", "u", "p", "c", "d", "e", "y", "o", "f", "t", "w")

NEWS_STOPWORDS = DATA / "stopwords.txt"


@dataclass(frozen=True)
class Lexicon:
    """What keyword extraction needs: IDF table and stopwords, loaded once."""

    idf: dict[str, float]
    median_idf: float
    stopwords: frozenset[str]


@cache
def lexicon(user_stopwords: str = "") -> Lexicon:
    """jieba's IDF table and stopwords, the project's news stopwords, and the user's.

    Loaded once per process. Stopwords may be written in either script; they
    are matched on the Simplified form, like everything else here.
    """
    import jieba.analyse

    tfidf = jieba.analyse.TFIDF()
    words = set(tfidf.stop_words)
    for path in [NEWS_STOPWORDS] + ([Path(user_stopwords)] if user_stopwords else []):
        words.update(read_words(path))
    return Lexicon(one_object_per_value(tfidf.idf_freq), tfidf.median_idf, frozenset(words))


def _key(word: str) -> str:
    """The form a word is counted and looked up under: Simplified, ASCII folded."""
    return analysis_form(to_simplified(word))


def _is_candidate(key: str, pos: str, stopwords: frozenset[str]) -> bool:
    if len(key) < 2 or key in stopwords or key.lower() in stopwords:
        return False
    if not _keyword_pos(pos):
        return False
    # Letters only (most words): no digit, and a letter. Else look closer.
    if key.isalpha():
        return True
    # No bare numbers, dates or amounts, in any script: 2005, ２００５, 3.5%.
    return not any(ch.isdigit() for ch in key) and any(ch.isalpha() for ch in key)


@cache
def _keyword_pos(pos: str) -> bool:
    """Whether a word so tagged may be a keyword; worked out once per tag."""
    # "eng" (a Latin word: AI, TSMC) starts like "e" (interjection) but can be a keyword.
    return pos == "eng" or not pos.startswith(_NOT_KEYWORD_POS)


def keywords(
    tokens: list[Token],
    simplified: str,
    lex: Lexicon,
    top: int = 10,
    method: str = "tfidf",
    spans: Sequence[Span] = (),
    text: str = "",
) -> list[dict[str, object]]:
    """The ``top`` keywords, best first, as ``{"w": word, "weight": w}``.

    ``spans`` are the article's entity mentions (:func:`entity_spans`): a token
    that overlaps one is replaced by the whole entity, written as in ``text``.
    """
    counts: dict[str, int] = {}  # key -> count, in the order keys first appear
    shown: dict[str, str] = {}  # key -> first form seen in the article
    order: list[str] = []
    form = analysis_form(simplified)  # once for the text, not once per token
    stopwords = lex.stopwords
    checked: dict[tuple[str, str], bool] = {}  # (key, POS) -> candidate, within this article
    # A one-character word is never a candidate (its key has its length): left out in one comprehension.
    for word, pos, start in [u for u in _units(tokens, spans, text) if len(u[0]) > 1]:
        key = form[start : start + len(word)]
        ok = checked.get((key, pos))
        if ok is None:
            ok = checked[(key, pos)] = _is_candidate(key, pos, stopwords)
        if not ok:
            continue
        if key in counts:
            counts[key] += 1
        else:
            counts[key] = 1
            shown[key] = word
        if method == "textrank":
            order.append(key)
    if not counts:
        return []
    if method == "textrank":
        scores = _textrank(order)
        # Ties go to the word that appeared first: ``counts`` is in that order.
        first = {w: i for i, w in enumerate(counts)}
        best = sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:top]
    else:
        total = sum(counts.values())
        idf, median = lex.idf, lex.median_idf
        # (-score, first appearance, key): sorted as tuples, ties to the word that appeared first.
        ranked = sorted(
            [(-(c / total * idf.get(k, median)), i, k) for i, (k, c) in enumerate(counts.items())]
        )
        best = [(k, -negative) for negative, _, k in ranked[:top]]
    return [{"w": shown[w], "weight": round(score, 4)} for w, score in best]


def _textrank(words: list[str], window: int = 5, iterations: int = 10) -> dict[str, float]:
    edges: Counter[tuple[str, str]] = Counter()
    for i, a in enumerate(words):
        for b in words[i + 1 : i + window]:
            if a != b:
                edges[(a, b)] += 1
                edges[(b, a)] += 1
    neighbours: dict[str, list[tuple[str, int]]] = {}
    for (a, b), weight in edges.items():
        neighbours.setdefault(a, []).append((b, weight))
    if not neighbours:
        return {w: 1.0 for w in words}
    strength = {a: sum(w for _, w in ns) for a, ns in neighbours.items()}
    score = {a: 1.0 / len(neighbours) for a in neighbours}
    for _ in range(iterations):
        score = {
            a: 0.15 + 0.85 * sum(score[b] * w / strength[b] for b, w in ns) for a, ns in neighbours.items()
        }
    top = max(score.values())
    return {a: s / top for a, s in score.items() if not math.isnan(s)}


def _units(tokens: list[Token], spans: Sequence[Span], text: str) -> list[Token]:
    """Tokens, with the tokens that overlap an entity mention replaced by the mention, once.

    Tokens inside a time expression are dropped with it: a date is no keyword.
    """
    mentions = sorted(spans)  # mentions never overlap: by start is also by end
    if not mentions:
        return tokens
    # Tokens and mentions are both in text order without overlaps, so the
    # tokens a mention overlaps are one run, found by bisection; the tokens
    # between runs are copied as slices.
    starts = [start for _, _, start in tokens]
    ends = [start + len(word) for word, _, start in tokens]
    units: list[Token] = []
    cursor = 0
    for m_start, m_end, kind in mentions:
        first, last = bisect_right(ends, m_start), bisect_left(starts, m_end)
        if first >= last:  # overlaps no token
            continue
        if first > cursor:
            units += tokens[cursor:first]
        if kind in _KEYWORD_KINDS:
            units.append((text[m_start:m_end], "n", m_start))
        cursor = max(cursor, last)
    units += tokens[cursor:]
    return units
