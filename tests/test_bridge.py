"""The inbox bridge: any language in through XADD, results out through consumer groups."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import orjson
import pytest

from producer.client import Client
from tests.support import wait_for
from worker.connection import ensure_group
from worker.keys import BRIDGE_GROUP

STORIES = [
    "台北市政府今天舉行記者會，市長宣布明年起捷運票價維持不變，並擴大公車路網。",
    "中央氣象署表示，颱風預計週三登陸東部，提醒民眾做好防颱準備，注意強風豪雨。",
    "國內半導體大廠公布第三季財報，營收創下新高，法人看好明年市場需求持續成長。",
    "教育部宣布新學年將增加雙語課程，並補助偏鄉學校聘請外籍教師協助教學工作。",
    "衛生福利部提醒，流感季節即將來臨，六十五歲以上長者應儘速接種流感疫苗。",
    "農委會指出，今年稻米收成良好，產量較去年增加一成，米價可望維持平穩。",
]


def redis_cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, check=True, timeout=30
    )
    assert not done.stdout.startswith("error"), done.stdout
    return done.stdout


def all_settled(client: Client) -> bool:
    """Every inbox entry acknowledged and every queued batch finished."""
    r = client.redis
    groups = {g["name"].decode(): g for g in r.xinfo_groups(client.keys.inbox)}
    bridge = groups.get(BRIDGE_GROUP)
    return bool(
        bridge
        and bridge["pending"] == 0
        and bridge["lag"] == 0
        and r.llen(client.keys.queue_list) == 0
        and not list(r.scan_iter(match=f"{client.keys.prefix}:batch:*"))
    )


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_articles_from_redis_cli_come_back_once_each_through_a_new_group(
    redis_server, settings, start_worker, start_bridge
):
    inbox, results = f"{settings.prefix}:inbox", f"{settings.prefix}:results"
    for i, story in enumerate(STORIES[:5]):
        redis_cli(
            redis_server.port,
            "XADD",
            inbox,
            "*",
            "id",
            f"cli-{i}",
            "text",
            story,
            "title",
            f"標題{i}",
            "meta",
            json.dumps({"n": i}),
        )
    redis_cli(redis_server.port, "XADD", inbox, "*", "id", "cli-0", "text", STORIES[0])  # sent twice
    anonymous = redis_cli(redis_server.port, "XADD", inbox, "*", "text", STORIES[5]).strip()
    redis_cli(redis_server.port, "XADD", inbox, "*", "id", "no-text", "title", "只有標題")
    # Everything above was added before any bridge ran.
    start_worker()
    start_bridge("--block-ms", "200")
    client = Client(settings)
    redis_cli(redis_server.port, "XGROUP", "CREATE", results, "downstream", "0", "MKSTREAM")

    seen: list[dict] = []

    def read_some() -> int:
        out = redis_cli(
            redis_server.port,
            "-2",
            "--json",
            "XREADGROUP",
            "GROUP",
            "downstream",
            "app-1",
            "COUNT",
            "100",
            "STREAMS",
            results,
            ">",
        )
        for _stream, entries in json.loads(out) or []:
            for entry, flat in entries:
                fields = dict(zip(flat[::2], flat[1::2], strict=True))
                seen.append(json.loads(fields["result"]))
                redis_cli(redis_server.port, "XACK", results, "downstream", entry)
        return len(seen)

    expected = {f"cli-{i}" for i in range(5)} | {f"inbox-{anonymous}", "no-text"}
    wait_for(lambda: read_some() >= len(expected), 60, "a result for every inbox entry")
    wait_for(lambda: all_settled(client), 30, "inbox and queue to drain")
    read_some()

    assert Counter(r["id"] for r in seen) == Counter(expected)
    by_id = {r["id"]: r for r in seen}
    assert by_id["no-text"]["status"] == "rejected"
    assert by_id["no-text"]["error"]["code"] == "missing_text"
    assert by_id["cli-3"]["status"] == "unique" and by_id["cli-3"]["title"] == "標題3"
    assert by_id["cli-3"]["meta"] == {"n": 3}
    assert by_id[f"inbox-{anonymous}"]["status"] == "unique"
    dead = client.dead.entries()
    assert [f["raw.title"].decode() for _, f in dead] == ["只有標題"]


def test_malformed_entries_are_rejected_and_parked_without_blocking_the_rest(
    settings, start_worker, start_bridge
):
    client = Client(settings)
    r, inbox = client.redis, client.keys.inbox
    r.xadd(inbox, {"id": "utf8", "text": b"\xe4\xb8\xad\xff\xfe"})
    r.xadd(inbox, {"id": "meta", "text": STORIES[0], "meta": "{not json"})
    r.xadd(inbox, {"id": "bad id!", "text": STORIES[1]})
    r.xadd(inbox, {"id": "fine", "text": STORIES[2]})
    start_worker()
    start_bridge("--block-ms", "200")
    wait_for(lambda: client.get("fine"), 60, "the good entry's result")
    wait_for(lambda: all_settled(client), 30, "inbox and queue to drain")

    codes = {
        f[b"id"].decode(): orjson.loads(f[b"result"])["error"]["code"]
        for _, f in r.xrange(client.keys.results)
        if f[b"status"] == b"rejected"
    }
    bad_id_entry = r.xrange(inbox)[2][0].decode()
    assert codes == {"utf8": "invalid_utf8", "meta": "bad_meta", f"inbox-{bad_id_entry}": "bad_id"}
    raw_texts = {f["id"].decode(): f.get("raw.text") for _, f in client.dead.entries()}
    assert raw_texts["utf8"] == b"\xe4\xb8\xad\xff\xfe"  # parked exactly as sent
    assert set(raw_texts) == {"utf8", "meta", f"inbox-{bad_id_entry}"}


def test_a_bridge_killed_mid_batch_leaves_its_entries_to_another_exactly_once(
    settings, env, start_worker, start_bridge
):
    """Bridge A reads a batch, then waits on backpressure with the entries un-acked; it is killed."""
    client = Client(settings)
    r, inbox = client.redis, client.keys.inbox
    ids = [f"k-{i:03d}" for i in range(120)]
    for i, article_id in enumerate(ids):
        r.xadd(inbox, {"id": article_id, "text": f"{STORIES[i % 6]}第{i}則。"})
    tight = {"NEWSFLOW_QUEUE_BOUND": "40", "NEWSFLOW_BATCH_SIZE": "20"}  # room for two batches
    doomed = start_bridge("--consumer", "doomed", "--block-ms", "200", extra_env=tight)

    def stuck_mid_batch() -> bool:
        groups = {g["name"].decode(): g for g in r.xinfo_groups(inbox)}
        pending = groups[BRIDGE_GROUP]["pending"] if BRIDGE_GROUP in groups else 0
        return r.llen(client.keys.queue_list) == 2 and pending == 20

    wait_for(stuck_mid_batch, 30, "bridge A to hold a read batch it cannot queue yet")
    doomed.kill()

    start_worker(concurrency=2)
    start_bridge("--consumer", "heir", "--block-ms", "200", "--min-idle-ms", "300")
    wait_for(lambda: all(client.get(i) for i in ids), 90, "a result for every article")
    wait_for(lambda: all_settled(client), 30, "inbox and queue to drain")

    per_id = Counter(f[b"id"].decode() for _, f in r.xrange(client.keys.results))
    assert per_id == Counter(ids)
    assert r.xpending(inbox, BRIDGE_GROUP)["pending"] == 0


def test_an_entry_that_killed_every_bridge_is_given_up_as_failed(settings, start_bridge):
    client = Client(settings)
    r, inbox = client.redis, client.keys.inbox
    ensure_group(r, inbox, BRIDGE_GROUP)
    poison = r.xadd(inbox, {"id": "poison", "text": STORIES[0]}).decode()
    r.xreadgroup(BRIDGE_GROUP, "dead-bridge", {inbox: ">"})
    # As if three bridges in turn had taken it over and died.
    r.xclaim(inbox, BRIDGE_GROUP, "dead-bridge", 0, [poison], retrycount=settings.max_attempts)
    start_bridge("--block-ms", "200", "--min-idle-ms", "0")

    result = wait_for(lambda: client.get("poison"), 30, "the poison entry's outcome")
    assert result["status"] == "failed" and result["error"]["code"] == "bridge_lost"
    (dead,) = client.dead.entries()
    assert dead[1]["inbox_entry"].decode() == poison and dead[1]["raw.text"].decode() == STORIES[0]
    assert wait_for(lambda: r.xpending(inbox, BRIDGE_GROUP)["pending"] == 0, 10, "the entry's ack")
