"""Soak: a steady stream through 2 workers for a while; does anything grow that should not?

    python -m bench.soak                      # 10 minutes at 20 articles/s
    python -m bench.soak --minutes 2 --rate 50

Starts its own redis-server and 2 ``newsflow worker`` processes, submits at a
steady rate, and every ``--every`` seconds prints the workers' resident memory
(parents and pool children), the number of keys under the prefix that have no
TTL, Redis memory and the results so far. At the end it waits for every result
and prints articles sent, results, duplicate entries, dead entries, and the
growth of worker RSS and of TTL-less keys between the first sample after
warm-up and the last.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import psutil

from producer.client import Client
from tests.support import RedisServer, Worker
from worker.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def rss_mb(workers: list[Worker]) -> float:
    total = 0
    for w in workers:
        parent = psutil.Process(w.proc.pid)
        for p in [parent, *parent.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
    return total / 2**20


def keys_without_ttl(client: Client) -> list[str]:
    r = client.redis
    out = []
    for key in r.scan_iter(match=f"{client.settings.prefix}:*", count=1000):
        if r.ttl(key) == -1:
            out.append(key.decode())
    return sorted(out)


def result_counts(client: Client) -> Counter[str]:
    seen: Counter[str] = Counter()
    for _, fields in client.redis.xrange(client.keys.results):
        seen[fields[b"id"].decode()] += 1
    return seen


def sentences() -> list[str]:
    """Real sentences from the sample articles, to build distinct but natural texts."""
    found = []
    for path in sorted((ROOT / "samples").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        found += [s.strip() + "。" for s in text.split("。") if len(s.strip()) > 8]
    return found


SENTENCES = sentences()


def article(i: int, run: str) -> dict[str, str]:
    n = len(SENTENCES)
    picked = [SENTENCES[(i * 31 + k * 17) % n] for k in range(4)]
    return {"id": f"soak-{run}-{i:07d}", "text": f"本報訊（第{i}則）" + "".join(picked)}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=20.0, help="articles per second")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="newsflow-soak-"))
    server = RedisServer(workdir / "redis", "--appendonly", "yes", "--appendfsync", "everysec")
    prefix = f"soak{uuid.uuid4().hex[:6]}"
    env = {"NEWSFLOW_REDIS_URL": server.url, "NEWSFLOW_PREFIX": prefix, "NEWSFLOW_LOG_FORMAT": "json"}
    workers = [Worker(env, 1, f"soak{i}", workdir) for i in range(2)]
    client = Client(Settings.from_env(env).with_(batch_size=10))
    run = uuid.uuid4().hex[:6]
    sent = []
    samples = []
    try:
        started = time.monotonic()
        end = started + args.minutes * 60
        next_sample = started + min(args.every, args.minutes * 15)
        i = 0
        print(f"{'t(s)':>6} {'sent':>7} {'results':>8} {'rss MB':>8} {'no-TTL keys':>11} {'redis MB':>9}")
        while time.monotonic() < end:
            due = int((time.monotonic() - started) * args.rate)
            if due > i:
                sent.extend(client.submit_many(article(j, run) for j in range(i, due)))
                i = due
            if time.monotonic() >= next_sample:
                info = client.redis.info("memory")
                done = client.redis.xlen(client.keys.results)
                sample = (
                    round(time.monotonic() - started),
                    len(sent),
                    done,
                    rss_mb(workers),
                    keys_without_ttl(client),
                    info["used_memory"] / 2**20,
                )
                samples.append(sample)
                print(
                    f"{sample[0]:>6} {sample[1]:>7} {sample[2]:>8} {sample[3]:>8.1f} {len(sample[4]):>11} "
                    f"{sample[5]:>9.1f}",
                    flush=True,
                )
                next_sample += args.every
            time.sleep(0.05)  # pacing the steady rate
        results = client.wait(sent, timeout=300)
        counts = result_counts(client)
        dead = client.redis.xlen(client.keys.dead)
        first, last = samples[min(1, len(samples) - 1)], samples[-1]
        print(
            f"\nsent {len(sent)}, results {len(results)}, duplicate entries "
            f"{sum(c - 1 for c in counts.values())}, dead {dead}, "
            f"attempt counters left {client.redis.hlen(client.keys.attempts)}"
        )
        print(
            f"worker RSS {first[3]:.1f} MB at {first[0]}s -> {last[3]:.1f} MB at {last[0]}s "
            f"({last[3] - first[3]:+.1f} MB)"
        )
        print(f"keys without TTL {len(first[4])} -> {len(last[4])}: {', '.join(last[4])}")
        grown = set(last[4]) - set(first[4])
        if grown:
            print(f"new keys without TTL: {sorted(grown)}")
        return 0
    finally:
        for w in workers:
            w.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
