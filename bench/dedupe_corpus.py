"""Labelled Chinese news text for the dedupe benchmarks: originals, variants, hard negatives.

Originals come from the project's own corpus (``samples/``, ``tests/data``) and,
when present, from ``../shared/eval/sighan2005``: each file's lines, spaces
stripped, grouped in order into articles. Consecutive groups of one file are
adjacent passages of the same source, on the same topic, so every other group
is kept back as a hard negative for its neighbours. Every other hard negative
also carries a wire boilerplate line and one sentence quoted from the original
before it: what a story that quotes another shares with it, and no more.

Developing stories are two versions of one article: its first 40-70% (cut at a
sentence end) and the whole, decided in either order.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from worker.stages.fingerprint import jaccard, letters
from worker.stages.script import detect_script
from worker.stages.segment import convert, to_simplified

ROOT = Path(__file__).resolve().parent.parent
SIGHAN = ROOT.parent / "shared" / "eval" / "sighan2005"  # override with --sighan
# Copies already in samples/: they would be duplicates of the originals they copy.
_SAMPLE_COPIES = {"07-typhoon-pasted-thrice.txt", "08-rail-simplified-copy.txt", "09-chip-export-edited.txt"}
_SENTENCE = re.compile(r"[^。！？!?]+[。！？!?」”]*")
_WS = re.compile(r"[\s\u3000]+")

BOILERPLATE = [
    "（本报记者综合报道，转载请注明出处）",
    "责任编辑：张明",
    "【新华社北京电】",
    "更多精彩内容，请关注本报官方微信公众号。",
    "本文来源：综合外电报道",
    "（完）",
]


@dataclass(frozen=True)
class Article:
    id: str
    source: str
    text: str


def project_articles() -> list[Article]:
    seed = (ROOT / "tests" / "data" / "seed_story.txt").read_text("utf-8").strip()
    found = [Article("seed", "tests", seed)]
    for path in sorted((ROOT / "samples").glob("*.txt")):
        if path.name not in _SAMPLE_COPIES:
            found.append(Article(f"samples/{path.stem}", "samples", path.read_text("utf-8").strip()))
    for line in (ROOT / "samples" / "10-feed.jsonl").read_text("utf-8").splitlines():
        if line.strip():
            raw = orjson.loads(line)
            if len(letters(raw["text"])) >= 20:
                found.append(Article(raw["id"], "feed", raw["text"]))
    # The samples hold a few deliberate copies of each other: keep the first of each story.
    kept: list[Article] = []
    for a in found:
        if all(jaccard(letters(to_simplified(a.text)), letters(to_simplified(k.text))) < 0.3 for k in kept):
            kept.append(a)
    return kept


def line_groups(path: Path, min_chars: int, limit: int | None = None) -> list[str]:
    """Consecutive non-blank lines of ``path``, spaces removed, joined into texts of ``min_chars`` and up."""
    groups: list[str] = []
    current: list[str] = []
    size = 0
    for line in path.read_text("utf-8").splitlines():
        line = _WS.sub("", line)
        if not line:
            continue
        current.append(line)
        size += len(line)
        if size >= min_chars:
            groups.append("\n".join(current))
            current, size = [], 0
            if limit is not None and len(groups) >= limit:
                break
    return groups


def sighan_articles(per_file: int, root: Path = SIGHAN, min_chars: int = 500) -> list[list[Article]]:
    """Consecutive-line articles from each SIGHAN file, in order; [] when absent."""
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.glob("*.utf8")):
        texts = line_groups(path, min_chars, limit=2 * per_file)
        files.append([Article(f"{path.stem}/{n}", path.stem, text) for n, text in enumerate(texts)])
    return files


# --- variants ------------------------------------------------------------------

_TO_HALF = str.maketrans("，。：；！？（）“”", ',.:;!?()""')


def rewrap(text: str, rng: random.Random, _pool: str) -> str:
    width = rng.randrange(16, 41)
    flat = text.replace("\n", "")
    return "\n".join(flat[i : i + width] for i in range(0, len(flat), width))


def punctuation_width(text: str, _rng: random.Random, _pool: str) -> str:
    half = text.translate(_TO_HALF)
    # ASCII letters and digits to full width: NFKC folds them back.
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in half)


def script_change(text: str, _rng: random.Random, _pool: str) -> str:
    return convert(text, "s2t") if detect_script(text) == "hans" else to_simplified(text)


def boilerplate(text: str, rng: random.Random, _pool: str) -> str:
    line = rng.choice(BOILERPLATE)
    return f"{line}\n{text}" if rng.random() < 0.5 else f"{text}\n{line}"


def scattered_edits(fraction: float) -> Callable[[str, random.Random, str], str]:
    """Substitute, delete or insert ``fraction`` of the letters, at random places."""

    def edit(text: str, rng: random.Random, pool: str) -> str:
        chars = list(text)
        spots = [i for i, c in enumerate(chars) if c.isalnum()]
        for i in sorted(rng.sample(spots, round(len(spots) * fraction)), reverse=True):
            kind = rng.randrange(3)
            if kind == 0:
                chars[i] = rng.choice(pool)
            elif kind == 1:
                del chars[i]
            else:
                chars.insert(i, rng.choice(pool))
        return "".join(chars)

    return edit


def sentences(text: str) -> list[str]:
    return _SENTENCE.findall(text)


def first_part(text: str, share: float) -> str:
    """The text up to the sentence end nearest ``share`` of its length (at least one sentence, never all)."""
    parts = sentences(text)
    ends, total = [], 0
    for part in parts[:-1]:
        total += len(part)
        ends.append(total)
    if not ends:
        return text
    cut = min(ends, key=lambda e: abs(e - share * len(text)))
    return text[:cut]


def early_version(text: str, rng: random.Random, _pool: str) -> str:
    """A developing story's first version: its first 40-70%, cut at a sentence end."""
    return first_part(text, rng.uniform(0.4, 0.7))


def later_cut(text: str, _rng: random.Random, _pool: str) -> str:
    """A cut of a story sent after the whole: its first 70%, cut at a sentence end."""
    return first_part(text, 0.7)


# Variant kinds decided before their original (the original is then the later
# version): the original must point at the variant.
BEFORE_ORIGINAL = {"developing_early"}


def quoting_negative(text: str, neighbour: str, rng: random.Random) -> str:
    """``text`` with a wire's credit line and one sentence of ``neighbour`` quoted in it.

    The credit line is drawn from :data:`BOILERPLATE`, the same that the
    ``boilerplate`` variant adds to copies.
    """
    own = sentences(text)
    # One sentence is a small part of its story: a "sentence" that is most of
    # it (a table with no full stop) would make the negative hold the story.
    theirs = [s for s in sentences(neighbour) if len(s) <= 0.2 * len(neighbour)]
    if not own or not theirs:
        return text
    quote = max(rng.sample(theirs, min(3, len(theirs))), key=len)
    at = rng.randrange(len(own) + 1)
    return rng.choice(BOILERPLATE) + "\n" + "".join(own[:at]) + quote + "".join(own[at:])


def sentences_replaced(fraction: float, others: list[str]) -> Callable[[str, random.Random, str], str]:
    """Replace ``fraction`` of the sentences (at least one) with sentences of other articles.

    Each replacement is the one closest in length among a few drawn at random:
    a rewritten sentence, not a pasted article.
    """
    pool = [s for text in others for s in sentences(text)]

    def replace(text: str, rng: random.Random, _pool: str) -> str:
        parts = sentences(text)
        k = max(1, round(len(parts) * fraction))
        own = set(parts)
        for i in rng.sample(range(len(parts)), min(k, len(parts))):
            drawn = [s for s in (rng.choice(pool) for _ in range(20)) if s not in own] or ["。"]
            n = len(parts[i])
            parts[i] = min(drawn, key=lambda s, n=n: abs(len(s) - n))
        return "".join(parts)

    return replace


# The sentence variants are made only of articles with at least this many
# sentences: "10% of the sentences" must be a tenth, not one of three.
MIN_SENTENCES = 10


def variants(others: list[str]) -> dict[str, Callable[[str, random.Random, str], str]]:
    return {
        "rewrap": rewrap,
        "punctuation": punctuation_width,
        "script": script_change,
        "boilerplate": boilerplate,
        "edits_2%": scattered_edits(0.02),
        "edits_5%": scattered_edits(0.05),
        "edits_10%": scattered_edits(0.10),
        "sentences_10%": sentences_replaced(0.10, others),
        "sentences_30%": sentences_replaced(0.30, others),
        "developing_early": early_version,
        "developing_cut": later_cut,
    }


@dataclass
class Labelled:
    originals: list[Article]
    negatives: list[Article]  # adjacent passages of the same sources, never copies
    sighan: bool


def labelled_set(per_file: int = 100, sighan: Path = SIGHAN) -> Labelled:
    originals = project_articles()
    negatives: list[Article] = []
    files = sighan_articles(per_file, sighan)
    rng = random.Random("negatives")
    for groups in files:
        originals.extend(groups[0::2])
        for n, group in enumerate(groups[1::2]):
            if n % 2:  # quotes the original just before it in the source
                group = Article(group.id, group.source, quoting_negative(group.text, groups[2 * n].text, rng))
            negatives.append(group)
    return Labelled(originals, negatives, bool(files))
