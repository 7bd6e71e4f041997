"""Submit articles to newsflow from Python and wait for their results.

    NEWSFLOW_REDIS_URL=redis://127.0.0.1:6390/0 python examples/python/submit_and_wait.py

Prints one line per article and exits 0 once each has its result (1 if one is
still missing after the timeout). It can be run again and again: the same id
with the same text is a no-op that writes no new result, and ``Client.wait``
finds the result already stored under ``<prefix>:result:<id>``. The client
needs Redis and Celery's client side only; jieba is never imported.
"""

from __future__ import annotations

import sys

from producer import Client

ARTICLES = [
    {"id": "py/1", "text": "市議會今天通過新的公共運輸計畫，明年起增加三條公車路線。", "title": "公車路線"},
    {
        "id": "py/2",
        "text": "台积电宣布在高雄兴建新厂，预计创造三千个工作机会。",
        "meta": {"desk": "business"},
    },
    {"id": "py/3", "text": "   "},  # deliberately empty: comes back rejected
]


def main() -> int:
    client = Client()  # reads NEWSFLOW_* from the environment
    sent = client.submit_many(ARTICLES)
    try:
        results = client.wait(sent, timeout=120)
    except TimeoutError as exc:
        print(f"no result yet: {exc}", file=sys.stderr)
        return 1
    for article in ARTICLES:
        result = results[article["id"]]
        words = " ".join(w for w, _pos, _start in result.get("tokens", [])[:6])
        error = result.get("error", {}).get("code", "")
        print(f"{result['id']:6} {result['status']:10} rev {result['revision']} {words or error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
