"""One set of decision cases, run against both indexes: in memory and Redis + Lua."""

from __future__ import annotations

import random
import uuid

import pytest

from tests.support import Clock
from worker.dedupe.index import BUCKETS, Buckets, Decision, MemoryIndex, Registration
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages import fingerprint as fp
from worker.stages.segment import to_simplified

WINDOW = 7 * 86_400


def edited(text: str, fraction: float, seed: int = 0) -> str:
    """``text`` with ``fraction`` of its characters replaced, scattered."""
    rng = random.Random(seed)
    chars = list(text)
    for i in rng.sample(range(len(chars)), round(len(chars) * fraction)):
        chars[i] = chr(0x4E00 + rng.randrange(0x5000))
    return "".join(chars)


def entry(article_id: str, text: str) -> Registration:
    letters = fp.letters(to_simplified(text))
    return Registration(article_id, fp.fingerprint(letters), fp.minhash(letters))


@pytest.fixture(params=["memory", "redis"])
def make_index(request, redis_server):
    """Build an index of the kind under test; each call starts empty."""

    def make(threshold: float = 0.5, clock: Clock | None = None):
        clock = clock or Clock()
        if request.param == "memory":
            return MemoryIndex(WINDOW, threshold, clock=clock)
        keys = Keys(f"t{uuid.uuid4().hex[:10]}")
        # Few shards, so that exact and band fields share hashes as they do at scale.
        return RedisIndex(redis_server.client(), keys, WINDOW, threshold=threshold, shards=8, clock=clock)

    return make


@pytest.fixture
def story(seed_story: str) -> str:
    return seed_story


def test_first_is_unique_and_exact_copy_points_at_it(make_index, story):
    index = make_index()
    assert index.decide(entry("a", story)) == Decision.unique()
    assert index.decide(entry("b", story)) == Decision("duplicate", "a", 1.0)
    assert index.decide(entry("c", story.replace("，", ",") + "\n")) == Decision("duplicate", "a", 1.0)


def test_traditional_and_simplified_copies_are_exact_duplicates(make_index, story):
    index = make_index()
    index.decide(entry("hant", story))
    assert index.decide(entry("hans", to_simplified(story))).status == "duplicate"


def test_same_id_is_never_a_duplicate_of_itself(make_index, story):
    index = make_index()
    assert index.decide(entry("a", story)).status == "unique"
    # A redelivery after a crash half-way: the first attempt already registered it.
    assert index.decide(entry("a", story)).status == "unique"
    # A correction under the same id, close to its own earlier text.
    assert index.decide(entry("a", edited(story, 0.02))).status == "unique"
    assert index.decide(entry("b", story)) == Decision("duplicate", "a", 1.0)


def test_lightly_edited_copy_is_near_duplicate_with_estimated_similarity(make_index, story):
    index = make_index()
    index.decide(entry("a", story))
    decision = index.decide(entry("b", edited(story, 0.02)))
    assert decision.status == "near_duplicate" and decision.duplicate_of == "a"
    true = fp.jaccard(fp.letters(story), fp.letters(edited(story, 0.02)))
    assert 0.5 < decision.similarity < 1.0
    assert abs(decision.similarity - true) < 0.15


def test_near_duplicates_are_not_registered_so_copies_point_at_the_first(make_index, story):
    index = make_index()
    index.decide(entry("a", story))
    assert index.decide(entry("b", edited(story, 0.03, seed=1))).duplicate_of == "a"
    # An exact copy of b is judged against what is registered: a.
    decision = index.decide(entry("c", edited(story, 0.03, seed=1)))
    assert decision.status == "near_duplicate" and decision.duplicate_of == "a"


def test_different_articles_are_unique(make_index, story):
    index = make_index()
    index.decide(entry("a", story))
    other = "商务部新闻发言人本周四在例行记者会上表示，中方注意到有关国家近期宣布进一步限制半导体设备出口。"
    assert index.decide(entry("b", other)).status == "unique"
    assert index.decide(entry("c", other)) == Decision("duplicate", "b", 1.0)


def test_copy_below_threshold_is_unique(make_index, story):
    index = make_index(threshold=0.95)
    index.decide(entry("a", story))
    assert index.decide(entry("b", edited(story, 0.05))).status == "unique"


def test_state_is_remembered_within_the_window_and_expires_after(make_index, story):
    clock = Clock()
    index = make_index(clock=clock)
    index.decide(entry("a", story))
    clock.now += WINDOW - 60
    assert index.decide(entry("b", story)).duplicate_of == "a"
    assert index.decide(entry("c", edited(story, 0.02))).duplicate_of == "a"
    clock.now += 2 * WINDOW / BUCKETS + 60
    assert index.decide(entry("d", story)).status == "unique"


def test_forget_removes_exact_and_near_state(make_index, story):
    index = make_index()
    first = entry("a", story)
    index.decide(first)
    index.forget("a", first.fingerprint)
    assert index.decide(entry("b", edited(story, 0.02))).status == "unique"
    assert index.decide(entry("c", story)).duplicate_of == "b"


def test_forget_leaves_other_articles_alone(make_index, story):
    index = make_index()
    first = entry("a", story)
    index.decide(first)
    index.forget("zzz", first.fingerprint)
    assert index.decide(entry("b", story)).duplicate_of == "a"


def test_text_without_letters_is_judged_on_its_exact_fingerprint_only(make_index):
    index = make_index()
    assert index.decide(entry("a", "……！！")).status == "unique"
    assert index.decide(entry("b", "——？")) == Decision("duplicate", "a", 1.0)


def test_both_indexes_decide_a_mixed_stream_the_same_way(redis_server, story, samples):
    clock = Clock()
    memory = MemoryIndex(WINDOW, 0.5, clock=clock)
    keys = Keys(f"t{uuid.uuid4().hex[:10]}")
    shared = RedisIndex(redis_server.client(), keys, WINDOW, shards=4, clock=clock)
    rng = random.Random(7)
    texts = [story, *samples]
    for n in range(120):
        base = rng.choice(texts)
        text = edited(base, rng.choice([0, 0.02, 0.1, 0.3, 0.6]), seed=n)
        e = entry(f"id{rng.randrange(60)}", text)
        assert memory.decide(e) == shared.decide(e), n
        clock.now += rng.choice([0, 3600, 86_400])


@pytest.fixture(scope="module")
def samples() -> list[str]:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "samples"
    return [p.read_text(encoding="utf-8") for p in sorted(root.glob("*.txt"))]


def test_forgotten_article_resubmitted_is_registered_again(make_index, story):
    index = make_index()
    old = entry("a", story)
    index.decide(old)
    new = entry("a", edited(story, 0.5))  # a correction: a's record now holds this fingerprint
    index.decide(new)
    index.forget("a", new.fingerprint)
    assert index.decide(old).status == "unique"
    assert index.decide(entry("b", story)) == Decision("duplicate", "a", 1.0)


def test_a_batch_decided_in_one_round_trip_gets_the_decisions_made_one_by_one(redis_server, story, samples):
    """decide_many (one pipeline per batch) decides as decide() in order, copies inside the batch too."""
    rng = random.Random(11)
    texts = [story, *samples]
    entries = [
        entry(f"id{n}", edited(rng.choice(texts), rng.choice([0, 0.02, 0.1, 0.6]), seed=n)) for n in range(40)
    ]
    one_by_one = RedisIndex(
        redis_server.client(), Keys(f"t{uuid.uuid4().hex[:10]}"), WINDOW, shards=4, clock=Clock()
    )
    expected = [one_by_one.decide(e) for e in entries]
    assert {d.status for d in expected} >= {"unique", "duplicate", "near_duplicate"}

    batched = RedisIndex(
        redis_server.client(), Keys(f"t{uuid.uuid4().hex[:10]}"), WINDOW, shards=4, clock=Clock()
    )
    assert batched.decide_many(entries[:25]) == expected[:25]
    redis_server.client().script_flush()  # as after a restart: the rest must load the script again
    assert batched.decide_many(entries[25:]) == expected[25:]


def test_every_key_the_index_writes_expires_with_its_bucket(redis_server, story, samples):
    """dedupe.lua sets a key's TTL once, when the key has none: none may be left without one."""
    clock = Clock()
    client = redis_server.client()
    keys = Keys(f"t{uuid.uuid4().hex[:10]}")
    index = RedisIndex(client, keys, WINDOW, shards=4, clock=clock)
    buckets = Buckets(WINDOW, clock)
    rng = random.Random(5)
    texts = [story, *samples]
    first_ttl = buckets.ttl(buckets.live()[-1])
    for n in range(30):
        e = entry(f"id{n}", edited(rng.choice(texts), rng.choice([0, 0.02, 0.6]), seed=n))
        index.decide(e)
        if n % 7 == 0:  # a forgotten owner's band fields are taken over by the next article
            index.forget(e.id, e.fingerprint)
        clock.now += 60
    clock.now += WINDOW / BUCKETS  # the next bucket: its keys are new and need their own TTL
    index.decide(entry("late", edited(story, 0.6, seed=99)))
    written = list(client.scan_iter(match=f"{keys.prefix}:dd:*", count=1000))
    assert len(written) == 2 * (4 + 1)  # two buckets: four shards and the documents each
    newest = max(int(k.split(b":")[-2]) for k in written)
    for key in written:
        ttl = client.ttl(key)
        bucket = int(key.split(b":")[-2])
        limit = buckets.ttl(newest) if bucket == newest else first_ttl
        assert 0 < ttl <= limit, (key, ttl)
