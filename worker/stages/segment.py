"""Stage 3: segmentation and POS tagging in the article's own script.

Traditional text is converted to Simplified with OpenCC, segmented, and the
tokens are mapped back to the original characters by offset. jieba's
dictionary and HMM are trained on Simplified text, so this is both better
(SIGHAN AS F1 0.74 -> 0.82) and about 100x faster for ``jieba.posseg``.

The conversion must keep every character at its offset. OpenCC's phrase
tables almost always map n characters to n characters; where a conversion
changes length, that stretch is converted character by character instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import opencc

Token = tuple[str, str, int]  # (word in original script, POS, start offset)

DATA = Path(__file__).resolve().parent.parent / "data"
PROJECT_DICT = DATA / "userdict.txt"

# Runs that jieba would tear apart: URLs, e-mail addresses, numbers with
# separators, Latin words with inner dots or hyphens.
_PROTECTED = re.compile(
    r"https?://[^\s\u3000-\u303f\uff00-\uffef<>\"]+"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|\d+(?:[.,:/]\d+)+%?"
    r"|[A-Za-z]+(?:[.'-][A-Za-z]+)+",
    re.ASCII,
)
_CHUNK = re.compile(r"[^\s，。、；：！？「」『』（）,.;:!?()]+|[\s，。、；：！？「」『』（）,.;:!?()]+")


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def to_simplified(text: str) -> str:
    """Convert to Simplified Chinese, keeping every character at its offset."""
    return convert(text, "t2s")


def convert(text: str, config: str) -> str:
    """Convert with an OpenCC ``config``, keeping every character at its offset."""
    converter = _converter(config)
    converted = converter.convert(text)
    if len(converted) == len(text):
        return converted
    out = []
    for chunk in _CHUNK.findall(text):
        piece = converter.convert(chunk)
        if len(piece) != len(chunk):
            piece = "".join(_one_char(converter, ch) for ch in chunk)
        out.append(piece)
    return "".join(out)


def _one_char(converter: opencc.OpenCC, ch: str) -> str:
    piece = converter.convert(ch)
    return piece if len(piece) == 1 else ch


@dataclass
class Engine:
    """One segmentation engine: ``cut`` words and ``tag`` (word, POS) pairs."""

    name: str
    cut: Callable[[str], list[str]]
    tag: Callable[[str], list[tuple[str, str]]]


@cache
def engine(name: str = "jieba", user_dict: str = "") -> Engine:
    """Load an engine once per process, with the project and user dictionaries."""
    dicts = [PROJECT_DICT] + ([Path(user_dict)] if user_dict else [])
    if name == "jieba":
        import jieba
        import jieba.posseg

        jieba.setLogLevel(60)
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        for path in dicts:
            tokenizer.load_userdict(str(path))
        pos = jieba.posseg.POSTokenizer(tokenizer)
        return Engine(
            name,
            cut=lambda s: tokenizer.lcut(s, HMM=True),
            tag=lambda s: [(p.word, p.flag) for p in pos.cut(s, HMM=True)],
        )
    if name == "jieba-rs":
        try:
            import rjieba
        except ImportError:  # pragma: no cover - depends on the install
            raise RuntimeError("the jieba-rs engine needs: pip install 'newsflow[fast]'") from None
        rs = rjieba.Jieba()
        for path in dicts:
            for word, freq, tag in _read_dict(path):
                rs.add_word(word, freq, tag)
        return Engine(name, cut=lambda s: rs.cut(s, True), tag=lambda s: rs.tag(s, True))
    raise ValueError(f"unknown engine {name!r}")


def _read_dict(path: Path) -> list[tuple[str, int | None, str | None]]:
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if not parts or line.startswith("#"):
            continue
        freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        tag = parts[-1] if len(parts) > 1 and not parts[-1].isdigit() else None
        entries.append((parts[0], freq, tag))
    return entries


def tag(text: str, simplified: str, eng: Engine) -> list[Token]:
    """POS-tag ``text`` via its offset-aligned ``simplified`` form.

    Returns ``(word, pos, start)`` with ``text[start:start+len(word)] == word``.
    White space is not a token.
    """
    tokens: list[Token] = []
    for start, end, protected in _spans(simplified):
        if protected:
            tokens.append((text[start:end], "eng" if simplified[start].isalpha() else "m", start))
            continue
        offset = start
        for word, pos in eng.tag(simplified[start:end]):
            if not word.isspace():
                tokens.append((text[offset : offset + len(word)], pos, offset))
            offset += len(word)
    return tokens


def cut(text: str, simplified: str, eng: Engine) -> list[str]:
    """Words of ``text`` in its own script, white space dropped."""
    words: list[str] = []
    for start, end, protected in _spans(simplified):
        if protected:
            words.append(text[start:end])
            continue
        offset = start
        for word in eng.cut(simplified[start:end]):
            if not word.isspace():
                words.append(text[offset : offset + len(word)])
            offset += len(word)
    return words


def _spans(text: str) -> list[tuple[int, int, bool]]:
    """Split ``text`` into plain stretches and protected runs (URLs, numbers)."""
    spans: list[tuple[int, int, bool]] = []
    cursor = 0
    for match in _PROTECTED.finditer(text):
        if match.start() > cursor:
            spans.append((cursor, match.start(), False))
        spans.append((match.start(), match.end(), True))
        cursor = match.end()
    if cursor < len(text):
        spans.append((cursor, len(text), False))
    return spans
