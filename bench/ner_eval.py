"""Score newsflow's entities on the MSRA NER dev half, in Simplified and Traditional.

    python -m bench.ner_eval [--data DIR] [--configs pos,model,default] [--engines jieba,jieba-rs]
                             [--sentences-per-article 8] [--batch 50] [--json PATH]

The gold file holds one character and its BMES tag per line, a blank line
between sentences. Sentences are joined into pseudo-articles of about eight
sentences, and the articles go through the worker's own code path, batch by
batch as a worker runs them: :func:`worker.pipeline.prepare`, then
:func:`worker.pipeline.recognise` over the batch, then
:func:`worker.pipeline.finish` for each article. The result's ``entities``
(``starts`` and ``variants``) are turned back into spans and scored against
the gold spans: entity-level, exact span and type, precision, recall and F1
per type (person, place, organisation; MSRA tags nothing else) and overall.

Configurations:

- ``pos``: ``NEWSFLOW_ENTITIES=pos``, jieba's POS tags;
- ``model``: the bare model, its spans straight from
  :meth:`worker.stages.entity_model.Recogniser.spans` with no reconciliation;
- ``default``: ``NEWSFLOW_ENTITIES=model`` as shipped, for each engine.

Every article is scored in Simplified and in Traditional (OpenCC s2t, which
keeps offsets). chars/s is analysis only (segmentation, model, keywords and
entities), on one thread, after loading; "one by one" runs the model per
article instead of per batch, to show what batching is worth.

The data is a test set: nothing in the project is tuned on it. It is looked for
in ``../shared/eval/msra-ner`` from the repository root (or the nearest
``shared/eval/msra-ner`` further up); without it the benchmark says so and
exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.corpus import find_eval_data
from worker import pipeline
from worker.config import Settings
from worker.dedupe import Decision
from worker.stages import segment

FILE = "msra_dev.bmes"
TYPES = {"person": "PER", "place": "LOC", "organization": "ORG"}
SCRIPTS = ("Simplified", "Traditional")

Gold = set[tuple[int, int, str]]


def read_bmes(path: Path) -> list[tuple[str, Gold]]:
    """Sentences as (text, gold spans)."""
    sentences: list[tuple[str, Gold]] = []
    chars: list[str] = []
    tags: list[str] = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        parts = line.split()
        if not parts:
            if chars:
                sentences.append(("".join(chars), _spans(tags)))
                chars, tags = [], []
            continue
        chars.append(parts[0] if len(parts) > 1 else " ")
        tags.append(parts[-1])
    if chars:
        sentences.append(("".join(chars), _spans(tags)))
    return sentences


def _spans(tags: list[str]) -> Gold:
    spans: Gold = set()
    start = 0
    for i, tag in enumerate(tags):
        if tag == "O":
            continue
        edge, kind = tag.split("-", 1)
        if edge in ("B", "S"):
            start = i
        if edge in ("E", "S"):
            spans.add((start, i + 1, kind))
    return spans


def articles(sentences: list[tuple[str, Gold]], per_article: int) -> list[tuple[str, Gold]]:
    """Consecutive sentences joined into pseudo-articles, gold spans shifted to article offsets."""
    out: list[tuple[str, Gold]] = []
    for first in range(0, len(sentences), per_article):
        text, gold = "", set()
        for sentence, spans in sentences[first : first + per_article]:
            gold |= {(s + len(text), e + len(text), k) for s, e, k in spans}
            text += sentence
        out.append((text, gold))
    return out


class Score:
    def __init__(self) -> None:
        self.correct: Counter[str] = Counter()
        self.gold: Counter[str] = Counter()
        self.found: Counter[str] = Counter()
        self.chars = 0
        self.seconds = 0.0
        self.skipped = 0

    def add(self, gold: Gold, found: Gold) -> None:
        for spans, counter in ((gold, self.gold), (found, self.found), (gold & found, self.correct)):
            for _s, _e, kind in spans:
                counter[kind] += 1
                counter["all"] += 1

    def prf(self, kind: str) -> tuple[float, float, float]:
        p = self.correct[kind] / self.found[kind] if self.found[kind] else 0.0
        r = self.correct[kind] / self.gold[kind] if self.gold[kind] else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            kind: dict(zip("prf", (round(x, 4) for x in self.prf(kind)), strict=True))
            for kind in ("PER", "LOC", "ORG", "all")
        }
        out["chars_per_s"] = round(self.chars / self.seconds) if self.seconds else None
        out["skipped"] = self.skipped
        return out


def found_spans(entities: dict[str, list[dict[str, Any]]]) -> Gold:
    """A result's entities as spans: every start of ``w`` and of each variant."""
    spans: Gold = set()
    for kind, listed in entities.items():
        tag = TYPES.get(kind)
        if tag is None:
            continue
        for entry in listed:
            forms = {entry["w"]: entry["starts"], **entry.get("variants", {})}
            spans |= {(s, s + len(form), tag) for form, starts in forms.items() for s in starts}
    return spans


def score_pipeline(
    docs: list[tuple[str, Gold]], settings: Settings, batch: int, one_by_one: bool = False
) -> tuple[Score, list[Any]]:
    """Score the worker's code path: prepare, recognise per batch, finish."""
    analyser = pipeline.Analyser.from_settings(settings)
    if analyser.recogniser is not None:
        analyser.recogniser.spans(["预热"])  # the session, made before the clock starts
    analyser.engine.tag("预热")
    score, outputs = Score(), []
    unique = Decision.unique()
    for first in range(0, len(docs), batch):
        chunk = docs[first : first + batch]
        prepared = []
        for n, (text, _gold) in enumerate(chunk):
            p = pipeline.prepare({"id": f"msra.{first + n}", "text": text}, settings)
            assert isinstance(p, pipeline.Prepared), p
            prepared.append(p)
        started = time.perf_counter()
        decisions = [unique] * len(prepared)
        if one_by_one:
            spans: list[Any] = [None] * len(prepared)
        else:
            spans = pipeline.recognise(prepared, decisions, analyser, settings)
        results = [
            pipeline.finish(p, unique, analyser, settings, model_spans=s).result
            for p, s in zip(prepared, spans, strict=True)
        ]
        score.seconds += time.perf_counter() - started
        for (text, gold), p, result in zip(chunk, prepared, results, strict=True):
            if p.text != text:  # normalisation changed the text: its offsets no longer match the gold
                score.skipped += 1
                outputs.append(None)
                continue
            score.chars += len(text)
            score.add(gold, found_spans(result["entities"]))
            outputs.append(result["entities"])
    return score, outputs


def score_bare(docs: list[tuple[str, Gold]], batch: int) -> Score:
    """The model's own spans, nothing reconciled."""
    from worker.stages.entity_model import recogniser

    model = recogniser()
    model.spans(["预热"])
    score = Score()
    for first in range(0, len(docs), batch):
        chunk = docs[first : first + batch]
        started = time.perf_counter()
        spans = model.spans([segment.analysis_form(segment.to_simplified(text)) for text, _ in chunk])
        score.seconds += time.perf_counter() - started
        for (text, gold), found in zip(chunk, spans, strict=True):
            score.chars += len(text)
            score.add(gold, {(s, e, TYPES[k]) for s, e, k in found if k in TYPES})
    return score


def print_table(title: str, rows: list[tuple[str, str, Score]]) -> None:
    print(f"\n{title}")
    head = f"{'configuration':<22} {'script':<11}"
    for kind in ("PER", "LOC", "ORG", "all"):
        head += f" {kind + ' P/R/F1':>17}"
    print(head + f" {'chars/s':>9}")
    for name, script, s in rows:
        line = f"{name:<22} {script:<11}"
        for kind in ("PER", "LOC", "ORG", "all"):
            p, r, f = s.prf(kind)
            line += f"  {p:.3f}/{r:.3f}/{f:.3f}"
        speed = f"{s.chars / s.seconds:,.0f}" if s.seconds else "-"
        print(line + f" {speed:>9}" + (f"  ({s.skipped} skipped)" if s.skipped else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder holding msra_dev.bmes (default ../shared/eval/msra-ner)")
    parser.add_argument("--configs", default="pos,model,default")
    parser.add_argument("--engines", default="jieba,jieba-rs")
    parser.add_argument("--sentences-per-article", type=int, default=8)
    parser.add_argument("--batch", type=int, default=50, help="articles per batch, as NEWSFLOW_BATCH_SIZE")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)

    data = find_eval_data("msra-ner", args.data)
    if data is None or not (data / FILE).is_file():
        print(f"bench.ner_eval: no {FILE} under {data or '../shared/eval/msra-ner'}; nothing to score.")
        return 0
    sentences = read_bmes(data / FILE)
    simplified = articles(sentences, args.sentences_per_article)
    traditional = [(segment.convert(text, "s2t"), gold) for text, gold in simplified]
    docs = {"Simplified": simplified, "Traditional": traditional}
    chars = sum(len(t) for t, _ in simplified)
    print(
        f"MSRA NER dev half: {len(sentences)} sentences, {len(simplified)} pseudo-articles "
        f"of {args.sentences_per_article} sentences, {chars:,} characters; batches of {args.batch}"
    )
    configs = args.configs.split(",")
    engines = [e for e in args.engines.split(",") if segment.has_engine(e)]
    rows: list[tuple[str, str, Score]] = []
    same: dict[str, bool] = {}
    for config in configs:
        for script in SCRIPTS:
            if config == "model":
                rows.append(("bare model", script, score_bare(docs[script], args.batch)))
                continue
            outputs = {}
            for engine in engines:
                settings = Settings(engine=engine, entities="model" if config == "default" else "pos")
                score, outputs[engine] = score_pipeline(docs[script], settings, args.batch)
                rows.append((f"{config} ({engine})", script, score))
            if config == "default":
                same[script] = all(outputs[e] == outputs[engines[0]] for e in engines)
                if script == "Simplified":
                    settings = Settings(engine=engines[0])
                    score, _ = score_pipeline(docs[script], settings, args.batch, one_by_one=True)
                    rows.append((f"default, one by one ({engines[0]})", script, score))
    print_table("Entity-level, exact span: precision/recall/F1 per type", rows)
    for script, equal in same.items():
        print(
            f"{script}: engines {' and '.join(engines)} give {'the same' if equal else 'DIFFERENT'} entities"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "rows": [{"config": n, "script": s, **score.as_dict()} for n, s, score in rows],
                    "same_entities_across_engines": same,
                },
                indent=2,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
