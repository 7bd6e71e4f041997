"""Garbled text (bytes decoded with the wrong encoding) is rejected ``garbled_text``; real copy never is.

The detector is a pure stage (worker.stages.garbled); the rejection is checked
through a real worker as well, since it is what a feed's consumers see.
"""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from producer.client import Client
from worker.config import Settings
from worker.embedded import process_all
from worker.stages import garbled
from worker.stages.segment import convert

DATA = Path(__file__).resolve().parent / "data"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
REAL_COPY = [orjson.loads(line) for line in (DATA / "real_copy.jsonl").read_text("utf-8").splitlines()]


def utf8_read_as_gb18030(text: str) -> str:
    return text.encode("utf-8").decode("gb18030", "replace")


def big5_read_as_gbk(text: str) -> str:
    return convert(text, "s2t").encode("big5", "replace").decode("gbk", "replace")


def gb18030_read_as_big5(text: str) -> str:
    return convert(text, "t2s").encode("gb18030").decode("big5", "replace")


def gbk_read_as_utf8(text: str) -> str:
    """Mostly U+FFFD: what a UTF-8 decoder with errors='replace' makes of GBK bytes."""
    return convert(text, "t2s").encode("gbk").decode("utf-8", "replace")


MISDECODINGS = {
    "utf-8 read as gb18030": (utf8_read_as_gb18030, "UTF-8 read as GB18030"),
    "big5 read as gbk": (big5_read_as_gbk, "Big5 read as GBK"),
    "gb18030 read as big5": (gb18030_read_as_big5, "GB18030 read as Big5"),
    "full of U+FFFD": (gbk_read_as_utf8, "U+FFFD"),
}


def real_texts(seed_story: str) -> dict[str, str]:
    texts = {"seed story": seed_story}
    texts.update({p.name: p.read_text("utf-8") for p in sorted(SAMPLES.glob("*.txt"))})
    for line in (SAMPLES / "10-feed.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            article = orjson.loads(line)
            texts[f"feed {article['id']}"] = article["text"]
    texts.update({f"copy {a['id']}": a["text"] for a in REAL_COPY})
    return texts


def test_no_real_copy_is_flagged(seed_story):
    for name, text in real_texts(seed_story).items():
        verdict = garbled.check(text)
        assert verdict.garbled is None and verdict.repaired is None, name
        assert verdict.text == text


@pytest.mark.parametrize("kind", list(MISDECODINGS))
def test_each_misdecoding_of_real_articles_is_garbled_and_named(kind, seed_story):
    garble, cause = MISDECODINGS[kind]
    for name, text in real_texts(seed_story).items():
        if len(text) < 150 or name.startswith("copy"):
            continue  # short snippets: too few characters to tell
        verdict = garbled.check(garble(text))
        assert verdict.garbled is not None, (kind, name)
        assert cause in verdict.garbled, (kind, name, verdict.garbled)


def test_random_ordinary_characters_are_analysed_but_random_rare_ones_are_not(seed_story):
    rng = random.Random(7)
    pool = [c for c in seed_story + (SAMPLES / "03-rail.txt").read_text("utf-8") if not c.isspace()]
    ordinary = "".join(rng.choice(pool) for _ in range(3000))
    assert garbled.check(ordinary).garbled is None
    rare = "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(3000))
    assert "random characters" in garbled.check(rare).garbled


def test_an_exact_misreading_is_repaired_and_said_so():
    # Every character here is three UTF-8 bytes, so the GB18030 reading lost nothing.
    original = "颱風海葵逼近臺東今天停班停課" * 4
    misread = original.encode("utf-8").decode("gb18030")
    verdict = garbled.check(misread)
    assert verdict.garbled is None
    assert verdict.text == original
    assert verdict.repaired == {"encoding": "utf-8", "read_as": "gb18030"}

    (result,) = process_all([{"id": "fixed", "text": misread}], Settings.from_env({}))
    assert result["status"] == "unique"
    assert result["text"] == original
    assert result["repaired"] == {"encoding": "utf-8", "read_as": "gb18030"}
    assert "颱風" in [w for w, _, _ in result["tokens"]]


def test_a_few_stray_replacement_characters_do_not_reject_an_article(seed_story):
    damaged = seed_story[:500] + "\ufffd" + seed_story[500:1500] + "\ufffd\ufffd" + seed_story[1500:]
    assert garbled.check(damaged).garbled is None


def test_garbled_and_real_articles_through_a_real_worker(settings, start_worker, seed_story):
    start_worker(concurrency=1)
    client = Client(settings)
    articles = [
        {"id": f"bad-{i}", "text": garble(seed_story)} for i, (garble, _) in enumerate(MISDECODINGS.values())
    ]
    articles.append({"id": "good", "text": seed_story})
    articles += [{"id": f"copy-{a['id']}", "text": a["text"]} for a in REAL_COPY]
    results = client.wait(client.submit_many(articles), timeout=90)
    for i, (_, cause) in enumerate(MISDECODINGS.values()):
        result = results[f"bad-{i}"]
        assert result["status"] == "rejected"
        assert result["error"]["code"] == "garbled_text"
        assert cause in result["error"]["message"]
        assert "tokens" not in result
    # Garbled text registers nothing: the real article is not a duplicate of it.
    assert results["good"]["status"] == "unique"
    for a in REAL_COPY:
        assert results[f"copy-{a['id']}"]["status"] != "rejected", a["id"]


def test_common_characters_file_is_jiebas_most_frequent():
    """The shipped table is what its header says it is (written once, from jieba's dictionary)."""
    assert garbled.common_characters_from_jieba() == garbled.shipped_common_characters()


def test_utf8_read_as_windows_1252_is_garbled_and_named():
    text = (SAMPLES / "03-rail.txt").read_text("utf-8")
    verdict = garbled.check(text.encode("utf-8").decode("cp1252", "replace"))
    assert "UTF-8 read as Windows-1252" in verdict.garbled
    french = (
        "Le président a déclaré à Pékin que la coopération économique était très importante à long terme."
    )
    assert garbled.check(french).garbled is None
