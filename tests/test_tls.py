"""``rediss://``: a worker and the client against a real redis-server that speaks only TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from producer.client import Client
from tests.support import RedisServer
from worker.app import make_app
from worker.config import Settings
from worker.connection import connect


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TlsRedis(RedisServer):
    """A redis-server with its plain port off and TLS on ``port``."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert, key = self_signed(workdir)
        super().__init__(
            workdir,
            "--port",
            "0",
            "--tls-port",
            "{port}",
            "--tls-cert-file",
            str(self.cert),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(self.cert),
            "--tls-auth-clients",
            "no",
        )

    def start(self) -> None:
        self.args = [a.replace("{port}", str(self.port)) for a in self.args]
        super().start()

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={self.cert}"

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            db=db,
            ssl=True,
            ssl_ca_certs=str(self.cert),
            ssl_cert_reqs="required",
        )


@pytest.fixture
def tls_server(tmp_path):
    server = TlsRedis(tmp_path / "tls")
    yield server
    server.stop()


def test_worker_processes_an_article_over_tls(tls_server, prefix, start_worker):
    env = {"NEWSFLOW_REDIS_URL": tls_server.url, "NEWSFLOW_PREFIX": prefix}
    start_worker(extra_env=env)
    client = Client(Settings.from_env(env))
    sent = client.submit({"id": "tls/1", "text": "加密連線上的新聞稿：颱風今晚登陸。"})
    assert client.wait([sent], timeout=60)["tls/1"]["status"] == "unique"


def test_celery_broker_gets_the_tls_options_of_the_url(tls_server, prefix):
    app = make_app(Settings(redis_url=tls_server.url, prefix=prefix))
    assert app.conf.broker_use_ssl["ssl_ca_certs"] == str(tls_server.cert)
    assert "ssl_" not in app.conf.broker_url
    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1)
        assert conn.default_channel.client.ping()


def test_tls_refuses_a_server_whose_certificate_is_not_trusted(tls_server, tmp_path):
    other_ca, _ = self_signed(tmp_path)
    url = f"rediss://127.0.0.1:{tls_server.port}/0?ssl_ca_certs={other_ca}"
    with pytest.raises(redis.ConnectionError):
        connect(url, attempts=1).ping()
    plain = f"redis://127.0.0.1:{tls_server.port}/0"
    with pytest.raises(redis.ConnectionError):
        connect(plain, attempts=1).ping()
