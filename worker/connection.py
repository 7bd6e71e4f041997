"""Redis clients, made the same way everywhere: retries with backoff, keepalive, TLS from the URL."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import BusyLoadingError, ConnectionError, TimeoutError
from redis.retry import Retry


def connect(url: str, *, decode_responses: bool = False, attempts: int = 8) -> redis.Redis:
    """A client for ``url`` (``redis://``, ``rediss://``, ``unix://``; user:password and db work).

    Commands are retried on a dropped connection with exponential backoff
    (up to about 20 s in all), so a Redis restart is ridden out.
    """
    return redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=15,
        retry=Retry(ExponentialBackoff(cap=4.0, base=0.05), attempts),
        retry_on_error=[ConnectionError, TimeoutError, BusyLoadingError],
    )
