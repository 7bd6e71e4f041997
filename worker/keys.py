"""Every Redis key newsflow writes, named once.

All keys start with ``<prefix>:``; Celery's own broker keys get the same prefix
through kombu's ``global_keyprefix`` (see :mod:`worker.appconfig`). Ids reach a
key name only through :meth:`Keys.result` and :meth:`Keys.batch`, which refuse
anything that :func:`worker.article.valid_id` would refuse.

:data:`LAYOUT` says what each key holds, its type and its TTL; ``newsflow keys
--markdown`` renders it as the table in docs/keys.md, and a test fails when a
key of :class:`Keys` is missing from it or the docs drift from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.article import valid_id

BATCH_TTL = 7 * 86_400
# Consumer group names (not keys): the bridges share one group on the inbox.
BRIDGE_GROUP = "bridge"
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
    def results_overflow(self) -> str:
        """Counter of results entries the emergency MAXLEN cap dropped (shown by ``status``)."""
        return f"{self.prefix}:results:overflow"

    @property
    def results_trimmed(self) -> str:
        return f"{self.prefix}:results:trimmed"

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
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def worker(self, node: str) -> str:
        """A worker's heartbeat; ``node`` is its Celery node name, e.g. ``celery@host``."""
        if not node or any(c.isspace() for c in node):
            raise BadKey(f"invalid worker node name {node!r}")
        return f"{self.prefix}:worker:{node}"

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

    @property
    def queue_lists(self) -> tuple[str, ...]:
        """Every list kombu may keep the queue in: one per priority step (0, 3, 6, 9)."""
        return (self.queue_list, *(f"{self.queue_list}\x06\x16{p}" for p in (3, 6, 9)))

    def result(self, article_id: str) -> str:
        if not valid_id(article_id):
            raise BadKey(f"invalid article id {article_id!r}")
        return f"{self.prefix}:result:{article_id}"

    def batch(self, batch_id: str) -> str:
        if not valid_id(batch_id):
            raise BadKey(f"invalid batch id {batch_id!r}")
        return f"{self.prefix}:batch:{batch_id}"

    def dedupe_shard(self, bucket: int, shard: int) -> str:
        return f"{self.prefix}:dd:{int(bucket)}:{int(shard)}"

    def dedupe_docs(self, bucket: int) -> str:
        """dedupe.lua names a bucket's shard hashes from this key: ``doc`` replaced by the shard."""
        return f"{self.prefix}:dd:{int(bucket)}:doc"


# (key, type, what it holds and how long), in the order a newcomer meets them.
LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("<prefix>:inbox", "stream", "articles from any language (XADD); read by `newsflow bridge`"),
    (
        "<prefix>:results",
        "stream",
        "one entry per outcome: `id`, `status`, `result` (the full result JSON; the only copy of the "
        "body). Trimmed by MINID below the slowest consumer group and older than the result TTL; a hard "
        "MAXLEN cap only in emergencies",
    ),
    (
        "<prefix>:result:<id>",
        "hash",
        "the id's current outcome: `entry` (its results stream entry id), `entries` (every entry of the "
        "id, all revisions, space-separated), `status`, `rev`, `hash` (xxh3-128 of the submitted text; "
        "dropped by a dead replay), `fp` (exact fingerprint); TTL = result TTL",
    ),
    (
        "<prefix>:results:overflow",
        "string",
        "counter: results entries dropped by the emergency MAXLEN cap (entries no consumer group had "
        "read yet); no TTL",
    ),
    (
        "<prefix>:results:trimmed",
        "string",
        "guard so one worker trims the results stream per trim interval; TTL = NEWSFLOW_TRIM_INTERVAL",
    ),
    (
        "<prefix>:dead",
        "stream",
        "articles that could not be processed and malformed inbox entries, with their original content: "
        "`article` (JSON) for failed articles, `raw.<field>` (the bytes as sent) for inbox entries; "
        "plus `id`, `error`, `at`",
    ),
    (
        "<prefix>:batch:<batch>",
        "string",
        "JSON list of the articles of one queued batch (the Celery message carries only the batch id); "
        "deleted when the batch is done, TTL 7 days as a backstop",
    ),
    (
        "<prefix>:batches",
        "zset",
        "batch id -> when it was last queued; removed when the batch is done. Lets the janitor find a "
        "batch whose Celery message was lost and queue it again",
    ),
    (
        "<prefix>:janitor",
        "string",
        "lock held by the one worker sweeping for lost batches; TTL = the sweep interval",
    ),
    (
        "<prefix>:attempts",
        "hash",
        "article id -> processing attempts so far; field deleted on success. `resend:<batch>` -> times "
        "the janitor re-queued it; `delivery:<batch>` -> times a worker started it",
    ),
    (
        "<prefix>:dd:<bucket>:<shard>",
        "hash",
        "dedupe fields of one time bucket (window / 7 seconds) and shard: exact fingerprint or LSH band "
        "value -> doc handle (8 bytes); small enough to stay listpack-encoded. Expires when the bucket "
        "leaves the dedupe window",
    ),
    (
        "<prefix>:dd:<bucket>:doc",
        "hash",
        "doc handle -> short MinHash sketch + id of each article registered in the bucket; same expiry",
    ),
    ("<prefix>:stats", "hash", "totals per status and latency sums since the deployment began"),
    (
        "<prefix>:stats:<minute>",
        "hash",
        "the same per minute, TTL 1 hour; both also hold a latency histogram (`lat:<i>`)",
    ),
    (
        "<prefix>:workers",
        "zset",
        "worker node name -> when its heartbeat was last written (unix seconds); members whose "
        "heartbeat key expired are pruned",
    ),
    (
        "<prefix>:worker:<node>",
        "hash",
        "one worker's heartbeat: `hostname`, `pid`, `concurrency`, `active`, `tasks`, `started`, `seen`; "
        "TTL 10 s (5 heartbeats), deleted on warm shutdown",
    ),
    ("<prefix>:<prefix>", "list", "the Celery queue (kombu's name: the queue `<prefix>` under the prefix)"),
    ("<prefix>:unacked", "hash", "kombu's record of delivered, unacked messages (its names)"),
    ("<prefix>:unacked_index", "zset", "kombu's delivery times of the unacked messages"),
)


def reference_markdown() -> str:
    """The key table (Markdown), from :data:`LAYOUT`."""
    rows = ["| key | type | what it holds, and how long |", "|---|---|---|"]
    rows += [f"| `{key}` | {kind} | {meaning} |" for key, kind, meaning in LAYOUT]
    return "\n".join(rows) + "\n"
