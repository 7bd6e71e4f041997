"""A synthetic news stream for the benchmarks.

Sentences are recombined into articles of 300-3,000 characters (or the
lengths asked for), half of them
in Traditional, and a share of the stream is re-sent copies (re-wrapped or
converted) of earlier articles, as a wire feed would. The sentences come from
the SIGHAN 2005 test sets beside the repository when present (real, varied
news text; evaluation use only, never shipped), else from samples/.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import opencc

from producer.inputs import read_articles
from worker.stages.normalise import dewrap

ROOT = Path(__file__).resolve().parent.parent
_SENTENCE = re.compile(r"[^。！？]+[。！？]")


SIGHAN = ROOT.parent / "shared" / "eval" / "sighan2005"


def find_eval_data(name: str, explicit: str | None = None) -> Path | None:
    """``explicit``, else the nearest ``shared/eval/<name>`` above the repository; None if absent."""
    if explicit:
        return Path(explicit)
    for parent in ROOT.parents:
        candidate = parent / "shared" / "eval" / name
        if candidate.is_dir():
            return candidate
    return None


def sentences(sighan: Path = SIGHAN) -> list[str]:
    to_simplified = opencc.OpenCC("t2s")
    if sighan.is_dir():
        found: list[str] = []
        for path in sorted(sighan.glob("*.utf8")):
            for line in path.read_text(encoding="utf-8").splitlines():
                found.extend(s for s in _SENTENCE.findall(line.replace(" ", "").replace("\u3000", "")))
        return sorted({to_simplified.convert(s) for s in found if len(s) > 8})
    out: list[str] = []
    for article in read_articles([str(ROOT / "samples"), str(ROOT / "tests" / "data")]):
        text = article.get("text") if isinstance(article, dict) else None
        if isinstance(text, str):
            out.extend(s.strip() for s in _SENTENCE.findall(dewrap(text)) if len(s.strip()) > 8)
    return sorted({to_simplified.convert(s) for s in out})


def stream(
    n: int,
    duplicate_share: float = 0.2,
    seed: int = 7,
    lengths: tuple[int, int] = (300, 3000),
    sighan: Path = SIGHAN,
) -> list[dict[str, str]]:
    """``n`` articles of ``lengths`` characters (uniform), ``duplicate_share`` of them re-sent copies."""
    rng = random.Random(seed)
    pool = sentences(sighan)
    s2t = opencc.OpenCC("s2t")
    articles: list[dict[str, str]] = []
    originals: list[str] = []
    for i in range(n):
        if originals and rng.random() < duplicate_share:
            text = rng.choice(originals)
            if rng.random() < 0.5:
                width = rng.randint(20, 40)
                text = "\n".join(text[j : j + width] for j in range(0, len(text), width))
            else:
                text = s2t.convert(text)
        else:
            target = rng.randint(*lengths)
            parts: list[str] = [f"（第{i}号）"]
            length = 0
            while length < target:
                sentence = rng.choice(pool)
                parts.append(sentence)
                length += len(sentence)
            text = "".join(parts)
            if rng.random() < 0.5:
                text = s2t.convert(text)
            originals.append(text)
        articles.append({"id": f"bench-{seed}-{i}", "text": text})
    return articles
