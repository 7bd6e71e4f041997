from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Bridge, RedisServer, Worker
from worker.config import Settings

DATA = Path(__file__).resolve().parent / "data"

TIERS = ("unit", "redis", "e2e")
# What a test uses decides its tier, so a new test lands in the right one by itself.
_E2E_FIXTURES = {"start_worker", "start_bridge"}
_REDIS_FIXTURES = {"redis_server", "env", "settings", "auth_server", "tls_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each test exactly one tier: e2e (real processes), redis (a real Redis) or unit."""
    for item in items:
        if any(item.get_closest_marker(tier) for tier in TIERS):
            continue
        used = set(getattr(item, "fixturenames", ()))
        if used & _E2E_FIXTURES:
            item.add_marker(pytest.mark.e2e)
        elif used & _REDIS_FIXTURES:
            item.add_marker(pytest.mark.redis)
        else:
            item.add_marker(pytest.mark.unit)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A prefix of its own for each test: deployments on one Redis never meet.

    Afterwards, every result, per-id record and dead entry the test left under it
    must follow docs/result.schema.json (tests/schema.py).
    """
    value = f"t{uuid.uuid4().hex[:10]}"
    yield value
    if "redis_server" in request.fixturenames:
        from tests.schema import check_stored

        check_stored(request.getfixturevalue("redis_server").client(), value)


@pytest.fixture
def env(redis_server: RedisServer, prefix: str) -> dict[str, str]:
    return {"NEWSFLOW_REDIS_URL": redis_server.url, "NEWSFLOW_PREFIX": prefix}


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


@pytest.fixture
def start_worker(env: dict[str, str], tmp_path: Path):
    """Start real worker processes; each is stopped at the end of the test."""
    started: list[Worker] = []

    def start(
        concurrency: int = 1,
        name: str = "w",
        extra_env: dict[str, str] | None = None,
        extra: tuple[str, ...] = (),
    ) -> Worker:
        worker = Worker({**env, **(extra_env or {})}, concurrency, f"{name}{len(started)}", tmp_path, extra)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_bridge(env: dict[str, str], tmp_path: Path):
    """Start real ``newsflow bridge`` processes; each is stopped at the end of the test."""
    started: list[Bridge] = []

    def start(*args: str, extra_env: dict[str, str] | None = None) -> Bridge:
        bridge = Bridge({**env, **(extra_env or {})}, tmp_path, *args)
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        bridge.stop()


@pytest.fixture(scope="session")
def seed_story() -> str:
    """One copy of a real Traditional Chinese wire story, unwrapped."""
    return (DATA / "seed_story.txt").read_text(encoding="utf-8").strip()


def hard_wrap(text: str, width: int) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))
