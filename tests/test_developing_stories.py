"""Developing stories: an earlier and a later version of one story are linked, in either order.

The same cases run against both indexes (in memory and Redis + Lua), and end
to end through a real worker.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from bench.dedupe_corpus import BOILERPLATE, first_part, sentences
from producer.client import Client
from tests.support import Clock
from worker.dedupe.index import CONTAIN_MIN_SHINGLES, MemoryIndex, Registration
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages import fingerprint as fp
from worker.stages.segment import to_simplified

WINDOW = 7 * 86_400
SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def entry(article_id: str, text: str) -> Registration:
    return Registration.of(article_id, fp.letters(to_simplified(text)))


@pytest.fixture(params=["memory", "redis"])
def index(request, redis_server):
    if request.param == "memory":
        return MemoryIndex(WINDOW, 0.5, clock=Clock())
    keys = Keys(f"t{uuid.uuid4().hex[:10]}")
    return RedisIndex(redis_server.client(), keys, WINDOW, threshold=0.5, shards=8, clock=Clock())


def test_an_early_version_then_the_whole_story(index, seed_story):
    early = first_part(seed_story, 0.4)
    assert len(early) < 0.5 * len(seed_story)
    assert index.decide(entry("early", early)).status == "unique"
    decision = index.decide(entry("whole", seed_story))
    assert decision.status == "near_duplicate" and decision.duplicate_of == "early"
    assert decision.similarity < 0.5  # Jaccard alone would have missed it
    assert decision.containment >= 0.8 and decision.longer == "this"


def test_the_whole_story_then_a_cut(index, seed_story):
    assert index.decide(entry("whole", seed_story)).status == "unique"
    decision = index.decide(entry("cut", first_part(seed_story, 0.7)))
    assert decision.status == "near_duplicate" and decision.duplicate_of == "whole"
    assert decision.containment >= 0.8 and decision.longer == "duplicate_of"


def test_a_story_that_shares_boilerplate_and_one_quoted_sentence_stays_unique(index, seed_story):
    other = (SAMPLES / "03-rail.txt").read_text("utf-8").strip()
    quote = max(sentences(seed_story), key=len)
    wire = f"{BOILERPLATE[0]}\n{seed_story}\n{BOILERPLATE[1]}"
    quoting = f"{BOILERPLATE[0]}\n{other}「{quote}」\n{BOILERPLATE[1]}"
    assert index.decide(entry("wire", wire)).status == "unique"
    assert index.decide(entry("quoting", quoting)).status == "unique"
    # A short item that is one sentence of the story alone is too small to be a version of it.
    # (The longest sentence, 111 3-grams, is not: a text of CONTAIN_MIN_SHINGLES or more
    # wholly inside another is linked to it whenever the two are candidates.)
    short = max((s for s in sentences(seed_story) if entry("s", s).size < CONTAIN_MIN_SHINGLES), key=len)
    assert entry("short", short).size > CONTAIN_MIN_SHINGLES * 0.7
    assert index.decide(entry("short", short)).status == "unique"


def test_a_copy_keeps_its_jaccard_decision_and_gets_a_containment(index, seed_story):
    index.decide(entry("a", seed_story))
    decision = index.decide(entry("b", seed_story.replace("拉夫羅夫", "拉夫罗夫", 3) + "（完）"))
    assert decision.status == "near_duplicate" and decision.duplicate_of == "a"
    assert decision.similarity >= 0.5 and decision.containment >= 0.9


def test_developing_story_through_a_real_worker(settings, start_worker, seed_story):
    start_worker(concurrency=1)
    client = Client(settings)
    early = first_part(seed_story, 0.5)
    first = client.wait([client.submit({"id": "story-v1", "text": early})], timeout=60)["story-v1"]
    assert first["status"] == "unique" and "containment" not in first
    later = client.wait([client.submit({"id": "story-v2", "text": seed_story})], timeout=60)["story-v2"]
    assert later["status"] == "near_duplicate"
    assert later["duplicate_of"] == "story-v1"
    assert later["containment"]["longer"] == "this"
    assert later["containment"]["value"] >= 0.8
