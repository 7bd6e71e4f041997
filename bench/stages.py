"""What each text stage costs an article, and the pipeline against the bare engine it wraps.

    python -m bench.stages                          # 600 articles of 400-600 characters
    python -m bench.stages --engines jieba-rs --entities pos --repeat 3

In one process, on one thread: each stage of worker/pipeline.py is timed on
its own over the same articles (built from the SIGHAN 2005 test sentences, half
Traditional, no re-sent copies, so every article is analysed), then the whole
``pipeline.process`` plus ``orjson.dumps`` of the result (what ``newsflow
process`` does per article, start-up out), then the bare engine on the same
texts: OpenCC t2s then ``rjieba.tag`` (jieba-rs) or ``jieba.posseg`` (jieba).
Pipeline and bare engine alternate ``--repeat`` times and the medians are
taken, so the ratio is of figures taken minutes apart at most.
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
from worker.config import Settings
from worker.dedupe.index import MemoryIndex, Registration
from worker.stages import entities, keywords, segment
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


def stage_costs(texts: list[str], analyser: pipeline.Analyser, settings: Settings) -> dict[str, float]:
    """Milliseconds per article of each stage alone, fed the previous stage's outputs."""
    normalised = [drop_repeats(dewrap(t))[0] for t in texts]
    simplified = [segment.to_simplified(t) for t in normalised]
    pairs = list(zip(normalised, simplified, strict=True))
    letters = [fp.letters(s) for s in simplified]
    eng, lex, elex = analyser.engine, analyser.lexicon, analyser.entity_lexicon
    tokens = [segment.tag(t, s, eng) for t, s in pairs]
    spans = [entities.pos_spans(tk, s, elex) for tk, s in zip(tokens, simplified, strict=True)]
    rows = list(zip(normalised, simplified, tokens, spans, strict=True))
    kinds, top = entities.KINDS, settings.top_keywords
    out = {
        "dewrap + drop_repeats": _timed(lambda t: drop_repeats(dewrap(t)), texts),
        "to_simplified": _timed(segment.to_simplified, normalised),
        "detect_script": _timed(lambda p: detect_script(*p), pairs),
        "letters + fingerprint": _timed(lambda s: fp.fingerprint(fp.letters(s)), simplified),
        "minhash": _timed(fp.sketch, letters),
        "registration (all dedupe inputs)": _timed(lambda s: Registration.of("a", s), letters),
        "tag": _timed(lambda p: segment.tag(p[0], p[1], eng), pairs),
        "entities (pos)": _timed(
            lambda r: entities.entities(r[0], r[1], entities.pos_spans(r[2], r[1], elex), kinds),
            rows,
        ),
        "keywords": _timed(
            lambda r: keywords.keywords(r[2], r[1], lex, top, settings.keywords, r[3], r[0]),
            rows,
        ),
    }
    if analyser.recogniser is not None:
        recogniser = analyser.recogniser
        out["entity model"] = _timed(lambda s: recogniser.spans([segment.analysis_form(s)]), simplified)
    return out


def process_cost(raws: list[dict[str, str]], analyser: pipeline.Analyser, settings: Settings) -> float:
    """Milliseconds per article of ``pipeline.process`` and the result's JSON, as ``newsflow process``."""
    index = MemoryIndex()

    def one(raw: dict[str, str]) -> None:
        orjson.dumps(pipeline.process(raw, index, analyser, settings).result)

    return _timed(one, raws)


def measure(raws: list[dict[str, str]], engine: str, entities_: str, repeat: int) -> dict[str, Any]:
    settings = Settings(engine=engine, entities=entities_)
    analyser = pipeline.Analyser.from_settings(settings)
    analyser.warm()
    bare = bare_engine(engine)
    texts = [r["text"] for r in raws]
    bare(texts[0])
    process_cost(raws[:5], analyser, settings)
    stages: list[dict[str, float]] = []
    processes: list[float] = []
    bares: list[float] = []
    for _ in range(repeat):  # alternated, so a slow minute weighs on both
        bares.append(_timed(bare, texts))
        processes.append(process_cost(raws, analyser, settings))
        stages.append(stage_costs(texts, analyser, settings))
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


def print_report(results: list[dict[str, Any]], n: int, chars: float) -> None:
    print(f"Stages per article, one thread, {n} articles of {chars:.0f} characters on average (ms, median)")
    names = list(dict.fromkeys(name for r in results for name in r["stages_ms"]))
    heads = [f"{r['engine']}/{r['entities']}" for r in results]
    width = max(len(n) for n in names + ["pipeline.process + orjson"]) + 2
    print("stage".ljust(width) + "".join(h.rjust(18) for h in heads))
    for name in names:
        cells = [f"{r['stages_ms'][name]:.3f}" if name in r["stages_ms"] else "-" for r in results]
        print(name.ljust(width) + "".join(c.rjust(18) for c in cells))
    print(
        "pipeline.process + orjson".ljust(width)
        + "".join(f"{r['process_ms']:.3f}".rjust(18) for r in results)
    )
    print("bare engine (t2s + tag)".ljust(width) + "".join(f"{r['bare_ms']:.3f}".rjust(18) for r in results))
    print("ratio".ljust(width) + "".join(f"{r['ratio']:.2f}x".rjust(18) for r in results))


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
    chars = sum(len(r["text"]) for r in raws) / len(raws)
    print_report(results, len(raws), chars)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
