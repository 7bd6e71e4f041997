"""Copies of one story race through four worker processes: exactly one is ever unique."""

from __future__ import annotations

import random
from collections import Counter

from producer.client import Client
from tests.conftest import hard_wrap
from worker.stages import fingerprint as fp

ROUNDS = 8
COPIES = 16


def story(rng: random.Random, base: str) -> str:
    """A story of its own for each round: the base text with every other letter replaced."""
    pool = "".join(sorted(set(base)))
    return "".join(rng.choice(pool) if i % 2 and ch.isalnum() else ch for i, ch in enumerate(base))


def near_copy(text: str, rng: random.Random) -> str:
    """``text`` with two letters changed."""
    chars = list(text)
    for i in rng.sample([i for i, c in enumerate(chars) if c.isalnum()], 2):
        chars[i] = "㐀"
    return "".join(chars)


def test_racing_copies_leave_exactly_one_unique(settings, start_worker, seed_story):
    # Two workers of two processes each: four processes take batches of one at once.
    for _ in range(2):
        start_worker(concurrency=2)
    client = Client(settings.with_(batch_size=1))
    rng = random.Random(3)
    for round_ in range(ROUNDS):
        text = story(rng, seed_story[:600])
        near = round_ % 2 == 1
        copies = [
            near_copy(text, rng) if near else hard_wrap(text, rng.randrange(12, 60)) for _ in range(COPIES)
        ]
        if near:
            letters = [fp.letters(c) for c in copies]
            assert min(fp.jaccard(letters[0], other) for other in letters[1:]) >= 0.9
        articles = [{"id": f"r{round_}-c{n}", "text": t} for n, t in enumerate(copies)]
        results = client.wait(client.submit_many(articles), timeout=120)

        statuses = Counter(r["status"] for r in results.values())
        assert statuses["unique"] == 1, (round_, statuses)
        (original,) = [i for i, r in results.items() if r["status"] == "unique"]
        expected = {"near_duplicate"} if near else {"duplicate"}
        for article_id, result in results.items():
            if article_id != original:
                assert result["status"] in expected, (round_, article_id, result["status"])
                assert result["duplicate_of"] == original
                # An estimate: within a few hundredths of the true 0.95 and more.
                assert result["similarity"] >= (0.8 if near else 1.0)
                # Near-duplicates are segmented and tagged by default; exact ones are not.
                assert ("tokens" in result) == near
