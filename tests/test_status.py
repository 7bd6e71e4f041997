"""``newsflow status`` and the Prometheus exporter, against a real Redis and real workers."""

from __future__ import annotations

import subprocess
import sys

import orjson
from prometheus_client import generate_latest

from producer.client import Client
from producer.metrics import registry
from producer.status import collect, render
from tests.support import ROOT, newsflow_env, wait_for
from worker.keys import Keys
from worker.stats import LATENCY_BOUNDS_MS, latency_bucket, percentile


def _status(env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", "status", *flags],
        env=newsflow_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_percentiles_come_from_the_bucket_the_rank_falls_in():
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[latency_bucket(100.0)] += 90
    counts[latency_bucket(5000.0)] += 10
    assert 75 < percentile(counts, 0.5) <= 100
    assert 3750 < percentile(counts, 0.95) <= 5000
    assert percentile([0] * len(counts), 0.5) is None
    assert latency_bucket(LATENCY_BOUNDS_MS[-1] * 10) == len(LATENCY_BOUNDS_MS)


def test_status_counts_what_the_workers_did_and_who_is_online(env, settings, start_worker, seed_story):
    worker = start_worker(concurrency=2)
    client = Client(settings.with_(batch_size=2))
    articles = [
        {"id": f"s/{i}", "text": f"{seed_story}\n第{i}版。" if i < 3 else seed_story} for i in range(6)
    ]
    articles.append({"id": "s/empty", "text": " "})
    client.wait(client.submit_many(articles), timeout=90)
    wait_for(lambda: collect(settings)["workers"]["online"] == 1, 30, "the worker's heartbeat")

    ran = _status(env, "--json")
    assert ran.returncode == 0, ran.stderr
    status = orjson.loads(ran.stdout)
    totals = status["totals"]
    assert sum(totals.values()) == status["processed"] == status["results_length"] == 7
    assert totals["rejected"] == 1 and totals["unique"] + totals["duplicate"] + totals["near_duplicate"] == 6
    # s/3, s/4 and s/5 are one text under three ids, close to s/0-s/2: at least two of them are
    # copies (exact, or near when s/3 itself was judged a near-duplicate of an earlier edition).
    assert totals["duplicate"] + totals["near_duplicate"] >= 2
    assert status["duplicate_ratio"] == round((totals["duplicate"] + totals["near_duplicate"]) / 7, 4)
    assert sum(status["last_minute"].values()) >= 1
    assert status["latency_ms"]["n"] == 7 and status["latency_ms_total"]["n"] == 7
    assert 0 < status["latency_ms"]["p50"] <= status["latency_ms"]["p95"]
    assert status["queue"]["batches"] == 0 and status["dead"] == 0
    (node,) = status["workers"]["nodes"]
    assert node["concurrency"] == 2 and node["node"].startswith("w0@")
    assert status["redis"]["ok"] and status["redis"]["used_memory"] > 0

    table = _status(env).stdout
    assert "1 online" in table and "duplicate ratio" in table and "p95" in table

    worker.stop()  # a warm shutdown takes the heartbeat with it
    stopped = _status(env, "--json")
    gone = {"online": 0, "concurrency": 0, "active": 0, "nodes": []}
    assert orjson.loads(stopped.stdout)["workers"] == gone
    assert "none online" in _status(env).stdout


def test_status_reports_inbox_lag_and_pending_per_consumer_group(settings):
    keys = Keys(settings.prefix)
    client = Client(settings)
    r = client.redis
    for i in range(5):
        r.xadd(keys.inbox, {"text": f"第{i}則", "id": f"in/{i}"})
    r.xgroup_create(keys.inbox, "bridge", id="0")
    r.xreadgroup("bridge", "c1", {keys.inbox: ">"}, count=2)

    status = collect(settings)
    assert status["inbox"]["length"] == 5
    (group,) = status["inbox"]["groups"]
    assert (group["name"], group["lag"], group["pending"]) == ("bridge", 3, 2)
    assert "lag 3, pending 2" in render(status)

    metrics = generate_latest(registry(settings)).decode()
    assert 'newsflow_inbox_lag{group="bridge"} 3.0' in metrics
    assert 'newsflow_inbox_pending{group="bridge"} 2.0' in metrics
    assert "newsflow_workers_online 0.0" in metrics


def test_last_minute_rate_blends_the_previous_minute_by_its_overlap(settings):
    keys = Keys(settings.prefix)
    r = Client(settings).redis
    minute = 29_000_000
    r.hset(keys.stats_minute(minute - 1), mapping={"unique": 10, "duplicate": 4})
    r.hset(keys.stats_minute(minute), mapping={"unique": 3})
    r.hset(keys.stats, mapping={"unique": 13, "duplicate": 4})
    # 15 s into the minute: three quarters of the previous minute are still within the last 60 s.
    status = collect(settings, now=minute * 60 + 15)
    assert status["last_minute"]["unique"] == 11  # 3 + 7.5, in whole articles
    assert status["last_minute"]["duplicate"] == 3
    assert status["totals"]["unique"] == 13


def test_prometheus_exporter_exposes_counters_and_the_latency_histogram(settings, start_worker):
    start_worker()
    client = Client(settings)
    client.wait(
        client.submit_many([{"id": f"m/{i}", "text": f"颱風第{i}號今晨登陸。"} for i in range(3)]), timeout=90
    )
    text = generate_latest(registry(settings)).decode()
    assert 'newsflow_articles_total{status="unique"} 3.0' in text
    assert "newsflow_latency_seconds_count 3.0" in text
    assert 'newsflow_latency_seconds_bucket{le="+Inf"} 3.0' in text
    assert "newsflow_results_entries 3.0" in text
    assert "newsflow_redis_up 1.0" in text


def test_status_watch_json_prints_a_fresh_snapshot_per_interval(env, settings):
    command = [sys.executable, "-m", "producer.cli", "status", "--watch", "--json", "--interval", "0.2"]
    proc = subprocess.Popen(command, env=newsflow_env(env), cwd=ROOT, stdout=subprocess.PIPE, text=True)

    def next_with_entry():
        snapshot = orjson.loads(proc.stdout.readline())
        return snapshot["inbox"]["length"] == 1 and snapshot

    try:
        first = orjson.loads(proc.stdout.readline())
        Client(settings).redis.xadd(Keys(settings.prefix).inbox, {"text": "新的一則"})
        later = wait_for(next_with_entry, 30, "a snapshot showing the new inbox entry")
    finally:
        proc.terminate()
        proc.wait(10)
    assert first["inbox"]["length"] == 0 and later["prefix"] == settings.prefix
