"""Text from real feeds: noise that must not stall analysis, headlines and lists, and 台.

Pure stages, plus ``newsflow process`` and ``newsflow segment`` as real
processes where the command line is what is pinned.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import jieba
import jieba.posseg
import pytest

from producer.client import Client
from tests.conftest import hard_wrap
from tests.support import ROOT, newsflow_env, wait_for
from worker.stages import segment
from worker.stages.normalise import dewrap
from worker.stages.script import detect_script

SAMPLES = ROOT / "samples"


def news_noise(n: int, seed: int = 3) -> str:
    """Characters drawn at random from the project's own news copy."""
    copy = "".join(p.read_text("utf-8") for p in sorted(SAMPLES.glob("*.txt")))
    pool = [c for c in copy if not c.isspace()]
    rng = random.Random(seed)
    return "".join(rng.choice(pool) for _ in range(n))


class Bounded:
    """jieba with the HMM budget put in front of its HMM, beside the budget itself."""

    def __init__(self) -> None:
        self.pos = jieba.posseg.POSTokenizer(jieba.Tokenizer())
        self.pos.tokenizer.initialize()
        self.pos.makesure_userdict_loaded()
        segment._lay_out(self.pos.tokenizer, self.pos)  # as the engine lays its tables out
        self.budget = segment.HmmBudget(frozenset(jieba.posseg.char_state_tab_P))
        self.tag = segment._bound_hmm(self.pos.tokenizer, self.pos, self.budget)


def reference_tag(bounded: Bounded, sentence: str) -> list[tuple[str, str]]:
    """The budget in front of posseg, the slow, obvious way: posseg's own steps, the HMM asked first.

    What the engine's tagger did before it appended tuples itself: posseg's
    ``cut`` with its ``__cut_DAG`` replaced by this generator of ``pair`` objects.
    """
    pos, budget, tokenizer = bounded.pos, bounded.budget, bounded.pos.tokenizer
    detail = pos._POSTokenizer__cut_detail

    def pieces(block: str):  # noqa: ANN202
        dag = tokenizer.get_DAG(block)
        route: dict[int, tuple[float, int]] = {}
        tokenizer.calc(block, dag, route)
        x, buf = 0, ""
        while x < len(block):
            y = route[x][1] + 1
            if y - x == 1:
                buf += block[x]
            else:
                if buf:
                    yield buf, "run" if len(buf) > 1 and not tokenizer.FREQ.get(buf) else "chars"
                    buf = ""
                yield block[x:y], "word"
            x = y
        if buf:
            yield buf, "run" if len(buf) > 1 and not tokenizer.FREQ.get(buf) else "chars"

    def without_hmm(run: str):  # noqa: ANN202
        for block in jieba.posseg.re_han_detail.split(run):
            if jieba.posseg.re_han_detail.match(block):
                for ch in block:
                    yield jieba.posseg.pair(ch, pos.word_tag_tab.get(ch, "x"))
                continue
            for x in jieba.posseg.re_skip_detail.split(block):
                if jieba.posseg.re_num.match(x):
                    yield jieba.posseg.pair(x, "m")
                elif jieba.posseg.re_eng.match(x):
                    yield jieba.posseg.pair(x, "eng")
                elif x:
                    yield jieba.posseg.pair(x, "x")

    def tag_dag(block: str):  # noqa: ANN202
        for piece, kind in pieces(block):
            if kind == "run":
                yield from detail(piece) if budget.allow(piece) else without_hmm(piece)
                continue
            budget.read(len(piece))
            for word in (piece,) if kind == "word" else piece:
                yield jieba.posseg.pair(word, pos.word_tag_tab.get(word, "x"))

    reference = jieba.posseg.POSTokenizer(tokenizer)
    reference._POSTokenizer__cut_DAG = tag_dag
    return [(p.word, p.flag) for p in reference.cut(sentence)]


def test_natural_text_is_segmented_exactly_as_jieba_does(seed_story):
    plain, bounded = jieba.posseg.POSTokenizer(jieba.Tokenizer()), Bounded()
    texts = [seed_story, *(p.read_text("utf-8") for p in sorted(SAMPLES.glob("*.txt")))]
    texts.append("Apple 和 IBM 在 2024 年 3.5% 的增長，COVID-19\r\n與 U.S. 之間 ＡＢ 12:30 a1b2 。")
    for text in texts:
        simplified = segment.to_simplified(text)
        bounded.budget.reset()
        assert bounded.tag(simplified) == [(p.word, p.flag) for p in plain.cut(simplified)]
        assert bounded.budget.skipped == 0
        bounded.budget.reset()
        assert bounded.pos.tokenizer.lcut(simplified) == plain.tokenizer.lcut(simplified)
        assert bounded.budget.skipped == 0


def test_bounded_tagger_matches_the_reference_on_noise_and_text_around_it():
    bounded = Bounded()
    for text in [
        news_noise(3000),
        news_noise(500, seed=4) + "台风今晚登陆。" * 40 + news_noise(2500, seed=5),
    ]:
        simplified = segment.to_simplified(text)
        bounded.budget.reset()
        got, skipped = bounded.tag(simplified), bounded.budget.skipped
        bounded.budget.reset()
        assert got == reference_tag(bounded, simplified)
        assert skipped == bounded.budget.skipped > 0


def test_noise_keeps_the_hmm_to_a_bounded_share_and_offsets_stay_right():
    text = news_noise(5000)
    eng = segment.engine("jieba")
    tokens = segment.tag(text, segment.to_simplified(text), eng)
    assert eng.hmm_skipped > 0.5 * len(text)
    for word, _pos, start in tokens:
        assert text[start : start + len(word)] == word
    # The budget starts afresh for the next text: natural text after noise is untouched.
    segment.tag("台风今晚登陆，气象局发布陆上警报。", "台风今晚登陆，气象局发布陆上警报。", eng)
    assert eng.hmm_skipped == 0


def _cli(*args: str, stdin: bytes, timeout: float) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=timeout,
        env=newsflow_env({"NEWSFLOW_ENGINE": "jieba"}),
        cwd=ROOT,
        check=True,
    )


@pytest.mark.e2e  # two real newsflow processes over 100,000 characters
def test_random_news_characters_are_analysed_by_newsflow_process_and_segment(tmp_path: Path):
    """30,000 characters of noise: before the budget they took about 12 s; the bound here is generous."""
    text = news_noise(30_000)
    feed = tmp_path / "noise.jsonl"
    feed.write_text(json.dumps({"id": "noise", "text": text}, ensure_ascii=False) + "\n", "utf-8")
    result = json.loads(_cli("process", str(feed), stdin=b"", timeout=120).stdout)
    assert result["status"] == "unique"
    assert result["hmm_skipped"] > 0
    assert "".join(w for w, _, _ in result["tokens"]) == "".join(result["text"].split())
    out = _cli("segment", "--pos", "-", stdin=text.encode() + b"\n", timeout=120).stdout.decode()
    assert "".join(t.rsplit("/", 1)[0] for t in out.split()) == "".join(text.split())


# --- headlines, lists and 台 ---------------------------------------------------------

HEADLINE_STORY = (
    "颱風海葵逼近\n"
    "台東停班停課中央氣象署今天上午發布陸上颱風警報，\n"
    "提醒東部及南部民眾嚴防強風豪雨，台東縣政府宣布\n"
    "明天停止上班上課。"
)
LIST_STORY = (
    "各縣市停班停課情形如下：\n"
    "一、台東縣：停止上班上課\n"
    "二、花蓮縣：照常上班上課\n"
    "三、屏東縣：停止上班上課，\n"
    "山區鄉鎮另行公布。"
)


def test_a_headline_stays_its_own_paragraph():
    assert dewrap(HEADLINE_STORY) == (
        "颱風海葵逼近\n台東停班停課中央氣象署今天上午發布陸上颱風警報，"
        "提醒東部及南部民眾嚴防強風豪雨，台東縣政府宣布明天停止上班上課。"
    )


def test_a_first_line_that_ends_a_sentence_or_fills_the_width_is_joined():
    assert dewrap("颱風海葵逼近台東。\n中央氣象署今天上午發布陸上颱風警報，\n提醒民眾。") == (
        "颱風海葵逼近台東。中央氣象署今天上午發布陸上颱風警報，提醒民眾。"
    )
    body = "中央氣象署今天上午發布陸上颱風警報提醒東部及南部民眾嚴防強風豪雨"
    assert dewrap(hard_wrap(body, 12)) == body


def test_list_items_stay_on_their_own_lines():
    assert dewrap(LIST_STORY) == (
        "各縣市停班停課情形如下：\n一、台東縣：停止上班上課\n二、花蓮縣：照常上班上課\n"
        "三、屏東縣：停止上班上課，山區鄉鎮另行公布。"
    )


def test_every_rewrap_of_the_seed_story_is_joined_as_before(seed_story):
    for width in range(2, 120):
        assert dewrap(hard_wrap(seed_story, width)) == seed_story, width


def test_short_taiwan_copy_with_the_usual_tai_is_traditional():
    assert detect_script("颱風來襲，台東停班停課。 台中市長盧秀燕今天出席活動。") == "hant"
    assert detect_script("他穿着外套走進會議室，看着窗外的雨。") == "hant"
    assert detect_script("台风来袭，台东停班停课。台中市长卢秀燕今天出席活动。") == "hans"
    assert detect_script("颱風來襲，台东停班停课，台中市長今天出席活動。") == "mixed"


def test_headline_and_tai_through_newsflow_process(tmp_path: Path):
    feed = tmp_path / "story.jsonl"
    feed.write_text(json.dumps({"id": "typhoon", "text": HEADLINE_STORY}, ensure_ascii=False) + "\n", "utf-8")
    result = json.loads(_cli("process", str(feed), stdin=b"", timeout=120).stdout)
    assert result["text"].split("\n")[0] == "颱風海葵逼近"
    assert result["script"] == "hant"
    for word, _pos, start in result["tokens"]:
        assert result["text"][start : start + len(word)] == word


def test_the_bridge_reads_big5_and_gb18030_inbox_text_as_files_are_read(settings, start_worker, start_bridge):
    """Inbox text bytes get the same decoding as files (producer.inputs.decode)."""
    client = Client(settings)
    r, inbox = client.redis, client.keys.inbox
    story = "颱風海葵逼近台東，中央氣象署今天上午發布陸上颱風警報，提醒東部及南部民眾嚴防強風豪雨。"
    simplified = "台风海葵逼近台东，中央气象署今天上午发布陆上台风警报，提醒东部及南部民众严防强风豪雨。"
    r.xadd(inbox, {"id": "big5", "text": story.encode("big5")})
    r.xadd(inbox, {"id": "gb18030", "text": simplified.encode("gb18030")})
    r.xadd(inbox, {"id": "junk", "text": bytes(range(128, 256)) * 4})
    start_worker()
    start_bridge("--block-ms", "200")
    results = {
        i: wait_for(lambda i=i: client.get(i), 60, f"the result of {i}") for i in ("big5", "gb18030", "junk")
    }
    assert results["big5"]["text"] == story and results["big5"]["script"] == "hant"
    assert results["gb18030"]["text"] == simplified
    assert results["gb18030"]["status"] == "duplicate"  # the same story in the other script
    assert results["gb18030"]["duplicate_of"] == "big5"
    assert results["junk"]["status"] == "rejected"
    assert results["junk"]["error"]["code"] == "unknown_encoding"
