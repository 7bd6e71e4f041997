"""Cost of the dedupe stage per 2,000-character article.

    python -m bench.dedupe_speed [--articles 2000] [--chars 2000]

The dedupe stage is: letters, exact fingerprint, MinHash sketch (rensa), and the
decision. It is timed in CPU seconds of this process (``time.process_time``),
once with the in-memory index and once with the Redis index against a
throwaway redis-server, whose own time per call and number of commands per
article come from ``INFO commandstats``. The normalise stage
(``dewrap``, ``drop_repeats``) is timed alongside, for scale.

Articles are built from ``../shared/eval/sighan2005`` when present, else from
the project's samples; half are copies of an earlier one with 2% of their
letters edited, so the near-duplicate path is exercised too.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from bench.dedupe_corpus import SIGHAN, labelled_set, scattered_edits
from tests.support import RedisServer
from worker.dedupe.index import MemoryIndex, Registration
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages import fingerprint as fp
from worker.stages.normalise import dewrap, drop_repeats
from worker.stages.segment import to_simplified

WINDOW = 7 * 86_400


def articles(n: int, chars: int, sighan: Path) -> list[str]:
    data = labelled_set(100, sighan)
    texts = [a.text for a in data.originals + data.negatives]
    rng = random.Random(1)
    edit = scattered_edits(0.02)
    pool = "".join(texts)[:5000]
    out: list[str] = []
    while len(out) < n:
        if out and rng.random() < 0.5:
            out.append(edit(rng.choice(out), rng, pool))
            continue
        parts: list[str] = []
        while sum(map(len, parts)) < chars:
            parts.append(rng.choice(texts))
        out.append("\n".join(parts)[:chars])
    return out


def stage(index, article_id: str, simplified: str) -> str:
    letters = fp.letters(simplified)
    return index.decide(Registration(article_id, fp.fingerprint(letters), fp.minhash(letters))).status


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=2000)
    ap.add_argument("--chars", type=int, default=2000)
    ap.add_argument("--sighan", type=Path, default=SIGHAN)
    args = ap.parse_args(argv)

    texts = articles(args.articles, args.chars, args.sighan)
    started = time.process_time()
    normalised = [drop_repeats(dewrap(t))[0] for t in texts]
    normalise_ms = (time.process_time() - started) / len(texts) * 1000
    simplified = [to_simplified(t) for t in normalised]
    print(
        f"{len(texts)} articles of {args.chars} characters; normalise (dewrap + drop_repeats) "
        f"{normalise_ms:.3f} ms CPU per article"
    )

    started = time.process_time()
    for t in simplified:
        letters = fp.letters(t)
        fp.fingerprint(letters)
    letters_ms = (time.process_time() - started) / len(texts) * 1000
    started = time.process_time()
    for t in simplified:
        fp.minhash(fp.letters(t))
    sketch_ms = (time.process_time() - started) / len(texts) * 1000 - letters_ms
    print(
        f"  letters + exact fingerprint {letters_ms:.3f} ms, MinHash sketch {sketch_ms:.3f} ms "
        "CPU per article"
    )

    memory = MemoryIndex(WINDOW)
    started = time.process_time()
    statuses = [stage(memory, f"a{i}", t) for i, t in enumerate(simplified)]
    memory_ms = (time.process_time() - started) / len(texts) * 1000
    print(
        f"  dedupe stage, memory index: {memory_ms:.3f} ms CPU per article "
        f"({statuses.count('unique')} unique, {statuses.count('near_duplicate')} near, "
        f"{statuses.count('duplicate')} exact)"
    )

    server = RedisServer(Path(tempfile.mkdtemp(prefix="dedupe-speed-")))
    try:
        client = server.client()
        index = RedisIndex(client, Keys("bench"), WINDOW)
        stage(index, "warm-up", "预热")
        client.config_resetstat()
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        redis_statuses = [stage(index, f"a{i}", t) for i, t in enumerate(simplified)]
        cpu_ms = (time.process_time() - started_cpu) / len(texts) * 1000
        wall_ms = (time.perf_counter() - started_wall) / len(texts) * 1000
        stats = client.info("commandstats")
        # commandstats also counts the commands a script runs; the client sends only scripts.
        sent = sum(stats.get(k, {}).get("calls", 0) for k in ("cmdstat_evalsha", "cmdstat_eval"))
        server_us = sum(stats.get(k, {}).get("usec", 0) for k in ("cmdstat_evalsha", "cmdstat_eval"))
        print(
            f"  dedupe stage, redis index: {cpu_ms:.3f} ms CPU per article in this process, "
            f"{wall_ms:.3f} ms wall; {sent / len(texts):.2f} round trips (EVALSHA) per article; "
            f"redis-server {server_us / len(texts):.0f} us per article"
        )
        print(f"  both indexes decided alike: {redis_statuses == statuses}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
