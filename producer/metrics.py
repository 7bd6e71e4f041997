"""``newsflow metrics``: the figures of ``newsflow status`` for Prometheus, on HTTP ``/metrics``.

A custom collector reads Redis on each scrape (:func:`producer.status.collect`),
so the exporter keeps no state of its own: any number of them can run, and
restarting one loses nothing. The metric names are listed in docs/operations.md.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from producer.status import collect
from worker.config import Settings
from worker.stats import LATENCY_BOUNDS_MS, STATUSES

__all__ = ["StatusCollector", "registry", "serve"]


def _gauge(name: str, doc: str, value: float | int | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=float(value or 0))


class StatusCollector(Collector):
    """Turns one :func:`collect` snapshot into ``newsflow_*`` metric families per scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        status = collect(self.settings, with_histogram=True)
        redis_info = status["redis"]
        yield _gauge("newsflow_redis_up", "1 if Redis answered this scrape, else 0.", int(redis_info["ok"]))
        if not redis_info["ok"]:
            return
        yield _gauge(
            "newsflow_redis_used_memory_bytes", "Memory Redis reports in use.", redis_info["used_memory"]
        )
        yield _gauge(
            "newsflow_redis_maxmemory_bytes", "Redis maxmemory (0: no limit).", redis_info["maxmemory"]
        )
        yield _gauge(
            "newsflow_queue_batches", "Batch tasks waiting in the Celery queue.", status["queue"]["batches"]
        )
        yield _gauge(
            "newsflow_queue_articles",
            "Articles in the batch tasks waiting in the Celery queue.",
            status["queue"]["articles"],
        )
        yield _gauge(
            "newsflow_queue_reserved_batches",
            "Batch tasks delivered to workers and not yet acked.",
            status["queue"]["reserved"],
        )
        yield _gauge("newsflow_inbox_entries", "Entries in the inbox stream.", status["inbox"]["length"])
        lag = GaugeMetricFamily(
            "newsflow_inbox_lag", "Inbox entries not yet delivered to the consumer group.", labels=["group"]
        )
        pending = GaugeMetricFamily(
            "newsflow_inbox_pending",
            "Inbox entries delivered to the group and not yet acknowledged.",
            labels=["group"],
        )
        for group in status["inbox"]["groups"]:
            if group["lag"] is not None:
                lag.add_metric([group["name"]], group["lag"])
            pending.add_metric([group["name"]], group["pending"] or 0)
        yield lag
        yield pending
        yield _gauge("newsflow_results_entries", "Entries in the results stream.", status["results_length"])
        yield _gauge(
            "newsflow_results_overflow",
            "Results entries dropped by the emergency MAXLEN cap.",
            status.get("results_overflow", 0),
        )
        yield _gauge("newsflow_dead_entries", "Entries in the dead stream.", status["dead"])
        workers = status["workers"]
        yield _gauge("newsflow_workers_online", "Workers with a live heartbeat.", workers["online"])
        concurrency = GaugeMetricFamily(
            "newsflow_worker_concurrency", "Pool processes of each worker.", labels=["worker"]
        )
        active = GaugeMetricFamily(
            "newsflow_worker_active_tasks", "Tasks each worker is running now.", labels=["worker"]
        )
        for node in workers["nodes"]:
            concurrency.add_metric([node["node"]], node["concurrency"])
            active.add_metric([node["node"]], node["active"])
        yield concurrency
        yield active
        articles = CounterMetricFamily(
            "newsflow_articles", "Article outcomes since the deployment began.", labels=["status"]
        )
        last_minute = GaugeMetricFamily(
            "newsflow_articles_last_minute", "Article outcomes in the last 60 s.", labels=["status"]
        )
        for s in STATUSES:
            articles.add_metric([s], status["totals"][s])
            last_minute.add_metric([s], status["last_minute"][s])
        yield articles
        yield last_minute
        yield _gauge(
            "newsflow_duplicate_ratio",
            "Exact and near duplicates as a share of all outcomes.",
            status["duplicate_ratio"],
        )
        yield from self._latency(status)

    def _latency(self, status: dict[str, Any]) -> Iterator[Metric]:
        recent = status["latency_ms"]
        quantiles = GaugeMetricFamily(
            "newsflow_latency_recent_seconds",
            f"Submit-to-result latency quantiles over the last {recent['window']}.",
            labels=["quantile"],
        )
        for label, q in (("0.5", "p50"), ("0.95", "p95")):
            if recent[q] is not None:
                quantiles.add_metric([label], recent[q] / 1000)
        yield quantiles
        counts = status["latency_histogram"]
        buckets, running = [], 0
        for bound, count in zip(LATENCY_BOUNDS_MS, counts, strict=False):
            running += count
            buckets.append((f"{bound / 1000:g}", running))
        buckets.append(("+Inf", running + counts[-1]))
        yield HistogramMetricFamily(
            "newsflow_latency_seconds",
            "Submit-to-result latency of every outcome since the deployment began.",
            buckets=buckets,
            sum_value=status["latency_sum_ms"] / 1000,
        )


def registry(settings: Settings) -> CollectorRegistry:
    """A registry holding only the newsflow collector (no process metrics of the exporter itself)."""
    found = CollectorRegistry(auto_describe=False)
    found.register(StatusCollector(settings))
    return found


def serve(settings: Settings, port: int, addr: str = "0.0.0.0") -> None:
    """Serve ``/metrics`` until interrupted."""
    import sys

    start_http_server(port, addr=addr, registry=registry(settings))
    print(
        f"newsflow metrics for prefix {settings.prefix} on http://{addr}:{port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    threading.Event().wait()
