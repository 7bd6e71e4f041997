"""Sentinel URLs in Celery's form: parsed the way kombu's Sentinel transport reads them."""

from __future__ import annotations

import ssl

import pytest

from worker.appconfig import make_app
from worker.config import ConfigError, Settings, redact
from worker.connection import (
    celery_sentinel_options,
    is_sentinel,
    sentinel_manager,
    sentinel_nodes,
    tls_options,
    without_tls_query,
)

URL = "sentinel://:s3cret@10.0.0.1:26379/2;sentinel://10.0.0.2:26380;sentinel://10.0.0.3"


def test_every_sentinel_is_named_in_order() -> None:
    assert is_sentinel(URL) and not is_sentinel("redis://localhost:6379/0")
    assert sentinel_nodes(URL) == [("10.0.0.1", 26379), ("10.0.0.2", 26380), ("10.0.0.3", 26379)]


def test_the_urls_password_and_db_are_the_servers_the_sentinels_have_their_own() -> None:
    manager = sentinel_manager(URL, sentinel_password="")
    assert manager.connection_kwargs["password"] == "s3cret"
    assert manager.connection_kwargs["db"] == 2
    assert "password" not in manager.sentinel_kwargs
    own = sentinel_manager(URL, sentinel_password="sentinel-pw")
    assert own.sentinel_kwargs["password"] == "sentinel-pw"
    assert own.connection_kwargs["password"] == "s3cret"


def test_tls_from_the_query_applies_to_sentinels_and_servers() -> None:
    url = "sentinel://h1:26379?ssl_cert_reqs=required&ssl_ca_certs=/ca.pem;sentinel://h2:26379"
    assert tls_options(url) == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.pem"}
    assert without_tls_query(url) == "sentinel://h1:26379;sentinel://h2:26379"
    manager = sentinel_manager(url, sentinel_password="")
    assert manager.sentinel_kwargs["ssl"] is True
    assert manager.connection_kwargs["ssl_ca_certs"] == "/ca.pem"
    assert tls_options(URL) == {}


def test_celery_gets_the_master_name_and_the_sentinels_password() -> None:
    settings = Settings(redis_url=URL, sentinel_master="news", sentinel_password="pw")
    options = make_app(settings).conf.broker_transport_options
    assert options["master_name"] == "news"
    assert options["sentinel_kwargs"]["password"] == "pw"
    assert celery_sentinel_options("redis://h:6379/0", "news", "pw") == {}


def test_a_password_setting_and_redaction_work_on_sentinel_urls() -> None:
    settings = Settings(
        redis_url="sentinel://10.0.0.1:26379;sentinel://10.0.0.2:26379", redis_password="p@ss"
    )
    assert settings.redis_url.startswith("sentinel://:p%40ss@10.0.0.1:26379;")
    manager = sentinel_manager(settings.redis_url, sentinel_password="")
    assert manager.connection_kwargs["password"] == "p@ss"
    assert "s3cret" not in redact(URL)


def test_min_replicas_is_checked() -> None:
    with pytest.raises(ConfigError, match="NEWSFLOW_MIN_REPLICAS"):
        Settings.from_env({"NEWSFLOW_MIN_REPLICAS": "-1"})
    assert Settings.from_env({"NEWSFLOW_MIN_REPLICAS": "1"}).min_replicas == 1
