"""Security: JSON-only messages, Redis AUTH (requirepass and ACL users), redaction, keys from valid ids."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from producer.client import Client
from tests.support import ROOT, RedisServer, newsflow_env, wait_for
from worker.app import PROCESS_BATCH, make_app
from worker.config import Settings, redact
from worker.keys import BadKey, Keys

PASSWORD = "pw-" + uuid.uuid4().hex[:12]
ACL_PASSWORD = "acl-" + uuid.uuid4().hex[:12]


class _Touch:
    """Unpickling this creates a file: the proof that a payload was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_pickled_message_is_refused_and_never_executed(settings, start_worker, tmp_path):
    marker = tmp_path / "unpickled"
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(_Touch(control))).close()
    assert control.exists()  # the payload is live: unpickling it would create the marker

    worker = start_worker()
    app = make_app(settings)
    payload = _Touch(marker)
    queue = app.amqp.queues[settings.prefix]
    with app.connection_for_write() as conn:
        producer = conn.Producer()
        # Protocol 2 (task name in the headers, body decoded in the pool child)
        message = app.amqp.as_task_v2(str(uuid.uuid4()), PROCESS_BATCH, args=[payload])
        producer.publish(
            message.body,
            serializer="pickle",
            headers=message.headers,
            exchange=settings.prefix,
            routing_key=settings.prefix,
            declare=[queue],
            **message.properties,
        )
        # Protocol 1 (everything in the body, decoded by the consumer itself)
        producer.publish(
            {"task": PROCESS_BATCH, "id": str(uuid.uuid4()), "args": [payload], "kwargs": {}},
            serializer="pickle",
            exchange=settings.prefix,
            routing_key=settings.prefix,
            declare=[queue],
        )
    assert app.connection_for_write().default_channel.client.llen(settings.prefix) == 2

    client = Client(settings)
    after = client.submit({"id": "after-pickle", "text": "在惡意訊息之後送出的正常新聞稿件。"})
    assert client.wait([after], timeout=60)["after-pickle"]["status"] == "unique"
    wait_for(lambda: client.redis.hlen(f"{settings.prefix}:unacked") == 0, 30, "nothing left unacked")

    assert not marker.exists()
    assert client.queue_depth() == 0
    assert "ContentDisallowed" in worker.log() or "untrusted content" in worker.log()


@pytest.fixture
def auth_server(tmp_path):
    class AuthRedis(RedisServer):
        def client(self, db: int = 0) -> redis.Redis:
            return redis.Redis(host="127.0.0.1", port=self.port, db=db, password=PASSWORD)

    server = AuthRedis(
        tmp_path / "auth",
        "--requirepass",
        PASSWORD,
        "--user",
        "ingest",
        "on",
        f">{ACL_PASSWORD}",
        "~*",
        "&*",
        "+@all",
    )
    yield server
    server.stop()


def test_worker_and_client_work_over_requirepass_and_acl_user(auth_server, prefix, start_worker):
    port = auth_server.port
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, password="wrong").ping()
    worker_url = f"redis://ingest:{ACL_PASSWORD}@127.0.0.1:{port}/0"
    client_url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    worker = start_worker(extra_env={"NEWSFLOW_REDIS_URL": worker_url, "NEWSFLOW_PREFIX": prefix})
    client = Client(Settings(redis_url=client_url, prefix=prefix))
    sent = client.submit({"id": "auth/1", "text": "颱風今晚登陸，氣象局發布陸上警報。"})
    assert client.wait([sent], timeout=60)["auth/1"]["status"] == "unique"

    status = subprocess.run(
        [sys.executable, "-m", "producer.cli", "status", "--json"],
        cwd=ROOT,
        env=newsflow_env({"NEWSFLOW_REDIS_URL": client_url, "NEWSFLOW_PREFIX": prefix}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert PASSWORD not in status.stdout + status.stderr
    assert ACL_PASSWORD not in worker.log() and PASSWORD not in worker.log()


def test_wrong_password_fails_without_printing_it(auth_server, prefix):
    wrong = "wrong-" + uuid.uuid4().hex[:8]
    env = newsflow_env(
        {"NEWSFLOW_REDIS_URL": f"redis://:{wrong}@127.0.0.1:{auth_server.port}/0", "NEWSFLOW_PREFIX": prefix}
    )
    for command in (["status"], ["get", "some-id"]):
        done = subprocess.run(
            [sys.executable, "-m", "producer.cli", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            input="",
        )
        assert done.returncode != 0
        assert wrong not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://:hunter2@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://alice:hunter2@h/0", "redis://alice:***@h/0"),
        (
            "rediss://alice:hunter2@h:6380/0?ssl_cert_reqs=required",
            "rediss://alice:***@h:6380/0?ssl_cert_reqs=required",
        ),
        ("connect to redis://hunter2@h failed", "connect to redis://***@h failed"),
        ("redis://h:6379/0", "redis://h:6379/0"),
    ],
)
def test_passwords_in_urls_are_redacted(text, shown):
    assert redact(text) == shown


@pytest.mark.parametrize("bad", ["has space", "a*", "x:y", "a" * 129, "", "line\nbreak", "ü", "a?b", "{tag}"])
def test_keys_are_built_only_from_valid_ids(bad):
    keys = Keys("p")
    with pytest.raises(BadKey):
        keys.result(bad)
    with pytest.raises(BadKey):
        keys.batch(bad)


def test_a_valid_id_makes_exactly_one_key_under_the_prefix():
    keys = Keys("p")
    assert keys.result("wire/2024-05-01.a_b") == "p:result:wire/2024-05-01.a_b"
    assert keys.result("a" * 128).startswith("p:result:")


def test_rediss_url_without_ssl_cert_reqs_verifies_certificates():
    from worker.connection import tls_options

    assert tls_options("rediss://h:6380/0")["ssl_cert_reqs"] == __import__("ssl").CERT_REQUIRED
    assert tls_options("redis://h:6379/0") == {}
    with pytest.raises(ValueError):
        tls_options("rediss://h/0?ssl_cert_reqs=sometimes")
