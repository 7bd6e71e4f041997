"""Keywords and entities from the one segmentation pass, in the article's own script."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import pipeline
from worker.config import Settings
from worker.dedupe import Decision
from worker.pipeline import Analyser
from worker.stages import segment

SEED = Path(__file__).resolve().parent / "data" / "seed_story.txt"

ENGINES = [
    "jieba",
    pytest.param(
        "jieba-rs",
        marks=pytest.mark.skipif(not segment.has_engine("jieba-rs"), reason="needs newsflow[fast]"),
    ),
]


def _analyse(
    text: str,
    engine_name: str = "jieba",
    user_stopwords: str = "",
    method: str = "tfidf",
    entities: str = "model",
):
    """Tokens, keywords and entities of ``text`` through the worker's own stages."""
    settings = Settings(engine=engine_name, user_stopwords=user_stopwords, keywords=method, entities=entities)
    prepared = pipeline.prepare({"id": "t", "text": text}, settings)
    assert isinstance(prepared, pipeline.Prepared)
    result = pipeline.finish(prepared, Decision.unique(), Analyser.from_settings(settings), settings).result
    return result["tokens"], result["keywords"], result["entities"]


def _words(entries: list[dict[str, object]]) -> list[object]:
    return [e["w"] for e in entries]


@pytest.mark.parametrize("engine_name", ENGINES)
def test_seed_story_names_places_and_keywords_come_out_in_traditional(engine_name: str) -> None:
    _tokens, keywords, entities = _analyse(SEED.read_text(encoding="utf-8"), engine_name)
    assert set(_words(entities["person"])) == {"拉夫羅夫", "金正日", "白南淳", "盧武鉉", "蒲亭"}
    assert {"平壤", "海參崴", "俄羅斯", "北韓"} <= set(_words(entities["place"]))
    assert set(_words(keywords)[:3]) == {"拉夫羅夫", "核武", "北韓"}
    counts = {e["w"]: e["count"] for e in entities["person"]}
    assert counts["拉夫羅夫"] == 6 and counts["金正日"] == 5
    weights = [k["weight"] for k in keywords]
    assert weights == sorted(weights, reverse=True) and weights[0] > 0


def test_textrank_is_an_option_with_its_own_weights() -> None:
    _tokens, tfidf, _ = _analyse(SEED.read_text(encoding="utf-8"))
    _tokens, textrank, _ = _analyse(SEED.read_text(encoding="utf-8"), method="textrank")
    assert textrank[0]["weight"] == 1.0
    assert {"北韓", "核武"} <= set(_words(textrank)[:3])
    assert textrank != tfidf


def test_news_boilerplate_and_bare_numbers_are_never_keywords() -> None:
    text = (
        "記者今天報導，官員表示，2005年預算增加3.5%，２００５年的預算也將增加。"
        "官員今天再次表示，預算增加二十億元。"
    )
    _tokens, keywords, _ = _analyse(text)
    words = set(_words(keywords))
    assert "預算" in words
    assert not words & {"表示", "今天", "記者", "報導", "2005", "２００５", "3.5%", "二十億"}
    assert not any(ch.isdigit() for w in words for ch in str(w))


def test_user_stopwords_by_path_remove_a_keyword(tmp_path: Path) -> None:
    text = SEED.read_text(encoding="utf-8")
    stopwords = tmp_path / "stop.txt"
    stopwords.write_text("# in either script\n僵局\n外長\n", encoding="utf-8")
    _tokens, before, _ = _analyse(text)
    _tokens, after, _ = _analyse(text, user_stopwords=str(stopwords))
    assert {"僵局", "外長"} <= set(_words(before))
    assert not {"僵局", "外長"} & set(_words(after))


def test_entities_group_both_scripts_under_the_first_form_seen() -> None:
    _tokens, keywords, entities = _analyse("北韓外長訪問平壤。北韩外长访问平壤。北韓再次表態。")
    places = {e["w"]: e["count"] for e in entities["place"]}
    assert places["北韓"] == 3 and "北韩" not in places
    assert places["平壤"] == 2
    assert "北韩" not in _words(keywords)


@pytest.mark.parametrize("recogniser", ["model", "pos"])
def test_entity_kinds_are_person_place_organization_other(recogniser: str) -> None:
    text = "聯合國秘書長在紐約會見了普京，談到了諾貝爾獎。"
    _tokens, _keywords, entities = _analyse(text, entities=recogniser)
    kinds = ["person", "place", "organization", "other"]
    assert list(entities) == (kinds + ["time"] if recogniser == "model" else kinds)
    assert "普京" in _words(entities["person"])
    assert "紐約" in _words(entities["place"])
    assert "聯合國" in _words(entities["organization"])


def test_pos_uses_jiebas_tag_set() -> None:
    tokens, _, _ = _analyse("俄羅斯外長拉夫羅夫5號在平壤會見了北韓領導人金正日，見https://example.com")
    tags = dict((w, p) for w, p, _ in tokens)
    assert tags["俄羅斯"] == "ns" and tags["平壤"] == "ns" and tags["金正日"] == "nr"
    assert tags["會見"] in ("v", "n") and tags["了"] == "ul" and tags["5"] == "m"
    assert tags["https://example.com"] == "eng"


def test_dictionaries_and_stopwords_load_once_per_process() -> None:
    first = Analyser.from_settings(Settings())
    second = Analyser.from_settings(Settings())
    assert first.engine is second.engine
    assert first.lexicon is second.lexicon
