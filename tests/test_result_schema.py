"""docs/result.schema.json: a valid schema, true to what newsflow writes, and strict where it promises."""

from __future__ import annotations

import copy
import datetime
import subprocess
import sys
import time

import orjson
import pytest
from jsonschema import Draft202012Validator

from producer.bridge import to_article
from tests.schema import assert_valid, assert_valid_result, check_stored, problems, schema
from tests.support import ROOT
from worker.article import Rejection
from worker.config import Settings
from worker.deadletters import DeadLetters
from worker.embedded import process_all
from worker.keys import Keys
from worker.result_body import Failure, not_analysed, now_iso
from worker.results import ResultStore

SAMPLES = sorted(str(p) for p in (ROOT / "samples").iterdir() if p.suffix in (".txt", ".jsonl"))


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(schema())


@pytest.fixture(scope="module")
def processed() -> list[dict]:
    """``newsflow process`` of samples/, as a user runs it: JSON lines on stdout."""
    ran = subprocess.run(
        [sys.executable, "-m", "producer.cli", "process", *SAMPLES],
        cwd=ROOT,
        capture_output=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    return [orjson.loads(line) for line in ran.stdout.splitlines()]


def test_every_result_of_newsflow_process_validates(processed):
    assert {r["status"] for r in processed} == {"unique", "duplicate", "near_duplicate", "rejected"}
    for result in processed:
        assert_valid_result(result)


def _first(processed: list[dict], status: str) -> dict:
    return copy.deepcopy(next(r for r in processed if r["status"] == status))


def test_what_each_status_must_carry(processed):
    unique = _first(processed, "unique")
    del unique["text"]
    assert any(p.startswith("(root)") and "'text'" in p for p in problems(unique))
    near = _first(processed, "near_duplicate")
    del near["duplicate_of"]
    assert problems(near)
    unique = _first(processed, "unique")
    unique["similarity"] = 1.0  # only duplicates say how similar they are
    assert problems(unique)
    rejected = _first(processed, "rejected")
    del rejected["error"]
    assert problems(rejected)
    bad_token = _first(processed, "unique")
    bad_token["tokens"][0] = [bad_token["tokens"][0][0], "n"]  # [w, pos, start]: three, always
    assert problems(bad_token)
    wrong_schema = _first(processed, "unique")
    wrong_schema["schema"] = 2
    assert problems(wrong_schema)
    no_starts = _first(processed, "unique")
    next(e for found in no_starts["entities"].values() for e in found).pop("starts")
    assert problems(no_starts)
    near = _first(processed, "near_duplicate")
    assert near["containment"]["longer"] in ("this", "duplicate_of", "same")  # sizes known: always there
    near["containment"] = {"value": 0.9, "longer": "mine"}
    assert problems(near)
    repaired = _first(processed, "unique")
    repaired["repaired"] = {"encoding": "utf-8"}
    assert problems(repaired)
    skipped = _first(processed, "unique")
    skipped["hmm_skipped"] = "2"
    assert problems(skipped)


def test_new_fields_and_the_announced_shapes_are_accepted(processed):
    # Additions within schema 1: unknown fields, entity offsets, containment, new error codes.
    unique = _first(processed, "unique")
    unique["a_field_from_a_later_release"] = {"x": 1}
    text = unique["text"]
    for entities in unique["entities"].values():
        for entity in entities:
            entity["starts"] = [text.find(entity["w"])] if entity["w"] in text else []
            entity["variants"] = {"其他寫法": [0]}
    unique["entities"]["time"] = [{"w": "今天", "count": 1, "starts": [0]}]
    assert_valid_result(unique)
    near = _first(processed, "near_duplicate")
    near["containment"] = {"value": 0.93, "longer": "this", "a_later_member": 1}
    assert_valid_result(near)
    unique["repaired"] = {"encoding": "utf-8", "read_as": "cp1252"}
    unique["hmm_skipped"] = 2
    unique["published_at"] = "2026-11-28T10:00:00"
    unique["meta"] = {"published_at": "下週二"}
    unique["warnings"] = [{"code": "bad_published_at", "message": "kept as meta.published_at"}]
    assert_valid_result(unique)
    garbled = _first(processed, "rejected")
    garbled["error"] = {"code": "garbled_text", "message": "mis-decoded bytes", "repair": {"from": "big5"}}
    assert_valid_result(garbled)


def test_rejected_and_failed_results_as_the_worker_and_bridge_write_them():
    rejected = Rejection("too_large", "text has 11 characters; the limit is 10").result("a/1", "h/1")
    assert_valid_result(rejected)
    assert_valid_result(Rejection("missing_id", "the article has no id").result(None, "h/1"))
    failed = not_analysed(
        "a/2", "failed", Failure("worker_lost", "died every time").as_error(), "h/1", attempts=3
    )
    assert_valid_result(failed)
    lost_error = Failure("bridge_lost", "the bridge died 3 times").as_error()
    lost = not_analysed("inbox-1-0", "failed", lost_error, "h/1", inbox_entry="1700000000000-0")
    assert_valid_result(lost)


def test_inbox_entries_as_other_apps_send_them():
    entry = {"text": "新聞", "id": "wire/1", "title": "標題", "meta": '{"desk": "intl"}'}
    assert_valid(entry, "inbox_entry")
    _, article = to_article("1-0", {k.encode(): v.encode() for k, v in entry.items()}, 1000)
    assert article["meta"] == {"desk": "intl"}
    assert problems({"id": "wire/1"}, "inbox_entry")  # no text
    assert problems({"text": "新聞", "id": "bad id!"}, "inbox_entry")


def test_dead_entries_and_records_as_the_store_writes_them(redis_server, prefix):
    settings = Settings(redis_url=redis_server.url, prefix=prefix)
    store = ResultStore(redis_server.client(), Keys(prefix), settings)
    dead = DeadLetters(redis_server.client(), Keys(prefix))
    error = Failure("processing_error", "ValueError: boom").as_error()
    failed = not_analysed("d/1", "failed", error, "h/1", attempts=3)
    store.publish("d/1", "failed", failed, "hash", "")
    dead.park({"id": "d/1", "text": "稿件"}, failed["error"], 3)
    dead.park_raw(
        "inbox-5-0", {b"text": b"\xff\xfe", b"meta": b"[1]"}, {"code": "invalid_utf8", "message": "x"}, "5-0"
    )
    (unique,) = list(process_all([{"id": "d/2", "text": "颱風今晚登陸，氣象局發布陸上警報。"}], settings))
    store.publish("d/2", "unique", unique, "hash2", "fp2")
    assert check_stored(redis_server.client(), prefix) == 2
    assert problems({"error": "{}", "attempts": "x", "at": "1"}, "dead_entry")


def test_processed_at_is_the_current_millisecond_in_utc():
    # now_iso formats the second once and adds the milliseconds: each value read
    # back lies between the clock just before and just after it was made.
    for _ in range(2000):
        before = int(time.time() * 1000)
        stamp = now_iso()
        after = int(time.time() * 1000)
        parsed = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)
        assert before <= round(parsed.timestamp() * 1000) <= after, stamp
