"""The stages in one process with no services: ``newsflow process`` and ``newsflow segment``."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from worker import pipeline
from worker.article import text_hash
from worker.config import Settings
from worker.dedupe.index import MemoryIndex
from worker.stages import segment

# Articles read ahead and taken through the stages together, as a worker takes a
# batch (worker/batch.py). Each phase then runs over all of them with its own
# tables warm in the CPU caches (OpenCC's and the code-point tables before the
# decision, the engine's dictionary and the IDF table after), where one article
# at a time through every stage evicts each phase's tables with the other's:
# newsflow process costs about an eighth less per article (docs/performance.md).
BATCH = 25


def process_all(raws: Iterable[Any], settings: Settings, batch: int = BATCH) -> Iterator[dict[str, Any]]:
    """Results for ``raws`` in order, deduplicated against each other in memory.

    ``batch`` articles are read ahead (1: each result before the next article is read).
    """
    run = Embedded(settings)
    chunk: list[Any] = []
    for raw in raws:
        chunk.append(raw)
        if len(chunk) >= batch:
            yield from run(chunk)
            chunk = []
    if chunk:
        yield from run(chunk)


@dataclass
class _Seen:
    """What an id last gave: its text's hash, its revision, and its result (or its slot in this batch)."""

    text_hash: str
    revision: int
    result: dict[str, Any] | int


class Embedded:
    """The stages over a stream of articles in this process, with the dedupe index in memory.

    Each call takes the next articles of the stream: prepared in order, each
    decided after the ones before it, then each finished (worker/pipeline.py),
    as a worker runs a batch.
    The same id with the same text again gives the result it gave before; with
    another text, the next revision.
    """

    def __init__(self, settings: Settings, analyser: pipeline.Analyser | None = None) -> None:
        self.settings = settings
        self.analyser = analyser or pipeline.Analyser.from_settings(settings)
        self.index = MemoryIndex.from_settings(settings)
        self.seen: dict[str, _Seen] = {}

    def __call__(self, raws: Sequence[Any]) -> list[dict[str, Any]]:
        """The results for ``raws``, the next articles of the stream, in order."""
        settings, analyser = self.settings, self.analyser
        out: list[dict[str, Any] | int] = []  # a result, or the slot of one finished in this batch
        ready: list[tuple[int, pipeline.Prepared, int]] = []  # (slot, prepared, revision)
        pending: list[_Seen] = []  # what this batch's ids gave, results to come
        for slot, raw in enumerate(raws):
            article_id = raw.get("id") if isinstance(raw, dict) else None
            text = raw.get("text") if isinstance(raw, dict) else None
            previous = self.seen.get(article_id) if isinstance(article_id, str) else None
            if previous and isinstance(text, str) and previous.text_hash == text_hash(text):
                out.append(previous.result)  # same id, same text: the existing result
                continue
            revision = previous.revision + 1 if previous else 1
            prepared = pipeline.prepare(raw, settings, WORKER)
            if isinstance(prepared, pipeline.Outcome):  # rejected
                out.append(prepared.result)
                if prepared.id is not None:
                    self.seen[prepared.id] = _Seen(prepared.text_hash, 1, prepared.result)
                continue
            out.append(slot)
            ready.append((slot, prepared, revision))
            seen = self.seen[prepared.article.id] = _Seen(text_hash(prepared.article.text), revision, slot)
            pending.append(seen)
        decisions = []
        finished: dict[int, dict[str, Any]] = {}  # slot -> result
        for _, prepared, _ in ready:
            started = time.perf_counter()
            decisions.append(self.index.decide(prepared.entry))
            prepared.timings["dedupe"] = round((time.perf_counter() - started) * 1000, 3)
        # The entity model, if on, runs per article inside finish: it reads a batch padded
        # to its longest piece, which moves its spans a little (docs/entities.md), and an
        # article's result here does not depend on the articles beside it.
        for (slot, prepared, revision), decision in zip(ready, decisions, strict=True):
            outcome = pipeline.finish(
                prepared, decision, analyser, settings, revision=_always(revision), worker=WORKER
            )
            finished[slot] = outcome.result
        results = [entry if isinstance(entry, dict) else finished[entry] for entry in out]
        for seen in pending:
            if isinstance(seen.result, int):  # not replaced since by a rejection under its id
                seen.result = finished[seen.result]
        return results


WORKER = "embedded"


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
