"""Redis bytes per queued article, with no worker running to drain the queue.

Compares newsflow's batches (articles stashed once as compact JSON, the Celery
message naming the batch) with the same articles sent inside Celery messages
(``newsflow.submit`` by name, as a foreign client would).

    python -m bench.queue_bytes [--articles 2000]
"""

from __future__ import annotations

import argparse
import sys

from bench.corpus import stream
from bench.run import Deployment
from producer.client import Client


def measure(n: int) -> dict[str, float]:
    articles = stream(n, duplicate_share=0.0)
    utf8 = sum(len(a["text"].encode()) for a in articles) / n
    deployment = Deployment(1, {})
    deployment.worker.proc.kill()  # nothing may drain the queue while we measure
    deployment.worker.proc.wait()
    try:
        client = Client(deployment.settings)
        r = deployment.redis
        client.submit_many(articles)
        stashed = _bytes_under(r, "bench:*") / n
        r.delete(*r.keys("bench:*"))
        for i in range(0, n, 50):
            client.app.send_task(
                "newsflow.submit", kwargs={"articles": articles[i : i + 50]}, queue=client.keys.queue
            )
        in_message = _bytes_under(r, "bench:*") / n
    finally:
        deployment.stop()
    return {"utf8_bytes": utf8, "newsflow_bytes": stashed, "celery_message_bytes": in_message}


def _bytes_under(r, pattern: str) -> int:
    """What Redis holds for these keys (MEMORY USAGE, values and allocator overhead)."""
    return sum(r.memory_usage(key, samples=0) or 0 for key in r.scan_iter(pattern))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Redis bytes per queued article")
    parser.add_argument("--articles", type=int, default=2000)
    args = parser.parse_args(argv)
    m = measure(args.articles)
    print(f"{args.articles} articles queued, no worker running")
    print(f"  article text, UTF-8:                      {m['utf8_bytes']:8,.0f} B/article")
    print(
        f"  newsflow batch (stash + small message):   {m['newsflow_bytes']:8,.0f} B/article"
        f"  ({m['newsflow_bytes'] / m['utf8_bytes']:.2f}x the text)"
    )
    print(
        f"  articles inside Celery messages:          {m['celery_message_bytes']:8,.0f} B/article"
        f"  ({m['celery_message_bytes'] / m['utf8_bytes']:.2f}x the text)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
