"""The stages in one process with no services: ``newsflow process`` and ``newsflow segment``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from worker import pipeline
from worker.article import text_hash
from worker.config import Settings
from worker.dedupe.index import MemoryIndex
from worker.stages import segment


def process_all(raws: Iterable[Any], settings: Settings) -> Iterator[dict[str, Any]]:
    """Results for ``raws`` in order, deduplicated against each other in memory."""
    analyser = pipeline.Analyser.from_settings(settings)
    index = MemoryIndex.from_settings(settings)
    seen: dict[str, tuple[str, dict[str, Any]]] = {}  # id -> (text hash, result)
    for raw in raws:
        article_id = raw.get("id") if isinstance(raw, dict) else None
        text = raw.get("text") if isinstance(raw, dict) else None
        previous = seen.get(article_id) if isinstance(article_id, str) else None
        if previous and isinstance(text, str) and previous[0] == text_hash(text):
            yield previous[1]  # same id, same text: the existing result
            continue
        revision = previous[1].get("revision", 1) + 1 if previous else 1
        outcome = pipeline.process(
            raw, index, analyser, settings, revision=_always(revision), worker="embedded"
        )
        if outcome.id is not None:
            seen[outcome.id] = (outcome.text_hash, outcome.result)
        yield outcome.result


def _always(revision: int) -> Callable[[str, str], int]:
    return lambda _id, _hash: revision


def segment_lines(lines: Iterable[str], engine_name: str, settings: Settings, pos: bool) -> Iterator[str]:
    """Each line segmented on its own, tokens joined by two spaces (SIGHAN format).

    One output line per input line, an empty one for an empty or blank line;
    ``pos`` prints ``word/POS``. This is ``newsflow segment`` and what
    ``bench.seg_eval`` scores.
    """
    eng = segment.engine(engine_name, settings.user_dict)
    for number, line in enumerate(lines):
        line = line.rstrip("\r\n")
        if number == 0:
            line = line.removeprefix("\ufeff")  # a byte-order mark is never text
        simplified = segment.to_simplified(line)
        if pos:
            yield "  ".join(f"{w}/{p}" for w, p, _ in segment.tag(line, simplified, eng))
        else:
            yield "  ".join(segment.cut(line, simplified, eng))
