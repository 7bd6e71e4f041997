"""Finding batches whose Celery message was lost, and queueing them again.

kombu's Redis transport takes a message off the queue with BRPOP and only then
records it as unacked (a second round trip). A worker killed between the two
loses the message for good (kombu #305, celery #7950): the visibility timeout
cannot bring back what was never recorded. newsflow's batches live in Redis
apart from their messages (``<prefix>:batch:<id>``, listed in
``<prefix>:batches`` until a worker finishes them), so the loss is
recoverable: every sweep interval one worker (``<prefix>:janitor`` lock) looks
at batches listed for longer than the visibility timeout, and queues again
each one whose message is neither in the queue nor unacked. A batch caught
between BRPOP and the unacked record may be sent twice; running it twice
changes nothing. A batch queued again ``max_attempts`` times and still not
done goes to the dead stream, article by article, with code ``batch_lost``.
The public ``newsflow.submit`` task carries its articles in the message and
has no such safety net.
"""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable

import orjson
import redis
import structlog

from worker.config import Settings
from worker.keys import Keys
from worker.store import ResultStore

log = structlog.get_logger("newsflow.janitor")


class Janitor:
    def __init__(self, settings: Settings, client: redis.Redis, send: Callable[[str], None]) -> None:
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.redis = client
        self.send = send

    def sweep(self, now: float | None = None) -> list[str]:
        """Queue again the lost batches; returns their ids. Only one worker sweeps at a time."""
        now = time.time() if now is None else now
        interval = self.settings.restore_interval
        if not self.redis.set(self.keys.janitor, "1", nx=True, ex=interval):
            return []
        cutoff = now - self.settings.visibility_timeout
        stale = [b.decode() for b in self.redis.zrangebyscore(self.keys.batches, "-inf", cutoff, 0, 1000)]
        if not stale:
            return []
        in_flight = self._batches_in_flight()
        resent = []
        for batch_id in stale:
            if batch_id in in_flight:
                continue
            if not self.redis.exists(self.keys.batch(batch_id)):
                self.redis.zrem(self.keys.batches, batch_id)  # finished meanwhile
                continue
            times = self.redis.hincrby(self.keys.attempts, f"resend:{batch_id}", 1)
            if times > self.settings.max_attempts:
                self._give_up(batch_id, times - 1)
                continue
            self.redis.zadd(self.keys.batches, {batch_id: now})
            self.send(batch_id)
            resent.append(batch_id)
            log.warning("batch_resent", batch=batch_id, times=times)
        return resent

    def _batches_in_flight(self) -> set[str]:
        """Batch ids named by a message in the queue or held unacked by a worker."""
        messages = []
        for raw in self.redis.lrange(self.keys.queue_list, 0, -1):
            messages.append(raw)
        for raw in self.redis.hvals(self.keys.unacked):
            messages.append(orjson.dumps(orjson.loads(raw)[0]))  # [message, exchange, routing key]
        found = set()
        for raw in messages:
            try:
                message = orjson.loads(raw)
                body = message["body"]
                if message.get("properties", {}).get("body_encoding") == "base64":
                    body = base64.b64decode(body)
                args = orjson.loads(body)[0]
                if args and isinstance(args[0], str):
                    found.add(args[0])
            except (ValueError, KeyError, IndexError, TypeError):
                continue  # not one of ours (a submit task, a foreign message)
        return found

    def _give_up(self, batch_id: str, times: int) -> None:
        payload = self.redis.get(self.keys.batch(batch_id))
        store = ResultStore(self.redis, self.keys, self.settings)
        error = {
            "code": "batch_lost",
            "message": f"batch {batch_id} was queued {times} times and never finished",
        }
        for raw in orjson.loads(payload) if payload else []:
            store.dead(raw, error, times)
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.batch(batch_id))
        pipe.zrem(self.keys.batches, batch_id)
        pipe.hdel(self.keys.attempts, f"resend:{batch_id}")
        pipe.execute()
        log.error("batch_dead", batch=batch_id, times=times)


def start(settings: Settings, send: Callable[[str], None]) -> threading.Thread:
    """Sweep every ``restore_interval`` seconds in a daemon thread of the worker's parent."""
    from worker.connection import connect

    janitor = Janitor(settings, connect(settings.redis_url), send)

    def loop() -> None:
        while True:
            time.sleep(settings.restore_interval)  # the sweep's period, not a synchronisation
            try:
                janitor.sweep()
            except Exception as exc:  # noqa: BLE001 - the sweeper must outlive a Redis outage
                log.warning("janitor_error", error=repr(exc))

    thread = threading.Thread(target=loop, name="newsflow-janitor", daemon=True)
    thread.start()
    return thread
