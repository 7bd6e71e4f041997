"""Reading results: one by id, waiting for submitted ones, or the results stream in order."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import redis

from producer.submitting import Submitted
from worker.connection import ensure_group
from worker.keys import Keys
from worker.results import ResultStore


class ResultReader:
    """Reads results from the results Redis.

    Args:
        client: the Redis that holds results.
        keys: the deployment's key names.
        store: the result store on ``client``.
    """

    def __init__(self, client: redis.Redis, keys: Keys, store: ResultStore) -> None:
        self.redis = client
        self.keys = keys
        self.store = store

    def get(self, article_id: str) -> dict[str, Any] | None:
        """The current result of ``article_id``, or None."""
        return self.store.get(article_id)

    def wait(
        self,
        submitted: Iterable[Submitted],
        timeout: float | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        tick: Callable[[float, int], None] | None = None,
        into: dict[str, dict[str, Any]] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Block until each trackable article has its result for the text sent.

        An article submitted with no text hash (``Submitted(id, "")``) waits for
        any result under its id.

        Args:
            submitted: what was submitted (:meth:`producer.submitting.Submitter.submit_many`).
            timeout: seconds; None waits for ever.
            progress: called with 1 for each result found.
            tick: called each round with the seconds waited and the results found so far.
            into: results are put here as they are found, so a caller keeps them on a timeout.

        Returns:
            ``{id: result}``.

        Raises:
            TimeoutError: after ``timeout`` seconds, listing what is missing.
        """
        pending = {s.id: s.text_hash for s in submitted if s.trackable and s.id is not None}
        done: dict[str, dict[str, Any]] = {} if into is None else into
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        delay = 0.02
        while pending:
            ids = list(pending)
            for chunk in range(0, len(ids), 500):
                part = ids[chunk : chunk + 500]
                pipe = self.redis.pipeline(transaction=False)
                for article_id in part:
                    pipe.hget(self.keys.result(article_id), "hash")
                for article_id, digest in zip(part, pipe.execute(), strict=True):
                    if digest is not None and pending[article_id] in ("", digest.decode()):
                        del pending[article_id]
                        result = self.get(article_id)
                        if result is not None:
                            done[article_id] = result
                        if progress:
                            progress(1)
            if not pending:
                break
            if tick:
                tick(time.monotonic() - started, len(done))
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} articles have no result yet, e.g. {ids[:3]}")
            time.sleep(delay)  # polling Redis; the condition is re-checked each round
            delay = min(0.5, delay * 1.5)
        return done

    def iter_results(
        self,
        *,
        group: str | None = None,
        consumer: str | None = None,
        follow: bool = False,
        start: str = "0",
        count: int = 100,
        block_ms: int = 1000,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(stream entry id, result)`` from the results stream, oldest first.

        Without ``group`` it is a plain read from ``start``. With ``group`` it reads
        through that consumer group (created at the stream's start if missing):
        first this consumer's own pending entries, which a crash left
        unacknowledged, then new ones. An entry is acknowledged only when the
        caller asks for the next one, so what was handed out and not finished
        is delivered again next time. ``follow`` keeps waiting for new results.
        """
        if group is None:
            yield from self._read_plain(start, follow, count, block_ms)
        else:
            yield from self._read_group(group, consumer or socket.gethostname(), follow, count, block_ms)

    def _read_plain(
        self, last: str, follow: bool, count: int, block_ms: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        stream = self.keys.results
        while True:
            got = self.redis.xread({stream: last}, count=count, block=block_ms if follow else None)
            if not got:
                if follow:
                    continue
                return
            for entry, fields in got[0][1]:
                last = entry
                yield entry.decode(), orjson.loads(fields[b"result"])

    def _read_group(
        self, group: str, consumer: str, follow: bool, count: int, block_ms: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        r, stream = self.redis, self.keys.results
        ensure_group(r, stream, group)
        cursor = "0"  # "0": this consumer's pending entries; then ">": new ones
        while True:
            block = block_ms if follow and cursor == ">" else None
            got = r.xreadgroup(group, consumer, {stream: cursor}, count=count, block=block)
            entries = got[0][1] if got else []
            if not entries:
                if cursor != ">":
                    cursor = ">"
                    continue
                if follow:
                    continue
                return
            for entry, fields in entries:
                if cursor != ">":
                    cursor = entry
                if fields:  # a pending entry trimmed away meanwhile has no fields left
                    yield entry.decode(), orjson.loads(fields[b"result"])
                r.xack(stream, group, entry)
