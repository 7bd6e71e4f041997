"""Redis clients, made the same way everywhere: retries with backoff, keepalive, TLS from the URL."""

from __future__ import annotations

import os
import socket
import ssl
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, BusyLoadingError, ConnectionError, TimeoutError
from redis.retry import Retry

# Errors that say Redis cannot take work now (unreachable after connect()'s
# retries, out of memory under noeviction, a read-only replica after a
# failover, a refused password), not that an article is bad. BusyLoadingError
# is a ConnectionError.
UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
)

# A reply slower than this means the connection is dead (a partition that drops
# packets closes nothing); blocking reads must block for less.
SOCKET_TIMEOUT = 30.0

_CERT_REQS = {
    "required": ssl.CERT_REQUIRED,
    "cert_required": ssl.CERT_REQUIRED,
    "optional": ssl.CERT_OPTIONAL,
    "cert_optional": ssl.CERT_OPTIONAL,
    "none": ssl.CERT_NONE,
    "cert_none": ssl.CERT_NONE,
}
_TLS_PATHS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


class _Retry(Retry):
    """redis-py's retry, less authentication errors.

    redis-py's AuthenticationError is a ConnectionError, so a missing or wrong
    password would be retried like a dropped connection (a minute and more of
    silence); it cannot come right by waiting.
    """

    def call_with_retry(self, do: Any, fail: Any, is_retryable: Any = None, **options: Any) -> Any:
        def retryable(error: Exception) -> bool:
            if isinstance(error, AuthenticationError):
                return False
            return is_retryable is None or bool(is_retryable(error))

        return super().call_with_retry(do, fail, retryable, **options)


def connect(url: str, *, decode_responses: bool = False, attempts: int = 8) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``; user:password and db work).

    Commands are retried on a dropped connection with exponential backoff
    (about 15 s in all), so a Redis restart is ridden out; a refused password is
    not retried. TLS options come from
    the URL's query, as for Celery (:func:`tls_options`): ``rediss://host:6380/0
    ?ssl_cert_reqs=required&ssl_ca_certs=/etc/newsflow/ca.pem``.
    """
    return redis.Redis.from_url(
        without_tls_query(url),
        decode_responses=decode_responses,
        socket_connect_timeout=5,
        socket_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=15,
        retry=_Retry(ExponentialBackoff(cap=4.0, base=0.05), attempts),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
        **tls_options(url),
    )


def tls_options(url: str) -> dict[str, Any]:
    """TLS settings for a ``rediss://`` URL, from its query; ``{}`` for any other URL.

    Certificates are verified unless the URL says ``ssl_cert_reqs=none``:
    Celery refuses a ``rediss://`` broker without an explicit choice, and the
    safe one is the default here.
    """
    parts = urlsplit(url)
    if parts.scheme != "rediss":
        return {}
    query = dict(parse_qsl(parts.query))
    reqs = query.get("ssl_cert_reqs", "required").strip().lower()
    if reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be required, optional or none, got {reqs!r}")
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[reqs]}
    options.update({name: query[name] for name in _TLS_PATHS if query.get(name)})
    return options


def without_tls_query(url: str) -> str:
    """``url`` without its ``ssl_*`` query parameters, which :func:`tls_options` passes apart."""
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("ssl_")]
    return parts._replace(query=urlencode(kept)).geturl()


def ensure_group(r: redis.Redis, stream: str, group: str, start: str = "0") -> None:
    """Create a consumer group at ``start`` (and the stream if missing); an existing group is kept."""
    try:
        r.xgroup_create(stream, group, id=start, mkstream=True)
    except redis.ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def consumer_name() -> str:
    """A name unique to this process, ``<host>/<pid>``: consumer names, a result's ``worker``."""
    return f"{socket.gethostname()}/{os.getpid()}"


def lua(name: str) -> str:
    """The text of ``worker/lua/<name>``, for ``register_script``."""
    return resources.files("worker").joinpath("lua", name).read_text(encoding="utf-8")
