"""Results out: consumer groups, trimming, dead replay, corrections and takedowns."""

from __future__ import annotations

import subprocess
import sys
import time

import orjson

from producer.client import Client
from tests.schema import assert_valid_result
from tests.support import ROOT, newsflow_env, unique_result, wait_for
from tests.test_bridge import STORIES
from worker.article import text_hash
from worker.result_body import Failure, not_analysed
from worker.results import ResultStore


def newsflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=newsflow_env(env),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )


def publish(store: ResultStore, n: int, start: int = 0) -> list[str]:
    entries = []
    for i in range(start, start + n):
        result = unique_result(f"r-{i}", f"第{i}篇")
        entries.append(store.publish(f"r-{i}", "unique", result, f"hash-{i}", f"fp-{i}")[1])
    return entries


def test_results_group_prints_acks_and_gives_back_what_a_crash_left_pending(settings, env):
    client = Client(settings)
    publish(client.store, 5)
    reader = client.iter_results(group="app", consumer="c1")
    assert [next(reader)[1]["id"] for _ in range(2)] == ["r-0", "r-1"]
    reader.close()  # crashed while handling r-1: r-0 was acknowledged; r-1.. were delivered, not acked
    assert client.results_redis.xpending(client.keys.results, "app")["pending"] == 4

    done = newsflow(env, "results", "--group", "app", "--consumer", "c1")
    assert done.returncode == 0, done.stderr
    printed = [orjson.loads(line)["id"] for line in done.stdout.splitlines()]
    assert printed == ["r-1", "r-2", "r-3", "r-4"]
    assert client.results_redis.xpending(client.keys.results, "app")["pending"] == 0
    again = newsflow(env, "results", "--group", "app", "--consumer", "c1")
    assert again.stdout == b""
    plain = newsflow(env, "results")
    assert [orjson.loads(line)["id"] for line in plain.stdout.splitlines()] == [f"r-{i}" for i in range(5)]


def test_trimming_keeps_every_entry_the_slowest_group_has_not_read(settings):
    client = Client(settings.with_(result_ttl=1))
    store, r, stream = client.store, client.results_redis, client.keys.results
    entries = publish(store, 400)
    for group, read in (("slow", 250), ("fast", 400)):
        r.xgroup_create(stream, group, id="0")
        got = r.xreadgroup(group, "c", {stream: ">"}, count=read)[0][1]
        r.xack(stream, group, *[e for e, _ in got])
    r.xgroup_create(stream, "pending", id="0")
    got = r.xreadgroup("pending", "c", {stream: ">"}, count=300)[0][1]
    r.xack(stream, "pending", *[e for e, _ in got[:120]])  # 120.. are delivered, not acknowledged

    report = store.trim(force=True, now=time.time() + 10)  # every entry is older than the TTL
    left = [e.decode() for e, _ in r.xrange(stream)]
    assert report["trimmed"] > 0 and report["overflow"] == 0
    assert left == entries[-len(left) :]  # only the oldest went
    assert entries[120] in left  # the oldest un-acknowledged entry of "pending" stays

    r.xgroup_destroy(stream, "pending")
    store.trim(force=True, now=time.time() + 10)
    assert entries[249] in [e.decode() for e, _ in r.xrange(stream)]  # slow's last read stays


def test_the_emergency_cap_drops_even_unread_entries_and_counts_them(settings):
    client = Client(settings.with_(results_maxlen=50))
    store, r = client.store, client.results_redis
    publish(store, 120)
    r.xgroup_create(client.keys.results, "asleep", id="0")
    report = store.trim(force=True)
    assert r.xlen(client.keys.results) == 50
    assert report["overflow"] == 70 == int(r.get(client.keys.results_overflow))
    assert store.trim() is not None and store.trim() is None  # one trim per interval


def test_replayed_dead_entries_come_back_as_new_results(settings, env, start_worker, start_bridge):
    client = Client(settings)
    r = client.redis
    tight = start_bridge("--block-ms", "200", extra_env={"NEWSFLOW_MAX_CHARS": "10"})
    r.xadd(client.keys.inbox, {"id": "long", "text": STORIES[0]})
    wait_for(lambda: client.get("long"), 30, "the rejection")
    assert client.get("long")["error"]["code"] == "too_large"
    tight.stop()
    # A worker that gave up on an article left a failed result and a dead entry.
    article = {"id": "gave-up", "text": STORIES[1]}
    error = Failure("processing_error", "boom").as_error()
    failed = not_analysed("gave-up", "failed", error, "test", attempts=3)
    client.store.publish("gave-up", "failed", failed, text_hash(STORIES[1]), "")
    client.dead.park(article, failed["error"], 3)
    listed = newsflow(env, "dead")
    assert sorted(orjson.loads(line)["id"] for line in listed.stdout.splitlines()) == ["gave-up", "long"]

    start_worker()
    start_bridge("--block-ms", "200")  # the fix: the default NEWSFLOW_MAX_CHARS
    done = newsflow(env, "dead", "--replay-all")
    assert done.returncode == 0, done.stderr
    for article_id in ("long", "gave-up"):
        result = wait_for(
            lambda i=article_id: (client.get(i) or {}).get("revision") == 2 and client.get(i),
            60,
            f"the replay of {article_id}",
        )
        assert result["status"] == "unique"
        assert_valid_result(result)
    statuses = [(f[b"id"], f[b"status"]) for _, f in r.xrange(client.keys.results)]
    assert statuses.count((b"long", b"rejected")) == 1 and statuses.count((b"long", b"unique")) == 1
    assert statuses.count((b"gave-up", b"unique")) == 1
    assert client.dead.entries() == []


def test_a_correction_is_revision_two_and_forget_takes_the_article_down(settings, env, start_worker):
    start_worker()
    client = Client(settings)
    first = client.wait([client.submit({"id": "story", "text": STORIES[2]})], timeout=60)["story"]
    fixed = client.wait([client.submit({"id": "story", "text": STORIES[3]})], timeout=60)["story"]
    assert (first["revision"], fixed["revision"]) == (1, 2)
    assert_valid_result(first)
    assert_valid_result(fixed)
    assert client.get("story")["text"] == STORIES[3]
    entries = [f for _, f in client.redis.xrange(client.keys.results) if f[b"id"] == b"story"]
    assert len(entries) == 2  # re-emitted, not edited in place
    # The corrected-away text no longer claims its story for this id.
    reused = client.wait([client.submit({"id": "other", "text": STORIES[2]})], timeout=60)["other"]
    assert reused["status"] == "unique"

    done = newsflow(env, "forget", "story")
    assert done.returncode == 0, done.stderr
    assert client.get("story") is None
    assert not [f for _, f in client.redis.xrange(client.keys.results) if f[b"id"] == b"story"]
    copy = client.wait([client.submit({"id": "copy", "text": STORIES[3]})], timeout=60)["copy"]
    assert copy["status"] == "unique"  # the taken-down text is no longer in the dedupe state
    assert newsflow(env, "forget", "story").returncode == 1  # nothing left to remove
