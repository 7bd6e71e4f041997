"""The walking skeleton: producer -> Redis -> real Celery workers -> results in Redis."""

from __future__ import annotations

from collections import Counter

import orjson

from producer.client import Client
from tests.conftest import hard_wrap
from tests.schema import assert_valid, assert_valid_result


def assert_offsets(result: dict) -> None:
    text = result["text"]
    for word, _pos, start in result["tokens"]:
        assert text[start : start + len(word)] == word, (word, start)


def test_repeated_wrapped_traditional_article_through_a_worker(settings, start_worker, seed_story):
    start_worker(concurrency=1)
    client = Client(settings)
    pasted = hard_wrap("".join([seed_story] * 7), 32)
    sent = client.submit({"id": "wire/seed-1", "text": pasted, "title": "核武", "meta": {"desk": "intl"}})
    results = client.wait([sent], timeout=60)
    result = results["wire/seed-1"]

    assert result["status"] == "unique"
    assert result["repeats_removed"] == 6
    assert result["script"] == "hant"
    assert result["text"] == seed_story
    words = [w for w, _, _ in result["tokens"]]
    assert words.count("拉夫羅夫") == 6 == seed_story.count("拉夫羅夫")
    assert "海參崴" in words
    persons = {e["w"] for e in result["entities"]["person"]}
    assert {"拉夫羅夫", "金正日", "盧武鉉"} <= persons
    assert result["title"] == "核武" and result["meta"] == {"desk": "intl"}
    assert result["revision"] == 1 and result["schema"] == 1
    assert_offsets(result)
    assert_valid_result(result)

    # The stream entry holds the body; the per-id key only points at it.
    r = client.redis
    entries = r.xrange(client.keys.results)
    assert len(entries) == 1
    assert orjson.loads(entries[0][1][b"result"]) == result
    record = r.hgetall(client.keys.result("wire/seed-1"))
    assert b"result" not in record and record[b"entry"] == entries[0][0]
    assert 0 < r.ttl(client.keys.result("wire/seed-1")) <= settings.result_ttl


def test_copies_wrapped_differently_race_to_one_unique(settings, start_worker, seed_story):
    for _ in range(2):
        start_worker(concurrency=1)
    client = Client(settings.with_(batch_size=1))
    articles = [{"id": f"copy-{w}", "text": hard_wrap(seed_story, w)} for w in (17, 20, 25, 32, 40, 64, 500)]
    results = client.wait(client.submit_many(articles), timeout=90)

    statuses = Counter(r["status"] for r in results.values())
    assert statuses == {"unique": 1, "duplicate": 6}
    for result in results.values():
        assert_valid_result(result)
    (original,) = [i for i, r in results.items() if r["status"] == "unique"]
    for article_id, result in results.items():
        if article_id != original:
            assert result["duplicate_of"] == original
            assert "tokens" not in result
        else:
            assert_offsets(result)


def test_same_id_same_text_is_processed_once(settings, start_worker, seed_story):
    start_worker()
    client = Client(settings)
    first = client.wait([client.submit({"id": "again", "text": seed_story})], timeout=60)["again"]
    second = client.wait([client.submit({"id": "again", "text": seed_story})], timeout=60)["again"]
    assert second == first
    assert client.redis.xlen(client.keys.results) == 1
    assert_valid_result(first)

    # A consumer reading only the stream sees no new entry for the no-op; the per-id
    # record leads it to the result (docs/result-format.md): HGETALL, then XRANGE entry entry.
    r = client.redis
    record = {k.decode(): v.decode() for k, v in r.hgetall(client.keys.result("again")).items()}
    assert_valid(record, "record")
    ((_, fields),) = r.xrange(client.keys.results, record["entry"], record["entry"])
    assert orjson.loads(fields[b"result"]) == first and record["status"] == first["status"]


def test_bad_input_becomes_a_rejected_result(settings, start_worker):
    start_worker()
    client = Client(settings)
    sent = client.submit_many(
        [
            {"id": "empty", "text": "  \n "},
            {"id": "no-text"},
            {"id": "bad id!", "text": "有效的文字"},
        ]
    )
    results = client.wait(sent, timeout=60)
    assert results["empty"]["error"]["code"] == "empty_text"
    assert results["no-text"]["error"]["code"] == "missing_text"
    assert {r["status"] for r in results.values()} == {"rejected"}
    for result in results.values():
        assert_valid_result(result)

    def bad_id_entry():
        for _, fields in client.redis.xrange(client.keys.results):
            if fields[b"id"] == b"bad id!":
                return orjson.loads(fields[b"result"])
        return None

    from tests.support import wait_for

    rejected = wait_for(bad_id_entry, 30, "the bad id's rejection")
    assert rejected["error"]["code"] == "bad_id" and rejected["id"] == "bad id!"
    assert_valid_result(rejected)
