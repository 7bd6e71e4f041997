"""``newsflow dead`` pages through the stream; ``status`` counts the queue in articles."""

from __future__ import annotations

import subprocess
import sys

import orjson

from producer.client import Client
from producer.status import collect
from tests.support import ROOT, newsflow_env


def dead(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", "dead", *args],
        env=newsflow_env(env),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_dead_pages_and_says_when_empty(env, settings):
    empty = dead(env)
    assert empty.returncode == 0 and empty.stdout == ""
    assert "no dead entries in" in empty.stderr
    client = Client(settings)
    for n in range(5):
        client.dead.park({"id": f"d/{n}", "text": "x"}, {"code": "boom", "message": "test"}, 3)
    first = dead(env, "--limit", "2")
    page = [orjson.loads(line) for line in first.stdout.splitlines()]
    assert [p["id"] for p in page] == ["d/0", "d/1"]
    assert page[0]["attempts"] == 3 and isinstance(page[0]["at"], float)
    assert f"newsflow dead --after {page[-1]['entry']}" in first.stderr
    rest = dead(env, "--after", page[-1]["entry"], "--limit", "10")
    assert [orjson.loads(line)["id"] for line in rest.stdout.splitlines()] == ["d/2", "d/3", "d/4"]
    bad = dead(env, "--after", "yesterday")
    assert bad.returncode == 2 and "is not a dead entry id" in bad.stderr
    client.dead.drop(*(p["entry"] for p in page))
    client.results_redis.delete(client.keys.dead)


def test_status_counts_waiting_articles(settings):
    client = Client(settings)
    client.queue._send = lambda batch_id, countdown: client.redis.rpush(  # type: ignore[method-assign]
        client.keys.queue_list,
        orjson.dumps({"body": orjson.dumps([[batch_id], {}, {}]).decode(), "properties": {}}),
    )
    client.queue.put([{"id": f"q/{n}", "text": "x"} for n in range(7)])
    client.queue.put([{"id": "q/7", "text": "x"}])
    status = collect(settings)
    assert status["queue"]["batches"] == 2
    assert status["queue"]["articles"] == 8
    client.redis.delete(client.keys.queue_list, client.keys.batches)
