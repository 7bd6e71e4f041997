"""The one place newsflow reads its configuration.

Every setting comes from the environment (``NEWSFLOW_<FIELD>``), is read once
by :func:`settings`, and is validated in one place (:meth:`Settings.__post_init__`).
A setting is one field of :class:`Settings` plus one line in :data:`MEANING`;
``newsflow config --markdown`` renders the table in docs/configuration.md from
both, and a test fails when the two drift apart.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

from worker.errors import ConfigError as ConfigError  # re-exported: where settings are, so is their error

ENGINES = ("jieba", "jieba-rs")
KEYWORD_METHODS = ("tfidf", "textrank")
ENTITY_RECOGNISERS = ("model", "pos")


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` as its password, percent-encoded so that any character works.

    The URL's user name, if any, is kept. Every client newsflow makes (redis-py,
    kombu, Flower) decodes the password again.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0] if at else ""
    return parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}").geturl()


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    # Any characters: it is put into redis_url percent-encoded (and so into the
    # results URL when that defaults to it), so a password need not be encoded
    # by hand. redis_url then carries it as a password written in the URL would:
    # show URLs only through redact().
    redis_password: str = field(default="", repr=False)
    results_redis_url: str = ""
    # With sentinel:// URLs: the master the sentinels watch, and the sentinels'
    # own password (the URL's password is the Redis servers', as in kombu).
    sentinel_master: str = "mymaster"
    sentinel_password: str = field(default="", repr=False)
    # Replicas that must hold an article's writes (WAIT) before it counts as
    # accepted, and how long submit, the client and the bridge keep trying.
    min_replicas: int = 0
    confirm_timeout: float = 30.0
    prefix: str = "newsflow"
    engine: str = "jieba"
    max_chars: int = 1_000_000
    batch_size: int = 50
    batch_max_chars: int = 200_000
    result_ttl: int = 86_400
    results_maxlen: int = 1_000_000
    trim_interval: int = 5
    dedupe_window: int = 7 * 86_400
    near_threshold: float = 0.5
    dedupe_shards: int = 4096
    analyse_near_duplicates: bool = True
    analyse_duplicates: bool = False
    max_attempts: int = 3
    # kombu's Redis transport cannot extend a reservation: a batch not acked
    # within this many seconds is handed to another worker. It is both the
    # redelivery delay after a worker dies and the longest a batch may run.
    visibility_timeout: int = 300
    # Hard limit on one batch task; 0 means 80% of the visibility timeout, so a
    # batch is killed (and requeued) before kombu would redeliver it anyway.
    time_limit: float = 0.0
    queue_bound: int = 10_000
    user_dict: str = ""
    user_stopwords: str = ""
    # Which recogniser finds entities: the LAC model, or jieba's POS tags
    # (cheaper, less accurate; docs/entities.md has the figures).
    entities: str = "model"
    entity_deny: str = ""
    keywords: str = "tfidf"
    top_keywords: int = 10
    log_format: str = "auto"
    concurrency: int = 0
    metrics_port: int = 9808

    def __post_init__(self) -> None:
        if self.redis_password:
            object.__setattr__(self, "redis_url", with_password(self.redis_url, self.redis_password))
        if not self.results_redis_url:
            object.__setattr__(self, "results_redis_url", self.redis_url)
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,64}", self.prefix):
            raise ConfigError(f"NEWSFLOW_PREFIX must be 1-64 of [A-Za-z0-9._-], got {self.prefix!r}")
        if self.engine not in ENGINES:
            raise ConfigError(f"NEWSFLOW_ENGINE must be one of {ENGINES}, got {self.engine!r}")
        if self.entities not in ENTITY_RECOGNISERS:
            raise ConfigError(f"NEWSFLOW_ENTITIES must be one of {ENTITY_RECOGNISERS}, got {self.entities!r}")
        if self.keywords not in KEYWORD_METHODS:
            raise ConfigError(f"NEWSFLOW_KEYWORDS must be one of {KEYWORD_METHODS}")
        if not 0.0 < self.near_threshold <= 1.0:
            raise ConfigError("NEWSFLOW_NEAR_THRESHOLD must be in (0, 1]")
        for name in (
            "max_chars",
            "batch_size",
            "batch_max_chars",
            "max_attempts",
            "queue_bound",
            "trim_interval",
            "dedupe_shards",
            "visibility_timeout",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"NEWSFLOW_{name.upper()} must be at least 1")
        if self.min_replicas < 0:
            raise ConfigError("NEWSFLOW_MIN_REPLICAS must be 0 or more")
        if self.confirm_timeout <= 0:
            raise ConfigError("NEWSFLOW_CONFIRM_TIMEOUT must be above 0")
        if not self.sentinel_master:
            raise ConfigError("NEWSFLOW_SENTINEL_MASTER must name the master the sentinels watch")
        if not 0 <= self.time_limit < self.visibility_timeout:
            raise ConfigError("NEWSFLOW_TIME_LIMIT must be below NEWSFLOW_VISIBILITY_TIMEOUT")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kwargs: dict[str, Any] = {}
        for name, default in cls.__dataclass_fields__.items():
            raw = env.get(f"NEWSFLOW_{name.upper()}")
            if raw is None or raw == "":
                continue
            kind: Any = type(default.default)
            try:
                if kind is bool:
                    kwargs[name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    kwargs[name] = kind(raw)
            except ValueError as exc:
                raise ConfigError(f"NEWSFLOW_{name.upper()}={raw!r}: {exc}") from None
        return cls(**kwargs)

    @property
    def hard_time_limit(self) -> float:
        """Seconds a batch task may run before its child is killed and the batch requeued."""
        return self.time_limit or round(0.8 * self.visibility_timeout, 3)

    @property
    def soft_time_limit(self) -> float:
        """When Python code in a batch is interrupted, leaving time to record the failure."""
        return round(0.75 * self.hard_time_limit, 3)

    @property
    def restore_interval(self) -> int:
        """Seconds between each worker's sweeps for unacked batches past the visibility timeout."""
        return max(1, min(10, self.visibility_timeout // 10))

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


# What each setting means, one line each: the configuration table is made from this.
MEANING = {
    "redis_url": "broker; also results and dedupe state unless `results_redis_url` is set",
    "redis_password": "replaces the password in NEWSFLOW_REDIS_URL (any characters; encoded for you)",
    "results_redis_url": "a separate Redis for results and dedupe state",
    "sentinel_master": "the master's name, for `sentinel://host:port;sentinel://...` URLs (docs/failover.md)",
    "sentinel_password": "the sentinels' own password, if they have one (the URL's is the Redis servers')",
    "min_replicas": "replicas that must hold an article's writes before it is confirmed (`WAIT`); 0: none",
    "confirm_timeout": "seconds submit, the client and the bridge retry a write not yet on enough replicas",
    "prefix": "every key starts with `<prefix>:`, Celery's included",
    "engine": "`jieba` or `jieba-rs`",
    "max_chars": "longest accepted article, in characters",
    "batch_size": "articles per batch task",
    "batch_max_chars": "characters per batch task",
    "result_ttl": "seconds a result stays readable by id",
    "results_maxlen": "emergency cap on the results stream (drops are counted)",
    "trim_interval": "seconds between trims of the results stream (one worker trims)",
    "dedupe_window": "seconds dedupe state is remembered",
    "near_threshold": "estimated Jaccard for `near_duplicate`",
    "dedupe_shards": "hashes per dedupe time bucket; the same on every worker",
    "analyse_near_duplicates": "segment and tag near-duplicates",
    "analyse_duplicates": "segment and tag exact duplicates",
    "max_attempts": "attempts before an article goes to the dead stream",
    "visibility_timeout": "seconds before a vanished worker's batch goes to another; longest a batch runs",
    "time_limit": "hard limit on one batch task, seconds; below the visibility timeout",
    "queue_bound": "articles queued before `submit`, the client and the bridge wait",
    "user_dict": "extra jieba dictionary (`word [freq] [pos]` per line, either script)",
    "user_stopwords": "extra keyword stopwords, one per line, either script",
    "entities": "`model` (the LAC entity model) or `pos` (jieba's POS tags: cheaper, less accurate)",
    "entity_deny": "a file of words that are never entities, one per line, either script",
    "keywords": "`tfidf` or `textrank`",
    "top_keywords": "keywords per article",
    "log_format": "`json`, `console`, or `auto` (console on a terminal)",
    "concurrency": "worker processes, unless `-c` is given",
    "metrics_port": "port of `newsflow metrics`",
}
# Defaults that read better in words than as the field's value.
SHOWN_DEFAULT = {
    "results_redis_url": "(NEWSFLOW_REDIS_URL)",
    "time_limit": "(0.8 x visibility timeout)",
    "user_dict": "(none)",
    "user_stopwords": "(none)",
    "redis_password": "(none)",
    "sentinel_password": "(none)",
    "entity_deny": "(none)",
    "concurrency": "0 (one per CPU)",
}


def reference_markdown() -> str:
    """The configuration table (Markdown), from :class:`Settings` and :data:`MEANING`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, spec in Settings.__dataclass_fields__.items():
        default = spec.default
        shown = SHOWN_DEFAULT.get(name) or (str(int(default)) if isinstance(default, bool) else str(default))
        rows.append(f"| `NEWSFLOW_{name.upper()}` | `{shown}` | {MEANING[name]} |")
    return "\n".join(rows) + "\n"


@cache
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]+)@")
_BARE_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<pw>[^:@/]+)@")


def redact(text: str) -> str:
    """Hide passwords inside any URLs in ``text``: ``redis://u:***@host``."""
    text = _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _BARE_PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}***@", text)
