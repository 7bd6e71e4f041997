"""A Redis failover under load: what tests/test_failover.py checks and bench/failover.py times.

A primary, two replicas and three sentinels (tests.support.SentinelCluster),
two worker processes and a bridge, all given the sentinels' URL. Articles go
in through several ``newsflow submit`` calls (some texts sent again under a
second id) and through the inbox; while the calls go on the primary is either
killed (SIGKILL) or demoted: its writes paused (``CLIENT PAUSE WRITE``), then
``SENTINEL FAILOVER``, which promotes a replica and turns the old primary
into one with ``REPLICAOF``, so its clients meet ``READONLY``. Before that,
with both replicas frozen (SIGSTOP), one submit call must not be confirmed.

:func:`run` returns what happened (:class:`Outcome`): which articles were
confirmed, how many result entries each got, the statuses, the time from the
kill to the first result written after it, and the confirmed articles that
never got a result (lost in the failover).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis

from tests.support import ROOT, Bridge, SentinelCluster, Worker, newsflow_env, wait_for
from worker.connection import connect
from worker.keys import Keys

# Common characters, so that random texts segment like news and share no shingles.
_HANZI = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后"
    "多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合"
    "还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只"
)


@dataclass
class Outcome:
    """What one failover run did and left behind."""

    min_replicas: int
    mode: str
    confirmed: set[str] = field(default_factory=set)
    pairs: list[tuple[str, str]] = field(default_factory=list)
    entries: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, str] = field(default_factory=dict)
    frozen_rc: int | None = None
    frozen_message: str = ""
    calls: list[int] = field(default_factory=list)
    old_master: int = 0
    new_master: int = 0
    failover_s: float | None = None
    kill_to_result_s: float | None = None
    lost: list[str] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    readonly_seen: int = 0
    logs: str = ""

    def report(self) -> str:
        failed = sum(1 for s in self.statuses.values() if s == "failed")
        return (
            f"min_replicas={self.min_replicas} mode={self.mode}: {len(self.confirmed)} confirmed, "
            f"{len(self.lost)} confirmed but lost, {failed} failed; submit calls exit {self.calls}; "
            f"new master after {self.failover_s}s; first result after the switch "
            f"{self.kill_to_result_s}s; frozen replicas: submit exit {self.frozen_rc}"
        )


def texts(n: int, seed: int = 17) -> list[str]:
    """``n`` distinct texts of about 120 characters, with sentence punctuation."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        sentences = ["".join(rng.choices(_HANZI, k=rng.randint(15, 30))) for _ in range(5)]
        out.append("。".join(sentences) + "。")
    return out


def run(
    workdir: Path,
    *,
    articles: int = 2000,
    duplicates: int = 100,
    calls: int = 8,
    inbox: int = 100,
    min_replicas: int = 1,
    mode: str = "kill",
    visibility_timeout: int = 15,
    settle_timeout: float = 90.0,
    say: Any = print,
) -> Outcome:
    """Run the scenario in ``workdir``; returns its :class:`Outcome` (nothing asserted here)."""
    assert mode in ("kill", "demote")
    out = Outcome(min_replicas, mode)
    cluster = SentinelCluster(workdir / "cluster")
    prefix = f"fo{random.randrange(16**8):08x}"
    keys = Keys(prefix)
    env = {
        "NEWSFLOW_REDIS_URL": cluster.url,
        "NEWSFLOW_PREFIX": prefix,
        "NEWSFLOW_MIN_REPLICAS": str(min_replicas),
        "NEWSFLOW_VISIBILITY_TIMEOUT": str(visibility_timeout),
        "NEWSFLOW_CONFIRM_TIMEOUT": "30",
        "NEWSFLOW_ENTITIES": "pos",
    }
    workers: list[Worker] = []
    bridge: Bridge | None = None
    try:
        workers = [Worker(env, 1, f"fo{i}", workdir, loglevel="INFO") for i in range(2)]
        bridge = Bridge(env, workdir, "--min-idle-ms", "5000")
        client = connect(cluster.url, master=cluster.name, sentinel_password="")
        body = texts(articles + 20)
        unique = [{"id": f"a{i}", "text": t} for i, t in enumerate(body[:articles])]
        step = max(1, articles // max(1, duplicates))
        again = [{"id": f"again{i}", "text": unique[i * step]["text"]} for i in range(duplicates)]
        out.pairs = [(f"a{i * step}", f"again{i}") for i in range(duplicates)]
        through_inbox, submitted = unique[:inbox], unique[inbox:] + again
        random.Random(3).shuffle(submitted)
        chunks = [submitted[i::calls] for i in range(calls)]

        if min_replicas > 0:
            # Both replicas frozen: the primary takes the batch, no replica does.
            frozen = [{"id": f"frozen{i}", "text": t} for i, t in enumerate(body[articles:])]
            replicas = cluster.replicas_of(cluster.master())
            for server in replicas:
                cluster.signal(server.port, signal.SIGSTOP)
            try:
                rc, err = _submit(workdir / "frozen.jsonl", frozen, {**env, "NEWSFLOW_CONFIRM_TIMEOUT": "3"})
            finally:
                for server in replicas:
                    cluster.signal(server.port, signal.SIGCONT)
            out.frozen_rc, out.frozen_message = rc, err.strip().splitlines()[-1] if err.strip() else ""
            say(f"replicas frozen: submit exit {rc}: {out.frozen_message[:160]}")

        for article in through_inbox:  # the inbox's producer waits for its own writes too
            pipe = client.pipeline(transaction=False)
            pipe.xadd(keys.inbox, {"id": article["id"], "text": article["text"]})
            if min_replicas:
                pipe.execute_command("WAIT", min_replicas, 5000)
            replies = pipe.execute()
            if not min_replicas or replies[-1] >= min_replicas:
                out.confirmed.add(article["id"])

        started = [threading.Event() for _ in chunks]
        results: list[tuple[int, str, list[dict[str, Any]]]] = []

        def submit_all() -> None:
            for i, chunk in enumerate(chunks):
                started[i].set()
                rc, err = _submit(workdir / f"call{i}.jsonl", chunk, env)
                results.append((rc, err, chunk))

        thread = threading.Thread(target=submit_all, daemon=True)
        thread.start()
        started[max(1, calls // 3)].wait(300)  # a third of the calls done, the next one under way
        out.old_master = cluster.master()
        switched = time.time()
        if mode == "kill":
            cluster.signal(out.old_master, signal.SIGKILL)
        else:
            # A planned switchover, done safely: writes to the old primary are
            # held first (as Redis's FAILOVER command and managed services do),
            # so no replica acknowledges a write the new primary never gets.
            cluster.server(out.old_master).client().execute_command("CLIENT", "PAUSE", 5000, "WRITE")
            cluster.sentinel().execute_command("SENTINEL", "FAILOVER", cluster.name)
        say(f"{mode} master on port {out.old_master} at {switched:.3f}")
        out.new_master = wait_for(
            lambda: (port := cluster.master()) != out.old_master and port, 60, "a new master"
        )
        out.failover_s = round(time.time() - switched, 2)
        out.kill_to_result_s = round(_first_result_after(client, keys, switched) - switched, 2)
        say(f"new master {out.new_master} after {out.failover_s}s; next result {out.kill_to_result_s}s")
        thread.join(600)
        out.calls = [rc for rc, _, _ in results]
        for rc, err, chunk in results:
            named = set(re.findall(r"\b(?:a|again)\d+\b", err.strip().splitlines()[-1])) if rc else set()
            out.confirmed.update(a["id"] for a in chunk if a["id"] not in named)

        def settled() -> bool:
            pipe = client.pipeline(transaction=False)
            for article_id in sorted(out.confirmed):
                pipe.exists(keys.result(article_id))
            return all(pipe.execute())

        try:
            wait_for(settled, settle_timeout, "a result for every confirmed article")
        except AssertionError:
            say(f"not every confirmed article has a result after {settle_timeout}s")
        for entry_id, fields in _all_entries(client, keys.results):
            out.entries[fields[b"id"].decode()] += 1
            del entry_id
        pipe = client.pipeline(transaction=False)
        ids = sorted(out.confirmed | {b for _, b in out.pairs} | {a for a, _ in out.pairs})
        for article_id in ids:
            pipe.hget(keys.result(article_id), "status")
        for article_id, status in zip(ids, pipe.execute(), strict=True):
            if status is not None:
                out.statuses[article_id] = status.decode()
        out.lost = sorted(i for i in out.confirmed if i not in out.statuses)
        status = subprocess.run(
            [sys.executable, "-m", "producer.cli", "status", "--json"],
            env=newsflow_env(env),
            cwd=ROOT,
            capture_output=True,
            timeout=60,
        )
        out.status = orjson.loads(status.stdout) if status.stdout.strip() else {}
        if out.lost:
            say(f"lost: {' '.join(out.lost[:20])}; where: {_whereabouts(client, keys, out.lost)}")
            for server in cluster.servers:
                if server.proc and server.proc.poll() is None:
                    c = server.client()
                    info = c.info("replication")
                    n = sum(1 for _ in c.scan_iter(match=f"{prefix}:result:*", count=1000))
                    say(f"server {server.port}: {info.get('role')} of {info.get('master_port')}, {n} results")
        say(out.report())
        return out
    finally:
        for worker in workers:
            worker.stop()
        if bridge is not None:
            bridge.stop()
        everything = "\n".join(w.log() for w in workers) + (bridge.log() if bridge else "")
        out.readonly_seen = len(re.findall(r"READONLY|previous master is now a slave", everything))
        out.logs = "\n".join(w.log()[-4000:] for w in workers) + (bridge.log()[-4000:] if bridge else "")
        cluster.stop()


def _submit(path: Path, articles: list[dict[str, Any]], env: dict[str, str]) -> tuple[int, str]:
    path.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in articles))
    done = subprocess.run(
        [sys.executable, "-m", "producer.cli", "submit", "--quiet", str(path)],
        env=newsflow_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done.returncode, done.stderr


def _first_result_after(client: redis.Redis, keys: Keys, since: float, timeout: float = 120) -> float:
    """When the first results entry written after ``since`` (unix seconds) was written."""
    start = f"{int(since * 1000) + 1}-0"

    def first() -> float | None:
        got = client.xrange(keys.results, min=start, count=1)
        return int(got[0][0].decode().split("-")[0]) / 1000 if got else None

    return float(wait_for(first, timeout, "a result after the failover"))


def _all_entries(client: redis.Redis, stream: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    out: list[tuple[bytes, dict[bytes, bytes]]] = []
    start = "-"
    while True:
        got = client.xrange(stream, min=start, count=1000)
        out += got
        if len(got) < 1000:
            return out
        start = "(" + got[-1][0].decode()


def _whereabouts(client: redis.Redis, keys: Keys, ids: list[str]) -> dict[str, Any]:
    """Which stashed batches still hold the ``ids``, and whether they are listed and queued."""
    wanted = set(ids)
    found: dict[str, Any] = {}
    queued = b"".join(client.lrange(keys.queue_list, 0, -1)) + b"".join(client.hvals(keys.unacked))
    for key in client.scan_iter(match=keys.batches.rsplit(":", 1)[0] + ":batch:*", count=1000):
        batch = orjson.loads(client.get(key) or b"[]")
        held = [a.get("id") for a in batch if isinstance(a, dict) and a.get("id") in wanted]
        if held:
            batch_id = key.decode().rsplit(":", 1)[-1]
            found[batch_id] = {
                "ids": len(held),
                "listed": client.zscore(keys.batches, batch_id),
                "queued": batch_id.encode() in queued,
            }
    return found
