"""A user's mistake with Redis or a port: one line naming cause and fix, a documented exit code, at once.

Each case runs the real ``newsflow`` command against a real redis-server and
checks the line, the exit code and that it came well inside a generous bound
(the issue's budget is 2 s for a password; the bound leaves room for a loaded
machine, the measured figures are in the commit history and the report).
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
import redis

from tests.support import ROOT, RedisServer, free_port, newsflow_env, wait_for
from worker.errors import EXIT_REDIS, EXIT_USAGE

# Each test runs the real `newsflow` command in a process of its own, some against real servers.
pytestmark = pytest.mark.e2e

PASSWORD = "s3cret/with#odd@chars%+"


class _Locked(RedisServer):
    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=PASSWORD)


@pytest.fixture(scope="module")
def locked(tmp_path_factory):
    """A Redis that needs a password."""
    server = _Locked(tmp_path_factory.mktemp("locked"), "--requirepass", PASSWORD)
    yield server
    server.stop()


def newsflow(
    env: dict[str, str], *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    ran = subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=newsflow_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )
    return ran, time.monotonic() - started


def one_line(ran: subprocess.CompletedProcess) -> str:
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    return lines[0]


COMMANDS = [
    ("submit", "samples/01-typhoon.txt"),
    ("submit", "samples/01-typhoon.txt", "--wait"),
    ("get", "samples/01-typhoon.txt"),
    ("wait", "x"),
    ("bridge",),
    ("results",),
    ("dead",),
    ("forget", "x"),
    ("worker",),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_no_password_where_one_is_needed(locked, command):
    ran, took = newsflow({"NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{locked.port}/0"}, *command)
    line = one_line(ran)
    assert "Redis needs a password: set it in NEWSFLOW_REDIS_URL" in line
    assert ran.returncode == EXIT_REDIS
    assert took < 10, took  # the budget is 2 s; generous for a loaded machine


@pytest.mark.parametrize("command", COMMANDS[:3] + [("bridge",), ("worker",)], ids=lambda c: " ".join(c))
def test_a_wrong_password(locked, command):
    url = f"redis://:not-it@127.0.0.1:{locked.port}/0"
    ran, took = newsflow({"NEWSFLOW_REDIS_URL": url}, *command)
    line = one_line(ran)
    assert "refused the password" in line and "NEWSFLOW_REDIS_URL" in line
    assert "not-it" not in ran.stderr + ran.stdout and ":***@" in line
    assert ran.returncode == EXIT_REDIS
    assert took < 10, took


def test_a_wrong_password_given_apart_is_masked_too(locked):
    ran, _ = newsflow(
        {"NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{locked.port}/0", "NEWSFLOW_REDIS_PASSWORD": "x/y#z"},
        "get",
        "x",
    )
    assert "refused the password" in one_line(ran) and "x/y#z" not in ran.stderr
    assert ran.returncode == EXIT_REDIS


def test_the_client_does_not_retry_a_refused_password(locked):
    from worker.connection import connect

    started = time.monotonic()
    with pytest.raises(redis.AuthenticationError):
        connect(f"redis://:not-it@127.0.0.1:{locked.port}/0").ping()
    with pytest.raises(redis.AuthenticationError):
        connect(f"redis://127.0.0.1:{locked.port}/0").ping()
    assert time.monotonic() - started < 5


def test_nothing_listening():
    port = free_port()  # closed again at once: nothing listens there
    ran, took = newsflow({"NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{port}/0"}, "submit", "samples/")
    line = one_line(ran)
    assert line.startswith(f"newsflow: cannot reach Redis at redis://127.0.0.1:{port}/0")
    assert "start it, or point NEWSFLOW_REDIS_URL at where it runs" in line
    assert ran.returncode == EXIT_REDIS
    assert took < 10, took


def test_a_host_that_never_answers():
    """A listener that never accepts: the connect timeout (5 s) and one retry, not 15 s of backoff."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        # Fill the backlog so that further connects hang instead of being accepted by the kernel.
        fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(blackhole.getsockname())
            fillers.append(s)
        url = f"redis://127.0.0.1:{blackhole.getsockname()[1]}/0"
        ran, took = newsflow({"NEWSFLOW_REDIS_URL": url}, "get", "x")
        for s in fillers:
            s.close()
    line = one_line(ran)
    assert "cannot reach Redis" in line
    assert ran.returncode == EXIT_REDIS
    assert took < 5 * 2 + 8, took


def test_a_url_without_a_scheme(redis_server):
    ran, took = newsflow({"NEWSFLOW_REDIS_URL": f"127.0.0.1:{redis_server.port}"}, "status")
    line = one_line(ran)
    assert "is not a Redis URL: write it as redis://" in line
    assert ran.returncode == EXIT_USAGE
    assert took < 10


def test_a_database_redis_does_not_have(redis_server):
    ran, took = newsflow({"NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{redis_server.port}/99"}, "get", "x")
    line = one_line(ran)
    assert "names database 99, which this Redis does not have" in line
    assert ran.returncode == EXIT_USAGE
    assert took < 10


def test_the_metrics_port_in_use(redis_server):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        ran, took = newsflow(
            {"NEWSFLOW_REDIS_URL": redis_server.url}, "metrics", "--port", str(port), "--addr", "127.0.0.1"
        )
    line = one_line(ran)
    assert f"cannot listen on 127.0.0.1:{port}" in line and "--port or NEWSFLOW_METRICS_PORT" in line
    assert ran.returncode == EXIT_USAGE
    assert took < 10


def test_status_says_a_password_is_needed(locked):
    ran, _ = newsflow({"NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{locked.port}/0"}, "status", "--json")
    assert ran.returncode == 1
    assert "Redis needs a password" in __import__("orjson").loads(ran.stdout)["redis"]["error"]


def test_sigterm_stops_a_bridge_held_up_by_backpressure(redis_server, prefix, tmp_path):
    """No worker drains a queue at its bound: the bridge waits for room, and SIGTERM still ends it."""
    env = newsflow_env(
        {
            "NEWSFLOW_REDIS_URL": redis_server.url,
            "NEWSFLOW_PREFIX": prefix,
            "NEWSFLOW_QUEUE_BOUND": "1",
            "NEWSFLOW_BATCH_SIZE": "1",
        }
    )
    r = redis_server.client()
    for n in range(3):
        r.xadd(f"{prefix}:inbox", {"id": f"bp/{n}", "text": f"颱風第{n}號今天登陸東部沿海地區。"})
    log = (tmp_path / "bridge.log").open("w")
    bridge = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "bridge"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        wait_for(lambda: r.llen(f"{prefix}:{prefix}") >= 1, 30, "the first batch queued")
        bridge.send_signal(signal.SIGTERM)
        started = time.monotonic()
        assert bridge.wait(20) == 0
        assert time.monotonic() - started < 15
    finally:
        if bridge.poll() is None:
            bridge.kill()
        log.close()
    # What it read and could not queue stays in the inbox for the next bridge.
    assert r.xpending(f"{prefix}:inbox", "bridge")["pending"] >= 1
    r.delete(f"{prefix}:{prefix}")
