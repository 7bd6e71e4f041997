"""A worker's heartbeat in Redis, so ``newsflow status`` knows who is online without asking them.

Celery's ``inspect`` broadcasts and waits for replies: it takes a second or
more and says nothing useful when no worker is up. Instead each worker's main
process writes ``<prefix>:worker:<node>`` (hostname, pid, concurrency, active
tasks, tasks started so far, last seen) every ``INTERVAL`` seconds with a TTL of
five intervals, and records its node in ``<prefix>:workers``. A warm shutdown
deletes the heartbeat; a killed worker's one expires. Any process can read
them in one round trip.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import redis
import structlog

from worker.connection import connect
from worker.keys import Keys

INTERVAL = 2.0
TTL = int(INTERVAL * 5)

log = structlog.get_logger("newsflow.heartbeat")


class Heartbeat:
    """Writes one worker's heartbeat from a daemon thread in the worker's main process."""

    def __init__(
        self, client: redis.Redis, keys: Keys, node: str, concurrency: Any, interval: float = INTERVAL
    ) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self.concurrency = concurrency
        self.interval = interval
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="newsflow-heartbeat", daemon=True)

    def start(self) -> None:
        self.beat()
        self._thread.start()

    def fields(self) -> dict[str, str | int | float]:
        from celery.worker import state

        concurrency = self.concurrency() if callable(self.concurrency) else self.concurrency
        return {
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "concurrency": int(concurrency or 0),
            "active": len(state.active_requests),
            "tasks": int(state.all_total_count[0]),
            "started": round(self.started, 3),
            "seen": round(time.time(), 3),
        }

    def beat(self) -> None:
        key = self.keys.worker(self.node)
        pipe = self.client.pipeline()
        pipe.hset(key, mapping=self.fields())
        pipe.expire(key, TTL)
        pipe.zadd(self.keys.workers, {self.node: time.time()})
        pipe.execute()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval + 1)
        try:
            pipe = self.client.pipeline()
            pipe.delete(self.keys.worker(self.node))
            pipe.zrem(self.keys.workers, self.node)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("heartbeat_stop_failed", worker=self.node, error=str(exc))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except redis.RedisError as exc:  # Redis restarting: the next beat tries again
                log.warning("heartbeat_failed", worker=self.node, error=str(exc))


def start_for(consumer: Any, redis_url: str, prefix: str) -> Heartbeat:
    """Start the heartbeat of the worker that ``consumer`` (Celery's worker_ready sender) belongs to."""

    def concurrency() -> int:
        pool = getattr(consumer, "pool", None)
        try:
            return int(pool.num_processes)  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError):
            return int(getattr(consumer.controller, "concurrency", 0) or 0)

    beat = Heartbeat(connect(redis_url, attempts=2), Keys(prefix), consumer.hostname, concurrency)
    beat.start()
    return beat


def read_all(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every worker whose heartbeat is alive, sorted by node name; prunes the dead from the index."""
    nodes = [n.decode() if isinstance(n, bytes) else n for n in client.zrange(keys.workers, 0, -1)]
    if not nodes:
        return []
    pipe = client.pipeline(transaction=False)
    for node in nodes:
        pipe.hgetall(keys.worker(node))
    alive, gone = [], []
    for node, raw in zip(nodes, pipe.execute(), strict=True):
        if not raw:
            gone.append(node)
            continue
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        alive.append(
            {
                "node": node,
                "hostname": fields.get("hostname", ""),
                "pid": int(fields.get("pid", 0)),
                "concurrency": int(fields.get("concurrency", 0)),
                "active": int(fields.get("active", 0)),
                "tasks": int(fields.get("tasks", 0)),
                "started": float(fields.get("started", 0)),
                "seen": float(fields.get("seen", 0)),
            }
        )
    if gone:
        client.zrem(keys.workers, *gone)
    return sorted(alive, key=lambda w: w["node"])
