"""Things break and nothing is lost: killed workers, a restarted Redis, a cut link, poison articles.

Workers here run with a short visibility timeout so that redelivery happens in
seconds, and with ``tests.faults`` included, which makes marked articles crash
or hang their pool child (see that module). ``NEWSFLOW_FAULT_ARTICLES`` sets the
article count of the kill test (default 2,000).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import psutil
import pytest

from producer.client import Client
from tests import faults
from tests.support import RedisServer, wait_for
from worker.config import Settings
from worker.heartbeat import read_all as workers_online

FAULT_WORKER = ("--include", "tests.faults")


def fault_env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "FAULT_DIR": str(tmp_path),
        "NEWSFLOW_VISIBILITY_TIMEOUT": "5",
        "NEWSFLOW_MAX_ATTEMPTS": "3",
        **more,
    }


def articles(n: int, seed: str, tag: str = "a") -> list[dict[str, str]]:
    """``n`` short, distinct articles cut from one story."""
    out = []
    for i in range(n):
        start = (i * 7) % max(1, len(seed) - 80)
        out.append({"id": f"{tag}-{i:05d}", "text": f"{seed[start : start + 60]}（第{i}則）"})
    return out


def result_ids(client: Client) -> Counter[str]:
    """How many results stream entries each id has."""
    seen: Counter[str] = Counter()
    last = "-"
    while True:
        chunk = client.redis.xrange(client.keys.results, min=last, count=1000)
        if last != "-":
            chunk = chunk[1:]
        if not chunk:
            return seen
        for _, fields in chunk:
            seen[fields[b"id"].decode()] += 1
        last = chunk[-1][0].decode()


def dead_entries(client: Client) -> list[dict[bytes, bytes]]:
    return [fields for _, fields in client.redis.xrange(client.keys.dead)]


def unacked_tags(client: Client) -> set[bytes]:
    return set(client.redis.hkeys(f"{client.settings.prefix}:unacked"))


def test_poison_article_goes_dead_after_exactly_n_attempts_while_batch_mates_succeed(
    settings, start_worker, tmp_path, seed_story
):
    start_worker(concurrency=1, extra_env=fault_env(tmp_path), extra=FAULT_WORKER)
    client = Client(settings)
    batch = articles(6, seed_story, "p")
    batch[2]["text"] += "FAULT:crash"
    batch[4]["text"] += "FAULT:hang"
    results = client.wait(client.submit_many(batch), timeout=120)

    for i in (0, 1, 3, 5):
        assert results[f"p-{i:05d}"]["status"] in {"unique", "near_duplicate"}  # slices of one story
    for i, fault, code in ((2, "crash", "worker_lost"), (4, "hang", "worker_lost")):
        result = results[f"p-{i:05d}"]
        assert result["status"] == "failed"
        assert result["error"]["code"] == code
        assert result["attempts"] == 3
        assert faults.attempts(tmp_path, f"p-{i:05d}", fault) == 3
    dead = {fields[b"id"].decode(): fields for fields in dead_entries(client)}
    assert set(dead) == {"p-00002", "p-00004"}
    assert all(int(fields[b"attempts"]) == 3 for fields in dead.values())
    assert orjson.loads(dead["p-00002"][b"article"])["text"] == batch[2]["text"]
    assert Counter(result_ids(client).values()) == {1: 6}
    assert client.redis.hlen(client.keys.attempts) == 0


def test_python_exception_is_retried_then_dead_after_n_attempts(settings, start_worker, tmp_path, seed_story):
    start_worker(
        concurrency=1, extra_env=fault_env(tmp_path, NEWSFLOW_VISIBILITY_TIMEOUT="20"), extra=FAULT_WORKER
    )
    client = Client(settings)
    bad = {"id": "raises", "text": seed_story[:80] + "FAULT:raise"}
    results = client.wait(client.submit_many([bad, *articles(2, seed_story, "ok")]), timeout=120)
    assert results["raises"]["status"] == "failed"
    assert results["raises"]["error"]["code"] == "processing_error"
    assert results["raises"]["attempts"] == 3
    assert {results["ok-00000"]["status"], results["ok-00001"]["status"]} <= {"unique", "near_duplicate"}
    assert faults.attempts(tmp_path, "raises", "raise") == 3
    assert [f[b"id"] for f in dead_entries(client)] == [b"raises"]


def test_batch_whose_message_was_lost_is_queued_again(settings, start_worker, tmp_path, seed_story):
    # kombu loses a message when its worker dies between BRPOP and recording it
    # as unacked; here the message is simply deleted before any worker runs.
    client = Client(settings.with_(batch_size=5))
    sent = client.submit_many(articles(10, seed_story, "lost"))
    assert client.redis.delete(client.keys.queue_list) == 1
    assert client.redis.zcard(client.keys.batches) == 2
    start_worker(concurrency=1, extra_env=fault_env(tmp_path, NEWSFLOW_VISIBILITY_TIMEOUT="2"))
    results = client.wait(sent, timeout=60)
    assert len(results) == 10
    assert Counter(result_ids(client).values()) == {1: 10}
    wait_for(lambda: client.redis.zcard(client.keys.batches) == 0, 30, "the batches to be delisted")


@pytest.mark.timeout(400)
def test_sigkill_of_a_pool_child_and_of_the_pool_parent_loses_nothing_and_doubles_nothing(
    settings, start_worker, tmp_path, seed_story
):
    n = int(os.environ.get("NEWSFLOW_FAULT_ARTICLES", "2000"))
    env = fault_env(tmp_path)
    doomed = start_worker(concurrency=2, name="doomed", extra_env=env)
    start_worker(concurrency=1, name="survivor", extra_env=env)
    client = Client(settings.with_(batch_size=20))
    sent = client.submit_many(articles(n, seed_story, "k"))

    wait_for(lambda: client.redis.xlen(client.keys.results) >= n // 5, 120, "a fifth of the results")
    parent = psutil.Process(doomed.proc.pid)
    child = wait_for(lambda: parent.children(), 10, "the pool's children")[0]
    os.kill(child.pid, signal.SIGKILL)

    wait_for(lambda: client.redis.xlen(client.keys.results) >= n // 2, 120, "half of the results")
    held = unacked_tags(client)
    killed_at = time.monotonic()
    parent.send_signal(signal.SIGKILL)
    wait_for(lambda: not (held & unacked_tags(client)), 120, "the dead worker's batches to be restored")
    redelivered_after = time.monotonic() - killed_at

    results = client.wait(sent, timeout=300)
    counts = result_ids(client)
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(
        f"\nkill test: sent {n}, results {len(results)}, entries {sum(counts.values())}, "
        f"duplicates {duplicates}, dead {len(dead_entries(client))}, "
        f"batches held by the killed parent {len(held)}, restored after {redelivered_after:.1f}s "
        f"(visibility timeout {env['NEWSFLOW_VISIBILITY_TIMEOUT']}s)"
    )
    assert len(results) == n
    assert set(counts) == {a.id for a in sent}
    assert duplicates == 0
    assert dead_entries(client) == []


def test_redis_restart_with_aof_keeps_every_acknowledged_article(tmp_path, prefix, start_worker, seed_story):
    server = RedisServer(tmp_path / "aof", "--appendonly", "yes", "--appendfsync", "everysec")
    try:
        env = {
            "NEWSFLOW_REDIS_URL": server.url,
            "NEWSFLOW_PREFIX": prefix,
            "NEWSFLOW_VISIBILITY_TIMEOUT": "5",
        }
        worker = start_worker(concurrency=1, extra_env=env)
        client = Client(Settings.from_env(env).with_(batch_size=10))
        # The restart is of a Redis that a running worker uses: not one it has yet to reach.
        wait_for(lambda: workers_online(client.redis, client.keys), 120, "the worker online")
        todo = articles(400, seed_story, "r")
        acknowledged: list = []
        refused: list[str] = []

        def produce() -> None:
            for i in range(0, len(todo), 10):
                try:
                    acknowledged.extend(client.submit_many(todo[i : i + 10]))
                except Exception as exc:  # a refused submit is the caller's to retry
                    refused.append(repr(exc))

        producer = threading.Thread(target=produce)
        producer.start()
        wait_for(lambda: len(acknowledged) >= 150, 120, "150 acknowledged articles")
        server.stop()
        server.start()
        producer.join(180)
        results = client.wait(acknowledged, timeout=180)
        counts = result_ids(client)
        print(
            f"\nrestart test: acknowledged {len(acknowledged)}, refused batches {len(refused)}, "
            f"results {len(results)}, duplicates {sum(c - 1 for c in counts.values())}"
        )
        assert worker.proc.poll() is None
        assert len(acknowledged) >= 150
        assert set(results) == {s.id for s in acknowledged}
        assert all(c == 1 for c in counts.values())
    finally:
        server.stop()


@pytest.mark.timeout(300)
def test_worker_cut_off_for_30s_has_its_batch_redelivered_and_rejoins(
    settings, env, redis_server, start_worker, tmp_path, seed_story
):
    cut_for = float(os.environ.get("NEWSFLOW_FAULT_CUT_S", "30"))
    link = faults.Link(redis_server.port)
    try:
        # The slow article takes 3 s: the visibility timeout must leave room for it.
        fenv = fault_env(tmp_path, NEWSFLOW_REDIS_URL=link.url(), NEWSFLOW_VISIBILITY_TIMEOUT="10")
        isolated = start_worker(concurrency=1, name="isolated", extra_env=fenv, extra=FAULT_WORKER)
        client = Client(settings.with_(batch_size=5))
        first = articles(10, seed_story, "c")
        first[2]["text"] += "FAULT:slow"
        sent = client.submit_many(first)
        wait_for(lambda: faults.attempts(tmp_path, "c-00002", "slow"), 60, "the slow article to start")
        cut_at = time.monotonic()
        link.cut()
        other = start_worker(
            concurrency=1,
            name="other",
            extra=FAULT_WORKER,
            extra_env=fault_env(tmp_path, NEWSFLOW_VISIBILITY_TIMEOUT="10"),
        )
        results = client.wait(sent, timeout=120)
        redelivered_after = time.monotonic() - cut_at
        assert faults.attempts(tmp_path, "c-00002", "slow") == 2  # once cut off, once elsewhere

        wait_for(lambda: time.monotonic() - cut_at >= cut_for, cut_for + 5, "the end of the cut")
        link.restore()
        other.stop()
        later = client.submit_many(articles(5, seed_story, "after"))
        results.update(client.wait(later, timeout=120))
        assert isolated.proc.poll() is None
        counts = result_ids(client)
        print(
            f"\ncut test: cut {cut_for:.0f}s, batch redelivered and done after {redelivered_after:.1f}s, "
            f"results {len(results)}, duplicates {sum(c - 1 for c in counts.values())}"
        )
        assert len(results) == 15
        assert all(c == 1 for c in counts.values())
        assert {r["worker"] for r in results.values() if r["id"].startswith("after")} <= {
            f"{os.uname().nodename}/{p.pid}" for p in psutil.Process(isolated.proc.pid).children()
        }
    finally:
        link.close()


def test_time_limits_sit_below_the_visibility_timeout():
    from worker.app import make_app
    from worker.config import ConfigError

    s = Settings()
    assert s.visibility_timeout == 300
    assert s.soft_time_limit < s.hard_time_limit < s.visibility_timeout
    conf = make_app(s).conf
    assert conf.broker_transport_options["visibility_timeout"] == 300
    assert conf.task_time_limit == s.hard_time_limit and conf.task_soft_time_limit == s.soft_time_limit
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and not conf.task_acks_on_timeout
    assert conf.worker_prefetch_multiplier == 1
    assert Settings.from_env({"NEWSFLOW_VISIBILITY_TIMEOUT": "20"}).hard_time_limit == 16
    with pytest.raises(ConfigError):
        Settings.from_env({"NEWSFLOW_VISIBILITY_TIMEOUT": "20", "NEWSFLOW_TIME_LIMIT": "20"})
