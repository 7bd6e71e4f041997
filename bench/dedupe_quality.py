"""Dedupe quality: recall per kind of copy and precision, through the real indexes.

    python -m bench.dedupe_quality [--per-file 100] [--threshold 0.5] [--sighan DIR]

Builds the labelled set of :mod:`bench.dedupe_corpus` (at least 300 originals
when ``../shared/eval/sighan2005`` is present; the project's own corpus alone
otherwise), then, for each kind of variant, a fresh index: every original and
hard negative is decided first (all must be ``unique``), then one variant of
each original, under its own id. A variant is recalled when it is a
``duplicate`` or ``near_duplicate`` of its own original. Developing stories
come in both orders: ``developing_early`` (a story's first 40-70% decided
first, the whole later: the whole must point at it) and ``developing_cut``
(the whole first, its first 70% later). Precision counts every
flag: a flagged original or hard negative, or a variant pointing at the wrong
original, is a false positive.

The index is the Redis + Lua one, against a throwaway redis-server this
benchmark starts, and the in-memory one; their decisions must agree. A sweep
of the threshold over the estimated similarities follows, which is how the
default threshold was chosen.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from bench.dedupe_corpus import (
    BEFORE_ORIGINAL,
    MIN_SENTENCES,
    SIGHAN,
    Article,
    labelled_set,
    sentences,
    variants,
)
from worker.dedupe.index import MemoryIndex, band_fields, matches, short_sketch
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages import fingerprint as fp
from worker.stages.fingerprint import NUM_PERM
from worker.stages.normalise import dewrap, drop_repeats
from worker.stages.segment import to_simplified

WINDOW = 7 * 86_400
TARGETS = {
    "rewrap": 1.0,
    "punctuation": 1.0,
    "script": 1.0,
    "boilerplate": 0.99,
    "edits_2%": 0.99,
    "edits_5%": 0.95,
    "sentences_10%": 0.99,
    "developing_early": 0.95,
    "developing_cut": 0.95,
}
# Set by --jaccard-only: entries without 3-gram counts or lead, decided as
# before containment (the "before" column of docs/real-feeds.md).
JACCARD_ONLY = False


def entry(article_id: str, text: str):
    """The dedupe entry exactly as worker.pipeline.process makes it."""
    from worker.dedupe.index import Registration

    normalised, _ = drop_repeats(dewrap(text))
    made = Registration.of(article_id, fp.letters(to_simplified(normalised)))
    return Registration(made.id, made.fingerprint, made.sketch) if JACCARD_ONLY else made


def make_variants(originals: list[Article], seed: int) -> dict[str, list[tuple[str, object]]]:
    pool = "".join(a.text for a in originals[-50:])
    pool = "".join(c for c in pool if "\u4e00" <= c <= "\u9fff")
    out: dict[str, list[tuple[str, object]]] = {}
    for name, fn in variants([a.text for a in originals]).items():
        rng = random.Random(f"{seed}:{name}")
        rows = []
        for a in originals:
            if name.startswith(("sentences", "developing")) and len(sentences(a.text)) < MIN_SENTENCES:
                continue
            rows.append((a.id, entry(f"{a.id}~{name}", fn(a.text, rng, pool))))
        if rows:
            out[name] = rows
    return out


def run(index_factory, base: list, named: dict[str, list]) -> tuple[dict, int, int, int, dict]:
    """Recall per variant (and the share recalled as exact duplicates), true and
    false positives, and every decision (to compare the indexes)."""
    recall: dict[str, float] = {}  # variant kind -> share recalled
    exact: dict[str, int] = defaultdict(int)  # variant kind -> recalled as exact duplicates
    tp = fp_ = 0
    decisions = {}
    base_fp = 0
    by_id = {e.id: e for e in base}
    for name, rows in named.items():
        index = index_factory()
        first, later = base, rows
        if name in BEFORE_ORIGINAL:  # the variants first; then each original must point at its variant
            held = {original for original, _ in rows}
            first = [e for e in base if e.id not in held] + [e for _, e in rows]
            later = [(e.id, by_id[original]) for original, e in rows]
        for e in first:
            d = index.decide(e)
            decisions[(name, e.id)] = d
            base_fp += d.status != "unique"
        hits = 0
        for earlier, e in later:
            d = index.decide(e)
            decisions[(name, e.id)] = d
            if d.status != "unique":
                if d.duplicate_of == earlier:
                    hits += 1
                    tp += 1
                    exact[name] += d.status == "duplicate"
                else:
                    fp_ += 1
        recall[name] = hits / len(rows)
    recall = {n: (r, exact[n] / len(named[n])) for n, r in recall.items()}
    return recall, tp, fp_, base_fp // len(named), decisions


def sweep(
    originals: list[Article],
    base_entries: dict[str, object],
    named: dict[str, list],
    negatives: list[Article],
) -> None:
    """Recall and false-positive counts by threshold, from the estimated similarities alone."""
    shorts = {i: short_sketch(e.sketch) for i, e in base_entries.items()}
    est: dict[str, list[float]] = defaultdict(list)
    for name, rows in named.items():
        for original, e in rows:
            est[name].append(matches(shorts[original], short_sketch(e.sketch)) / NUM_PERM)
    # Hard negatives against their neighbours in the same source, and every
    # pair of originals that share an LSH band.
    neg: list[float] = []
    order = [a.id for a in originals]
    by_source: dict[str, list[str]] = defaultdict(list)
    for a in originals:
        by_source[a.source].append(a.id)
    for a in negatives:
        n = int(a.id.rsplit("/", 1)[1]) // 2
        ids = by_source[a.source]
        for j in (n, n + 1):
            if j < len(ids):
                neg.append(matches(shorts[ids[j]], short_sketch(base_entries[a.id].sketch)) / NUM_PERM)
    bands = defaultdict(set)
    for i in order:
        for field, _ in band_fields(base_entries[i].sketch):
            bands[field].add(i)
    pairs = {tuple(sorted(p)) for ids in bands.values() for p in _pairs(sorted(ids))}
    neg.extend(matches(shorts[a], shorts[b]) / NUM_PERM for a, b in pairs)
    print(
        f"\nthreshold sweep (estimated similarity; {len(neg)} same-source or same-band negative pairs, "
        f"highest {max(neg, default=0):.3f}):"
    )
    names = list(named)
    print("  thr  " + " ".join(f"{n[:13]:>13}" for n in names) + "  neg>=thr")
    for thr in (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7):
        cells = " ".join(f"{sum(s >= thr for s in est[n]) / len(est[n]):>13.3f}" for n in names)
        print(f"  {thr:.2f} {cells}  {sum(s >= thr for s in neg):>8}")
    print(
        "  mean estimated similarity per variant: "
        + ", ".join(f"{n} {sum(est[n]) / len(est[n]):.2f}" for n in names)
    )


def _pairs(ids: list[str]):
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            yield a, b


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-file", type=int, default=100, help="originals taken from each SIGHAN file")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--sighan", type=Path, default=SIGHAN)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--jaccard-only", action="store_true", help="decide on Jaccard alone, as before containment"
    )
    args = ap.parse_args(argv)
    global JACCARD_ONLY
    JACCARD_ONLY = args.jaccard_only

    data = labelled_set(args.per_file, args.sighan)
    if not data.sighan:
        print(
            f"note: {args.sighan} not found; the project's own corpus alone ({len(data.originals)} "
            "originals, below the 300 the targets are stated for)"
        )
    base_articles = data.originals + data.negatives
    base_articles.sort(key=lambda a: a.id)
    base = [entry(a.id, a.text) for a in base_articles]
    named = make_variants(data.originals, args.seed)
    print(
        f"{len(data.originals)} originals, {len(data.negatives)} hard negatives; variants per kind: "
        + ", ".join(f"{n} {len(r)}" for n, r in named.items())
        + f" (sentence kinds: originals of {MIN_SENTENCES}+ sentences)"
    )

    memory = run(lambda: MemoryIndex(WINDOW, args.threshold), base, named)
    results = {"memory": memory}
    server = _redis_server()
    if server is not None:
        import uuid

        client = server.client()
        results["redis"] = run(
            lambda: RedisIndex(client, Keys(f"q{uuid.uuid4().hex[:8]}"), WINDOW, threshold=args.threshold),
            base,
            named,
        )
        server.stop()
        same = results["redis"][4] == memory[4]
        print(f"redis and memory indexes made the same decisions: {same}")
        if not same:
            return 1
    else:
        print("redis-server not found: memory index only")

    recall, tp, fps, base_fp, _ = results.get("redis", memory)
    print(f"\nthreshold {args.threshold}, index {'redis' if 'redis' in results else 'memory'}:")
    print(f"  {'variant':<15}{'recall':>8}{'exact':>8}{'target':>8}")
    for name, (r, ex) in recall.items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("  ok" if r >= target else "  MISS")
        print(f"  {name:<15}{r:>8.3f}{ex:>8.3f}{'' if target is None else f'{target:>8.2f}'}{mark}")
    flagged = tp + fps + base_fp
    precision = tp / flagged if flagged else 1.0
    print(
        f"  precision {precision:.4f} ({tp} right, {fps} variants pointing at the wrong original, "
        f"{base_fp} originals or hard negatives flagged)"
    )
    sweep(data.originals, {e.id: e for e in base}, named, data.negatives)
    return 0


def _redis_server():
    if shutil.which("redis-server") is None:
        return None
    from tests.support import RedisServer

    return RedisServer(Path(tempfile.mkdtemp(prefix="dedupe-quality-")))


if __name__ == "__main__":
    sys.exit(main())
