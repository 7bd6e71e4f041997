"""Python ways in: the producer client (no jieba), send_task by name, and submit's backpressure."""

from __future__ import annotations

import subprocess
import sys
import threading

import orjson
from celery import Celery

from producer.client import Client
from tests.support import ROOT, newsflow_env, wait_for
from tests.test_bridge import STORIES


def test_submitting_with_the_client_never_imports_jieba(env):
    script = """
import sys
from producer import Client
from producer import bridge, cli  # noqa: F401
client = Client()
client.submit({"id": "light", "text": "只是提交，不做分詞。"})
client.submit_many([{"text": "第二篇"}])
assert client.redis.llen(client.keys.queue_list) == 2
assert "jieba" not in sys.modules, "producer imported jieba"
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=newsflow_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_bare_celery_app_submits_by_task_name(settings, start_worker):
    start_worker()
    # All another Python app needs: the broker URL, the key prefix and the queue name.
    other = Celery(broker=settings.redis_url)
    other.conf.broker_transport_options = {"global_keyprefix": f"{settings.prefix}:"}
    other.send_task(
        "newsflow.submit", kwargs={"articles": [{"id": "by-name", "text": STORIES[0]}]}, queue=settings.prefix
    )
    client = Client(settings)
    result = wait_for(lambda: client.get("by-name"), 60, "the result of the task sent by name")
    assert result["status"] == "unique" and result["revision"] == 1


def test_submit_waits_at_the_queue_bound_and_finishes_once_workers_start(
    settings, env, start_worker, tmp_path
):
    bound, batch = 100, 50
    articles = tmp_path / "many.jsonl"
    articles.write_bytes(
        b"".join(
            orjson.dumps({"id": f"bp-{i:04d}", "text": f"{STORIES[i % 6]}第{i}則。"}) + b"\n"
            for i in range(1000)
        )
    )
    client = Client(settings)
    depths: list[int] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.002):  # paces the sampling; nothing waits on it
            depths.append(client.queue_depth())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    submit_env = newsflow_env(env) | {"NEWSFLOW_QUEUE_BOUND": str(bound), "NEWSFLOW_BATCH_SIZE": str(batch)}
    submit = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "submit", str(articles), "--wait", "--timeout", "120", "-q"],
        env=submit_env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: client.queue_depth() * batch >= bound, 30, "the queue to fill to its bound")
        assert submit.poll() is None, "submit finished without any worker: it did not wait"
        start_worker(concurrency=2, extra_env={"NEWSFLOW_BATCH_SIZE": str(batch)})
        out, err = submit.communicate(timeout=180)
    finally:
        sampling.set()
        sampler.join(10)
        if submit.poll() is None:
            submit.kill()
    assert submit.returncode == 0, err
    assert "1000 results" in out
    assert max(depths) * batch <= bound + batch
    assert wait_for(lambda: client.redis.xlen(client.keys.results) == 1000, 10, "every result entry")
