"""Container healthchecks for the bridge and the metrics exporter: ``python -m producer.health``.

The worker answers Celery's ping, and Redis its own; these two services have
no such call, so the compose file asks this module instead. Exit 0 is healthy,
1 is not, with one line saying why (never a password: URLs are redacted).

- ``bridge``: Redis answers with this container's settings, and the inbox is
  being read: no entry waits unread (past the group ``bridge``'s last-delivered
  id) for more than 30 s, unless the queue is at its bound, when the bridges
  hold back on purpose. (Redis before 7.2 lists no consumer until it has read
  an entry, so a consumer's idle time cannot tell a quiet inbox from a dead
  bridge; the age of the oldest unread entry can.) A bridge process that
  exits takes its container down with it, so the container restarts.
- ``metrics``: the exporter answers ``/metrics`` with 200.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

import redis

from worker.config import ConfigError, Settings, redact
from worker.connection import connect
from worker.keys import BRIDGE_GROUP, Keys

# Far longer than a turning bridge loop leaves an entry unread (a read blocks for
# 1 s, a batch is queued in milliseconds), shorter than an operator should wait to hear.
BRIDGE_WAIT_MS = 30_000


def bridge(settings: Settings, wait_ms: int = BRIDGE_WAIT_MS) -> str | None:
    """None if the inbox is being read; else why not.

    Unhealthy when no bridge ever started on this prefix, or when the oldest
    entry that no bridge has read yet is older than ``wait_ms`` while the queue
    has room (under backpressure the bridges hold back on purpose).
    """
    keys = Keys(settings.prefix)
    client = connect(settings.redis_url, decode_responses=True, attempts=1)
    try:
        groups = {g["name"]: g for g in client.xinfo_groups(keys.inbox)}
    except redis.ResponseError:  # no stream yet
        groups = {}
    group = groups.get(BRIDGE_GROUP)
    if group is None:
        return f"no bridge has started on {keys.inbox}"
    unread = client.xrange(keys.inbox, f"({group['last-delivered-id']}", "+", count=1)
    if not unread:
        return None
    seconds, micros = client.time()
    waited = seconds * 1000 + micros // 1000 - int(unread[0][0].partition("-")[0])
    if waited <= wait_ms:
        return None
    limit = max(1, settings.queue_bound // settings.batch_size)
    if int(client.llen(keys.queue_list)) >= limit:
        return None  # backpressure: the bridges wait for room, as they should
    return f"the oldest unread entry of {keys.inbox} has waited {waited / 1000:.0f} s"


def metrics(port: int, host: str = "127.0.0.1") -> str | None:
    """None if the exporter on ``host:port`` answers /metrics with 200; else why not."""
    url = f"http://{host}:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, urllib.error.URLError) as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m producer.health", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("bridge", help="the inbox is being read")
    p = sub.add_parser("metrics", help="the exporter in this container answers /metrics")
    p.add_argument("--port", type=int, default=None, help="default: NEWSFLOW_METRICS_PORT (9808)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.check == "bridge":
            problem = bridge(settings)
        else:
            problem = metrics(args.port or settings.metrics_port)
    except ConfigError as exc:
        problem = str(exc)
    except redis.RedisError as exc:
        problem = f"Redis: {exc}"
    if problem:
        print(f"unhealthy: {redact(problem)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
