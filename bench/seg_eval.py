"""Score ``newsflow segment`` on the SIGHAN 2005 gold files, one table per engine.

    python -m bench.seg_eval [--data DIR] [--engines jieba,jieba-rs] [--explore]

Each gold line has its spaces stripped to make the input; the input goes
through the same code as ``newsflow segment`` (:func:`worker.embedded.segment_lines`),
and the output's word spans are scored against the gold spans (precision,
recall, F1 over all lines of a corpus). chars/s is measured in the same run,
after the engine has loaded, over the four corpora.

The gold files are a test set: nothing in the project is tuned on them.
They are looked for in ``../shared/eval/sighan2005`` from the repository root
(or the nearest ``shared/eval/sighan2005`` further up); without them the
benchmark says so and exits cleanly.

``--explore`` also scores the variants tried while choosing the defaults:
plain jieba on the raw text, each OpenCC conversion, HMM on and off, and
full-width folding off.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from bench.corpus import find_eval_data
from worker.config import Settings
from worker.embedded import segment_lines
from worker.stages import keywords, segment

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
CORPORA = [  # (name, script, file)
    ("AS", "Trad", "as_testing_gold.utf8"),
    ("CityU", "Trad", "cityu_test_gold.utf8"),
    ("PKU", "Simp", "pku_test_gold.utf8"),
    ("MSR", "Simp", "msr_test_gold.utf8"),
]
CONVERSIONS = ("t2s", "tw2s", "hk2s", "tw2sp")


def read_gold(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def spans(words: Iterable[str]) -> set[tuple[int, int]]:
    out, cursor = set(), 0
    for word in words:
        out.add((cursor, cursor + len(word)))
        cursor += len(word)
    return out


class Score:
    def __init__(self) -> None:
        self.correct = self.gold = self.found = self.chars = 0
        self.misaligned = 0
        self.seconds = 0.0
        self.pos_seconds = 0.0  # the same input through --pos

    def add(self, gold: list[str], found: list[str]) -> None:
        if "".join(found) != "".join(gold):
            self.misaligned += 1  # scored anyway: its spans simply will not match
        g, f = spans(gold), spans(found)
        self.correct += len(g & f)
        self.gold += len(g)
        self.found += len(f)
        self.chars += sum(map(len, gold))

    @property
    def prf(self) -> tuple[float, float, float]:
        p = self.correct / self.found if self.found else 0.0
        r = self.correct / self.gold if self.gold else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_command(engine_name: str, gold: list[list[str]], settings: Settings) -> Score:
    """Score the ``newsflow segment`` code path on one corpus."""
    inputs = ["".join(words) for words in gold]
    score = Score()
    started = time.perf_counter()
    outputs = list(segment_lines(inputs, engine_name, settings, pos=False))
    score.seconds = time.perf_counter() - started
    for words, line in zip(gold, outputs, strict=True):
        score.add(words, [w for w in line.split("  ") if w])
    started = time.perf_counter()
    for _ in segment_lines(inputs, engine_name, settings, pos=True):
        pass
    score.pos_seconds = time.perf_counter() - started
    return score


def score_function(cut: Callable[[str], list[str]], gold: list[list[str]]) -> Score:
    score = Score()
    started = time.perf_counter()
    found = [cut("".join(words)) for words in gold]
    score.seconds = time.perf_counter() - started
    for words, words_found in zip(gold, found, strict=True):
        score.add(words, words_found)
    return score


def print_table(title: str, rows: list[tuple[str, str, Score]]) -> None:
    print(f"\n{title}")
    print(f"{'corpus':<7} {'script':<6} {'P':>6} {'R':>6} {'F1':>6} {'chars/s':>10} {'--pos chars/s':>14}")
    for name, script, s in rows:
        p, r, f = s.prf
        note = f"  ({s.misaligned} lines misaligned)" if s.misaligned else ""
        speed = f"{s.chars / s.seconds:10,.0f} {s.chars / s.pos_seconds:14,.0f}"
        print(f"{name:<7} {script:<6} {p:6.3f} {r:6.3f} {f:6.4f} {speed}{note}")
    chars = sum(s.chars for *_, s in rows)
    seconds = sum(s.seconds for *_, s in rows)
    pos_seconds = sum(s.pos_seconds for *_, s in rows)
    print(f"{'all':<35} {chars / seconds:10,.0f} {chars / pos_seconds:14,.0f}")


def explore(data: dict[str, list[list[str]]], engine_name: str) -> None:
    """The variants tried while choosing the defaults, for the record."""
    rows: list[tuple[str, dict[str, float]]] = []
    eng = segment.engine(engine_name)
    rows.append(
        (
            "raw text, engine alone",
            {name: score_function(eng.cut, gold).prf[2] for name, gold in data.items()},
        )
    )
    for conversion in CONVERSIONS:
        for hmm in (True, False):
            for fold in (True, False):
                e = segment.engine(engine_name, hmm=hmm)
                label = f"{conversion}, HMM {'on' if hmm else 'off'}, fold {'on' if fold else 'off'}"

                def cut(text: str, e: segment.Engine = e, c: str = conversion, f: bool = fold) -> list[str]:
                    return segment.cut(text, segment.convert(text, c), e, fold=f)

                rows.append((label, {name: score_function(cut, gold).prf[2] for name, gold in data.items()}))
                print(f"  {label}: " + "  ".join(f"{n} {v:.4f}" for n, v in rows[-1][1].items()), flush=True)
    print(f"\nvariants, engine {engine_name}, F1")
    print(f"{'variant':<30} " + " ".join(f"{name:>6}" for name in data))
    for label, f1 in rows:
        print(f"{label:<30} " + " ".join(f"{f1[name]:6.4f}" for name in data))


def engine_agreement(settings: Settings) -> None:
    """Where jieba-rs and jieba differ on the sample corpus."""
    texts: list[str] = []
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix == ".jsonl":
            texts += [json.loads(r)["text"] for r in path.read_text(encoding="utf-8").splitlines() if r]
        elif path.suffix == ".txt":
            texts.append(path.read_text(encoding="utf-8"))
    lines = [line for text in texts for line in text.splitlines()]
    cut_a = list(segment_lines(lines, "jieba", settings, pos=False))
    cut_b = list(segment_lines(lines, "jieba-rs", settings, pos=False))
    a, b = segment.engine("jieba"), segment.engine("jieba-rs")
    lex = keywords.lexicon(settings.user_stopwords)
    seg_differs = pos_same = pos_total = kw_overlap = kw_total = 0
    for text in texts:
        simplified = segment.to_simplified(text)
        ta, tb = segment.tag(text, simplified, a), segment.tag(text, simplified, b)
        sa, sb = {(w, s): p for w, p, s in ta}, {(w, s): p for w, p, s in tb}
        seg_differs += len(set(sa) ^ set(sb))
        shared = set(sa) & set(sb)
        pos_total += len(shared)
        pos_same += sum(sa[k] == sb[k] for k in shared)
        ka = [k["w"] for k in keywords.keywords(ta, simplified, lex, text=text)]
        kb = [k["w"] for k in keywords.keywords(tb, simplified, lex, text=text)]
        kw_overlap += len(set(ka) & set(kb))
        kw_total += len(ka)
    same = sum(x == y for x, y in zip(cut_a, cut_b, strict=True))
    print(f"\njieba-rs vs jieba on {SAMPLES.name}/ ({len(texts)} articles, {len(lines)} lines)")
    print(f"  cut: {same}/{len(lines)} lines identical")
    print(f"  tag: {seg_differs} tokens found by only one engine")
    print(f"  POS: same on {pos_same}/{pos_total} tokens both engines found")
    print(f"  keywords (top 10): {kw_overlap}/{kw_total} shared")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.seg_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder holding the SIGHAN 2005 *_gold.utf8 files")
    parser.add_argument("--engines", default="jieba,jieba-rs", help="comma-separated engines to score")
    parser.add_argument("--explore", action="store_true", help="also score the variants tried")
    args = parser.parse_args(argv)

    data_dir = find_eval_data("sighan2005", args.data)
    if data_dir is None or not data_dir.is_dir():
        print("seg_eval: SIGHAN 2005 gold files not found (../shared/eval/sighan2005); skipping.")
        return 0
    data = {name: read_gold(data_dir / file) for name, _script, file in CORPORA if (data_dir / file).exists()}
    if not data:
        print(f"seg_eval: no SIGHAN 2005 gold files in {data_dir}; skipping.")
        return 0
    settings = Settings.from_env()
    engines = [e for e in args.engines.split(",") if e]
    for name in engines:
        if not segment.has_engine(name):
            print(f"seg_eval: engine {name} is not installed (pip install 'newsflow[fast]'); skipping it.")
    engines = [e for e in engines if segment.has_engine(e)]
    print(
        f"SIGHAN 2005 from {data_dir}; conversion {segment.CONVERSION}; user dict {settings.user_dict or '-'}"
    )
    results: dict[str, dict[str, float]] = {}
    for name in engines:
        for pos in (False, True):  # load the engine and OpenCC outside the timing
            list(segment_lines(["預熱，预热"], name, settings, pos=pos))
        rows = []
        for corpus, script, _file in CORPORA:
            if corpus in data:
                rows.append((corpus, script, score_command(name, data[corpus], settings)))
        results[name] = {corpus: s.prf[2] for corpus, _, s in rows}
        print_table(f"engine {name} (newsflow segment --engine {name})", rows)
    if "jieba" in results and "jieba-rs" in results:
        print(
            "\nF1 jieba-rs minus jieba: "
            + "  ".join(f"{c} {results['jieba-rs'][c] - results['jieba'][c]:+.4f}" for c in results["jieba"])
        )
        engine_agreement(settings)
    if args.explore:
        for name in engines:
            explore(data, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
