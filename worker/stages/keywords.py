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
from itertools import compress, repeat
from operator import itemgetter, mul, ne, truediv
from pathlib import Path

from worker.stages.entities import KINDS
from worker.stages.entity_model import Span
from worker.stages.interning import laid_out_by_use, one_object_per_value
from worker.stages.segment import DATA, Token, analysis_form, jieba_file, read_words

# Entities of these kinds may be keywords, in their whole form.
_KEYWORD_KINDS = frozenset(KINDS)
# POS that can never be keywords: function words, numbers, measure words,
# pronouns, punctuation, onomatopoeia, time words.
_NOT_KEYWORD_POS = ("x", "m", "mq", "q", "r", "u", "p", "c", "d", "e", "y", "o", "f", "t", "w")

NEWS_STOPWORDS = DATA / "stopwords.txt"


# The weight of a word in the IDF table that can never be a keyword (a stopword, a number).
NOT_KEYWORD = -1.0


class Weights(dict[str, float]):
    """jieba's IDF of each word, or NOT_KEYWORD for a word that fails the checks on the word
    itself (:func:`_key_allowed`): worked out once per vocabulary entry at load, so an
    article needs one lookup per distinct word for both.

    A word the table does not know weighs the median IDF if it passes the checks,
    worked out when it is looked up (and not kept: the table does not grow).
    """

    def __init__(self, idf: dict[str, float], median: float, stopwords: frozenset[str]) -> None:
        super().__init__(idf)
        self.median = median
        self.stopwords = stopwords

    def __missing__(self, word: str) -> float:
        return self.median if _key_allowed(word, self.stopwords) else NOT_KEYWORD


@dataclass(frozen=True)
class Lexicon:
    """What keyword extraction needs: IDF table and stopwords, loaded once."""

    idf: Weights

    @property
    def median_idf(self) -> float:
        return self.idf.median

    @property
    def stopwords(self) -> frozenset[str]:
        return self.idf.stopwords


# jieba's keyword stopwords (jieba.analyse.tfidf.KeywordExtractor.STOP_WORDS), the
# stopwords jieba's own TF-IDF starts from. Importing jieba.analyse to read them
# would load jieba's POS tagger and a second IDF table at start-up (about 0.7 s and
# 110 MB), which the jieba-rs engine never uses; tests/test_stage_references.py
# holds this copy to jieba's.
JIEBA_STOPWORDS = frozenset(
    "the of is and to in that we for an are by be as on with can if from which you it "
    "this then at have all not one has or".split()
)


def read_idf(path: Path) -> tuple[dict[str, float], float]:
    """An IDF table as jieba.analyse reads it: ``word idf`` lines, and the median IDF."""
    idf: dict[str, float] = {}
    for line in path.read_text("utf-8").splitlines():
        word, weight = line.strip().split(" ")
        idf[word] = float(weight)
    return idf, sorted(idf.values())[len(idf) // 2]


@cache
def lexicon(user_stopwords: str = "") -> Lexicon:
    """jieba's IDF table and stopwords, the project's news stopwords, and the user's.

    Loaded once per process. Stopwords may be written in either script; they
    are matched on the Simplified form, like everything else here.
    """
    idf, median = read_idf(jieba_file("analyse/idf.txt"))
    words = set(JIEBA_STOPWORDS)
    for path in [NEWS_STOPWORDS] + ([Path(user_stopwords)] if user_stopwords else []):
        words.update(read_words(path))
    stopwords = frozenset(words)
    # Only these can fail the checks (a word of letters alone, no stopword in either
    # case, passes): C-level tests pick them out of the 270,000 words first.
    maybe = [w for w in idf if w in stopwords or not w.isalpha() or w.lower() in stopwords]
    for word in maybe:
        if not _key_allowed(word, stopwords):
            idf[word] = NOT_KEYWORD
    return Lexicon(Weights(one_object_per_value(idf), median, stopwords))


def lay_out(lex: Lexicon) -> None:
    """Lay the IDF table out by use, in place: common words (low IDF) first (interning.laid_out_by_use).

    Looking up an article's words in the table as jieba loads it misses the
    caches at most lookups; laid out, the keyword stage takes about a third
    less time inside the pipeline. It takes about 0.25 s, once: a worker does
    it before it forks (pipeline.Analyser.warm).
    """
    laid = laid_out_by_use(lex.idf, rank=lex.idf.values())
    lex.idf.clear()
    lex.idf.update(laid)


def _key_allowed(key: str, stopwords: frozenset[str]) -> bool:
    """The checks on the word itself: no stopword, no bare number, date or amount, in any script."""
    if key in stopwords or key.lower() in stopwords:
        return False
    # Letters only (most words): no digit, and a letter. Else look closer: 2005, ２００５, 3.5%.
    return key.isalpha() or (not any(ch.isdigit() for ch in key) and any(ch.isalpha() for ch in key))


class _PosTable(dict[str, bool]):
    """POS tag -> whether a word so tagged may be a keyword; worked out once per tag, read as a dict."""

    def __missing__(self, pos: str) -> bool:
        # "eng" (a Latin word: AI, TSMC) starts like "e" (interjection) but can be a keyword.
        self[pos] = allowed = pos == "eng" or not pos.startswith(_NOT_KEYWORD_POS)
        return allowed


_KEYWORD_POS = _PosTable()


def keywords(
    tokens: list[Token],
    simplified: str,
    lex: Lexicon,
    top: int = 10,
    method: str = "tfidf",
    spans: Sequence[Span] = (),
    *,
    text: str,
) -> list[dict[str, object]]:
    """The ``top`` keywords, best first, as ``{"w": word, "weight": w}``.

    ``tokens`` are :func:`worker.stages.segment.tag`'s of ``text``, whose
    offset-aligned Simplified form is ``simplified``; each keyword is written as
    in ``text``. ``spans`` are the article's entity mentions (:func:`entity_spans`): a token
    that overlaps one is replaced by the whole entity, written as in ``text``.
    """
    form = analysis_form(simplified)  # once for the text, not once per token
    pos_ok = _KEYWORD_POS
    units = _units(tokens, spans, text) if spans else tokens
    # The tokens whose tag and length allow them (a one-character word never
    # does: its key has its length), in text order, and their keys. Where the
    # form is the text itself (Simplified text without full-width letters),
    # each word is its own key and no slice is needed.
    as_written = form == text
    allowed = [unit for unit in units if len(unit[0]) > 1 and pos_ok[unit[1]]]
    if as_written:
        keys = [word for word, _, _ in allowed]
    else:
        keys = [form[start : start + len(word)] for word, _, start in allowed]
    # key -> count, in the order keys first appear: ties go to the word that appeared first.
    counts = Counter(keys)
    distinct = list(counts)
    # The checks on the word itself come with its weight (Weights): one C-level pass.
    weights = list(map(lex.idf.__getitem__, distinct))
    if method == "textrank":
        if NOT_KEYWORD in weights:
            distinct = list(compress(distinct, map(ne, weights, repeat(NOT_KEYWORD))))
        if not distinct:
            return []
        allowed_keys = set(distinct)
        scores = _textrank([key for key in keys if key in allowed_keys])
        first = {w: i for i, w in enumerate(distinct)}
        best = sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:top]
    else:
        counted = list(counts.values())
        # The words that may be keywords: the others weigh NOT_KEYWORD, which is negative.
        total = sum(compress(counted, map(ne, weights, repeat(NOT_KEYWORD))))
        # count / total * IDF, each as one C-level pass over the keys
        weighted = list(map(mul, map(truediv, counted, repeat(total or 1)), weights))
        # Best first; a stable sort keeps equal scores in first-appearance order, even reversed.
        # Words that may not be keywords score below every word that may, and are cut.
        ranked = sorted(range(len(distinct)), key=weighted.__getitem__, reverse=True)[:top]
        best = [(distinct[i], weighted[i]) for i in ranked if weights[i] != NOT_KEYWORD]
    if as_written:
        return [{"w": key, "weight": round(score, 4)} for key, score in best]
    # Each keyword as first written in the article: at its key's first position.
    shown = []
    for key, score in best:
        _, _, start = allowed[keys.index(key)]
        shown.append({"w": text[start : start + len(key)], "weight": round(score, 4)})
    return shown


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
    starts = list(map(itemgetter(2), tokens))
    units: list[Token] = []
    cursor = 0
    for m_start, m_end, kind in mentions:
        # The first token that ends after the mention starts: the last one that
        # starts at or before it, if it reaches past it, else the one after.
        first = bisect_right(starts, m_start) - 1
        if first < 0 or starts[first] + len(tokens[first][0]) <= m_start:
            first += 1
        last = bisect_left(starts, m_end)
        if first >= last:  # overlaps no token
            continue
        if first > cursor:
            units += tokens[cursor:first]
        if kind in _KEYWORD_KINDS:
            units.append((text[m_start:m_end], "n", m_start))
        cursor = max(cursor, last)
    units += tokens[cursor:]
    return units
