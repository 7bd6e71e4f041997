"""Redis clients, made the same way everywhere: retries with backoff, keepalive, TLS from the URL.

A URL may also name Redis Sentinels instead of a server, in Celery's form
(``sentinel://[:password@]host:port[/db];sentinel://host:port;...``): every
client then asks the sentinels where the master is, and asks again after a
failover. A demoted master's ``READONLY`` closes the connection, so the next
retry finds the new one. :func:`replicated` is how a writer waits until its
writes reached NEWSFLOW_MIN_REPLICAS replicas (``WAIT``).
"""

from __future__ import annotations

import os
import socket
import ssl
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ConnectionError,
    ReadOnlyError,
    TimeoutError,
)
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection, SentinelManagedSSLConnection

from worker.errors import NotReplicated

# Errors that say Redis cannot take work now (unreachable after connect()'s
# retries, out of memory under noeviction, a read-only replica after a
# failover, a refused password, too few replicas for NEWSFLOW_MIN_REPLICAS),
# not that an article is bad. BusyLoadingError is a ConnectionError.
UNAVAILABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    NotReplicated,
)

SENTINEL_SCHEME = "sentinel"
DEFAULT_MASTER = "mymaster"
# One WAIT blocks at most this long: too few replicas by then is NotReplicated,
# and the caller tries the whole write again (a worker must stay inside its time limit).
WAIT_MS = 1000

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


def connect(
    url: str,
    *,
    decode_responses: bool = False,
    attempts: int = 8,
    master: str | None = None,
    sentinel_password: str | None = None,
) -> redis.Redis:
    """A client for ``url`` (``redis[s]://``, ``unix://``, ``sentinel://``; user:password and db work).

    Commands are retried on a dropped connection with exponential backoff
    (about 15 s in all), so a Redis restart or a failover is ridden out; a
    refused password is not retried. TLS
    options come from the URL's query, as for Celery (:func:`tls_options`):
    ``rediss://host:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/newsflow/ca.pem``.

    A ``sentinel://`` URL gives a client of the master named ``master``
    (NEWSFLOW_SENTINEL_MASTER when None) that follows it through failovers.
    ``READONLY`` (a primary demoted behind a fixed address, as managed Redis
    does) drops the connection and is retried too.
    """
    options: dict[str, Any] = {
        "decode_responses": decode_responses,
        "socket_connect_timeout": 5,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "retry": _Retry(ExponentialBackoff(cap=4.0, base=0.05), attempts),
        "retry_on_error": [ConnectionError, TimeoutError, BusyLoadingError, ReadOnlyError],
    }
    if is_sentinel(url):
        return sentinel_client(url, master=master, sentinel_password=sentinel_password, **options)
    return redis.Redis.from_url(without_tls_query(url), **options, **tls_options(url))


def is_sentinel(url: str) -> bool:
    """Whether ``url`` names Redis Sentinels (Celery's ``sentinel://...;sentinel://...``)."""
    return url.strip().lower().startswith(f"{SENTINEL_SCHEME}://")


def sentinel_nodes(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each sentinel in a ``sentinel://`` URL, in order."""
    nodes = []
    for part in _sentinel_parts(url):
        if part.hostname is None:
            raise ValueError(f"a sentinel URL needs host:port, got {part.geturl()!r}")
        nodes.append((part.hostname, part.port or 26379))
    return nodes


def _sentinel_parts(url: str) -> list[Any]:
    return [urlsplit(piece.strip()) for piece in url.split(";") if piece.strip()]


def sentinel_client(
    url: str,
    *,
    master: str | None = None,
    sentinel_password: str | None = None,
    **options: Any,
) -> redis.Redis:
    """A client of the master that the sentinels in ``url`` name, following it through failovers.

    As in kombu's Sentinel transport, a user and password in the URL (the first
    one that has them) and its database are the Redis servers', not the
    sentinels'; sentinels that have a password of their own take it from
    ``sentinel_password`` (NEWSFLOW_SENTINEL_PASSWORD when None). TLS options in
    the query apply to both.
    """
    return sentinel_manager(url, sentinel_password=sentinel_password, **options).master_for(
        master or _setting("sentinel_master") or DEFAULT_MASTER, redis_class=redis.Redis
    )


def sentinel_manager(url: str, *, sentinel_password: str | None = None, **options: Any) -> Sentinel:
    """The :class:`redis.sentinel.Sentinel` for ``url``: masters and replicas it makes use ``options``."""
    parts = _sentinel_parts(url)
    tls = tls_options(url)
    server: dict[str, Any] = dict(options)
    for part in parts:
        if part.password is not None or part.username:
            server["username"] = unquote(part.username) if part.username else None
            server["password"] = unquote(part.password) if part.password is not None else None
            break
    db = next((p.path.strip("/") for p in parts if p.path.strip("/")), "0")
    server["db"] = int(db)
    if tls:
        server.update(tls, connection_class=_SentinelSSLConnection)
    else:
        server["connection_class"] = _SentinelConnection
    sentinels: dict[str, Any] = {
        "socket_connect_timeout": options.get("socket_connect_timeout", 5),
        "socket_timeout": 5,
        "decode_responses": True,
    }
    password = sentinel_password if sentinel_password is not None else _setting("sentinel_password")
    if password:
        sentinels["password"] = password
    if tls:
        sentinels.update(tls, ssl=True)
    return Sentinel(sentinel_nodes(url), sentinel_kwargs=sentinels, **server)


def celery_sentinel_options(url: str, master: str, sentinel_password: str) -> dict[str, Any]:
    """kombu's Sentinel transport options for ``url``: the master's name and how to reach the sentinels.

    kombu takes the servers' password from the URL and the sentinels' own
    connection settings from ``sentinel_kwargs``.
    """
    if not is_sentinel(url):
        return {}
    sentinels: dict[str, Any] = {"socket_connect_timeout": 5, "socket_timeout": 5}
    if sentinel_password:
        sentinels["password"] = sentinel_password
    tls = tls_options(url)
    if tls:
        sentinels.update(tls, ssl=True)
    return {"master_name": master, "sentinel_kwargs": sentinels}


def replicated(pipe: redis.client.Pipeline, replicas: int) -> None:
    """Queue on ``pipe`` (not a transaction) a ``WAIT`` for ``replicas`` replicas; nothing when 0.

    ``WAIT`` waits for every write this connection made before it; the
    replication stream is in order, so any write another connection finished
    earlier is covered too. Check the reply with :func:`check_replicated`.
    Each ``WAIT`` blocks at most WAIT_MS: a worker must stay well inside its
    batch's time limit.
    """
    if replicas > 0:
        pipe.execute_command("WAIT", replicas, WAIT_MS)


def check_replicated(client: redis.Redis, replicas: int, acked: Any) -> None:
    """Raise :class:`NotReplicated` unless the ``WAIT`` that :func:`replicated` queued saw ``replicas``.

    It is not asked again: after a failover a second ``WAIT`` would reach the
    new master, where the writes it should vouch for may never have been. The
    client's connections are dropped instead, so the caller's next try (a
    submit puts the batch again, a worker's batch is redelivered) goes to
    whichever master the sentinels name by then.
    """
    if replicas <= 0:
        return
    if isinstance(acked, Exception):
        raise acked
    if acked < replicas:
        client.connection_pool.disconnect()
        raise NotReplicated(
            f"only {acked} of {replicas} replicas acknowledged the write in {WAIT_MS / 1000:g}s"
        )


class _SentinelConnection(SentinelManagedConnection):
    """redis-py's Sentinel connection, closed when a read is interrupted, as a plain one is.

    redis-py's own keeps the connection after any exception in a read (its
    ``disconnect_on_error`` defaults to False there, True elsewhere), so a
    soft time limit that lands mid-read leaves a reply waiting on it, and
    every later command reads the one before's reply.
    """

    def read_response(self, *args: Any, disconnect_on_error: bool = True, **kwargs: Any) -> Any:
        return super().read_response(*args, disconnect_on_error=disconnect_on_error, **kwargs)


class _SentinelSSLConnection(_SentinelConnection, SentinelManagedSSLConnection):
    pass


def _setting(name: str) -> Any:
    from worker.config import settings  # late: config is read from the environment on first use

    return getattr(settings(), name)


def tls_options(url: str) -> dict[str, Any]:
    """TLS settings for a ``rediss://`` URL, from its query; ``{}`` for any other URL.

    Certificates are verified unless the URL says ``ssl_cert_reqs=none``:
    Celery refuses a ``rediss://`` broker without an explicit choice, and the
    safe one is the default here.
    """
    parts = urlsplit(url)
    if parts.scheme == SENTINEL_SCHEME:
        query = {k: v for part in _sentinel_parts(url) for k, v in parse_qsl(part.query)}
        if not any(k.startswith("ssl_") for k in query):
            return {}
    elif parts.scheme != "rediss":
        return {}
    else:
        query = dict(parse_qsl(parts.query))
    reqs = query.get("ssl_cert_reqs", "required").strip().lower()
    if reqs not in _CERT_REQS:
        raise ValueError(f"ssl_cert_reqs must be required, optional or none, got {reqs!r}")
    options: dict[str, Any] = {"ssl_cert_reqs": _CERT_REQS[reqs]}
    options.update({name: query[name] for name in _TLS_PATHS if query.get(name)})
    return options


def without_tls_query(url: str) -> str:
    """``url`` without its ``ssl_*`` query parameters, which :func:`tls_options` passes apart."""
    pieces = _sentinel_parts(url) if is_sentinel(url) else [urlsplit(url)]
    kept = [
        part._replace(query=urlencode([(k, v) for k, v in parse_qsl(part.query) if not k.startswith("ssl_")]))
        for part in pieces
    ]
    return ";".join(part.geturl() for part in kept)


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
