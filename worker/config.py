"""The one place newsflow reads its configuration.

Every setting comes from the environment, is read once by :func:`settings`, and
is documented here with its default. The README's configuration table mirrors
this module.

=============================== ============================ =====================================
variable                        default                      meaning
=============================== ============================ =====================================
NEWSFLOW_REDIS_URL              redis://localhost:6379/0     broker; also results and dedupe state
NEWSFLOW_REDIS_PASSWORD         (none)                       replaces the password in NEWSFLOW_REDIS_URL
NEWSFLOW_RESULTS_REDIS_URL      (NEWSFLOW_REDIS_URL)         results and dedupe state, if separate
NEWSFLOW_PREFIX                 newsflow                     every key starts with ``<prefix>:``
NEWSFLOW_ENGINE                 jieba                        ``jieba`` or ``jieba-rs``
NEWSFLOW_MAX_CHARS              1000000                      longest accepted article, in characters
NEWSFLOW_BATCH_SIZE             50                           articles per batch task
NEWSFLOW_BATCH_MAX_CHARS        200000                       characters per batch task
NEWSFLOW_RESULT_TTL             86400                        seconds a result stays readable
NEWSFLOW_RESULTS_MAXLEN         1000000                      emergency cap on the results stream
NEWSFLOW_TRIM_INTERVAL          5                            seconds between trims of the results stream
NEWSFLOW_DEDUPE_WINDOW          604800                       seconds dedupe state is remembered
NEWSFLOW_NEAR_THRESHOLD         0.5                          estimated Jaccard for near_duplicate
NEWSFLOW_DEDUPE_SHARDS          4096                         hashes per dedupe time bucket
NEWSFLOW_ANALYSE_NEAR_DUPLICATES 1                           segment and tag near-duplicates
NEWSFLOW_ANALYSE_DUPLICATES     0                            segment and tag exact duplicates
NEWSFLOW_MAX_ATTEMPTS           3                            attempts before an article is dead
NEWSFLOW_VISIBILITY_TIMEOUT     300                          seconds before an unacked batch is redelivered
NEWSFLOW_TIME_LIMIT             (0.8 x visibility timeout)   hard limit on one batch task, seconds
NEWSFLOW_QUEUE_BOUND            10000                        articles queued before submit waits
NEWSFLOW_USER_DICT              (none)                       extra jieba dictionary file
NEWSFLOW_USER_STOPWORDS         (none)                       extra keyword stopwords file
NEWSFLOW_ENTITIES               model                        ``model`` (LAC) or ``pos`` (jieba's tags)
NEWSFLOW_ENTITY_DENY            (none)                       file of words that are never entities
NEWSFLOW_KEYWORDS               tfidf                        ``tfidf`` or ``textrank``
NEWSFLOW_TOP_KEYWORDS           10                           keywords per article
NEWSFLOW_LOG_FORMAT             auto                         ``json``, ``console`` or ``auto``
NEWSFLOW_CONCURRENCY            0 (one per CPU)              worker processes, unless ``-c`` is given
NEWSFLOW_METRICS_PORT           9808                         port of ``newsflow metrics``
=============================== ============================ =====================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache

from worker.connection import with_password

ENGINES = ("jieba", "jieba-rs")
KEYWORD_METHODS = ("tfidf", "textrank")
ENTITY_RECOGNISERS = ("model", "pos")


class ConfigError(ValueError):
    """A setting in the environment has a value newsflow cannot use."""


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://localhost:6379/0"
    # Any characters: it is put into redis_url percent-encoded (and so into the
    # results URL when that defaults to it), so a password need not be encoded
    # by hand. redis_url then carries it as a password written in the URL would:
    # show URLs only through redact().
    redis_password: str = field(default="", repr=False)
    results_redis_url: str = ""
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
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

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
        if not 0 <= self.time_limit < self.visibility_timeout:
            raise ConfigError("NEWSFLOW_TIME_LIMIT must be below NEWSFLOW_VISIBILITY_TIMEOUT")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        kwargs: dict[str, object] = {}
        for name, default in cls.__dataclass_fields__.items():
            if name == "extra":
                continue
            raw = env.get(f"NEWSFLOW_{name.upper()}")
            if raw is None or raw == "":
                continue
            kind = type(default.default)
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

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)


@cache
def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()


_SECRET_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^@/]*)@")
_BARE_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<pw>[^:@/]+)@")


def redact(text: str) -> str:
    """Hide passwords inside any URLs in ``text``: ``redis://u:***@host``."""
    text = _SECRET_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _BARE_PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}***@", text)
