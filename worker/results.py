"""Results and the per-id records in Redis: writing, reading, trimming.

Where the body lives: the ``<prefix>:results`` stream entry holds the one full
copy of each result JSON. ``<prefix>:result:<id>`` is a small hash that points
at that entry (``entry``) and carries ``status``, ``rev`` and the text hash.
:meth:`ResultStore.get` follows the pointer, so readers never see the split.

Trimming (:meth:`ResultStore.trim`) runs in the workers, after a batch, at most
once per ``NEWSFLOW_TRIM_INTERVAL`` across all of them. It keeps every entry
that a consumer group has not yet read or has not acknowledged, and every entry
younger than the result TTL (the per-id records point into the stream). Only
past ``NEWSFLOW_RESULTS_MAXLEN`` does it drop entries regardless, and it counts
them in ``<prefix>:results:overflow``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis

from worker.article import valid_id
from worker.config import Settings
from worker.connection import lua
from worker.keys import STATS_MINUTE_TTL, Keys
from worker.stats import latency_field


@dataclass(frozen=True)
class Record:
    """What Redis knows about an id before its article is processed."""

    text_hash: str  # "" once a replay has released the record
    revision: int
    status: str
    entry: str
    fingerprint: str = ""


class Publishable(Protocol):
    """What :class:`Rendered` takes of an outcome (a :class:`worker.pipeline.Outcome`)."""

    @property
    def id(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> dict[str, Any]: ...
    @property
    def text_hash(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def submitted_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class Rendered:
    """An outcome of a valid id as emit_result.lua writes it: its result already JSON.

    A worker renders each outcome as soon as its article is done
    (:meth:`worker.writer.ResultWriter.defer`) and keeps this until the next
    round trip, not the result: the result's tokens are freed at once instead
    of waiting, twenty-odd results at a time, for the round trip. Each jieba-rs
    worker child keeps about 7 MB less for it (docs/performance.md, seventh round).
    """

    id: str
    status: str
    body: bytes  # the result's JSON
    text_hash: str
    fingerprint: str
    revision: int  # the revision the result was rendered with
    submitted_at: float | None

    @classmethod
    def of(cls, outcome: Publishable) -> Rendered:
        assert outcome.id is not None  # only valid ids have a record
        result = outcome.result
        return cls(
            outcome.id,
            outcome.status,
            dumps(result),
            outcome.text_hash,
            outcome.fingerprint,
            _revision(result),
            outcome.submitted_at,
        )

    def result(self) -> dict[str, Any]:
        """The result again, to render it anew (rare: see :func:`moved_on`)."""
        result: dict[str, Any] = orjson.loads(self.body)
        return result


# Bodies (result JSON) one emit_result.lua call carries at most, unless one alone is bigger.
EMIT_CALL_BYTES = 96 * 1024


def dumps(result: dict[str, Any]) -> bytes:
    return orjson.dumps(result)


class ResultStore:
    def __init__(self, client: redis.Redis, keys: Keys, settings: Settings) -> None:
        self._client = client
        self._keys = keys
        self._settings = settings
        self._emit = client.register_script(lua("emit_result.lua"))

    def records(self, ids: list[str]) -> dict[str, Record]:
        """The current record of each valid id that has one, in one round trip."""
        wanted = [i for i in dict.fromkeys(ids) if valid_id(i)]
        pipe = self._client.pipeline(transaction=False)
        for article_id in wanted:
            pipe.hmget(self._keys.result(article_id), "hash", "rev", "status", "entry", "fp")
        found = {}
        for article_id, (digest, rev, status, entry, fp) in zip(wanted, pipe.execute(), strict=True):
            if rev is not None:
                found[article_id] = Record(_text(digest), int(rev), _text(status), _text(entry), _text(fp))
        return found

    def publish(
        self,
        article_id: str | None,
        status: str,
        result: dict[str, Any],
        text_hash: str = "",
        fingerprint: str = "",
        submitted_at: float | None = None,
    ) -> tuple[int, str, int]:
        """Write one outcome. Returns ``(code, entry, revision)`` as emit_result.lua does.

        An outcome without a valid id (a rejected bad id) has no record: it goes
        to the results stream alone.
        """
        if article_id is None or not valid_id(article_id):
            keys, minute = self._keys, int(time.time() // 60)
            pipe = self._client.pipeline()
            pipe.xadd(keys.results, {"id": article_id or "", "status": status, "result": dumps(result)})
            pipe.hincrby(keys.stats, status, 1)
            pipe.hincrby(keys.stats_minute(minute), status, 1)
            pipe.expire(keys.stats_minute(minute), STATS_MINUTE_TTL)
            entry = pipe.execute()[0]
            return 1, entry.decode(), 0
        body, revision = dumps(result), _revision(result)
        one = Rendered(article_id, status, body, text_hash, fingerprint, revision, submitted_at)
        names, args = self._emit_call([one], time.time())
        return publish_replies([self._emit(keys=names, args=args)])[0]

    def publish_current(
        self,
        article_id: str | None,
        status: str,
        result: dict[str, Any],
        text_hash: str = "",
        fingerprint: str = "",
        submitted_at: float | None = None,
    ) -> tuple[int, str, int]:
        """:meth:`publish`, re-rendering ``result["revision"]`` while a correction moves it on.

        Returns ``(1, entry, revision)`` when written, ``(0, entry, revision)`` when
        this id already had a result for this very text.
        """
        for _ in range(5):
            reply = self.publish(article_id, status, result, text_hash, fingerprint, submitted_at)
            if not moved_on(reply, result):
                return reply
        raise RuntimeError(f"could not publish {article_id}: its revision keeps moving")

    def publish_later(self, pipe: redis.client.Pipeline, outcomes: Sequence[Rendered]) -> int:
        """Queue :meth:`publish` of ``outcomes`` on ``pipe``; returns the calls queued.

        Read their replies with :func:`publish_replies`. Each EVALSHA carries
        as many outcomes as fit in ``EMIT_CALL_BYTES`` of bodies (one at
        least), and counts them in the stats once. Bigger calls would save
        little more, and every worker child would keep the memory a command
        that size takes to pack. EVALSHA straight on the pipeline: redis-py's
        Script on a pipeline asks SCRIPT EXISTS first, a round trip of its own
        every time.
        """
        now, calls, size = time.time(), 0, 0
        group: list[Rendered] = []
        for o in outcomes:
            if group and size + len(o.body) > EMIT_CALL_BYTES:
                self._queue_emit(pipe, group, now)
                calls, group, size = calls + 1, [], 0
            group.append(o)
            size += len(o.body)
        if group:
            self._queue_emit(pipe, group, now)
            calls += 1
        return calls

    def _queue_emit(self, pipe: redis.client.Pipeline, group: list[Rendered], now: float) -> None:
        names, args = self._emit_call(group, now)
        pipe.evalsha(self._emit.sha, len(names), *names, *args)

    def _emit_call(self, outcomes: list[Rendered], now: float) -> tuple[list[str], list[Any]]:
        """emit_result.lua's keys and arguments for ``outcomes``."""
        keys = self._keys
        names = [keys.results, keys.stats, keys.stats_minute(int(now // 60))]
        args: list[Any] = [self._settings.result_ttl, STATS_MINUTE_TTL]
        for o in outcomes:
            submitted_at = o.submitted_at
            latency = None if not submitted_at else max(0.0, (now - submitted_at) * 1000)
            names.append(keys.result(o.id))
            args += [
                o.id,
                o.status,
                o.body,
                o.text_hash,
                o.fingerprint,
                o.revision,
                "" if latency is None else f"{latency:.1f}",
                "" if latency is None else latency_field(latency),
            ]
        return names, args

    def get(self, article_id: str) -> dict[str, Any] | None:
        """The current result for ``article_id``, or None if there is none (or it expired)."""
        entry = self._client.hget(self._keys.result(article_id), "entry")
        if entry is None:
            return None
        found = self._client.xrange(self._keys.results, entry, entry)
        if not found:
            return None
        return orjson.loads(found[0][1][b"result"])

    def release(self, article_id: str) -> None:
        """Let the same text under this id be processed again (a replay after a fix).

        The record keeps its revision, so the replay's outcome is revision n+1
        and a new results entry; only the text hash that makes a resubmission a
        no-op is dropped.
        """
        self._client.hdel(self._keys.result(article_id), "hash")

    # -- trimming ---------------------------------------------------------------

    def trim(self, *, force: bool = False, now: float | None = None) -> dict[str, Any] | None:
        """Trim the results stream; None when another process trimmed it within the interval."""
        s, keys, r = self._settings, self._keys, self._client
        if not force and not r.set(keys.results_trimmed, 1, nx=True, ex=s.trim_interval):
            return None
        now_ms = int((time.time() if now is None else now) * 1000)
        keep_from = (max(0, now_ms - s.result_ttl * 1000), 0)
        try:
            groups = r.xinfo_groups(keys.results)
        except redis.ResponseError:  # no stream yet
            return {"minid": None, "trimmed": 0, "overflow": 0}
        for group in groups:
            keep_from = min(keep_from, _stream_id(group["last-delivered-id"]))
            if group["pending"]:
                oldest = r.xpending(keys.results, group["name"])["min"]
                if oldest is not None:
                    keep_from = min(keep_from, _stream_id(oldest))
        minid = f"{keep_from[0]}-{keep_from[1]}"
        trimmed = int(r.xtrim(keys.results, minid=minid, approximate=True))
        overflow = 0
        if r.xlen(keys.results) > s.results_maxlen:
            overflow = int(r.xtrim(keys.results, maxlen=s.results_maxlen, approximate=False))
            r.incrby(keys.results_overflow, overflow)
        return {"minid": minid, "trimmed": trimmed, "overflow": overflow}


def moved_on(reply: tuple[int, str, int], result: dict[str, Any]) -> bool:
    """Whether a correction landed while ``result`` was being made: its revision has moved on.

    emit_result.lua refuses (code -1) a result whose revision is not the next
    one for its id, and says which revision is current. The result is then
    re-rendered as the one after that, to be published again. This is the one
    place that rule lives on the Python side.
    """
    if not stale(reply):
        return False
    result["revision"] = reply[2] + 1
    return True


def stale(reply: tuple[int, str, int]) -> bool:
    """Whether emit_result.lua refused a result because its revision is not the next one (code -1)."""
    return reply[0] == -1


def publish_replies(replies: list[Any]) -> list[tuple[int, str, int]]:
    """Each outcome's ``(code, entry, revision)``, from the replies to :meth:`ResultStore.publish_later`."""
    codes = []
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
        codes += [
            (int(code), entry.decode() if isinstance(entry, bytes) else entry, int(revision))
            for code, entry, revision in reply
        ]
    return codes


def _revision(result: dict[str, Any]) -> int:
    """The revision ``result`` was rendered with (a body without one is a first revision)."""
    return int(result.get("revision", 1))


def _text(value: bytes | None) -> str:
    return value.decode() if value is not None else ""


def _stream_id(value: bytes | str) -> tuple[int, int]:
    ms, _, seq = (value.decode() if isinstance(value, bytes) else value).partition("-")
    return int(ms), int(seq or 0)
