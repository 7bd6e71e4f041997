"""Dedupe state in Redis: bytes per article, and the cost of one decision.

    python -m bench.dedupe_memory [--articles 100000] [--days 7] [--shards 4096]

Starts a throwaway redis-server, drives :class:`RedisIndex` directly with
synthetic articles (random MinHash sketches: every one unique, so every one is
registered: the worst case for memory) spread evenly over ``--days`` of a
simulated clock, and reports ``INFO used_memory`` before and after, per
article, with the encoding of the shard hashes and what one key of each kind
holds (``MEMORY USAGE``).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tests.support import Clock, RedisServer
from worker.dedupe.index import BANDS, LEAD, Registration
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages.fingerprint import NUM_PERM

WINDOW = 7 * 86_400


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=7.0, help="simulated time the articles arrive over")
    ap.add_argument("--shards", type=int, default=4096)
    args = ap.parse_args(argv)

    server = RedisServer(Path(tempfile.mkdtemp(prefix="dedupe-memory-")))
    try:
        client = server.client()
        clock = Clock()
        keys = Keys("newsflow")
        index = RedisIndex(client, keys, WINDOW, shards=args.shards, clock=clock)
        rng = np.random.default_rng(1)
        ids = random.Random(1)
        step = args.days * 86_400 / args.articles
        index.decide(
            Registration("warm-up", "00" * 16, rng.integers(0, 2**32, NUM_PERM, dtype="<u4").tobytes())
        )
        client.flushdb()
        before = client.info("memory")["used_memory"]
        started = time.perf_counter()
        for n in range(args.articles):
            article_id = f"feed/2026-11-{n % 28 + 1:02d}/{n:07d}-{ids.getrandbits(32):08x}"
            sketch = rng.integers(0, 2**32, NUM_PERM, dtype="<u4").tobytes()
            # A 3-gram count and a lead, as real entries carry (worker.dedupe.index.Registration.of).
            lead = "".join(chr(0x4E00 + ids.randrange(0x5000)) for _ in range(LEAD))
            size = ids.randrange(300, 3000)
            index.decide(Registration(article_id, f"{ids.getrandbits(128):032x}", sketch, size, lead))
            clock.now += step
        elapsed = time.perf_counter() - started
        after = client.info("memory")["used_memory"]
        per = (after - before) / args.articles
        print(
            f"{args.articles} articles over {args.days:g} days, {args.shards} shards per bucket, "
            f"{BANDS} bands: used_memory +{(after - before) / 2**20:.1f} MiB = {per:.0f} bytes per article"
        )
        print(
            f"decide: {elapsed / args.articles * 1e6:.0f} us per article, wall, one EVALSHA each "
            "(client, round trip and Lua together)"
        )
        shard_keys = [k for k in client.scan_iter("newsflow:dd:*", count=10_000) if not k.endswith(b":doc")]
        doc_keys = list(client.scan_iter("newsflow:dd:*:doc"))
        sample = random.Random(2).sample(shard_keys, min(500, len(shard_keys)))
        encodings: dict[str, int] = {}
        lengths = []
        for k in sample:
            enc = client.object("encoding", k).decode()
            encodings[enc] = encodings.get(enc, 0) + 1
            lengths.append(client.hlen(k))
        print(
            f"keys: {len(shard_keys)} shard hashes (sampled encodings {encodings}, "
            f"{np.mean(lengths):.0f} fields on average), {len(doc_keys)} doc hashes"
        )
        shard_bytes = sum(client.memory_usage(k, samples=0) for k in sample) / sum(lengths)
        doc_bytes = sum(client.memory_usage(k, samples=0) for k in doc_keys) / args.articles
        print(
            f"MEMORY USAGE: {shard_bytes:.1f} bytes per exact or band field, "
            f"{doc_bytes:.0f} bytes per doc; "
            f"estimated {shard_bytes * (BANDS + 1) + doc_bytes:.0f} bytes per article"
        )
        ttls = sorted({client.ttl(k) for k in doc_keys})
        print(f"doc hash TTLs (seconds): {ttls}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
