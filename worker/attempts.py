"""The attempt ledger, ``<prefix>:attempts``: how often each article and each batch has started.

Before an article is processed its counter is raised, so a crash or a hang
that kills the child (which no ``except`` can see) still counts. The counter
is deleted once the article has an outcome. ``delivery:<batch>`` counts how
many times a batch has started, which tells a first delivery from a
redelivery; ``resend:<batch>`` (written by :mod:`worker.batchqueue`) counts the
janitor's resends.

The ledger queues its commands on a pipeline the caller sends, so counting
rides in the same round trip as the results written before it.
"""

from __future__ import annotations

from typing import Any

import redis

from worker.article import valid_id
from worker.keys import BATCH_TTL, Keys


class AttemptLedger:
    """Counting attempts and deliveries.

    Args:
        keys: the deployment's key names.
    """

    def __init__(self, keys: Keys) -> None:
        self._keys = keys

    def delivery(self, client: redis.Redis, batch: str) -> int:
        """How many times this batch has started, this time included (one round trip)."""
        pipe = client.pipeline(transaction=False)
        pipe.hincrby(self._keys.attempts, f"delivery:{batch}", 1)
        pipe.expire(self._keys.attempts, BATCH_TTL)
        return int(pipe.execute()[0])

    def count(self, pipe: redis.client.Pipeline, article_ids: list[object]) -> None:
        """Queue the raise of each valid id's count; read the replies with :meth:`counts`.

        An id twice in the list counts twice.
        """
        valid = [a for a in article_ids if valid_id(a)]
        for article_id in valid:
            pipe.hincrby(self._keys.attempts, article_id, 1)
        if valid:
            pipe.expire(self._keys.attempts, BATCH_TTL)

    @staticmethod
    def counts(article_ids: list[object], replies: list[Any]) -> list[int]:
        """Each article's attempt, this one included, from the replies to :meth:`count`.

        An invalid id counts 1: parse_article rejects it before anything can crash.
        """
        found = iter(replies)  # in order, one per valid id
        counts = []
        for article_id in article_ids:
            reply = next(found) if valid_id(article_id) else 1
            if isinstance(reply, Exception):
                raise reply
            counts.append(int(reply))
        return counts

    def reconcile(self, pipe: redis.client.Pipeline, waiting: list[str], delivery: int) -> None:
        """Queue the correction of the counts that a first delivery which died left behind.

        That run counted every article at once, but only the one it died on
        (and those before it) had started. So its second delivery takes those
        counts back, and runs article by article, counting each as it starts.
        If that run dies too, the article it died on is, barring a second
        unrelated fault, the one the first run died on: the third delivery
        gives that article (the first one still without a result) back its
        first start.

        Args:
            waiting: the batch's valid ids without a result yet, in batch order.
            delivery: 2 or 3.
        """
        if delivery == 2:
            for article_id in waiting:
                pipe.hincrby(self._keys.attempts, article_id, -1)
        elif waiting:
            pipe.hincrby(self._keys.attempts, waiting[0], 1)

    def settle(self, pipe: redis.client.Pipeline, article_ids: list[str], batch: str) -> None:
        """Queue the removal of the counters of articles with an outcome, and the batch's delivery count."""
        pipe.hdel(self._keys.attempts, *article_ids, f"delivery:{batch}")

    def clear(self, client: redis.Redis, article_id: str) -> None:
        """Remove one article's counter now (it was given up)."""
        client.hdel(self._keys.attempts, article_id)
