"""Every Redis key newsflow writes, named once.

All keys start with ``<prefix>:``; Celery's own broker keys get the same prefix
through kombu's ``global_keyprefix`` (see :mod:`worker.app`). Ids reach a key
name only through :meth:`Keys.result`, which refuses anything that
:func:`worker.article.valid_id` would refuse.

==================================== ======== ===========================================================
key                                  type     what it holds, and how long
==================================== ======== ===========================================================
<prefix>:inbox                       stream   articles from any language (XADD); read by ``newsflow bridge``
<prefix>:results                     stream   one entry per outcome: ``id``, ``status``, ``result`` (the
                                              full result JSON; the only copy of the body). Trimmed by
                                              MINID below the slowest consumer group and older than the
                                              result TTL; a hard MAXLEN cap only in emergencies
<prefix>:result:<id>                 hash     the id's current outcome: ``entry`` (its results stream
                                              entry id), ``status``, ``rev``, ``hash`` (xxh3-128 of the
                                              submitted text), ``fp`` (exact fingerprint); TTL = result TTL
<prefix>:dead                        stream   articles that could not be processed and malformed inbox
                                              entries, with their original content
<prefix>:batch:<batch>               string   JSON list of the articles of one queued batch (the Celery
                                              message carries only the batch id); deleted when the batch
                                              is done, TTL 7 days as a backstop
<prefix>:batches                     zset     batch id -> when it was last queued; removed when the batch is
                                              done. Lets :mod:`worker.janitor` find a batch whose Celery
                                              message was lost and queue it again
<prefix>:janitor                     string   lock held by the one worker sweeping for lost batches; TTL =
                                              the sweep interval
<prefix>:attempts                    hash     article id -> processing attempts so far; field deleted on
                                              success. ``resend:<batch>`` -> times the janitor re-queued it
<prefix>:dd:...                      various  dedupe state, see :mod:`worker.dedupe.redis_index`; every
                                              part expires with the dedupe window
<prefix>:stats                       hash     totals per status and latency sums since the deployment began
<prefix>:stats:<minute>              hash     the same per minute, TTL 1 hour
<prefix>                             list     the Celery queue (kombu adds the prefix: ``<prefix>:<prefix>``)
<prefix>:unacked, :unacked_index     hash,    kombu's record of delivered, unacked messages (its names)
                                     zset
==================================== ======== ===========================================================
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.article import valid_id

BATCH_TTL = 7 * 86_400
STATS_MINUTE_TTL = 3600


class BadKey(ValueError):
    """An id or name that must not become part of a Redis key."""


@dataclass(frozen=True)
class Keys:
    prefix: str

    @property
    def inbox(self) -> str:
        return f"{self.prefix}:inbox"

    @property
    def results(self) -> str:
        return f"{self.prefix}:results"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def batches(self) -> str:
        return f"{self.prefix}:batches"

    @property
    def janitor(self) -> str:
        return f"{self.prefix}:janitor"

    @property
    def attempts(self) -> str:
        return f"{self.prefix}:attempts"

    @property
    def stats(self) -> str:
        return f"{self.prefix}:stats"

    def stats_minute(self, minute: int) -> str:
        return f"{self.prefix}:stats:{int(minute)}"

    @property
    def queue(self) -> str:
        """The Celery queue name; kombu stores it as ``<prefix>:<queue>``."""
        return self.prefix

    @property
    def unacked(self) -> str:
        """kombu's hash of delivered, unacked messages: tag -> [message, exchange, routing key]."""
        return f"{self.prefix}:unacked"

    @property
    def queue_list(self) -> str:
        """The Redis list behind the Celery queue, as kombu names it."""
        return f"{self.prefix}:{self.prefix}"

    def result(self, article_id: str) -> str:
        if not valid_id(article_id):
            raise BadKey(f"invalid article id {article_id!r}")
        return f"{self.prefix}:result:{article_id}"

    def batch(self, batch_id: str) -> str:
        if not valid_id(batch_id):
            raise BadKey(f"invalid batch id {batch_id!r}")
        return f"{self.prefix}:batch:{batch_id}"

    def dedupe(self, *parts: str | int) -> str:
        return ":".join([self.prefix, "dd", *map(str, parts)])
