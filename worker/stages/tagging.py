"""Stage 4: keywords and named entities from the POS-tagged tokens.

Both work from the one segmentation pass. Words are grouped by their
Simplified form (so 北韓 and 北韩 count together) and reported in the form
that first appeared in the article.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from worker.stages.segment import DATA, Token, analysis_form, to_simplified
from worker.stages.shared import one_object_per_value

ENTITY_KINDS = {
    "nr": "person",
    "nrt": "person",
    "nrfg": "person",
    "ns": "place",
    "nt": "organization",
    "nz": "other",
}
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
        words.update(read_stopwords(path))
    return Lexicon(one_object_per_value(tfidf.idf_freq), tfidf.median_idf, frozenset(words))


def read_stopwords(path: Path) -> set[str]:
    """One word per line, ``#`` starts a comment line; returned in Simplified form."""
    return {
        _key(line.strip())
        for line in path.read_text(encoding="utf-8-sig").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    }


def _key(word: str) -> str:
    """The form a word is counted and looked up under: Simplified, ASCII folded."""
    return analysis_form(to_simplified(word))


def _is_candidate(key: str, pos: str, stopwords: frozenset[str]) -> bool:
    if len(key) < 2 or key in stopwords or key.lower() in stopwords:
        return False
    # "eng" (a Latin word: AI, TSMC) starts like "e" (interjection) but can be a keyword.
    if pos != "eng" and pos.startswith(_NOT_KEYWORD_POS):
        return False
    # No bare numbers, dates or amounts, in any script: 2005, ２００５, 3.5%.
    return not any(ch.isdigit() for ch in key) and any(ch.isalpha() for ch in key)


def keywords(
    tokens: list[Token], simplified: str, lex: Lexicon, top: int = 10, method: str = "tfidf"
) -> list[dict[str, object]]:
    """The ``top`` keywords, best first, as ``{"w": word, "weight": w}``."""
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}  # key -> first form seen in the article
    order: list[str] = []
    for word, pos, start in tokens:
        key = analysis_form(simplified[start : start + len(word)])
        if not _is_candidate(key, pos, lex.stopwords):
            continue
        counts[key] += 1
        shown.setdefault(key, word)
        order.append(key)
    if not counts:
        return []
    if method == "textrank":
        scores = _textrank(order)
    else:
        total = sum(counts.values())
        scores = {w: c / total * lex.idf.get(w, lex.median_idf) for w, c in counts.items()}
    first = {w: i for i, w in reversed(list(enumerate(order)))}
    best = sorted(scores.items(), key=lambda kv: (-kv[1], first[kv[0]]))[:top]
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


def entities(tokens: list[Token], simplified: str) -> dict[str, list[dict[str, object]]]:
    """Named entities by kind, most frequent first, as ``{"w": word, "count": n}``."""
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in dict.fromkeys(ENTITY_KINDS.values())}
    shown: dict[str, str] = {}
    for word, pos, start in tokens:
        kind = ENTITY_KINDS.get(pos)
        if kind is None or len(word) < 2:
            continue
        key = analysis_form(simplified[start : start + len(word)])
        counts[kind][key] += 1
        shown.setdefault(key, word)
    return {
        kind: [{"w": shown[w], "count": n} for w, n in counter.most_common()]
        for kind, counter in counts.items()
    }
