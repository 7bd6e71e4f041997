"""docker-compose.yml without a Docker engine: its properties checked, its services' commands run for real.

Each service's ``command`` runs here as a process against the test's
redis-server, with the service's environment interpolated as Compose would.
Where Docker would map a container port to the host, the test gives the
process a free port instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

import orjson
import pytest
import redis

from producer.client import Client
from tests.compose import COMPOSE, load, resolve
from tests.support import ROOT, RedisServer, free_port, http_get, wait_for
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
    assert "redis-cli ping" in redis["healthcheck"]["test"][1]
    volume = redis["volumes"][0].split(":")
    assert volume[1] == "/data" and volume[0] in compose["volumes"]


def test_worker_service_scales_stops_warm_and_checks_only_its_own_node(compose):
    worker = compose["services"]["worker"]
    assert "container_name" not in worker  # --scale worker=N needs unnamed containers
    # Processes per container come from the env file, sized in .env.example.
    assert re.search(r"^NEWSFLOW_CONCURRENCY=\d+$", (ROOT / ".env.example").read_text(), re.M)
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
    assert flower["profiles"] == ["flower"]  # optional: the stack starts without Flower's settings
    assert flower["command"][-1].endswith("exec celery -A worker.app flower")
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH")
    assert not flower["environment"]["FLOWER_DB"].endswith(".db")  # dbm may add ".db" itself
    # The published ports reach what the services listen on.
    assert flower["ports"][0].endswith(":" + flower["environment"]["FLOWER_PORT"])
    metrics = services["metrics"]
    assert metrics["ports"][0].endswith(":" + metrics["environment"]["NEWSFLOW_METRICS_PORT"])


def test_flower_refuses_to_start_without_auth(compose):
    command = resolve(compose["services"]["flower"]["command"], {})
    ran = subprocess.run(
        command, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30
    )
    assert ran.returncode == 78
    assert ran.stderr.strip() == "flower: set FLOWER_BASIC_AUTH=user:password in .env"


def test_no_newsflow_setting_comes_from_the_shell(compose):
    # The containers' NEWSFLOW_* come from the env file; a shell's exports never reach them.
    assert "${NEWSFLOW_" not in COMPOSE.read_text()
    env = resolve(compose["x-newsflow"]["environment"], {"NEWSFLOW_REDIS_URL": "redis://localhost:6379/0"})
    assert env["NEWSFLOW_REDIS_URL"] == "redis://redis:6379/0"
    assert (
        resolve(compose["x-newsflow"]["environment"], {"STACK_REDIS_URL": "redis://r2/1"})[
            "NEWSFLOW_REDIS_URL"
        ]
        == "redis://r2/1"
    )
    (env_file,) = compose["x-newsflow"]["env_file"]
    assert resolve(env_file, {}) == {"path": ".env", "required": False}


def test_published_ports_bind_to_loopback_unless_a_bind_says_otherwise(compose):
    services = compose["services"]
    published = {name: resolve(services[name]["ports"][0], {}) for name in ("redis", "flower", "metrics")}
    assert published == {
        "redis": "127.0.0.1:6380:6379",  # not 6379: a host Redis is often there
        "flower": "127.0.0.1:5555:5555",
        "metrics": "127.0.0.1:9808:9808",
    }
    opened = {
        "FLOWER_BIND": "0.0.0.0",
        "FLOWER_PORT": "8555",
        "METRICS_BIND": "10.0.0.5",
        "REDIS_PORT": "7000",
    }
    assert resolve(services["flower"]["ports"][0], opened) == "0.0.0.0:8555:5555"
    assert resolve(services["metrics"]["ports"][0], opened) == "10.0.0.5:9808:9808"
    assert resolve(services["redis"]["ports"][0], opened) == "127.0.0.1:7000:6379"


def test_one_service_builds_the_image_the_others_run(compose):
    services = compose["services"]
    assert [name for name in services if "build" in services[name]] == ["worker"]
    assert {services[name]["image"] for name in SERVICES} == {"${STACK_IMAGE:-newsflow:latest}"}
    assert compose["name"] == "newsflow"  # Compose v1 stops here instead of misreading the file


def test_the_image_installs_from_the_hashed_lock():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([a-z0-9._-]+)==\S+ \\$", lock, re.M)
    assert {"celery", "redis", "jieba", "flower", "rjieba", "setuptools"} <= set(pins)
    assert lock.count("--hash=sha256:") >= len(pins)


def test_the_lock_pins_every_dependency_the_image_needs():
    """A dependency added to pyproject.toml without `make lock` would fail the image's `pip check`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = (
        project["dependencies"]
        + project["optional-dependencies"]["fast"]
        + project["optional-dependencies"]["ops"]
    )
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in wanted}
    lock = (ROOT / "requirements.lock").read_text()
    pins = {name.replace("_", "-") for name in re.findall(r"^([a-z0-9._-]+)==", lock, re.M)}
    assert names <= pins, f"run `make lock`: {sorted(names - pins)} missing from requirements.lock"


def _redis_check(compose: dict, port: int, auth: str, shims: Path) -> tuple[int, int]:
    """Run the redis service's healthcheck against a test server; returns (exit code, AUTHs it sent)."""
    _, check = compose["services"]["redis"]["healthcheck"]["test"]
    check = resolve(check, {})
    # In the container redis-cli reaches Redis on its default port; here a shim points it at the test's.
    shims.mkdir(exist_ok=True)
    shim = shims / "redis-cli"
    shim.write_text(f'#!/bin/sh\nexec {shutil.which("redis-cli")} -p {port} "$@"\n')
    shim.chmod(0o755)
    client = redis.Redis(host="127.0.0.1", port=port, password="s/3#c@r%e+t" if auth else None)
    before = client.info("commandstats").get("cmdstat_auth", {}).get("calls", 0)
    env = {"PATH": f"{shims}{os.pathsep}{os.environ['PATH']}", "REDISCLI_AUTH": auth}
    ran = subprocess.run(["sh", "-c", check], env=env, capture_output=True, timeout=30)
    after = client.info("commandstats").get("cmdstat_auth", {}).get("calls", 0)
    return ran.returncode, after - before


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="needs redis-cli")
def test_redis_healthcheck_sends_no_auth_without_a_password(compose, tmp_path):
    open_server = RedisServer(tmp_path / "open")
    try:
        assert _redis_check(compose, open_server.port, "", tmp_path / "bin") == (0, 0)
    finally:
        open_server.stop()

    class Locked(RedisServer):
        def client(self, db: int = 0) -> redis.Redis:
            return redis.Redis(host="127.0.0.1", port=self.port, db=db, password="s/3#c@r%e+t")

    locked = Locked(tmp_path / "locked", "--requirepass", "s/3#c@r%e+t")
    try:
        assert _redis_check(compose, locked.port, "s/3#c@r%e+t", tmp_path / "bin")[0] == 0
        assert _redis_check(compose, locked.port, "wrong", tmp_path / "bin")[0] != 0  # not healthy
    finally:
        locked.stop()


class Stack:
    """The compose services as processes on this machine."""

    def __init__(self, compose: dict, redis_url: str, tmp: Path) -> None:
        self.compose = compose
        self.prefix = f"c{uuid.uuid4().hex[:10]}"
        self.tmp = tmp
        # What .env holds: the stack's knobs, read by Compose, and NEWSFLOW_* settings for the containers.
        self.env_file = {"NEWSFLOW_PREFIX": self.prefix, "NEWSFLOW_CONCURRENCY": "1"}
        self.host_env = {"STACK_REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": "ops:s3cret-flower"}
        self.ports = {"flower": free_port(), "metrics": free_port()}
        self.procs: dict[str, subprocess.Popen] = {}
        self.settings = Settings(redis_url=redis_url, prefix=self.prefix)

    def env(self, service: str) -> dict[str, str]:
        found = resolve(self.compose["services"][service].get("environment", {}), self.host_env)
        # What Docker's port mapping and volumes would provide.
        overrides = {
            "flower": {"FLOWER_PORT": str(self.ports["flower"]), "FLOWER_DB": str(self.tmp / "flower.db")},
            "metrics": {"NEWSFLOW_METRICS_PORT": str(self.ports["metrics"])},
        }
        found.update(overrides.get(service, {}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "FLOWER_"))}
        env.update(self.env_file)  # env_file first: `environment` wins over it, as in Compose
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
    return http_get(url, auth, timeout=5)


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


def _healthcheck(stack: Stack, service: str) -> subprocess.CompletedProcess:
    command = resolve(stack.compose["services"][service]["healthcheck"]["test"], {})
    assert command[0] == "CMD"
    env = stack.env(service)
    if service == "metrics":  # the test's free port stands in for the container's 9808
        command = [*command[1:-1], env["NEWSFLOW_METRICS_PORT"]]
    else:
        command = command[1:]
    command[0] = str(BIN / command[0])
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_metrics_service_healthcheck_passes_while_it_serves(stack):
    url = f"http://127.0.0.1:{stack.ports['metrics']}/metrics"
    wait_for(lambda: _get(url)[0] == 200, 60, "the exporter")
    ran = _healthcheck(stack, "metrics")
    assert ran.returncode == 0, ran.stderr


def test_bridge_service_healthcheck_passes_while_it_reads_the_inbox(stack):
    if "bridge" not in stack.procs:
        stack.start("bridge")
    wait_for(lambda: _healthcheck(stack, "bridge").returncode == 0, 60, "the bridge's healthcheck")


def test_services_run_under_an_init_that_passes_sigterm_on(compose):
    # As PID 1 a process without a SIGTERM handler (the exporter) ignores it until the stop timeout.
    assert compose["x-newsflow"]["init"] is True
    for name in SERVICES:
        assert compose["services"][name].get("init", True) is True, name


def test_commands_are_exec_form(compose):
    # Exec form: SIGTERM reaches the process itself, not a shell that ignores it.
    for name in SERVICES:
        command = compose["services"][name]["command"]
        assert isinstance(command, list), (name, command)


def _smoke(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(path)}
    script = ROOT / "scripts" / "compose_smoke.py"
    return subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(
    ("docker", "reason"),
    [
        (None, "no docker command on PATH"),
        ("exit 1", "no Docker engine answers (docker info failed)"),
        ('[ "$1" = info ] && exit 0; exit 1', "no Compose v2 (`docker compose` is missing"),
        ('[ "$1" = info ] && exit 0; echo v2.20.1', "Compose v2.20.1 is older than 2.24"),
    ],
)
def test_the_compose_smoke_test_skips_with_its_reason_without_an_engine(tmp_path, docker, reason):
    if docker is not None:
        fake = tmp_path / "docker"
        fake.write_text(f"#!/bin/sh\n{docker}\n")
        fake.chmod(0o755)
    ran = _smoke(tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"SKIPPED compose smoke test: {reason}")
