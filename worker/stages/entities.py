"""Stage 6b: named entities, in the article's own script.

Entities come from one of two recognisers (``NEWSFLOW_ENTITIES``):

- ``model`` (default): the spans of the LAC model (:mod:`worker.stages.entity_model`),
  reconciled with what the dictionaries know (:func:`entity_spans`);
- ``pos``: jieba's POS tags (nr/nrt/nrfg person, ns place, nt organisation, nz
  other), the cheap path for bulk re-processing.

Tokens are jieba's either way and never change. Where a token boundary and an
entity span disagree, the entity span wins for entities (and keywords take the
entity whole, :mod:`worker.stages.keywords`).

Entities are grouped by their Simplified form (so 北韓 and 北韩 are one) and
reported in the form that first appeared in the article; an entity's mentions
written another way are listed under ``variants``. docs/entities.md describes
the format and the rules.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from pathlib import Path

from worker.config import ConfigError
from worker.stages.entity_model import Span
from worker.stages.segment import DATA, Token, analysis_form, dictionary_paths, read_dictionary, read_words

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

TITLES = DATA / "titles.txt"
ENTITY_DICT = DATA / "entities.txt"
PLACE_ABBREVIATIONS = DATA / "place_abbreviations.txt"


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
    denied = frozenset(read_words(Path(deny))) if deny else frozenset()
    titles = tuple(sorted(read_words(TITLES), key=len, reverse=True))
    return EntityLexicon(typed, pattern, denied, titles, frozenset(read_words(PLACE_ABBREVIATIONS)))


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
    # Few tokens carry an entity tag: pick them out in one comprehension first.
    spans = [
        (start, start + len(word), ENTITY_KINDS[pos])
        for word, pos, start in tokens
        if pos in ENTITY_KINDS and len(word) > 1
    ]
    if not elex.deny:
        return spans
    form = analysis_form(simplified)
    return [span for span in spans if form[span[0] : span[1]] not in elex.deny]


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


_COUNT = itemgetter("count")


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
        listed: list[dict[str, object]] = []
        for forms in by_key.values():
            if len(forms) == 1:  # every mention written alike: most entities
                ((shown, starts),) = forms.items()
                listed.append({"w": shown, "count": len(starts), "starts": starts})
                continue
            (shown, starts), *others = forms.items()
            count = sum(map(len, forms.values()))
            listed.append({"w": shown, "count": count, "starts": starts, "variants": dict(others)})
        listed.sort(key=_COUNT, reverse=True)  # stable, reversed too: first mention first
        out[kind] = listed
    return out
