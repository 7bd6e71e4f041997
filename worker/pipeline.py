"""The stage composition, in one place.

    parse -> dewrap -> drop_repeats -> to_simplified -> detect_script
          -> fingerprint -> dedupe decision -> tag -> keywords, entities

Every stage is a plain function of plain values; only the dedupe index behind
:func:`process` differs between a Celery worker (Redis + Lua) and
``newsflow process`` (memory). The worker, the embedded mode and the
benchmarks all call :func:`process`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker import __version__
from worker.article import SCHEMA, Rejection, now_iso, parse_article, text_hash
from worker.config import Settings
from worker.dedupe import DedupeIndex, Entry
from worker.stages import fingerprint as fp
from worker.stages import segment, tagging
from worker.stages.normalise import dewrap, drop_repeats
from worker.stages.script import detect_script, simplified_only


@dataclass(frozen=True)
class Analyser:
    """What the text stages need, loaded once per process (before fork)."""

    engine: segment.Engine
    lexicon: tagging.Lexicon
    keywords: str
    top_keywords: int

    @classmethod
    def from_settings(cls, s: Settings) -> Analyser:
        return cls(
            engine=segment.engine(s.engine, s.user_dict),
            lexicon=tagging.lexicon(s.user_stopwords),
            keywords=s.keywords,
            top_keywords=s.top_keywords,
        )

    def warm(self) -> None:
        """Load dictionaries now, so forked children share them."""
        self.engine.tag("预热")
        segment.to_simplified("預熱")
        simplified_only()  # detect_script's table, built once


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
    return Outcome(shown_id, "rejected", result, text_hash(text) if isinstance(text, str) else "",
                   submitted_at=float(submitted) if isinstance(submitted, int | float) else None)


def process(
    raw: object,
    index: DedupeIndex,
    analyser: Analyser,
    settings: Settings,
    *,
    revision: Callable[[str, str], int] = lambda _id, _hash: 1,
    worker: str = "",
) -> Outcome:
    """Run one submitted article through every stage.

    ``revision(id, text_hash)`` says which revision this text is under its id.
    """
    clock = _Clock()
    try:
        article = parse_article(raw, max_chars=settings.max_chars)
    except Rejection as error:
        return rejected(raw, error, worker)
    text, repeats = drop_repeats(dewrap(article.text))
    clock.lap("normalise")
    simplified = segment.to_simplified(text)
    script = detect_script(text, simplified)
    letters = fp.letters(simplified)
    fingerprint = fp.fingerprint(letters)
    sketch = fp.minhash(letters)
    clock.lap("fingerprint")
    decision = index.decide(Entry(article.id, fingerprint, sketch))
    clock.lap("dedupe")

    result: dict[str, Any] = {"id": article.id, "status": decision.status}
    if decision.status != "unique":
        result["duplicate_of"] = decision.duplicate_of
        result["similarity"] = decision.similarity
    result["script"] = script
    result["text"] = text
    result["repeats_removed"] = repeats
    analyse = (
        decision.status == "unique"
        or (decision.status == "near_duplicate" and settings.analyse_near_duplicates)
        or (decision.status == "duplicate" and settings.analyse_duplicates)
    )
    if analyse:
        tokens = segment.tag(text, simplified, analyser.engine)
        clock.lap("segment")
        result["tokens"] = tokens  # (word, pos, start) tuples: orjson writes them as arrays
        result["keywords"] = tagging.keywords(
            tokens, simplified, analyser.lexicon, analyser.top_keywords, analyser.keywords
        )
        result["entities"] = tagging.entities(tokens, simplified)
        clock.lap("tag")
    digest = text_hash(article.text)
    result.update(article.passthrough())
    result["revision"] = revision(article.id, digest)
    result["schema"] = SCHEMA
    result["worker"] = worker
    result["processed_at"] = now_iso()
    result["timings_ms"] = clock.timings
    result["version"] = __version__
    return Outcome(article.id, decision.status, result, digest, fingerprint, article.submitted_at)
