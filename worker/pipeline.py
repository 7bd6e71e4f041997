"""The stage composition, in one place.

    prepare: parse -> garbled check -> dewrap -> drop_repeats -> to_simplified -> detect_script -> fingerprint
    the dedupe decision
    finish:  tag -> entity spans (model or POS) -> keywords, entities -> the result

Every stage is a plain function of plain values; only the dedupe index behind
:func:`process` differs between a Celery worker (Redis + Lua) and
``newsflow process`` (memory). The worker, the embedded mode and the
benchmarks all call :func:`process`; a worker running a batch calls
:func:`prepare` for all its articles, decides them in one round trip, runs the entity
model once over all that it will analyse (:func:`recognise`), then calls
:func:`finish` for each (worker/batch.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from worker.article import Article, Rejection, parse_article, text_hash
from worker.config import Settings
from worker.dedupe import Decision, DedupeIndex, Registration
from worker.result_body import provenance
from worker.stages import entities, garbled, keywords, segment
from worker.stages import entity_model as ner
from worker.stages import fingerprint as fp
from worker.stages.normalise import dewrap, drop_repeats
from worker.stages.script import detect_script


@dataclass(frozen=True)
class Analyser:
    """What the text stages need, loaded once per process (before fork)."""

    engine: segment.Engine
    lexicon: keywords.Lexicon
    keywords: str
    top_keywords: int
    entity_lexicon: entities.EntityLexicon
    # The entity model (NEWSFLOW_ENTITIES=model); None for jieba's POS tags.
    recogniser: ner.Recogniser | None = None

    @classmethod
    def from_settings(cls, s: Settings) -> Analyser:
        return cls(
            engine=segment.engine(s.engine, s.user_dict),
            lexicon=keywords.lexicon(s.user_stopwords),
            keywords=s.keywords,
            top_keywords=s.top_keywords,
            entity_lexicon=entities.entity_lexicon(s.user_dict, s.entity_deny),
            recogniser=ner.recogniser() if s.entities == "model" else None,
        )

    def warm(self) -> None:
        """Load dictionaries now, so forked children share them, and lay the big ones out for use.

        The lookup tables (jieba's dictionary, the IDF table) are laid out
        common words first (:func:`worker.stages.interning.laid_out_by_use`):
        about 1 s once, a few percent of every article after.
        The entity model's session is not made here: it must not cross a fork
        (each child makes its own on first use, see :mod:`worker.stages.entity_model`).
        """
        self.engine.lay_out()
        keywords.lay_out(self.lexicon)
        self.engine.tag("预热")
        # One pass through the array-based stages (garbled, drop_repeats,
        # detect_script, the MinHash) on one text: OpenCC, the code-point tables
        # (about 6 MB), and what numpy sets up for their first call are made in
        # the parent, where the children share them, not in each child.
        warm_text = "預熱文章，預熱文章的第二句。" * 8
        garbled.check(warm_text)
        drop_repeats(dewrap(warm_text))
        warm_simplified = segment.to_simplified(warm_text)
        detect_script(warm_text, warm_simplified)
        fp.sketch(fp.letters(warm_simplified))

    @property
    def entity_kinds(self) -> tuple[str, ...]:
        return entities.MODEL_KINDS if self.recogniser is not None else entities.KINDS


@dataclass
class Outcome:
    """One article's result, with what the caller needs to store it."""

    id: str | None
    status: str
    result: dict[str, Any]
    text_hash: str = ""
    fingerprint: str = ""
    submitted_at: float | None = None


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round((now - self._last) * 1000, 3)
        self._last = now


def rejected(raw: object, error: Rejection, worker: str = "") -> Outcome:
    article_id = raw.get("id") if isinstance(raw, dict) else None
    shown_id = article_id if isinstance(article_id, str) else None
    result = error.result(shown_id, worker)
    text = raw.get("text") if isinstance(raw, dict) else None
    # Rejections count in the submit-to-result latency too.
    submitted = raw.get("_submitted_at") if isinstance(raw, dict) else None
    return Outcome(
        shown_id,
        "rejected",
        result,
        text_hash(text) if isinstance(text, str) else "",
        submitted_at=float(submitted) if isinstance(submitted, int | float) else None,
    )


@dataclass
class Prepared:
    """An article up to its dedupe decision: what :func:`finish` needs after it."""

    article: Article
    text: str
    simplified: str
    script: str
    repeats: int
    entry: Registration
    timings: dict[str, float]
    repaired: dict[str, str] | None = None  # the mis-decoding undone, see worker.stages.garbled


def prepare(raw: object, settings: Settings, worker: str = "") -> Prepared | Outcome:
    """The stages before the dedupe decision; a rejected :class:`Outcome` for bad input."""
    clock = _Clock()
    try:
        article = parse_article(raw, max_chars=settings.max_chars)
    except Rejection as error:
        return rejected(raw, error, worker)
    verdict = garbled.check(article.text)
    if verdict.garbled:
        return rejected(raw, Rejection("garbled_text", verdict.garbled), worker)
    submitted = article
    if verdict.repaired:
        article = replace(article, text=verdict.text)
    text, repeats = drop_repeats(dewrap(article.text))
    clock.lap("normalise")
    simplified = segment.to_simplified(text)
    script = detect_script(text, simplified)
    entry = Registration.of(article.id, fp.letters(simplified))
    clock.lap("fingerprint")
    # The submitted text stays the identity of the article (its revision and hash).
    return Prepared(submitted, text, simplified, script, repeats, entry, clock.timings, verdict.repaired)


def analysed(decision: Decision, settings: Settings) -> bool:
    """Whether an article so decided is segmented and tagged."""
    return (
        decision.status == "unique"
        or (decision.status == "near_duplicate" and settings.analyse_near_duplicates)
        or (decision.status == "duplicate" and settings.analyse_duplicates)
    )


def recognise(
    prepared: Sequence[Prepared],
    decisions: Sequence[Decision | None],
    analyser: Analyser,
    settings: Settings,
) -> list[list[ner.Span] | None]:
    """The entity model's spans for each article that :func:`finish` will analyse, in one run.

    Batching the pieces of many articles together costs less per article than
    one model run each (docs/entities.md, "Cost"). None where the article is not
    analysed (or was not decided) or the model is off; :func:`finish` then runs
    it itself if needed.
    """
    wanted = [
        i
        for i, decision in enumerate(decisions)
        if analyser.recogniser is not None and decision is not None and analysed(decision, settings)
    ]
    out: list[list[ner.Span] | None] = [None] * len(prepared)
    if not wanted or analyser.recogniser is None:
        return out
    started = time.perf_counter()
    try:
        spans = analyser.recogniser.spans([segment.analysis_form(prepared[i].simplified) for i in wanted])
    except Exception:  # each article then runs the model alone, and only a bad one fails
        return out
    share = round((time.perf_counter() - started) * 1000 / len(wanted), 3)
    for i, found in zip(wanted, spans, strict=True):
        out[i] = found
        prepared[i].timings["entities"] = share
    return out


def finish(
    prepared: Prepared,
    decision: Decision,
    analyser: Analyser,
    settings: Settings,
    *,
    revision: Callable[[str, str], int] = lambda _id, _hash: 1,
    worker: str = "",
    model_spans: list[ner.Span] | None = None,
) -> Outcome:
    """The stages after the dedupe decision: analysis (when the decision calls for it) and the result.

    ``model_spans`` are this article's spans from :func:`recognise`, when the
    model ran over its whole batch already.
    """
    clock = _Clock()
    article, text, simplified = prepared.article, prepared.text, prepared.simplified
    result: dict[str, Any] = {"id": article.id, "status": decision.status}
    if decision.status != "unique":
        result["duplicate_of"] = decision.duplicate_of
        result["similarity"] = decision.similarity
    if decision.containment is not None:
        result["containment"] = {"value": decision.containment, "longer": decision.longer}
    result["script"] = prepared.script
    result["text"] = text
    result["repeats_removed"] = prepared.repeats
    if prepared.repaired:
        result["repaired"] = prepared.repaired
    if analysed(decision, settings):
        tokens = segment.tag(text, simplified, analyser.engine)
        clock.lap("segment")
        if analyser.engine.hmm_skipped:  # noise: see segment.HmmBudget
            result["hmm_skipped"] = analyser.engine.hmm_skipped
        if analyser.recogniser is not None:
            if model_spans is None:
                model_spans = analyser.recogniser.spans([segment.analysis_form(simplified)])[0]
                clock.lap("entities")
            elex, cut = analyser.entity_lexicon, analyser.engine.cut
            # The tokens a mention overlaps give way to it in the keywords.
            spans = whole = entities.entity_spans(model_spans, simplified, elex, cut)
        else:
            spans = entities.pos_spans(tokens, simplified, analyser.entity_lexicon)
            whole = []  # a POS mention is one token, whose tag already lets it be a keyword
        result["tokens"] = tokens  # (word, pos, start) tuples: orjson writes them as arrays
        result["keywords"] = keywords.keywords(
            tokens, simplified, analyser.lexicon, analyser.top_keywords, analyser.keywords, whole, text=text
        )
        result["entities"] = entities.entities(text, simplified, spans, analyser.entity_kinds)
        clock.lap("tag")
    digest = text_hash(article.text)
    result.update(article.passthrough())
    result["revision"] = revision(article.id, digest)
    result["timings_ms"] = {**prepared.timings, **clock.timings}
    result.update(provenance(worker))
    return Outcome(
        article.id, decision.status, result, digest, prepared.entry.fingerprint, article.submitted_at
    )


def process(
    raw: object,
    index: DedupeIndex,
    analyser: Analyser,
    settings: Settings,
    *,
    revision: Callable[[str, str], int] = lambda _id, _hash: 1,
    worker: str = "",
) -> Outcome:
    """Run one submitted article through every stage: :func:`prepare`, the decision, :func:`finish`.

    ``revision(id, text_hash)`` says which revision this text is under its id.
    """
    prepared = prepare(raw, settings, worker)
    if isinstance(prepared, Outcome):
        return prepared
    started = time.perf_counter()
    decision = index.decide(prepared.entry)
    prepared.timings["dedupe"] = round((time.perf_counter() - started) * 1000, 3)
    return finish(prepared, decision, analyser, settings, revision=revision, worker=worker)
