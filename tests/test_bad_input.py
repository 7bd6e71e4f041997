"""Bad and odd input: each case is rejected with its code, or processed, never crashes a stage.

Files go through the producer's reader (``newsflow submit``), article objects
straight to the stages, through the same :func:`worker.pipeline.process` that
workers run. The "Bad input" table in docs/submitting.md lists the same cases.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from producer.inputs import decode, read_jsonl, read_path
from tests.schema import assert_valid_result
from worker.config import Settings
from worker.embedded import process_all

STORY = "颱風今晚登陸，氣象局發布陸上警報。台北市政府表示，各級學校明天停課，民眾應避免外出。"
SIMPLIFIED = "台风今晚登陆，气象局发布陆上警报。台北市政府表示，各级学校明天停课，民众应避免外出。"
MAX_CHARS = 5_000


def _file(name: str, data: bytes):
    def make(tmp: Path):
        path = tmp / name
        path.write_bytes(data)
        return list(read_path(path))

    return make


def _jsonl(line: bytes):
    return lambda _tmp: list(read_jsonl(io.BytesIO(line + b"\n"), "feed.jsonl"))


def _article(**fields):
    return lambda _tmp: [{"id": "case", **fields}]


# name -> (how the input arrives, expected status, expected rejection code or None)
CASES = {
    "empty file": (_file("empty.txt", b""), "rejected", "empty_text"),
    "whitespace only": (_article(text=" \n\t\u3000 \r\n"), "rejected", "empty_text"),
    "invalid UTF-8 bytes in a file": (
        _file("broken.txt", STORY.encode()[:30] + b"\xff\xfe" + STORY.encode()[30:]),
        "rejected",
        "invalid_utf8",
    ),
    "invalid UTF-8 bytes in an article (inbox)": (
        _article(text=STORY.encode()[:31] + b"\xc3"),
        "rejected",
        "invalid_utf8",
    ),
    "binary junk": (_file("junk.txt", bytes(range(128, 256)) * 4), "rejected", "unknown_encoding"),
    "NUL character": (_article(text=STORY + "\x00"), "rejected", "control_chars"),
    "escape control character": (_article(text="\x1b[31m" + STORY), "rejected", "control_chars"),
    "oversized article": (_article(text="新" * (MAX_CHARS + 1)), "rejected", "too_large"),
    "id with spaces": (lambda _t: [{"id": "wire 1", "text": STORY}], "rejected", "bad_id"),
    "id with *": (lambda _t: [{"id": "wire*", "text": STORY}], "rejected", "bad_id"),
    "id with : (key injection)": (lambda _t: [{"id": "x:result:y", "text": STORY}], "rejected", "bad_id"),
    "id over 128 characters": (lambda _t: [{"id": "a" * 129, "text": STORY}], "rejected", "bad_id"),
    "meta that is not a JSON object": (_article(text=STORY, meta="{not json"), "rejected", "bad_meta"),
    "JSONL line that is a list": (_jsonl(b"[1, 2, 3]"), "rejected", "not_an_object"),
    "JSONL line that is a string": (_jsonl(b'"just text"'), "rejected", "not_an_object"),
    "JSONL line that is not JSON": (_jsonl(b'{"id": "x", "text": '), "rejected", "bad_json"),
    "missing text": (_article(title="標題"), "rejected", "missing_text"),
    "text that is a number": (_article(text=42), "rejected", "bad_field"),
    "only punctuation": (_article(text="。，！？……——「」"), "rejected", "no_letters"),
    "only emoji": (_article(text="😀🎉🔥 👍"), "rejected", "no_letters"),
    "only English": (_article(text="The typhoon made landfall tonight."), "unique", None),
    "mixed scripts": (_article(text="台積電TSMC宣布在東京設廠，ソニーと協力，삼성도 긴장。"), "unique", None),
    "Big5 file": (_file("big5.txt", STORY.encode("big5")), "unique", None),
    "GB18030 file, Traditional": (_file("gb-hant.txt", STORY.encode("gb18030")), "unique", None),
    "GB18030 file, Simplified": (_file("gb-hans.txt", SIMPLIFIED.encode("gb18030")), "unique", None),
    "GB18030 JSONL line": (
        _jsonl(f'{{"id": "gbline", "text": "{SIMPLIFIED}"}}'.encode("gb18030")),
        "unique",
        None,
    ),
    "UTF-8 with a BOM": (_file("bom.txt", b"\xef\xbb\xbf" + STORY.encode()), "unique", None),
}


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("bad-input")
    settings = Settings(max_chars=MAX_CHARS)
    raws = {name: make(tmp) for name, (make, _, _) in CASES.items()}
    out = {}
    for name, items in raws.items():
        assert len(items) == 1, name
        # each case alone, so that dedupe across cases cannot change a status
        out[name] = next(process_all(items, settings))
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_bad_or_odd_input_gets_its_outcome(name, outcomes):
    _, status, code = CASES[name]
    result = outcomes[name]
    assert result["status"] == status, result.get("error")
    assert_valid_result(result)
    if code:
        assert result["error"]["code"] == code
        assert result["error"]["message"]
    else:
        assert "error" not in result and result["tokens"]


@pytest.mark.parametrize("name", ["Big5 file", "GB18030 file, Traditional", "UTF-8 with a BOM"])
def test_legacy_encodings_decode_to_the_original_text(name, outcomes):
    assert outcomes[name]["text"] == STORY


def test_gb18030_simplified_decodes_to_the_original_text(outcomes):
    assert outcomes["GB18030 file, Simplified"]["text"] == SIMPLIFIED


def test_big5_bytes_are_never_read_as_gb18030():
    data = STORY.encode("big5")
    assert data.decode("gb18030") != STORY  # the trap: it decodes without error
    assert decode(data) == (STORY, None)


def test_odd_text_is_tagged_with_its_script(outcomes):
    assert outcomes["only English"]["script"] == "other"
    # Its Chinese is Traditional: 台 is written in Taiwan copy beside 臺 and decides nothing.
    assert outcomes["mixed scripts"]["script"] == "hant"


def test_megabyte_line_without_punctuation_is_processed(seed_story):
    letters = "".join(ch for ch in seed_story if "\u4e00" <= ch <= "\u9fff")
    line = (letters * (1_000_000 // len(letters) + 1))[:1_000_000]
    result = next(process_all([{"id": "long-line", "text": line}], Settings()))
    assert result["status"] == "unique"
    assert result["repeats_removed"] > 0
    assert_valid_result(result)
    assert len(result["text"]) < len(letters) * 2
