"""Finding batches whose Celery message was lost, and queueing them again.

kombu's Redis transport takes a message off the queue with BRPOP and only then
records it as unacked (a second round trip). A worker killed between the two
loses the message for good (kombu #305, celery #7950): the visibility timeout
cannot bring back what was never recorded. newsflow's batches live in Redis
apart from their messages (:mod:`worker.batchqueue`), so the loss is
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

import threading
import time

import redis
import structlog

from worker.batchqueue import BatchQueue, Send
from worker.config import Settings
from worker.connection import connect
from worker.deadletters import DeadLetters
from worker.keys import Keys

log = structlog.get_logger("newsflow.janitor")


class Janitor:
    """One sweep for lost batches.

    Args:
        settings: the visibility timeout, sweep interval and attempts.
        client: the broker Redis.
        send: sends the task that names a batch (:func:`worker.batchqueue.celery_send`).
    """

    def __init__(self, settings: Settings, client: redis.Redis, send: Send) -> None:
        self.settings = settings
        self.keys = Keys(settings.prefix)
        self.redis = client
        self.queue = BatchQueue(client, self.keys, settings, send)
        self.dead = DeadLetters(client, self.keys)

    def sweep(self, now: float | None = None) -> list[str]:
        """Queue again the lost batches; returns their ids. Only one worker sweeps at a time."""
        now = time.time() if now is None else now
        if not self.redis.set(self.keys.janitor, "1", nx=True, ex=self.settings.restore_interval):
            return []
        stale = self.queue.stale(now - self.settings.visibility_timeout)
        if not stale:
            return []
        in_flight = self.queue.in_flight()
        resent = []
        for batch_id in stale:
            if batch_id in in_flight or not self.queue.exists(batch_id):
                continue
            times = self.queue.resend(batch_id, now)
            if times > self.settings.max_attempts:
                self.queue.give_up(batch_id, times - 1, self.dead)
                log.error("batch_dead", batch=batch_id, times=times - 1)
                continue
            resent.append(batch_id)
            log.warning("batch_resent", batch=batch_id, times=times)
        return resent


def start(settings: Settings, send: Send) -> threading.Thread:
    """Sweep every ``restore_interval`` seconds in a daemon thread of the worker's parent."""
    janitor = Janitor(settings, connect(settings.redis_url), send)

    def loop() -> None:
        while True:
            time.sleep(settings.restore_interval)  # the sweep's period, not a synchronisation
            try:
                janitor.sweep()
            except Exception as exc:  # the sweeper must outlive a Redis outage
                log.warning("janitor_error", error=repr(exc))

    thread = threading.Thread(target=loop, name="newsflow-janitor", daemon=True)
    thread.start()
    return thread
