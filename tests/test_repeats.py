"""Passages pasted more than once into one article are dropped; short recurring phrases are kept."""

from __future__ import annotations

from tests.conftest import hard_wrap
from worker.stages.normalise import dewrap, drop_repeats

# Two real-style passages, each well over the 40-letter minimum.
FIRST = (
    "商务部新闻发言人本周四在例行记者会上表示，中方注意到有关国家近期宣布进一步限制半导体设备出口。"
    "发言人说，这种做法违背市场规律，损害全球产业链供应链稳定。"
)
SECOND = "分析人士指出，此次限制涉及先进制程的光刻设备和相关软件，可能影响多家芯片制造企业的扩产计划。"


def clean(text: str) -> tuple[str, int]:
    return drop_repeats(dewrap(text))


def test_seven_pasted_copies_count_six(seed_story):
    text, removed = clean(hard_wrap(seed_story * 7, 32))
    assert (text, removed) == (seed_story, 6)


def test_article_without_repeats_is_untouched(seed_story):
    assert drop_repeats(seed_story) == (seed_story, 0)


def test_copy_starting_mid_line_is_dropped():
    text = f"{FIRST}\n\n{SECOND}记者另据报道，{FIRST}"
    assert clean(text) == (f"{FIRST}\n{SECOND}记者另据报道，", 1)


def test_copy_wrapped_differently_is_dropped():
    text = f"{hard_wrap(FIRST, 30)}\n\n{hard_wrap(FIRST, 13)}\n\n{SECOND}"
    assert clean(text) == (f"{FIRST}\n{SECOND}", 1)


def test_copy_separated_by_spaces_is_dropped():
    assert clean(f"{FIRST}　　 {FIRST}") == (FIRST, 1)


def test_copy_separated_by_punctuation_is_dropped():
    assert clean(f"{FIRST}……{FIRST}") == (FIRST, 1)
    assert clean(f"{FIRST}——{FIRST}{SECOND}") == (f"{FIRST}{SECOND}", 1)


def test_copy_with_other_punctuation_is_dropped():
    half = FIRST.replace("，", ",").replace("。", ". ")
    assert clean(f"{FIRST}\n\n{half}\n\n{SECOND}") == (f"{FIRST}\n{SECOND}", 1)


def test_copy_of_part_of_a_passage_is_dropped():
    part = FIRST[10:70]
    text, removed = clean(f"{FIRST}\n\n{part}\n\n{SECOND}")
    assert (text, removed) == (f"{FIRST}\n{SECOND}", 1)


def test_copies_back_to_back_count_one_by_one():
    assert clean(FIRST * 3 + SECOND) == (FIRST + SECOND, 2)


def test_recurring_dateline_is_kept():
    dateline = "新华社北京11月27日电"
    text = f"{dateline}{FIRST}\n{dateline}{SECOND}\n{dateline}（完）"
    assert dewrap(text.replace("\n", "\n\n")) == text
    assert drop_repeats(text) == (text, 0)


def test_short_refrain_is_kept():
    refrain = "记者：你怎么看？"
    text = f"{refrain}{FIRST}\n{refrain}{SECOND}\n{refrain}好的。"
    assert drop_repeats(text) == (text, 0)


def test_passage_just_under_the_minimum_is_kept():
    short = FIRST[:39]  # 39 letters, one punctuation mark inside
    text = f"{short}{SECOND}\n{short}"
    assert clean(text)[1] == 0


def test_copy_pasted_as_its_own_paragraph_leaves_the_paragraphs_around_it():
    text = f"{FIRST}\n\n{SECOND}\n\n{hard_wrap(FIRST, 21)}\n\n结尾一句话。"
    assert clean(text) == (f"{FIRST}\n{SECOND}\n结尾一句话。", 1)


def test_copy_in_mid_paragraph_keeps_the_sentences_around_it():
    text = f"{FIRST}{SECOND}{FIRST}结尾一句话。"
    assert clean(text) == (f"{FIRST}{SECOND}结尾一句话。", 1)
