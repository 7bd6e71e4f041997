"""What each text stage costs an article, and the pipeline against the bare engine it wraps.

    python -m bench.stages                          # 600 articles of 400-560 characters
    python -m bench.stages --engines jieba-rs --entities pos --repeat 3

In one process, on one thread: each stage of worker/pipeline.py is timed on
its own over the same articles (built from the SIGHAN 2005 test sentences, half
Traditional, no re-sent copies, so every article is analysed), in the order
``newsflow process`` runs them (batches of 25: the stages before the dedupe
decision over the batch, then the rest one article at a time); then
``newsflow process`` itself (worker/embedded.py, plus ``orjson.dumps`` of each
result, start-up out); then the bare engine on the same texts: OpenCC t2s then
``rjieba.tag`` (jieba-rs) or ``jieba.posseg`` (jieba). ``newsflow process`` and
the bare engine take turns of 25 articles, ``--repeat`` times, and the medians
are taken, so the ratio is of figures taken milliseconds apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench.corpus import SIGHAN, stream
from worker import pipeline
from worker.article import parse_article
from worker.config import Settings
from worker.dedupe.index import MemoryIndex, Registration
from worker.embedded import BATCH, Embedded
from worker.stages import entities, garbled, keywords, segment
from worker.stages import fingerprint as fp
from worker.stages.normalise import dewrap, drop_repeats
from worker.stages.script import detect_script

ROOT = Path(__file__).resolve().parent.parent


def articles(
    n: int = 600, lengths: tuple[int, int] = (400, 600), sighan: Path = SIGHAN
) -> list[dict[str, str]]:
    """``n`` distinct articles of ``lengths`` characters, half Traditional (bench.corpus)."""
    return stream(n, duplicate_share=0.0, seed=16, lengths=lengths, sighan=sighan)


def bare_engine(engine: str) -> Callable[[str], object]:
    """OpenCC t2s then the engine's own tagger, nothing else."""
    import opencc

    t2s = opencc.OpenCC("t2s")
    if engine == "jieba-rs":
        import rjieba

        rs = rjieba.Jieba()
        return lambda text: rs.tag(t2s.convert(text), True)
    import jieba
    import jieba.posseg

    jieba.setLogLevel(60)
    pos = jieba.posseg.POSTokenizer(jieba.Tokenizer())
    pos.makesure_userdict_loaded()
    return lambda text: [(p.word, p.flag) for p in pos.cut(t2s.convert(text))]


def _timed(fn: Callable[[Any], object], items: list[Any]) -> float:
    """Milliseconds per item of ``fn`` over ``items``."""
    started = time.perf_counter()
    for item in items:
        fn(item)
    return (time.perf_counter() - started) * 1000 / len(items)


def stage_costs(
    raws: list[dict[str, str]], analyser: pipeline.Analyser, settings: Settings, batch: int = BATCH
) -> dict[str, float]:
    """Milliseconds per article of each stage, in the order ``newsflow process`` runs them.

    ``batch`` articles at a time, as worker/embedded.py takes them: the stages
    before the dedupe decision over all of them, then each decided, then the
    stages after it one article at a time. Timed on their own, each stage over
    all 600 articles ran faster than its share of the pipeline: the phases
    share the CPU caches as they do there.
    """
    eng, lex, elex, kinds = analyser.engine, analyser.lexicon, analyser.entity_lexicon, analyser.entity_kinds
    recogniser = analyser.recogniser
    index = MemoryIndex()
    spent: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        spent[name] = spent.get(name, 0.0) + now - since
        return now

    for at in range(0, len(raws), batch):
        ready: list[tuple[str, str, Registration]] = []
        for raw in raws[at : at + batch]:
            t = time.perf_counter()
            article = parse_article(raw, max_chars=settings.max_chars)
            garbled.check(article.text)
            t = lap("parse + garbled check", t)
            text, _ = drop_repeats(dewrap(article.text))
            t = lap("dewrap + drop_repeats", t)
            simplified = segment.to_simplified(text)
            t = lap("to_simplified", t)
            detect_script(text, simplified)
            t = lap("detect_script", t)
            letters = fp.letters(simplified)
            fp.fingerprint(letters)
            t = lap("letters + fingerprint", t)
            entry = Registration.of(article.id, letters)
            lap("MinHash + LSH bands (registration)", t)
            ready.append((text, simplified, entry))
        t = time.perf_counter()
        for _, _, entry in ready:
            index.decide(entry)
        lap("dedupe decision (memory)", t)
        for text, simplified, _ in ready:
            t = time.perf_counter()
            tokens = segment.tag(text, simplified, eng)
            t = lap("tag", t)
            if recogniser is not None:  # per article, as worker/embedded.py runs it
                found = recogniser.spans([segment.analysis_form(simplified)])[0]
                t = lap("entity model", t)
                spans = entities.entity_spans(found, simplified, elex, eng.cut)
                whole = spans
            else:
                spans = entities.pos_spans(tokens, simplified, elex)
                whole = []  # as pipeline.finish: a POS mention is one token already
            result = entities.entities(text, simplified, spans, kinds)
            t = lap("entities", t)
            words = keywords.keywords(
                tokens, simplified, lex, settings.top_keywords, settings.keywords, whole, text=text
            )
            t = lap("keywords", t)
            orjson.dumps({"text": text, "tokens": tokens, "keywords": words, "entities": result})
            lap("orjson", t)
    return {name: seconds * 1000 / len(raws) for name, seconds in spent.items()}


def measure(raws: list[dict[str, str]], engine: str, entities_: str, repeat: int) -> dict[str, Any]:
    """The stage table, and ``newsflow process`` against the bare engine in turns of ``BATCH`` articles.

    ``newsflow process``'s cost is that of worker/embedded.py's batches plus
    ``orjson.dumps`` of each result, as producer/cli.py writes them: start-up out.
    """
    settings = Settings(engine=engine, entities=entities_)
    analyser = pipeline.Analyser.from_settings(settings)
    analyser.warm()
    bare = bare_engine(engine)
    texts = [r["text"] for r in raws]
    bare(texts[0])
    for result in Embedded(settings, analyser)(raws[:5]):
        orjson.dumps(result)
    stages: list[dict[str, float]] = []
    processes: list[float] = []
    bares: list[float] = []
    for _ in range(repeat):
        run = Embedded(settings, analyser)  # afresh: the same articles again would be duplicates

        def one(turn: list[dict[str, str]], run: Embedded = run) -> None:
            for result in run(turn):
                orjson.dumps(result)

        bare_ms = process_ms = 0.0
        for at in range(0, len(raws), BATCH):  # turns of a few milliseconds: both see the same load
            turn = raws[at : at + BATCH]
            bare_ms += _timed(bare, texts[at : at + BATCH]) * len(turn)
            process_ms += _timed(one, [turn])  # the whole turn, as one call
        bares.append(bare_ms / len(raws))
        processes.append(process_ms / len(raws))
        stages.append(stage_costs(raws, analyser, settings))
    median = {name: statistics.median(s[name] for s in stages) for name in stages[0]}
    bare_ms, process_ms = statistics.median(bares), statistics.median(processes)
    return {
        "engine": engine,
        "entities": entities_,
        "stages_ms": median,
        "process_ms": process_ms,
        "bare_ms": bare_ms,
        "ratio": process_ms / bare_ms,
        "runs": {"bare_ms": bares, "process_ms": processes},
    }


def report(
    engines: list[str], recognisers: list[str], n: int = 600, repeat: int = 3, sighan: Path = SIGHAN
) -> list[dict[str, Any]]:
    """Measure every engine with every recogniser and print the table; the rows, for a JSON report."""
    raws = articles(n, sighan=sighan)
    results = [measure(raws, engine, ents, repeat) for engine in engines for ents in recognisers]
    print_report(results, len(raws), sum(len(r["text"]) for r in raws) / len(raws))
    return results


def print_report(results: list[dict[str, Any]], n: int, chars: float) -> None:
    print(f"Stages per article, one thread, {n} articles of {chars:.0f} characters on average (ms, median)")
    names = list(dict.fromkeys(name for r in results for name in r["stages_ms"]))
    heads = [f"{r['engine']}/{r['entities']}" for r in results]
    width = max(len(n) for n in names + ["newsflow process + orjson"]) + 2
    print("stage".ljust(width) + "".join(h.rjust(18) for h in heads))
    for name in names:
        cells = [f"{r['stages_ms'][name]:.3f}" if name in r["stages_ms"] else "-" for r in results]
        print(name.ljust(width) + "".join(c.rjust(18) for c in cells))
    print(
        "newsflow process + orjson".ljust(width)
        + "".join(f"{r['process_ms']:.3f}".rjust(18) for r in results)
    )
    print("bare engine (t2s + tag)".ljust(width) + "".join(f"{r['bare_ms']:.3f}".rjust(18) for r in results))
    print("ratio".ljust(width) + "".join(f"{r['ratio']:.2f}x".rjust(18) for r in results))
    if any("entity model" in r["stages_ms"] for r in results):
        # The model's share of the stage pass, taken out of the pipeline's cost: a share
        # measured in one pass. Subtracting the model's milliseconds from a figure taken in
        # another pass left the noise of ~26 ms beside a jieba-rs article's ~1 ms.
        less = [r["process_ms"] * (1 - _model_share(r["stages_ms"])) / r["bare_ms"] for r in results]
        print("ratio less the entity model".ljust(width) + "".join(f"{x:.2f}x".rjust(18) for x in less))


def _model_share(stages_ms: dict[str, float]) -> float:
    """The entity model's share of one stage pass (0 without the model)."""
    return stages_ms.get("entity model", 0.0) / sum(stages_ms.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=600)
    parser.add_argument("--lengths", default="400-560")
    parser.add_argument("--engines", default="jieba-rs,jieba")
    parser.add_argument("--entities", default="pos")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=SIGHAN)
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "stages.json"))
    args = parser.parse_args(argv)
    low, _, high = args.lengths.partition("-")
    raws = articles(args.articles, (int(low), int(high or low)), args.data)
    results = [
        measure(raws, engine, ents, args.repeat)
        for engine in args.engines.split(",")
        for ents in args.entities.split(",")
    ]
    print_report(results, len(raws), sum(len(r["text"]) for r in raws) / len(raws))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
