"""``newsflow status``: what the deployment is doing, read from Redis alone."""

from __future__ import annotations

from typing import Any

from worker.config import Settings, redact
from worker.connection import connect
from worker.keys import Keys

STATUSES = ("unique", "duplicate", "near_duplicate", "rejected", "failed")


def collect(settings: Settings) -> dict[str, Any]:
    keys = Keys(settings.prefix)
    r = connect(settings.redis_url, attempts=1)
    pipe = r.pipeline(transaction=False)
    pipe.llen(keys.queue_list)
    pipe.xlen(keys.results)
    pipe.xlen(keys.dead)
    pipe.hgetall(keys.stats)
    pipe.info("memory")
    pipe.get(keys.results_overflow)
    queued, results, dead, stats, memory, overflow = pipe.execute()
    totals = {s: int(stats.get(s.encode(), 0)) for s in STATUSES}
    done = sum(totals.values())
    dupes = totals["duplicate"] + totals["near_duplicate"]
    return {
        "redis": {"url": redact(settings.redis_url), "used_memory": memory.get("used_memory_human")},
        "queue_depth": queued,
        "results_length": results,
        "results_overflow": int(overflow or 0),
        "dead": dead,
        "totals": totals,
        "duplicate_ratio": round(dupes / done, 4) if done else 0.0,
    }


def render(status: dict[str, Any]) -> str:
    lines = [
        f"redis           {status['redis']['url']}  memory {status['redis']['used_memory']}",
        f"queue depth     {status['queue_depth']} batches",
        f"results         {status['results_length']} entries"
        + (f", {status['results_overflow']} dropped by the cap" if status["results_overflow"] else ""),
        f"dead            {status['dead']}",
        "totals          " + ", ".join(f"{k} {v}" for k, v in status["totals"].items()),
        f"duplicate ratio {status['duplicate_ratio']:.1%}",
    ]
    return "\n".join(lines)
