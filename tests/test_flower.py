"""Flower against real workers, and two deployments (prefixes) on one Redis that never see each other."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import orjson
import pytest

from producer.client import Client
from producer.status import collect
from tests.support import ROOT, free_port, http_get, newsflow_env, wait_for
from worker.app import make_app
from worker.config import Settings

AUTH = "ops:flower-pass"


def _get(url: str, auth: str | None = AUTH) -> tuple[int, object]:
    """``(status, parsed JSON body)``; the body is None unless the request succeeded."""
    status, body = http_get(url, auth)
    return status, orjson.loads(body) if 200 <= status < 300 else None


@pytest.fixture
def flower(env: dict[str, str], tmp_path: Path):
    port = free_port()
    log = open(tmp_path / "flower.log", "wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker.app",
            "flower",
            f"--basic-auth={AUTH}",
            f"--port={port}",
            "--address=127.0.0.1",
        ],
        env=newsflow_env(env),
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _get(f"{base}/api/workers", None)[0] != 0, 60, "flower to listen")
    yield base
    proc.terminate()
    proc.wait(20)
    log.close()


def test_flower_api_needs_auth_and_sees_only_its_own_deployment(env, settings, start_worker, flower):
    other = Settings.from_env({**env, "NEWSFLOW_PREFIX": f"o{uuid.uuid4().hex[:10]}"})
    start_worker(name="ours")
    start_worker(name="theirs", extra_env={"NEWSFLOW_PREFIX": other.prefix})

    assert _get(f"{flower}/api/workers", None)[0] == 401
    assert _get(f"{flower}/api/workers", "ops:wrong")[0] == 401

    # The worker's events reach Flower: it appears in the event-built state.
    alive = wait_for(
        lambda: (r := _get(f"{flower}/api/workers?status=1"))[0] == 200 and r[1],
        60,
        "flower to hear worker events",
    )
    assert all(node.startswith("ours0@") for node in alive), alive

    ours, theirs = Client(settings), Client(other)
    ours.wait(ours.submit_many([{"id": "f/1", "text": "颱風今晨登陸。"}]), timeout=90)
    theirs.wait(
        theirs.submit_many([{"id": f"g/{i}", "text": f"高鐵第{i}班加開。"} for i in range(3)])
        + theirs.submit_many([{"id": "g/x", "text": "另一批。"}]),
        timeout=90,
    )

    def our_tasks():
        status, tasks = _get(f"{flower}/api/tasks")
        done = [t for t in (tasks or {}).values() if t.get("state") == "SUCCESS"]
        return status == 200 and done and tasks

    tasks = wait_for(our_tasks, 60, "flower to show the processed task")
    assert len(tasks) == 1  # their two batches never show up here
    (task,) = tasks.values()
    assert task["name"] == "newsflow.process_batch" and task["worker"].startswith("ours0@")

    # Broadcast control (pidbox) too: Flower's inspect and ours reach only our worker.
    status, workers = _get(f"{flower}/api/workers?refresh=1")
    assert status == 200 and list(workers) and all(n.startswith("ours0@") for n in workers)
    replies = make_app(settings).control.inspect(timeout=3).ping() or {}
    assert list(replies) and all(n.startswith("ours0@") for n in replies)

    # And `newsflow status` counts each deployment's own workers and outcomes.
    mine, yours = collect(settings), collect(other)
    assert [w["node"][:6] for w in mine["workers"]["nodes"]] == ["ours0@"]
    assert [w["node"][:8] for w in yours["workers"]["nodes"]] == ["theirs1@"]
    assert mine["totals"]["unique"] == 1 and yours["totals"]["unique"] == 4
    assert mine["results_length"] == 1 and yours["results_length"] == 4
