"""docker-compose.yml without a Docker engine: its properties checked, its services' commands run for real.

Each service's ``command`` runs here as a process against the test's
redis-server, with the service's environment interpolated as Compose would.
Where Docker would map a container port to the host, the test gives the
process a free port instead.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
import uuid
from base64 import b64encode
from pathlib import Path

import orjson
import pytest

from producer.client import Client
from tests.compose import load, resolve
from tests.support import ROOT, RedisServer, free_port, wait_for
from worker.config import Settings

BIN = Path(sys.executable).parent
SERVICES = ("worker", "bridge", "flower", "metrics")


@pytest.fixture(scope="module")
def compose() -> dict:
    return load()


def _seconds(value: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value))


def test_redis_service_keeps_an_aof_refuses_eviction_and_has_a_healthcheck(compose):
    redis = compose["services"]["redis"]
    command = resolve(redis["command"], {})
    flags = dict(zip(command[1::2], command[2::2], strict=False))
    assert flags["--appendonly"] == "yes"
    assert flags["--appendfsync"] == "everysec"
    assert flags["--maxmemory-policy"] == "noeviction"
    assert "redis-cli" in redis["healthcheck"]["test"]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]


def test_worker_service_scales_stops_warm_and_checks_only_its_own_node(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker  # --scale worker=N needs unnamed containers
    assert "NEWSFLOW_CONCURRENCY" in worker["environment"]
    # Longer than the longest batch, so SIGTERM finishes the running batches.
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert _seconds(worker["stop_grace_period"]) >= 60
    command = worker["command"]
    assert command[:2] == ["newsflow", "worker"]
    assert command[command.index("--hostname") + 1] == "celery@%h"
    kind, check = worker["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    assert "inspect ping -d celery@$$HOSTNAME" in check  # $$: the container's own $HOSTNAME


def test_every_service_waits_for_a_healthy_redis_and_flower_takes_auth_from_env(compose):
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy", name
    flower = services["flower"]
    assert flower["command"][:4] == ["celery", "-A", "worker.app", "flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH")
    with pytest.raises(KeyError):  # no default password: compose refuses to start without one
        resolve(flower["environment"]["FLOWER_BASIC_AUTH"], {})
    # The published ports reach what the services listen on.
    assert flower["ports"][0].endswith(":" + flower["environment"]["FLOWER_PORT"])
    metrics = services["metrics"]
    assert metrics["ports"][0].endswith(":" + metrics["environment"]["NEWSFLOW_METRICS_PORT"])


class Stack:
    """The compose services as processes on this machine."""

    def __init__(self, compose: dict, redis_url: str, tmp: Path) -> None:
        self.compose = compose
        self.prefix = f"c{uuid.uuid4().hex[:10]}"
        self.tmp = tmp
        self.host_env = {
            "NEWSFLOW_REDIS_URL": redis_url,
            "NEWSFLOW_PREFIX": self.prefix,
            "FLOWER_BASIC_AUTH": "ops:s3cret-flower",
            "NEWSFLOW_CONCURRENCY": "1",
        }
        self.ports = {"flower": free_port(), "metrics": free_port()}
        self.procs: dict[str, subprocess.Popen] = {}
        self.settings = Settings.from_env(self.host_env)

    def env(self, service: str) -> dict[str, str]:
        found = resolve(self.compose["services"][service].get("environment", {}), self.host_env)
        # What Docker's port mapping and volumes would provide.
        overrides = {
            "flower": {"FLOWER_PORT": str(self.ports["flower"]), "FLOWER_DB": str(self.tmp / "flower.db")},
            "metrics": {"NEWSFLOW_METRICS_PORT": str(self.ports["metrics"])},
        }
        found.update(overrides.get(service, {}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "FLOWER_"))}
        env.update({k: str(v) for k, v in found.items()})
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = str(ROOT)
        env["HOSTNAME"] = socket.gethostname()  # Docker sets it to the container's hostname
        return env

    def start(self, service: str) -> subprocess.Popen:
        command = resolve(self.compose["services"][service]["command"], self.host_env)
        log = open(self.tmp / f"{service}.log", "wb")
        proc = subprocess.Popen(
            command,
            env=self.env(service),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[service] = proc
        return proc

    def log(self, service: str) -> str:
        return (self.tmp / f"{service}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait(5)


@pytest.fixture(scope="module")
def stack(compose, redis_server: RedisServer, tmp_path_factory):
    found = Stack(compose, redis_server.url, tmp_path_factory.mktemp("compose"))
    for service in ("worker", "flower", "metrics"):
        found.start(service)
    yield found
    found.stop()


def _get(url: str, auth: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def test_worker_service_command_processes_an_article_and_passes_its_healthcheck(stack):
    client = Client(stack.settings)
    sent = client.submit({"id": "compose/worker-1", "text": "颱風今晨登陸，氣象局發布海上警報。"})
    result = client.wait([sent], timeout=90)["compose/worker-1"]
    assert result["status"] == "unique"

    _, check = stack.compose["services"]["worker"]["healthcheck"]["test"]
    check = resolve(check, {})  # $$HOSTNAME -> $HOSTNAME, expanded by the shell below
    ran = subprocess.run(["sh", "-c", check], env=stack.env("worker"), cwd=ROOT, timeout=60)
    assert ran.returncode == 0, stack.log("worker")
    # The same check fails for a node that is not running: it really is pinging this one.
    other = check.replace("$HOSTNAME", "$HOSTNAME-gone")
    assert subprocess.run(["sh", "-c", other], env=stack.env("worker"), cwd=ROOT, timeout=60).returncode != 0


def test_flower_service_command_answers_only_with_its_password(stack):
    url = f"http://127.0.0.1:{stack.ports['flower']}/api/workers"
    wait_for(lambda: _get(url)[0] != 0, 60, "flower to listen")
    assert _get(url)[0] == 401

    def listed():
        status, body = _get(url + "?refresh=1", "ops:s3cret-flower")
        return status == 200 and orjson.loads(body) and body

    body = wait_for(listed, 60, "flower to list the worker")
    assert all(name.startswith("celery@") for name in orjson.loads(body))


def test_metrics_service_command_serves_newsflow_series(stack):
    url = f"http://127.0.0.1:{stack.ports['metrics']}/metrics"
    status, body = wait_for(lambda: (r := _get(url))[0] == 200 and r, 60, "the exporter")
    text = body.decode()
    assert "newsflow_redis_up 1.0" in text
    assert re.search(r"^newsflow_articles_total\{status=\"unique\"\} ", text, re.M)


def _has_bridge() -> bool:
    ran = subprocess.run([str(BIN / "newsflow"), "bridge", "--help"], capture_output=True, cwd=ROOT)
    return ran.returncode == 0


def test_bridge_service_command_moves_an_inbox_entry_to_a_result(stack):
    if not _has_bridge():
        pytest.skip("this build has no `newsflow bridge` command")
    stack.start("bridge")
    client = Client(stack.settings)
    entry = {"text": "高鐵今日起加開班次，疏運連假人潮。", "id": "compose/inbox-1"}
    client.redis.xadd(client.keys.inbox, entry)
    got = wait_for(lambda: client.get("compose/inbox-1"), 90, "the inbox entry's result")
    assert got["status"] == "unique"


def test_commands_are_exec_form(compose):
    # Exec form: SIGTERM reaches the process itself, not a shell that ignores it.
    for name in SERVICES:
        command = compose["services"][name]["command"]
        assert isinstance(command, list), (name, command)
