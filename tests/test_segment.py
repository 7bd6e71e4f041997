"""Segmentation: offsets, scripts, full-width forms, both engines, and ``newsflow segment``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producer.cli import main
from worker.config import Settings
from worker.embedded import segment_lines
from worker.stages import segment
from worker.stages.script import detect_script

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

ENGINES = [
    "jieba",
    pytest.param(
        "jieba-rs",
        marks=pytest.mark.skipif(not segment.has_engine("jieba-rs"), reason="needs newsflow[fast]"),
    ),
]

TRICKY = [
    "２００５年ＩＢＭ把個人電腦部門賣給聯想，股價漲３．５％。",
    "請見https://example.com/news?id=42&lang=zh，或寫信到desk@example.com.tw查詢。",
    "美國總統Ｂｕｓｈ與COVID-19疫情：iPhone 15 Pro在台灣售價NT$36,900元",
    "北韓核武問題，北韩核武问题，两种写法混在一起。",
    "記憶體不足，滑鼠壞了",
    "\u3000\u3000全形空白開頭的段落，\t還有tab與  兩個空格",
    "",
    "   ",
    "😀表情符號與𠀋擴展B漢字",
]


def _assert_offsets(text: str, tokens: list[tuple[str, str, int]]) -> None:
    cursor = 0
    for word, _pos, start in tokens:
        assert word, "empty token"
        assert text[start : start + len(word)] == word
        assert start >= cursor, "tokens overlap or go backwards"
        assert text[cursor:start].strip() == "", "non-space text was dropped"
        cursor = start + len(word)
    assert text[cursor:].strip() == ""


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("text", TRICKY)
def test_tokens_are_slices_of_the_original_text(engine_name: str, text: str) -> None:
    eng = segment.engine(engine_name)
    simplified = segment.to_simplified(text)
    _assert_offsets(text, segment.tag(text, simplified, eng))
    assert "".join(segment.cut(text, simplified, eng)) == "".join(text.split())


def test_full_width_digits_and_letters_stay_as_they_came_in() -> None:
    words = segment.cut(TRICKY[0], segment.to_simplified(TRICKY[0]), segment.engine())
    # One token each, as their ASCII twins would be, and still full-width.
    assert "２００５" in words
    assert "ＩＢＭ" in words
    assert "３．５％" in words


def test_urls_emails_and_latin_terms_are_single_tokens() -> None:
    eng = segment.engine()
    words = segment.cut(TRICKY[1], segment.to_simplified(TRICKY[1]), eng)
    assert "https://example.com/news?id=42&lang=zh" in words
    assert "desk@example.com.tw" in words
    assert "，" in words  # the full-width comma after the URL is not part of it
    words = segment.cut(TRICKY[2], segment.to_simplified(TRICKY[2]), eng)
    assert {"COVID-19", "iPhone", "15", "Pro", "36,900", "Ｂｕｓｈ"} <= set(words)


def test_url_does_not_swallow_following_han_or_full_stop() -> None:
    text = "詳見https://example.com/a/b.html。下一句"
    words = segment.cut(text, segment.to_simplified(text), segment.engine())
    at = words.index("https://example.com/a/b.html")
    assert words[at + 1] == "。"


def test_mixed_scripts_come_back_in_their_own_characters() -> None:
    text = TRICKY[3]
    words = segment.cut(text, segment.to_simplified(text), segment.engine())
    assert words.count("北韓") == 1 and words.count("北韩") == 1
    assert "核武" in words and "問題" in words and "问题" in words


def test_conversion_that_changes_length_keeps_every_offset() -> None:
    # tw2sp turns 記憶體 (3) into 内存 (2): that stretch is converted per character.
    text = TRICKY[4]
    assert len(segment._converter("tw2sp").convert(text)) != len(text)
    simplified = segment.convert(text, "tw2sp")
    assert len(simplified) == len(text)
    assert simplified.endswith("鼠标坏了")
    _assert_offsets(text, segment.tag(text, simplified, segment.engine()))


def test_misaligned_simplified_form_is_refused() -> None:
    with pytest.raises(ValueError):
        segment.cut("記憶體", "内存", segment.engine())


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("北韓的核武僵局已經進入第20個月，俄羅斯外長在平壤會見了領導人。", "hant"),
        ("国家博物馆新馆今天对公众开放，首批展出的文物超过两千件。", "hans"),
        ("北韓的核武僵局已經進入第20個月。国家博物馆新馆今天对公众开放。", "mixed"),
        ("The museum opened its new wing to the public today.", "other"),
        ("蘋果公司發表新款iPhone 15 Pro，售價維持不變。", "hant"),
        ("", "other"),
    ],
)
def test_script_is_detected(text: str, script: str) -> None:
    assert detect_script(text) == script


def test_segment_lines_keeps_one_output_line_per_input_line() -> None:
    lines = ["\ufeff北韓的核武僵局\n", "\n", "   \r\n", "国家博物馆新馆\n", "北韓的核武僵局\n"]
    out = list(segment_lines(lines, "jieba", Settings(), pos=False))
    assert out == ["北韓  的  核武  僵局", "", "", "国家博物馆  新馆", "北韓  的  核武  僵局"]


def test_segment_command_prints_sighan_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.txt"
    source.write_text("拉夫羅夫在平壤會見了金正日\n２００５年ＩＢＭ\n", encoding="utf-8")
    assert main(["segment", str(source)]) == 0
    assert capsys.readouterr().out == "拉夫羅夫  在  平壤  會見  了  金正日\n２００５  年  ＩＢＭ\n"
    assert main(["segment", "--pos", str(source)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.split("  ")[:3] == ["拉夫羅夫/nrt", "在/p", "平壤/ns"]


def _sample_lines() -> list[str]:
    lines: list[str] = []
    for path in sorted(SAMPLES.iterdir()):
        if path.suffix == ".jsonl":
            texts = [json.loads(row)["text"] for row in path.read_text(encoding="utf-8").splitlines() if row]
        else:
            texts = [path.read_text(encoding="utf-8")]
        lines += [line for text in texts for line in text.splitlines()]
    return lines


@pytest.mark.skipif(not segment.has_engine("jieba-rs"), reason="needs newsflow[fast]")
def test_both_engines_cut_the_sample_corpus_identically() -> None:
    lines = _sample_lines()
    assert len(lines) > 20
    settings = Settings()
    assert list(segment_lines(lines, "jieba-rs", settings, pos=False)) == list(
        segment_lines(lines, "jieba", settings, pos=False)
    )


@pytest.mark.skipif(not segment.has_engine("jieba-rs"), reason="needs newsflow[fast]")
def test_both_engines_load_the_project_dictionary_alike() -> None:
    entries = segment.read_dictionary(segment.PROJECT_DICT)
    assert entries
    for name in ("jieba", "jieba-rs"):
        eng = segment.engine(name)
        for word, _freq, tag in entries:
            sentence = f"他说{word}的事"
            assert (word, tag) in eng.tag(sentence), (name, word)
            assert word in eng.cut(sentence), (name, word)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_user_dictionary_in_traditional_adds_a_name(engine_name: str, tmp_path: Path) -> None:
    text = "昨天郝龍斌菲集團宣布裁員"
    plain = segment.engine(engine_name)
    assert "郝龍斌菲集團" not in segment.cut(text, segment.to_simplified(text), plain)
    user_dict = tmp_path / "names.txt"
    user_dict.write_text("# desk additions\n郝龍斌菲集團 nt\n", encoding="utf-8")
    eng = segment.engine(engine_name, str(user_dict))
    tokens = segment.tag(text, segment.to_simplified(text), eng)
    assert ("郝龍斌菲集團", "nt", 2) in tokens


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("others", [0, segment._FEW_TAGGED + 1])
def test_a_user_tag_overrides_the_engines_however_many_words_are_tagged(
    engine_name: str, others: int, tmp_path: Path
) -> None:
    """jieba-rs finds a text with a tagged word by a search of the text or, past a few words, a set check."""
    text = "昨天公司宣布裁員，沒有別的"
    plain = segment.tag(text, segment.to_simplified(text), segment.engine(engine_name))
    assert ("宣布", "v", 4) in plain  # the engine's own tag, which the dictionary overrides
    lines = ["宣布 vn"] + [f"{chr(0x5B50 + i)}{chr(0x6C00 + i)}詞組 nz" for i in range(others)]
    user_dict = tmp_path / "words.txt"
    user_dict.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tokens = segment.tag(text, segment.to_simplified(text), segment.engine(engine_name, str(user_dict)))
    assert tokens == [("宣布", "vn", 4) if t == ("宣布", "v", 4) else t for t in plain]


def test_engine_is_loaded_once_per_process() -> None:
    assert segment.engine() is segment.engine("jieba") is segment.engine("jieba", "", hmm=True)


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError):
        segment.engine("pkuseg")


def test_the_jieba_tag_table_is_the_one_jieba_reads_and_the_user_tags_stay_in_the_engine() -> None:
    import jieba
    import jieba.posseg

    tokenizer = jieba.Tokenizer()
    copied = segment._pos_tokenizer(tokenizer)
    assert copied.word_tag_tab == jieba.posseg.POSTokenizer(tokenizer).word_tag_tab
    assert copied.word_tag_tab is not jieba.posseg.dt.word_tag_tab
    # 蒲亭 and 两韩 are tagged by the project's dictionary alone, in the engine's table only.
    assert segment.engine("jieba").tag("蒲亭与两韩") == [("蒲亭", "nr"), ("与", "p"), ("两韩", "ns")]
    assert "蒲亭" not in jieba.posseg.dt.word_tag_tab and "两韩" not in jieba.posseg.dt.word_tag_tab
