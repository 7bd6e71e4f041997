"""Checking the Redis settings before a command starts, so a mistake is one line at once.

A command that meets a bad ``NEWSFLOW_REDIS_URL`` half-way through (inside
Celery, inside a retry loop) ends late and in a traceback. :func:`check` asks
Redis once, up front, with a short connect timeout and one retry, and turns
what goes wrong into a :mod:`worker.errors` kind whose message names the cause
and the fix, with any password masked. :func:`explain` does the same for an
error met later, so the CLI words both alike.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from worker.config import Settings, redact
from worker.errors import ConfigError, NewsflowError, RedisUnavailable

SCHEMES = ("redis", "rediss", "unix", "sentinel")
# How long one connection attempt may take; one retry follows a failed one.
CONNECT_TIMEOUT = 5.0


def urls(settings: Settings) -> list[tuple[str, str]]:
    """``(variable, url)`` for each Redis the settings name: the broker, and the results one if apart."""
    found = [("NEWSFLOW_REDIS_URL", settings.redis_url)]
    if settings.results_redis_url != settings.redis_url:
        found.append(("NEWSFLOW_RESULTS_REDIS_URL", settings.results_redis_url))
    return found


def check_syntax(settings: Settings) -> None:
    """Raise :class:`ConfigError` if a Redis URL cannot be a Redis URL at all."""
    for variable, url in urls(settings):
        scheme = urlsplit(url).scheme if "://" in url else ""
        if scheme not in SCHEMES:
            raise ConfigError(
                f"{variable}={redact(url)!r} is not a Redis URL: "
                f"write it as redis://[:PASSWORD@]HOST:PORT/DB (or rediss://, unix://)"
            )
        db = _db_number(url)
        if db is not None and db < 0:
            raise ConfigError(f"{variable}: the database number must be 0 or more, got {db}")


def check(settings: Settings) -> None:
    """Check the URLs' form, then that each Redis answers PING with the credentials given.

    Raises:
        ConfigError: a URL that is not a Redis URL, or a database number this Redis does not have.
        RedisUnavailable: no answer within the connect timeout and one retry, or a password
            missing or refused.
    """
    check_syntax(settings)
    if settings.redis_url.startswith("sentinel://"):
        return  # the master is found through the sentinels; the command's own client reports on it
    for variable, url in urls(settings):
        from worker.connection import tls_options, without_tls_query

        try:
            client = redis.Redis.from_url(
                without_tls_query(url),
                socket_connect_timeout=CONNECT_TIMEOUT,
                socket_timeout=CONNECT_TIMEOUT,
                retry=Retry(NoBackoff(), 1),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
                **tls_options(url),
            )
            client.ping()
            client.close()
        except (redis.RedisError, ValueError, OSError) as exc:
            raise explain(exc, variable, url) from None


def explain(exc: BaseException, variable: str = "NEWSFLOW_REDIS_URL", url: str = "") -> NewsflowError:
    """The one-line error for a Redis error met with ``url``, naming what to change."""
    shown = redact(url) if url else variable
    message = redact(str(exc)).rstrip(".")
    if isinstance(exc, redis.AuthenticationError) or _needs_password(message):
        if _has_password(url) or "WRONGPASS" in message or "invalid username-password" in message:
            return RedisUnavailable(
                f"Redis at {shown} refused the password: correct it in {variable} "
                "(or NEWSFLOW_REDIS_PASSWORD)"
            )
        return RedisUnavailable(
            f"Redis needs a password: set it in {variable} (or in NEWSFLOW_REDIS_PASSWORD)"
        )
    if isinstance(exc, redis.ResponseError) and "DB index is out of range" in message:
        return ConfigError(
            f"{variable} names database {_db_number(url)}, which this Redis does not have "
            "(it has 16 unless its `databases` setting says otherwise): use a smaller number"
        )
    if isinstance(exc, redis.ResponseError) and "NOPERM" in message:
        return RedisUnavailable(f"Redis at {shown} denies this user a command newsflow needs: {message}")
    if isinstance(exc, ValueError):
        return ConfigError(f"{variable}={shown!r} is not a usable Redis URL: {message}")
    if isinstance(exc, redis.ConnectionError | redis.TimeoutError | OSError):
        return RedisUnavailable(
            f"cannot reach Redis at {shown} ({message}): start it, or point {variable} at where it runs"
        )
    return RedisUnavailable(f"Redis at {shown} answered with an error: {message}")


def _needs_password(message: str) -> bool:
    return "NOAUTH" in message or "Authentication required" in message or "HELLO must be called" in message


def _has_password(url: str) -> bool:
    netloc = urlsplit(url).netloc if "://" in url else ""
    userinfo, at, _ = netloc.rpartition("@")
    return bool(at and userinfo.partition(":")[2] or at and ":" not in userinfo and userinfo)


def _db_number(url: str) -> int | None:
    if "://" not in url:
        return None
    path = urlsplit(url).path.strip("/")
    if re.fullmatch(r"-?\d+", path):
        return int(path)
    return None
