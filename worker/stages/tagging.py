"""Stage 4: keywords and named entities, in the article's own script.

Entities come from one of two recognisers (``NEWSFLOW_ENTITIES``):

- ``model`` (default): the spans of the LAC model (:mod:`worker.stages.entities`),
  reconciled with what the dictionaries know (:func:`entity_spans`);
- ``pos``: jieba's POS tags (nr/nrt/nrfg person, ns place, nt organisation, nz
  other), the cheap path for bulk re-processing.

Tokens are jieba's either way and never change. Where a token boundary and an
entity span disagree, the entity span wins for entities, and keywords take the
entity in its whole form instead of the tokens it overlaps, so that no keyword
is a fragment of a name (卡马 where 卡马拉 stands).

Words and entities are grouped by their Simplified form (so 北韓 and 北韩 are
one) and reported in the form that first appeared in the article; an entity's
mentions written another way are listed under ``variants``. docs/entities.md
describes the format and the rules.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from worker.config import ConfigError
from worker.stages.entities import Span
from worker.stages.segment import DATA, Token, analysis_form, dictionary_paths, read_dictionary, to_simplified
from worker.stages.shared import one_object_per_value

ENTITY_KINDS = {
    "nr": "person",
    "nrt": "person",
    "nrfg": "person",
    "ns": "place",
    "nt": "organization",
    "nz": "other",
}
# The kinds in the result, in order; ``time`` only where the model gives it.
KINDS = ("person", "place", "organization", "other")
MODEL_KINDS = KINDS + ("time",)
# Entities of these kinds may be keywords, in their whole form.
_KEYWORD_KINDS = frozenset(KINDS)
# POS that can never be keywords: function words, numbers, measure words,
# pronouns, punctuation, onomatopoeia, time words.
_NOT_KEYWORD_POS = ("x", "m", "mq", "q", "r", "u", "p", "c", "d", "e", "y", "o", "f", "t", "w")


NEWS_STOPWORDS = DATA / "stopwords.txt"
TITLES = DATA / "titles.txt"
ENTITY_DICT = DATA / "entities.txt"
PLACE_ABBREVIATIONS = DATA / "place_abbreviations.txt"


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
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}  # key -> first form seen in the article
    order: list[str] = []
    for word, pos, start in _units(tokens, spans, text):
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


def _units(tokens: list[Token], spans: Sequence[Span], text: str) -> list[Token]:
    """Tokens, with the tokens that overlap an entity mention replaced by the mention, once.

    Tokens inside a time expression are dropped with it: a date is no keyword.
    """
    mentions = sorted(spans)  # mentions never overlap: by start is also by end
    if not mentions:
        return tokens
    units: list[Token] = []
    emitted: set[int] = set()
    k = 0
    for word, pos, start in tokens:
        end = start + len(word)
        while k < len(mentions) and mentions[k][1] <= start:
            k += 1
        j = k
        while j < len(mentions) and mentions[j][0] < end:
            if j not in emitted:
                emitted.add(j)
                m_start, m_end, kind = mentions[j]
                if kind in _KEYWORD_KINDS:
                    units.append((text[m_start:m_end], "n", m_start))
            j += 1
        if j == k:
            units.append((word, pos, start))
    return units


@dataclass(frozen=True)
class EntityLexicon:
    """What reconciliation needs: typed dictionary entries and the deny list, loaded once."""

    typed: dict[str, str]  # analysis form -> kind, from the project's and the user's dictionaries
    pattern: re.Pattern[str] | None  # finds typed entries, longest first
    deny: frozenset[str]  # analysis forms that are never entities
    titles: tuple[str, ...]  # titles that follow a name (worker/data/titles.txt), longest first
    abbreviations: frozenset[str]  # one-character places (worker/data/place_abbreviations.txt)


@cache
def entity_lexicon(user_dict: str = "", deny: str = "") -> EntityLexicon:
    """Typed entries (nr, nrt, ns, nt, nz) of the dictionaries, and the deny list.

    The dictionaries are read in order: the project's segmentation dictionary,
    its entity dictionary (worker/data/entities.txt, which the engines never
    see), then the user's (``NEWSFLOW_USER_DICT``); a later entry replaces an
    earlier one, as in the engines. Deny-list words may be in either script.
    """
    typed: dict[str, str] = {}
    project, *user = dictionary_paths(user_dict)
    for path in [project, ENTITY_DICT, *user]:
        for word, _freq, tag in read_dictionary(path):
            kind = ENTITY_KINDS.get(tag or "")
            if kind is not None:
                typed[word] = kind
            else:
                typed.pop(word, None)
    words = sorted(typed, key=len, reverse=True)
    pattern = re.compile("|".join(map(_whole, words))) if words else None
    if deny and not Path(deny).is_file():
        raise ConfigError(f"NEWSFLOW_ENTITY_DENY={deny}: no such file; give a file of words, one per line")
    denied = frozenset(read_stopwords(Path(deny))) if deny else frozenset()
    titles = tuple(sorted(read_stopwords(TITLES), key=len, reverse=True))
    return EntityLexicon(typed, pattern, denied, titles, frozenset(read_stopwords(PLACE_ABBREVIATIONS)))


def _whole(word: str) -> str:
    """A pattern for ``word`` that does not match inside a longer Latin word (Google in Googlers)."""
    edge = "[A-Za-z0-9]"
    return (
        (f"(?<!{edge})" if re.match(edge, word) else "")
        + re.escape(word)
        + (f"(?!{edge})" if re.match(edge, word[-1]) else "")
    )


def pos_spans(tokens: list[Token], simplified: str, elex: EntityLexicon) -> list[Span]:
    """Entity mentions from jieba's POS tags (``NEWSFLOW_ENTITIES=pos``), less the deny list."""
    spans: list[Span] = []
    for word, pos, start in tokens:
        kind = ENTITY_KINDS.get(pos)
        if kind is None or len(word) < 2:
            continue
        if analysis_form(simplified[start : start + len(word)]) in elex.deny:
            continue
        spans.append((start, start + len(word), kind))
    return spans


def entity_spans(
    model: Sequence[Span],
    simplified: str,
    elex: EntityLexicon,
    cut: Callable[[str], list[str]] | None = None,
) -> list[Span]:
    """Every entity mention in the article, from the model's spans and the dictionaries.

    ``cut`` is the engine's segmentation, used only on a span alone, so that
    entities never depend on how an engine reads the context around them.

    In this order (docs/entities.md, "Reconciliation"):

    1. Spans are cut to the name: a title after a person's name is not part of
       it (王部长, 威尔逊州长); a person span of several names run together
       (a list of names without separators) is split where jieba reads names;
       and a place made only of one-character country and region names is one
       place per character (中美, 台港澳).
    2. A typed dictionary entry wins over the model: its kind replaces the
       model's, and model spans that cross it give way, unless the model's span
       holds it whole in a longer name (北京 inside 北京大学 stays one organisation).
    3. Denied words, one-character persons not followed by a title (a bare
       surname is more often a word), and spans without a letter are dropped.
    4. One entity, one kind per article: a form tagged with several kinds takes
       the kind of most of its mentions.
    5. A person or place recognised once is an entity at each of its mentions, where it
       is not part of another entity: the model may miss a name in a sentence
       that gives it little context, or cut it in two (拉夫 羅夫 for 拉夫羅夫);
       the pieces of a longer name give way to it.
    """
    form = analysis_form(simplified)
    spans: list[Span] = []
    titled: set[int] = set()  # starts of persons whose title was cut off
    for start, end, kind in model:
        if kind == "person":
            key = form[start:end]
            for title in elex.titles:
                if key.endswith(title) and len(key) > len(title):
                    end -= len(title)
                    titled.add(start)
                    break
            names = _run_together(cut, form, start, end) if cut is not None else None
            if names:
                spans.extend(names)
                continue
        elif kind == "place" and end - start > 1 and all(ch in elex.abbreviations for ch in form[start:end]):
            spans.extend((i, i + 1, kind) for i in range(start, end))
            continue
        spans.append((start, end, kind))
    if elex.pattern is not None:
        for match in elex.pattern.finditer(form):
            start, end = match.span()
            if any(s <= start and end <= e and e - s > end - start for s, e, _ in spans):
                continue
            spans = [span for span in spans if span[1] <= start or span[0] >= end]
            spans.append((start, end, elex.typed[match.group()]))
    kept: list[Span] = []
    for start, end, kind in spans:
        key = form[start:end]
        if key in elex.deny or (kind == "person" and end - start < 2 and start not in titled):
            continue
        if not any(ch.isalpha() for ch in key):
            continue
        kept.append((start, end, kind))
    votes: dict[str, Counter[str]] = {}
    for start, end, kind in sorted(kept):
        votes.setdefault(form[start:end], Counter())[kind] += 1
    kind_of = {key: counter.most_common(1)[0][0] for key, counter in votes.items()}
    # found[j] is a mention or None once a longer one replaced it; owner maps characters to j.
    found: list[Span | None] = []
    owner = [-1] * len(form)
    for start, end, _ in sorted(kept):
        owner[start:end] = [len(found)] * (end - start)
        found.append((start, end, kind_of[form[start:end]]))
    for key in sorted(kind_of, key=len, reverse=True):
        if len(key) < 2 or kind_of[key] not in _PROPAGATED:
            continue
        at = form.find(key)
        while at >= 0:
            end = at + len(key)
            inside = {owner[i] for i in range(at, end) if owner[i] >= 0}
            if all(_within(found[j], at, end) for j in inside):
                for j in inside:
                    found[j] = None
                owner[at:end] = [len(found)] * len(key)
                found.append((at, end, kind_of[key]))
            at = form.find(key, at + 1)
    return sorted(span for span in found if span is not None)


# Kinds whose forms are found again at every mention. Not organisations: their
# names end in common heads (政府, 委员会) that recur inside other names.
_PROPAGATED = ("person", "place")


def _run_together(cut: Callable[[str], list[str]], form: str, start: int, end: int) -> list[Span] | None:
    """The names in a person span of several names run together, as jieba reads them; else None.

    A Chinese name is two to four characters; a longer span with no dot (·)
    between a given name and a surname may be a list of names without
    separators (迟浩田任建新). The span is segmented on its own (so that both
    engines read it alike); if jieba reads two or more words of two to four
    characters there, they are the persons. A foreign name (普里马科夫) stays
    one word.
    """
    if end - start < 5 or any(ch in "·・•．." for ch in form[start:end]):
        return None
    words = cut(form[start:end])
    if len(words) < 2 or any(not 2 <= len(w) <= 4 for w in words):
        return None
    spans: list[Span] = []
    for word in words:
        spans.append((start, start + len(word), "person"))
        start += len(word)
    return spans


def _within(span: Span | None, start: int, end: int) -> bool:
    """Whether ``span`` lies inside ``start:end`` and is shorter: a piece of a longer name there."""
    return span is not None and start <= span[0] and span[1] <= end and span[1] - span[0] < end - start


def entities(
    text: str, simplified: str, spans: Sequence[Span], kinds: Sequence[str] = KINDS
) -> dict[str, list[dict[str, object]]]:
    """Entities by kind, most mentioned first, as ``{"w", "count", "starts"[, "variants"]}``.

    Mentions are grouped by their Simplified form. ``w`` is the form first
    written in the article and ``starts`` the offsets of its mentions written
    exactly so; mentions written another way (臺灣 beside 台灣) are under
    ``variants`` as ``{form: [starts]}``. ``count`` counts every mention.
    """
    form = analysis_form(simplified)
    grouped: dict[str, dict[str, dict[str, list[int]]]] = {kind: {} for kind in kinds}
    for start, end, kind in sorted(spans):
        if kind not in grouped:
            continue
        forms = grouped[kind].setdefault(form[start:end], {})
        forms.setdefault(text[start:end], []).append(start)
    out: dict[str, list[dict[str, object]]] = {}
    for kind, by_key in grouped.items():
        listed = []
        for forms in by_key.values():
            (shown, starts), *others = forms.items()
            entry: dict[str, object] = {"w": shown, "count": sum(map(len, forms.values())), "starts": starts}
            if others:
                entry["variants"] = dict(others)
            listed.append(entry)
        listed.sort(key=lambda e: -e["count"])  # type: ignore[operator]  # stable: first mention first
        out[kind] = listed
    return out
