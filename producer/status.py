"""``newsflow status``: what the deployment is doing, read from Redis alone.

Everything comes from keys any process can read: Celery's queue lists, the
inbox stream and its consumer groups, the results and dead streams, the
outcome counters and latency histograms that emit_result.lua keeps
(:mod:`worker.stats`), and the workers' heartbeats (:mod:`worker.heartbeat`).
Nothing is broadcast to workers, so the answer comes within a couple of
seconds whether or not any worker is up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from worker.config import Settings, redact
from worker.connection import is_sentinel, sentinel_client, tls_options, without_tls_query
from worker.heartbeat import read_all as read_workers
from worker.keys import Keys
from worker.stats import STATUSES, histogram, percentile

# Minutes of per-minute histograms that "recent" latency is read from.
LATENCY_WINDOW_MINUTES = 5
# Short timeouts on purpose: status must answer in about 2 s even when Redis does not.
CONNECT_TIMEOUT = 1.0
COMMAND_TIMEOUT = 1.5

__all__ = ["STATUSES", "collect", "render", "table"]


def _client(url: str, settings: Settings) -> redis.Redis:
    # One try, no backoff: a status that waits out retries is no use while Redis is down.
    options: dict[str, Any] = {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": COMMAND_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
    }
    if is_sentinel(url):
        return sentinel_client(
            url, master=settings.sentinel_master, sentinel_password=settings.sentinel_password, **options
        )
    return redis.Redis.from_url(without_tls_query(url), **options, **tls_options(url))


def collect(settings: Settings, now: float | None = None, with_histogram: bool = False) -> dict[str, Any]:
    """A snapshot of the deployment as a plain, JSON-ready dict.

    ``with_histogram`` adds the all-time latency bucket counts
    (``latency_histogram``, per :data:`worker.stats.LATENCY_BOUNDS_MS`) and
    ``latency_sum_ms``, for the Prometheus exporter.

    When Redis cannot be reached the dict says so in ``redis.ok`` and
    ``redis.error`` (with any password masked) and holds nothing else.
    """
    now = time.time() if now is None else now
    keys = Keys(settings.prefix)
    status: dict[str, Any] = {
        "prefix": settings.prefix,
        "at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds"),
        "redis": {"url": redact(settings.redis_url), "ok": False},
    }
    if settings.results_redis_url != settings.redis_url:
        status["redis"]["results_url"] = redact(settings.results_redis_url)
    try:
        broker = _client(settings.redis_url, settings)
        results = (
            broker
            if settings.results_redis_url == settings.redis_url
            else _client(settings.results_redis_url, settings)
        )
        status.update(_broker_side(broker, keys))
        status.update(_results_side(results, keys, now, with_histogram))
    except redis.RedisError as exc:
        from producer.preflight import explain

        status["redis"]["error"] = redact(str(explain(exc, "NEWSFLOW_REDIS_URL", settings.redis_url)))
        return status
    status["redis"].update(status.pop("_redis"))
    status["redis"]["ok"] = True
    return status


def _broker_side(r: redis.Redis, keys: Keys) -> dict[str, Any]:
    started = time.perf_counter()
    r.ping()
    ping_ms = round((time.perf_counter() - started) * 1000, 2)
    pipe = r.pipeline(transaction=False)
    pipe.info("server")
    pipe.info("memory")
    pipe.info("replication")
    for name in keys.queue_lists:
        pipe.llen(name)
    pipe.hlen(keys.unacked)
    pipe.xlen(keys.inbox)
    server, memory, replication, *depths, unacked, inbox_length = pipe.execute()
    try:
        groups = r.xinfo_groups(keys.inbox)
    except redis.ResponseError:  # no inbox stream yet
        groups = []
    workers = read_workers(r, keys)
    articles = _articles_waiting(r, keys)
    return {
        "_redis": {
            "ping_ms": ping_ms,
            "version": server.get("redis_version"),
            "used_memory": memory.get("used_memory"),
            "used_memory_human": memory.get("used_memory_human"),
            "maxmemory": memory.get("maxmemory"),
            "maxmemory_policy": memory.get("maxmemory_policy"),
            "replication": _replication(r, replication),
        },
        "queue_depth": sum(depths),
        "queue": {"batches": sum(depths), "articles": articles, "reserved": unacked},
        "inbox": {"length": inbox_length, "groups": [_group(g) for g in groups]},
        "workers": {
            "online": len(workers),
            "concurrency": sum(w["concurrency"] for w in workers),
            "active": sum(w["active"] for w in workers),
            "nodes": workers,
        },
    }


def _articles_waiting(r: redis.Redis, keys: Keys) -> int:
    """Articles in the batches waiting in the queue (:meth:`BatchQueue.articles_waiting`)."""
    from worker.batchqueue import BatchQueue
    from worker.config import Settings as Defaults

    def no_send(_batch: str, _countdown: float | None) -> None:
        raise RuntimeError("status sends nothing")

    return BatchQueue(r, keys, Defaults(), no_send).articles_waiting()


def _replication(r: redis.Redis, info: dict[str, Any]) -> dict[str, Any]:
    """The master (as the sentinels name it, when they are used) and its replicas with their lag.

    ``lag_s`` is seconds since the replica last acknowledged, ``behind_bytes``
    how much of the replication stream it has yet to acknowledge.
    """
    pool = r.connection_pool
    offset = int(info.get("master_repl_offset") or 0)
    replicas = []
    for name, value in sorted(info.items()):
        if name.startswith("slave") and isinstance(value, dict):
            replicas.append(
                {
                    "address": f"{value.get('ip')}:{value.get('port')}",
                    "state": value.get("state"),
                    "lag_s": value.get("lag"),
                    "behind_bytes": max(0, offset - int(value.get("offset") or 0)),
                }
            )
    out: dict[str, Any] = {"role": info.get("role"), "replicas": replicas}
    if isinstance(pool, SentinelConnectionPool):
        host, port = pool.get_master_address()
        out.update(master=f"{host}:{port}", sentinel_master=pool.service_name)
    return out


def _group(info: dict[Any, Any]) -> dict[str, Any]:
    def text(value: Any) -> Any:
        return value.decode() if isinstance(value, bytes) else value

    return {
        "name": text(info.get("name")),
        "consumers": info.get("consumers"),
        "pending": info.get("pending"),
        # None when Redis cannot tell (entries deleted or trimmed out of the middle).
        "lag": info.get("lag"),
        "last_delivered_id": text(info.get("last-delivered-id")),
    }


def _results_side(r: redis.Redis, keys: Keys, now: float, with_histogram: bool) -> dict[str, Any]:
    minute = int(now // 60)
    pipe = r.pipeline(transaction=False)
    pipe.xlen(keys.results)
    pipe.xlen(keys.dead)
    pipe.get(keys.results_overflow)
    pipe.hgetall(keys.stats)
    for m in range(minute - LATENCY_WINDOW_MINUTES + 1, minute + 1):
        pipe.hgetall(keys.stats_minute(m))
    results_length, dead, overflow, stats, *minutes = pipe.execute()
    totals = {s: int(stats.get(s.encode(), 0)) for s in STATUSES}
    done = sum(totals.values())
    dupes = totals["duplicate"] + totals["near_duplicate"]
    # The last 60 s: all of this minute so far plus the part of the previous minute still inside the window.
    previous, current = minutes[-2], minutes[-1]
    overlap = 1.0 - (now % 60) / 60
    # Whole articles: the blend is an estimate, and a fraction of an article reads as a bug.
    last_minute = {
        s: int(int(current.get(s.encode(), 0)) + overlap * int(previous.get(s.encode(), 0)) + 0.5)
        for s in STATUSES
    }
    recent = [sum(col) for col in zip(*(histogram(m) for m in minutes), strict=True)]
    extra = (
        {"latency_histogram": histogram(stats), "latency_sum_ms": float(stats.get(b"latency_ms", 0))}
        if with_histogram
        else {}
    )
    return {
        **extra,
        "results_length": results_length,
        "results_overflow": int(overflow or 0),
        "dead": dead,
        "totals": totals,
        "processed": done,
        "last_minute": last_minute,
        "per_minute": sum(last_minute.values()),
        "duplicate_ratio": round(dupes / done, 4) if done else 0.0,
        "latency_ms": _latency(recent, f"{LATENCY_WINDOW_MINUTES}m"),
        "latency_ms_total": _latency(
            histogram(stats), "total", float(stats.get(b"latency_ms", 0)), int(stats.get(b"latency_n", 0))
        ),
    }


def _latency(
    counts: list[int], window: str, total_ms: float | None = None, n: int | None = None
) -> dict[str, Any]:
    found = {
        "window": window,
        "n": sum(counts),
        "p50": percentile(counts, 0.5),
        "p95": percentile(counts, 0.95),
    }
    if total_ms is not None and n:
        found["mean"] = round(total_ms / n, 1)
    return found


# -- rendering -----------------------------------------------------------------


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def table(status: dict[str, Any]):  # -> rich.table.Table, imported lazily
    """The snapshot as a rich table."""
    from rich.table import Table

    out = Table(
        title=f"newsflow status, prefix [bold]{status['prefix']}[/], at {status['at']}",
        show_header=False,
        title_justify="left",
    )
    out.add_column(style="bold cyan", no_wrap=True)
    out.add_column()
    r = status["redis"]
    if not r["ok"]:
        out.add_row("redis", f"{r['url']}  [bold red]unreachable[/]: {r.get('error', '')}")
        return out
    out.add_row("redis", f"{r['url']}  ok, v{r['version']}, ping {r['ping_ms']} ms")
    if r.get("results_url"):
        out.add_row("results redis", r["results_url"])
    if (rep := r.get("replication")) and (rep.get("master") or rep["replicas"]):
        out.add_row("replication", _replication_row(rep))
    limit = f" of {int(r['maxmemory']) // 2**20} MiB" if r.get("maxmemory") else ""
    out.add_row("memory", f"{r['used_memory_human']}{limit}, policy {r['maxmemory_policy']}")
    q = status["queue"]
    out.add_row(
        "queue",
        f"{q['articles']} articles in {q['batches']} batches waiting, "
        f"{q['reserved']} batches delivered to workers",
    )
    inbox = status["inbox"]
    groups = (
        "; ".join(
            f"group {g['name']}: lag {'?' if g['lag'] is None else g['lag']}, pending {g['pending']}"
            for g in inbox["groups"]
        )
        or "no consumer group"
    )
    out.add_row("inbox", f"{inbox['length']} entries; {groups}")
    overflow = status.get("results_overflow", 0)
    out.add_row(
        "results",
        f"{status['results_length']} entries"
        + (f", {overflow} dropped by the emergency cap" if overflow else ""),
    )
    out.add_row("dead", f"[red]{status['dead']}[/]" if status["dead"] else "0")
    w = status["workers"]
    if w["online"]:
        out.add_row("workers", f"{w['online']} online, {w['active']} of {w['concurrency']} processes busy")
        for node in w["nodes"]:
            out.add_row(
                "",
                f"{node['node']}  pid {node['pid']}, concurrency {node['concurrency']}, "
                f"active {node['active']}, tasks {node['tasks']}",
            )
    else:
        out.add_row("workers", "[bold yellow]none online[/]")
    totals, rates = status["totals"], status["last_minute"]
    out.add_row("processed", f"{status['processed']} in all, {status['per_minute']} in the last minute")
    for s in STATUSES:
        out.add_row(f"  {s}", f"{totals[s]} total, {rates[s]}/min")
    out.add_row("duplicate ratio", f"{status['duplicate_ratio']:.1%}")
    lat, lat_all = status["latency_ms"], status["latency_ms_total"]
    out.add_row(
        "latency",
        f"p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])} submit to result, "
        f"last {lat['window']} ({lat['n']} articles)",
    )
    out.add_row(
        "", f"p50 {_ms(lat_all['p50'])}, p95 {_ms(lat_all['p95'])} all time ({lat_all['n']} articles)"
    )
    return out


def _replication_row(rep: dict[str, Any]) -> str:
    master = (
        f"master {rep['master']} ({rep['sentinel_master']}, via sentinels); " if rep.get("master") else ""
    )
    replicas = ", ".join(
        f"{x['address']} {x['state']} lag {x['lag_s']}s, {x['behind_bytes']} B behind"
        for x in rep["replicas"]
    )
    return f"{master}{len(rep['replicas'])} replicas" + (f": {replicas}" if replicas else "")


def render(status: dict[str, Any], width: int = 110) -> str:
    """The table as plain text, for logs and pipes."""
    from rich.console import Console

    console = Console(width=width, record=True, file=_Null(), color_system=None)  # type: ignore[arg-type]
    console.print(table(status))
    return console.export_text()


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def watch(settings: Settings, interval: float, as_json: bool = False) -> int:
    """Refresh the snapshot every ``interval`` seconds until interrupted."""
    import sys

    import orjson

    if as_json:
        while True:
            sys.stdout.buffer.write(orjson.dumps(collect(settings)) + b"\n")
            sys.stdout.flush()
            time.sleep(interval)  # the refresh period itself
    from rich.live import Live

    with Live(table(collect(settings)), auto_refresh=False, screen=False) as live:
        while True:
            time.sleep(interval)  # the refresh period itself
            live.update(table(collect(settings)), refresh=True)
