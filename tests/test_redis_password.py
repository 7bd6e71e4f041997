"""NEWSFLOW_REDIS_PASSWORD: any password, given apart from the URL, and the compose healthchecks."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import redis

from producer import health
from producer.client import Client
from tests.support import RedisServer, free_port, wait_for
from worker.config import Settings

# Every character that breaks a password pasted into a URL by hand.
ODD = "s/0#m@e%2F+p:a ss="


def test_the_password_goes_into_the_url_percent_encoded():
    s = Settings.from_env({"NEWSFLOW_REDIS_URL": "redis://redis:6379/0", "NEWSFLOW_REDIS_PASSWORD": ODD})
    assert s.redis_url == "redis://:s%2F0%23m%40e%252F%2Bp%3Aa%20ss%3D@redis:6379/0"
    assert s.results_redis_url == s.redis_url
    assert "redis_password" not in repr(s) and ODD not in repr(s)


def test_the_password_replaces_the_urls_own_and_keeps_its_user():
    s = Settings(redis_url="rediss://ingest:old@h:6380/2?ssl_cert_reqs=required", redis_password="new")
    assert s.redis_url == "rediss://ingest:new@h:6380/2?ssl_cert_reqs=required"


def test_a_separate_results_redis_keeps_its_own_password():
    s = Settings(redis_url="redis://a/0", results_redis_url="redis://:theirs@b/0", redis_password="mine")
    assert s.redis_url == "redis://:mine@a/0"
    assert s.results_redis_url == "redis://:theirs@b/0"


def test_without_a_password_the_url_is_left_alone():
    url = "redis://:inline@h:6379/0"
    assert Settings.from_env({"NEWSFLOW_REDIS_URL": url, "NEWSFLOW_REDIS_PASSWORD": ""}).redis_url == url


class _OddRedis(RedisServer):
    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=ODD)


@pytest.fixture
def odd_server(tmp_path):
    server = _OddRedis(tmp_path / "odd", "--requirepass", ODD)
    yield server
    server.stop()


def test_worker_and_client_work_with_any_password(odd_server, prefix, start_worker):
    env = {
        "NEWSFLOW_REDIS_URL": f"redis://127.0.0.1:{odd_server.port}/0",
        "NEWSFLOW_REDIS_PASSWORD": ODD,
        "NEWSFLOW_PREFIX": prefix,
    }
    worker = start_worker(extra_env=env)
    client = Client(Settings.from_env(env))
    sent = client.submit({"id": "odd/1", "text": "颱風今晚登陸，氣象局發布陸上警報。"})
    assert client.wait([sent], timeout=60)["odd/1"]["status"] == "unique"
    log = worker.log()
    assert ODD not in log and "s%2F0%23m%40e" not in log


def test_bridge_health_wants_the_inbox_read(settings, start_bridge):
    client = Client(settings)
    assert "no bridge has started" in health.bridge(settings)
    bridge = start_bridge()
    wait_for(lambda: health.bridge(settings) is None, 60, "the bridge to create its group")
    bridge.stop()
    client.redis.xadd(client.keys.inbox, {"id": "health/1", "text": "無人讀取的收件匣稿件。"})
    # An unread entry is fine for a while, then it is reported.
    assert health.bridge(settings) is None
    found = wait_for(lambda: health.bridge(settings, wait_ms=200), 10, "the entry to wait too long")
    assert "the oldest unread entry" in found
    start_bridge()
    wait_for(lambda: health.bridge(settings, wait_ms=200) is None, 60, "a new bridge to read it")


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/metrics" else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_metrics_health_wants_a_200_from_metrics():
    closed = free_port()
    assert "metrics" in health.metrics(closed)
    server = HTTPServer(("127.0.0.1", 0), _Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert health.metrics(server.server_address[1]) is None
    finally:
        server.shutdown()


def test_health_main_exits_one_with_one_line(capsys):
    assert health.main(["metrics", "--port", str(free_port())]) == 1
    err = capsys.readouterr().err
    assert err.startswith("unhealthy: ") and err.count("\n") == 1
