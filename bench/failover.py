"""Failover figures: what a Redis failover costs newsflow, and what NEWSFLOW_MIN_REPLICAS=1 costs.

    python -m bench.failover scenario   # 2,000 articles through a killed primary, at N=1 and N=0
    python -m bench.failover cost       # submit and worker throughput/latency at N=0 vs N=1

``scenario`` runs tests/failover.py's scenario at full size (2,000 articles,
100 sent again under a second id, 8 submit calls, 100 through the inbox) and
prints, for NEWSFLOW_MIN_REPLICAS=1 and 0: confirmed articles lost, the time
from the kill to the new master and to the first result written after it.

``cost`` starts a primary with one replica on this machine (the replica's
round trip is loopback: a replica in another zone costs its network round
trip per confirmed batch on top) and measures, in one run, N=0 then N=1:
``Client.submit_many`` throughput and the latency of one batch put, and how
long two worker processes take to process the same articles.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests import failover
from tests.support import RedisServer, Worker, wait_for
from worker.config import Settings
from worker.keys import Keys


def scenario() -> None:
    for replicas in (1, 0):
        with tempfile.TemporaryDirectory() as folder:
            out = failover.run(
                Path(folder),
                articles=2000,
                duplicates=100,
                calls=8,
                inbox=100,
                min_replicas=replicas,
                settle_timeout=120 if replicas else 60,
                say=lambda line: print("  " + line, file=sys.stderr),
            )
        twice = sum(1 for i, n in out.entries.items() if i in out.confirmed and n != 1)
        bad_pairs = sum(
            1 for a, b in out.pairs if [out.statuses.get(a), out.statuses.get(b)].count("unique") != 1
        )
        print(
            f"NEWSFLOW_MIN_REPLICAS={replicas}: {len(out.confirmed)} confirmed, {len(out.lost)} lost, "
            f"{twice} with other than one result entry, {bad_pairs} duplicate pairs not one unique; "
            f"new master {out.failover_s}s after the kill, first result {out.kill_to_result_s}s after it"
        )


def cost(n: int = 2000) -> None:
    from producer.client import Client

    texts = failover.texts(n + 50, seed=5)
    with tempfile.TemporaryDirectory() as folder:
        primary = RedisServer(Path(folder) / "primary")
        replica = RedisServer(Path(folder) / "replica", "--replicaof", "127.0.0.1", str(primary.port))
        wait_for(lambda: primary.client().info("replication")["connected_slaves"] >= 1, 20, "the replica")
        r = primary.client()
        try:
            for replicas in (0, 1):
                prefix = f"cost{replicas}"
                env = {
                    "NEWSFLOW_REDIS_URL": primary.url,
                    "NEWSFLOW_PREFIX": prefix,
                    "NEWSFLOW_MIN_REPLICAS": str(replicas),
                    "NEWSFLOW_ENTITIES": "pos",
                    "NEWSFLOW_QUEUE_BOUND": str(n * 2),
                }
                results = Keys(prefix).results
                client = Client(Settings.from_env(env))
                workers = [Worker(env, 1, f"cost{replicas}{i}", Path(folder)) for i in range(2)]
                try:
                    # Warm up: the workers loaded and the client's Celery app connected.
                    client.submit_many({"id": f"w{i}", "text": t} for i, t in enumerate(texts[n:]))
                    wait_for(lambda r=r, results=results: r.xlen(results) >= 50, 300, "the warm-up")
                    articles = ({"id": f"c{i}", "text": t} for i, t in enumerate(texts[:n]))
                    batches = list(client.submitter.batches(articles))
                    puts: list[float] = []
                    started = time.perf_counter()
                    for batch in batches:
                        t = time.perf_counter()
                        client.submitter.enqueue(batch)
                        puts.append((time.perf_counter() - t) * 1000)
                    submit_s = time.perf_counter() - started
                    wait_for(lambda r=r, results=results: r.xlen(results) >= n + 50, 600, "every result")
                    work_s = time.perf_counter() - started
                finally:
                    for w in workers:
                        w.stop()
                puts.sort()
                p99 = puts[int(len(puts) * 0.99)]
                print(
                    f"NEWSFLOW_MIN_REPLICAS={replicas}: submit {n / submit_s:,.0f} articles/s, "
                    f"batch put p50 {statistics.median(puts):.2f} ms p99 {p99:.2f} ms; "
                    f"submitted to last result, 2 workers: {n / work_s:,.0f} articles/s"
                )
        finally:
            replica.stop()
            primary.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("scenario", "cost"))
    parser.add_argument("-n", type=int, default=2000, help="articles for `cost`")
    args = parser.parse_args()
    scenario() if args.what == "scenario" else cost(args.n)


if __name__ == "__main__":
    main()
