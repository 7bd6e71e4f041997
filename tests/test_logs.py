"""Worker logs: one structured event per article and per batch, and never a password."""

from __future__ import annotations

import io
import logging
import subprocess
import sys

import orjson
import redis
import structlog

from producer.client import Client
from tests.support import ROOT, RedisServer, free_port, newsflow_env
from worker.config import Settings
from worker.logs import configure

PASSWORD = "Pw-n3wsflow-Secret"


class PasswordRedis(RedisServer):
    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=PASSWORD)

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"


def _events(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(orjson.loads(line))
    return found


def test_worker_logs_each_outcome_and_batch_and_never_the_password(tmp_path, prefix, start_worker):
    server = PasswordRedis(tmp_path / "redis", "--requirepass", PASSWORD)
    try:
        env = {"NEWSFLOW_REDIS_URL": server.url, "NEWSFLOW_PREFIX": prefix, "NEWSFLOW_LOG_FORMAT": "json"}
        worker = start_worker(extra_env=env, extra=("--loglevel", "INFO"))
        client = Client(Settings.from_env(env))
        sent = client.submit_many([{"id": "log/1", "text": "颱風今晨登陸。"}, {"id": "log/2", "text": " "}])
        client.wait(sent, timeout=90)
        status = [
            subprocess.run(
                [sys.executable, "-m", "producer.cli", "status", *flag],
                env=newsflow_env(env),
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=60,
            )
            for flag in ((), ("--json",))
        ]
        worker.stop()
        log = worker.log()
    finally:
        server.stop()

    assert PASSWORD not in log
    events = _events(log)
    # Celery's own lines are JSON as well, and the broker URL in them is masked.
    assert any(e.get("logger", "").startswith("celery") for e in events), log[:2000]
    articles = {e["id"]: e for e in events if e["event"] == "article"}
    assert articles["log/1"]["status"] == "unique" and articles["log/2"]["status"] == "rejected"
    batches = [e for e in events if e["event"] == "batch"]
    assert len(batches) == 1
    for event in [*articles.values(), *batches]:
        assert {"status", "batch", "ms", "worker"} <= set(event), event
        assert event["batch"] == batches[0]["batch"]

    for ran in status:
        assert ran.returncode == 0, ran.stderr
        assert PASSWORD not in ran.stdout + ran.stderr
        assert ":***@127.0.0.1" in ran.stdout


def test_status_masks_the_password_of_an_unreachable_redis():
    url = f"redis://admin:{PASSWORD}@127.0.0.1:{free_port()}/0"
    env = {"NEWSFLOW_REDIS_URL": url, "NEWSFLOW_PREFIX": "x"}
    ran = subprocess.run(
        [sys.executable, "-m", "producer.cli", "status"],
        env=newsflow_env(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 1
    assert "unreachable" in ran.stdout and "admin:***@" in ran.stdout
    assert PASSWORD not in ran.stdout + ran.stderr


def test_log_lines_are_json_off_a_terminal_and_readable_on_one():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        for stream, is_json in ((io.StringIO(), True), (Terminal(), False)):
            configure("auto", stream)
            structlog.get_logger("t").info(
                "article",
                id="a/1",
                url=f"redis://u:{PASSWORD}@h/0",
                nested={"urls": [f"rediss://:{PASSWORD}@h:6380"]},
            )
            line = stream.getvalue()
            assert PASSWORD not in line and "u:***@h/0" in line and "rediss://:***@h:6380" in line
            assert line.startswith("{") is is_json
            if is_json:
                assert orjson.loads(line)["id"] == "a/1"
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)


def test_our_events_below_the_level_are_not_written():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        for configured, written in (
            ("WARNING", ["warned"]),
            ("info", ["told", "warned"]),
            (logging.DEBUG, ["told", "warned"]),
        ):
            stream = io.StringIO()
            configure("json", stream, level=configured)
            log = structlog.get_logger("t")
            log.info("told", id="a/1")
            log.warning("warned", id="a/1")
            assert [orjson.loads(line)["event"] for line in stream.getvalue().splitlines()] == written
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(level)
