"""Writing a round trip's outcomes: one emit_result.lua call, each outcome once, each counted once."""

from __future__ import annotations

import time

import pytest

from tests.support import unique_result
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.pipeline import Outcome
from worker.result_body import Failure, not_analysed
from worker.results import EMIT_CALL_BYTES, Rendered, ResultStore
from worker.stats import latency_field
from worker.writer import ResultWriter


def outcome(i: int, *, digest: str = "", submitted_at: float | None = None, failed: bool = False) -> Outcome:
    article_id = f"w-{i}"
    if failed:
        error = Failure("processing_error", "boom").as_error()
        return Outcome(article_id, "failed", not_analysed(article_id, "failed", error, "test", attempts=3))
    result = unique_result(article_id, f"第{i}篇")
    return Outcome(article_id, "unique", result, digest or f"hash-{i}", f"fp-{i}", submitted_at)


@pytest.fixture
def parts(settings, redis_server):
    client = redis_server.client()
    keys = Keys(settings.prefix)
    store = ResultStore(client, keys, settings)
    writer = ResultWriter(client, client, store, RedisIndex.from_settings(client, keys, settings), settings)
    return writer, store, client, keys


def stats(client, key) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in client.hgetall(key).items()}


def test_a_round_trip_publishes_each_outcome_once_and_counts_each_once(parts):
    writer, store, client, keys = parts
    now = time.time()
    # Seconds since each was submitted: the middle of four latency buckets, 0.3 s to a minute,
    # so that the milliseconds until the script runs cannot move one to the next bucket.
    ages = [10 ** ((k + 0.5) / 8) / 1000 for k in (20, 28, 36, 44)]
    outcomes = [outcome(i, submitted_at=now - age) for i, age in enumerate(ages)]
    outcomes += [outcome(4), outcome(5, failed=True)]  # no submit time: no latency
    for o in outcomes:
        writer.defer(o, None)
    assert writer.send() == []
    assert client.xlen(keys.results) == 6
    for o in outcomes:
        assert store.get(o.id) == o.result

    expected_buckets: dict[str, int] = {}
    for age in ages:
        field = latency_field(age * 1000)
        expected_buckets[field] = expected_buckets.get(field, 0) + 1
    for key in (keys.stats, keys.stats_minute(int(time.time() // 60))):
        counts = stats(client, key)
        assert counts.pop("unique") == "5" and counts.pop("failed") == "1"
        assert counts.pop("latency_n") == "4"
        assert sum(ages) * 1000 <= float(counts.pop("latency_ms")) < sum(ages) * 1000 + 1000
        assert {field: int(n) for field, n in counts.items()} == expected_buckets
    assert 0 < client.ttl(keys.stats_minute(int(time.time() // 60)))

    # Delivered again (the same texts): nothing is written, nothing counted twice.
    before = stats(client, keys.stats)
    for o in outcomes:
        writer.defer(o, None)
    writer.send()
    assert client.xlen(keys.results) == 6
    assert stats(client, keys.stats) == before


def test_an_outcome_is_rendered_when_deferred(parts):
    writer, store, _client, _keys = parts
    o = outcome(0)
    written = dict(o.result)
    writer.defer(o, None)
    o.result["text"] = "改过"  # after defer: not what is written
    writer.send()
    assert store.get(o.id) == written


def test_an_outcome_whose_revision_moved_on_is_published_as_the_next_one(parts):
    writer, store, client, keys = parts
    # A correction of w-0 landed while this worker rendered w-0 as revision 1.
    correction = outcome(0, digest="hash-correction")
    assert store.publish(correction.id, "unique", correction.result, "hash-correction", "fp-0")[0] == 1
    late, other = outcome(0, digest="hash-late"), outcome(1)
    writer.defer(late, None)
    writer.defer(other, None)
    writer.send()
    assert store.get("w-0")["revision"] == 2 and store.get("w-0")["text"] == late.result["text"]
    assert client.hget(keys.result("w-0"), "hash") == b"hash-late"
    assert store.get("w-1") == other.result
    assert stats(client, keys.stats)["unique"] == "3"


def test_outcomes_are_published_after_redis_lost_its_scripts(parts):
    writer, store, client, keys = parts
    client.script_flush()  # as after a restart
    outcomes = [outcome(i) for i in range(3)]
    for o in outcomes:
        writer.defer(o, None)
    assert writer.send(lambda pipe: pipe.echo("and the batch's own commands")) == [
        b"and the batch's own commands"
    ]
    for o in outcomes:
        assert store.get(o.id) == o.result
    assert stats(client, keys.stats)["unique"] == "3"
    # The next round trip uses the script loaded again.
    writer.defer(outcome(3), None)
    writer.send()
    assert stats(client, keys.stats)["unique"] == "4"


def test_big_bodies_go_in_several_calls_each_written_and_counted_once(parts):
    writer, store, client, keys = parts
    outcomes = [outcome(i) for i in range(6)]
    for o in outcomes:  # each body a little over a third of a call (3 bytes a character in UTF-8)
        o.result["text"] = "长" * (EMIT_CALL_BYTES // 9)
    planned = client.pipeline(transaction=False)
    assert store.publish_later(planned, [Rendered.of(o) for o in outcomes]) == 3
    planned.reset()

    for o in outcomes:
        writer.defer(o, None)
    assert writer.send(lambda pipe: pipe.echo("after the results")) == [b"after the results"]
    for o in outcomes:
        assert store.get(o.id) == o.result
    assert stats(client, keys.stats)["unique"] == "6"
    assert client.xlen(keys.results) == 6
