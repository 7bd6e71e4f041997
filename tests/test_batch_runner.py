"""BatchRunner against a real Redis, in this process: delivery paths, reconciliation, retries.

The fault tests (test_faults.py) kill real pool children; these drive the
runner directly, with the state a dead delivery leaves behind written into
Redis first, so each rule of the attempt ledger is pinned on its own.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_bridge import STORIES
from worker import pipeline
from worker.batch import BatchRunner, analyser
from worker.batchqueue import BatchQueue
from worker.config import Settings
from worker.keys import Keys


@pytest.fixture
def sent() -> list[tuple[str, float | None]]:
    return []


@pytest.fixture
def runner(settings: Settings, sent: list[tuple[str, float | None]]) -> BatchRunner:
    keys = Keys(settings.prefix)
    return BatchRunner(
        settings,
        analyser(settings),
        lambda broker: BatchQueue(broker, keys, settings, lambda batch, delay: sent.append((batch, delay))),
    )


@pytest.fixture
def raising(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Ids whose first stages raise an ordinary exception."""
    ids: set[str] = set()
    real = pipeline.prepare

    def prepare(raw: Any, *args: Any, **kwargs: Any) -> Any:
        if raw.get("id") in ids:
            raise RuntimeError("a stage failed on this article")
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(pipeline, "prepare", prepare)
    return ids


def articles(n: int) -> list[dict[str, str]]:
    return [{"id": f"a{i}", "text": STORIES[i]} for i in range(n)]


def test_first_delivery_decides_a_batch_in_order_and_leaves_no_counters(runner, settings):
    raws = [*articles(2), {"id": "copy", "text": STORIES[0]}]
    report = runner.run_articles(raws, "b1")
    assert (report["unique"], report["duplicate"]) == (2, 1)
    assert runner.store.get("copy")["duplicate_of"] == "a0"
    assert runner.broker.hgetall(Keys(settings.prefix).attempts) == {}


def test_second_delivery_takes_back_the_counts_of_a_first_delivery_that_died(runner, settings, raising, sent):
    attempts = Keys(settings.prefix).attempts
    # The first delivery counted every article at once, then its child died.
    runner.broker.hset(attempts, mapping={"delivery:b1": 1, "a0": 1, "a1": 1, "a2": 1})
    raising.add("a1")
    report = runner.run_articles(articles(3), "b1")
    assert (report["unique"], report["retry"]) == (2, 1)
    # a1 is on its first real attempt: counted back to 0, then once as it started.
    assert runner.broker.hgetall(attempts) == {b"a1": b"1"}
    assert len(sent) == 1 and sent[0][1] == runner.policy.delay(1)


def test_third_delivery_gives_the_first_unfinished_article_back_its_first_start(runner, settings, raising):
    attempts = Keys(settings.prefix).attempts
    # Delivered twice: the second run, article by article, died on a0 after counting it once.
    runner.broker.hset(attempts, mapping={"delivery:b1": 2, "a0": 1})
    raising.add("a0")
    report = runner.run_articles(articles(2), "b1")
    # 1 left behind, +1 given back, +1 as it starts: its third and last attempt.
    assert (report["failed"], report["unique"]) == (1, 1)
    failed = runner.store.get("a0")
    assert failed["status"] == "failed" and failed["attempts"] == settings.max_attempts
    assert failed["error"]["code"] == "processing_error"
    (dead,) = runner.dead.entries()
    assert dead[1]["id"] == b"a0"
    assert runner.broker.hgetall(attempts) == {}


def test_an_article_that_died_every_time_is_given_up_without_running(runner, settings, raising):
    attempts = Keys(settings.prefix).attempts
    runner.broker.hset(attempts, mapping={"delivery:b1": 5, "a0": settings.max_attempts})
    report = runner.run_articles(articles(1), "b1")
    assert report["failed"] == 1
    assert runner.store.get("a0")["error"]["code"] == "worker_lost"


def test_a_redelivered_batch_skips_what_is_done(runner):
    runner.run_articles(articles(2), "b1")
    again = runner.run_articles(articles(2), "b1")
    assert again["noop"] == 2


def test_run_batch_takes_the_stash_and_drops_it_when_done(runner, settings, sent):
    keys = Keys(settings.prefix)
    batch_id = runner.queue.put(articles(2))
    assert sent == [(batch_id, None)] and runner.broker.zscore(keys.batches, batch_id) is not None
    assert runner.run_batch(batch_id)["unique"] == 2
    assert not runner.broker.exists(keys.batch(batch_id))
    assert runner.broker.zscore(keys.batches, batch_id) is None
    assert runner.run_batch(batch_id) == {"batch": batch_id, "missing": True}
