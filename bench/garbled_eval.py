"""Score the garbled-text check on real articles and on their mis-decoded copies.

    python -m bench.garbled_eval [--data DIR] [--min-chars 200]

Real articles are built from the four SIGHAN 2005 test sets (read from
``../shared/eval/sighan2005`` at run time; never copied into the project):
each file's lines, spaces removed, joined in order into articles of at least
``--min-chars`` characters. Each real article is then garbled four ways, the
ways real feeds do it:

- UTF-8 bytes read as GB18030 (a feed that declares GBK and sends UTF-8);
- Big5 bytes read as GBK (Simplified articles made Traditional first);
- GB18030 bytes read as Big5 (Traditional articles made Simplified first);
- GBK bytes read as UTF-8 with errors replaced: mostly U+FFFD.

Every decoder replaces what it cannot read (``errors="replace"``), as feed
readers do. The check (:func:`worker.stages.garbled.check`) must reject none
of the real articles and catch at least 95% of each garbled kind. Nothing in
the check was tuned on these files: its thresholds come from the project's
own copy and from what mis-decoding does to any text.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

from bench.dedupe_corpus import SIGHAN, line_groups
from worker.stages import garbled
from worker.stages.segment import convert

FILES = ("as_testing_gold.utf8", "cityu_test_gold.utf8", "pku_test_gold.utf8", "msr_test_gold.utf8")


GARBLINGS = {
    "UTF-8 read as GB18030": lambda t: t.encode("utf-8").decode("gb18030", "replace"),
    "Big5 read as GBK": lambda t: convert(t, "s2t").encode("big5", "replace").decode("gbk", "replace"),
    "GB18030 read as Big5": lambda t: convert(t, "t2s").encode("gb18030").decode("big5", "replace"),
    "GBK read as UTF-8 (U+FFFD)": lambda t: (
        convert(t, "t2s").encode("gbk", "replace").decode("utf-8", "replace")
    ),
}


def articles(root: Path, min_chars: int) -> list[tuple[str, str]]:
    """``(corpus, text)`` for every article of every file, lines joined with newlines."""
    return [(name.split("_")[0], text) for name in FILES for text in line_groups(root / name, min_chars)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=SIGHAN, help="the SIGHAN 2005 directory")
    ap.add_argument("--min-chars", type=int, default=200, help="characters per real article, at least")
    args = ap.parse_args(argv)
    missing = [n for n in FILES if not (args.data / n).is_file()]
    if missing:
        print(f"SIGHAN 2005 test sets not found in {args.data} ({', '.join(missing)}): nothing to score")
        return 0

    real = articles(args.data, args.min_chars)
    garbled.common_characters()
    started = time.perf_counter()
    rejected = Counter()
    repaired = 0
    worst: list[tuple[float, str]] = []
    for corpus, text in real:
        verdict = garbled.check(text)
        if verdict.garbled:
            rejected[corpus] += 1
            print(f"  real article rejected ({corpus}): {verdict.garbled}\n    {text[:80]}")
        repaired += verdict.repaired is not None
        worst.append((garbled.rare_share(text)[0], corpus))
    chars = sum(len(t) for _, t in real)
    real_seconds = time.perf_counter() - started
    by_corpus = Counter(c for c, _ in real)
    print(
        f"{len(real):,} real articles from {args.data} "
        f"({', '.join(f'{c} {n}' for c, n in by_corpus.items())}), "
        f"{chars / len(real):,.0f} characters on average; checked at {chars / real_seconds:,.0f} chars/s"
    )
    worst.sort(reverse=True)
    print(
        f"  rejected {sum(rejected.values())}, repaired {repaired}; highest rare share "
        f"{worst[0][0]:.3f} ({worst[0][1]}), 99th percentile {worst[len(worst) // 100][0]:.3f}; "
        f"threshold {garbled.RARE_SHARE}"
    )

    caught_all = total_all = 0
    print(f"\n  {'garbled kind':<28}{'caught':>8}{'of':>7}{'recall':>9}   cause named right")
    ok = sum(rejected.values()) == 0
    for kind, garble in GARBLINGS.items():
        caught = named = 0
        for _, text in real:
            verdict = garbled.check(garble(text))
            if verdict.garbled:
                caught += 1
                named += kind.split(" (")[0].replace("GBK read as UTF-8", "U+FFFD") in verdict.garbled or (
                    "U+FFFD" in kind and "U+FFFD" in verdict.garbled
                )
        recall = caught / len(real)
        ok = ok and recall >= 0.95
        caught_all += caught
        total_all += len(real)
        print(f"  {kind:<28}{caught:>8,}{len(real):>7,}{recall:>9.3f}   {named / max(1, caught):.3f}")
    flagged = caught_all + sum(rejected.values())
    print(
        f"\n  precision {caught_all / max(1, flagged):.4f} ({caught_all:,} garbled caught, "
        f"{sum(rejected.values())} real rejected); recall {caught_all / total_all:.4f} over all kinds"
    )
    print(f"  targets (0 real rejected, >= 95% of each kind caught): {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
