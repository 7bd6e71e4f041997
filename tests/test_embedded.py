"""newsflow process reads articles ahead in batches: the results are those of one article at a time."""

from __future__ import annotations

from typing import Any

import pytest

from worker.config import Settings
from worker.embedded import process_all

STORY = [
    "颱風今晚登陸，氣象局發布陸上警報，各地學校明日停課。",
    "台风今晚登陆，气象局发布陆上警报，各地学校明日停课。",
    "市政府宣布擴建地鐵三號線，預計二〇二八年通車，沿線居民表示歡迎。",
    "央行维持基准利率不变，分析人士认为下半年仍有降息空间。",
]


def _stream() -> list[Any]:
    """Repeats, corrections, copies and rejections, some inside one batch, some across batches."""
    items: list[Any] = []
    for n, text in enumerate(STORY * 3):
        items.append({"id": f"a/{n}", "text": text})
        if n % 3 == 0:
            items.append({"id": f"a/{n}", "text": text})  # the same again: the same result
        if n % 4 == 1:
            items.append({"id": f"a/{n}", "text": text + "更新：雨勢增強。"})  # a correction
        if n % 5 == 2:
            items.append({"id": f"a/{n}", "text": ""})  # a rejection under the id
            items.append({"id": f"a/{n}", "text": text})
    items += ["not an object", {"id": "bad id!", "text": STORY[0]}, {"id": "a/0", "text": STORY[0]}]
    return items


def _comparable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in ("processed_at", "timings_ms")}


@pytest.mark.parametrize("batch", [2, 5, 25])
def test_batches_give_the_results_of_one_article_at_a_time(batch: int) -> None:
    settings = Settings.from_env({})
    one = [_comparable(r) for r in process_all(_stream(), settings, batch=1)]
    batched = [_comparable(r) for r in process_all(_stream(), settings, batch=batch)]
    assert batched == one
    statuses = [r["status"] for r in one]
    assert {"unique", "duplicate", "rejected"} <= set(statuses)
    assert max(r.get("revision", 1) for r in one) == 2  # the corrections


def test_a_repeat_inside_a_batch_is_the_same_result_object() -> None:
    results = list(process_all([{"id": "x", "text": STORY[2]}] * 3, Settings.from_env({}), batch=3))
    assert results[0] is results[1] is results[2]
    assert results[0]["status"] == "unique"
