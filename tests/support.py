"""The one harness for throwaway services: a redis-server on a free port, worker and bridge processes.

Tests (tests/conftest.py), the benchmarks (bench/) and ``make demo``
(scripts/demo.py) all start what they need from here, and stop it the same way.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable
from pathlib import Path

import redis

from worker import __version__
from worker.result_body import SCHEMA, now_iso

ROOT = Path(__file__).resolve().parent.parent


TEST_ARTICLES = Path(__file__).resolve().parent / "data"


def sample_articles() -> list[str]:
    """The articles in tests/data: real wire text, Traditional and Simplified, wrapped and not."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(TEST_ARTICLES.glob("*.txt"))]
    assert texts, "tests/data holds the test articles"
    return texts


def article_pieces(
    seed: int, n: int, longest: int, convert: Callable[[str], str], unwrapped_share: float = 0.0
) -> list[str]:
    """``n`` pieces of the test articles cut at random, 20 to ``longest`` characters.

    Half of them go through ``convert`` (to Simplified, say), and
    ``unwrapped_share`` of them lose their line breaks.
    """
    texts = sample_articles()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = rng.choice(texts)
        a = rng.randrange(len(text))
        piece = text[a : a + rng.randint(20, longest)]
        if rng.random() < 0.5:
            piece = convert(piece)
        if unwrapped_share and rng.random() < unwrapped_share:
            piece = piece.replace("\n", "")
        out.append(piece)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, auth: str | None = None, timeout: float = 10) -> tuple[int, bytes]:
    """GET ``url``, with HTTP basic ``user:password`` if given: ``(status, body)``, status 0 if none."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition"):
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(0.2, delay * 1.5)


class Clock:
    """A clock that stands still until a test (or benchmark) moves ``now``."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class RedisServer:
    """A throwaway redis-server; never the machine's own on 6379."""

    def __init__(self, workdir: Path, *extra: str, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.args = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            *extra,
        ]
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db)

    def start(self) -> None:
        log = open(self.workdir / "redis.log", "ab")
        self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._pings, 10, f"redis-server on port {self.port}")

    def _pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            if self.proc and self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: see {self.workdir / 'redis.log'}") from None
            return False

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def newsflow_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings_env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("NEWSFLOW_LOG_FORMAT", "json")
    return env


class Worker:
    """``newsflow worker`` as a real process (a prefork pool of ``concurrency`` children)."""

    def __init__(
        self,
        env: dict[str, str],
        concurrency: int = 1,
        name: str = "w",
        logdir: Path | None = None,
        extra: tuple[str, ...] = (),
        loglevel: str = "WARNING",
    ) -> None:
        self.log_path = (logdir or Path("/tmp")) / f"worker-{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        cmd = [
            sys.executable,
            "-m",
            "producer.cli",
            "worker",
            "--concurrency",
            str(concurrency),
            "--pool",
            "prefork",
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            loglevel,
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            cmd,
            env=newsflow_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._log.close()


class Bridge:
    """``newsflow bridge`` as a real process."""

    def __init__(self, env: dict[str, str], logdir: Path, *args: str) -> None:
        self.log_path = logdir / f"bridge-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "producer.cli", "bridge", *args],
            env=newsflow_env(env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class SentinelCluster:
    """A primary, replicas and Redis Sentinels on loopback: what a failover needs, all real.

    ``url`` is the Celery-form ``sentinel://...;sentinel://...`` that newsflow
    takes. Servers are :class:`RedisServer`\\ s; :meth:`server` finds one by port
    (the master moves), :meth:`master` asks the sentinels where it is now.
    """

    def __init__(
        self,
        workdir: Path,
        replicas: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 2000,
        name: str = "mymaster",
    ) -> None:
        self.name = name
        self.workdir = workdir
        # Diskless sync with no delay: a replica is in step within a second of starting.
        fast_sync = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
        self.servers = [RedisServer(workdir / "primary", *fast_sync)]
        primary = self.servers[0].port
        for i in range(replicas):
            self.servers.append(
                RedisServer(workdir / f"replica{i}", *fast_sync, "--replicaof", "127.0.0.1", str(primary))
            )
        self.sentinels: list[subprocess.Popen] = []
        self.sentinel_ports: list[int] = []
        for i in range(sentinels):
            port = free_port()
            folder = workdir / f"sentinel{i}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndir {folder}\n"
                f"sentinel monitor {name} 127.0.0.1 {primary} {max(1, sentinels // 2 + 1)}\n"
                f"sentinel down-after-milliseconds {name} {down_after_ms}\n"
                f"sentinel failover-timeout {name} 10000\n"
                f"sentinel parallel-syncs {name} {max(1, replicas)}\n"
            )
            log = open(folder / "sentinel.log", "ab")
            self.sentinels.append(
                subprocess.Popen(
                    [shutil.which("redis-server") or "redis-server", str(conf), "--sentinel"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            self.sentinel_ports.append(port)
        wait_for(self._in_step, 30, "replicas in sync and sentinels aware of each other")

    @property
    def url(self) -> str:
        return ";".join(f"sentinel://127.0.0.1:{port}/0" for port in self.sentinel_ports)

    def sentinel(self, i: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.sentinel_ports[i], decode_responses=True, socket_timeout=2
        )

    def master(self) -> int:
        """The master's port, as the first sentinel that answers says."""
        for i in range(len(self.sentinel_ports)):
            try:
                return int(self.sentinel(i).sentinel_get_master_addr_by_name(self.name)[1])
            except (redis.ConnectionError, redis.TimeoutError, TypeError):
                continue
        raise RuntimeError("no sentinel answers")

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def replicas_of(self, port: int) -> list[RedisServer]:
        return [s for s in self.servers if s.port != port and s.proc and s.proc.poll() is None]

    def _in_step(self) -> bool:
        try:
            info = self.servers[0].client().info("replication")
            if info.get("connected_slaves", 0) < len(self.servers) - 1:
                return False
            for i in range(len(self.sentinel_ports)):
                sentinel = self.sentinel(i)
                if len(sentinel.sentinel_slaves(self.name)) < len(self.servers) - 1:
                    return False
                if len(sentinel.sentinel_sentinels(self.name)) < len(self.sentinel_ports) - 1:
                    return False
            return True
        except (redis.ConnectionError, redis.ResponseError):
            return False

    def signal(self, port: int, sig: int) -> None:
        proc = self.server(port).proc
        assert proc is not None
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def stop(self) -> None:
        for server in self.servers:
            if server.proc and server.proc.poll() is None:
                server.proc.send_signal(signal.SIGCONT)  # a frozen server cannot stop
            server.stop()
        for proc in self.sentinels:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


def sentinel_supported() -> bool:
    """Whether this redis-server can run as a Sentinel (some builds leave it out)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return False
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            port = free_port()
            conf = Path(folder) / "s.conf"
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n")
            proc = subprocess.Popen(
                [binary, str(conf), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            try:
                client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    try:
                        return bool(out) and client.execute_command("SENTINEL", "MASTERS") is not None
                    except redis.ConnectionError:
                        if proc.poll() is not None:
                            return False
                        time.sleep(0.05)
                return False
            finally:
                proc.terminate()
                proc.wait(5)
    except (OSError, subprocess.SubprocessError):
        return False


def unique_result(article_id: str, text: str) -> dict:
    """The smallest body of a ``unique`` result that docs/result.schema.json accepts."""
    return {
        "id": article_id,
        "status": "unique",
        "script": "hans",
        "text": text,
        "repeats_removed": 0,
        "timings_ms": {},
        "revision": 1,
        "schema": SCHEMA,
        "worker": "test",
        "processed_at": now_iso(),
        "version": __version__,
    }
