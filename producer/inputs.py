"""Reading articles from the command line's paths: ``.txt``, ``.jsonl``, directories and ``-``.

A ``.txt`` file is one article whose id comes from its path. A ``.jsonl`` file
or standard input holds one JSON object per line. What cannot be read becomes
an article that the worker rejects with a clear code, so it shows up in the
results instead of vanishing.

Encodings: UTF-8 (with or without a BOM) is read as is. Bytes that are not
UTF-8 are given to charset-normalizer, limited to the Chinese legacy encodings
(GB18030, which covers GBK and GB2312, and Big5 / CP950 / Big5-HKSCS); they are
decoded only when it finds exactly the coherent reading, else rejected. Big5
bytes also decode without error as GB18030, into nonsense, so a strict decode
alone would mis-decode: the detector's check that the result reads as text is
what tells them apart. Bytes that are UTF-8 but for a few bad sequences are a
damaged UTF-8 file, not another encoding, and are rejected as ``invalid_utf8``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from worker.article import id_from_path, new_id

ARTICLE_SUFFIXES = (".txt", ".jsonl")


def read_articles(paths: Iterable[str], stdin: BinaryIO | None = None) -> Iterator[Any]:
    for name in paths:
        if name == "-":
            yield from read_jsonl(stdin or sys.stdin.buffer, "<stdin>")
            continue
        path = Path(name)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.suffix in ARTICLE_SUFFIXES):
                yield from read_path(child)
        elif path.exists():
            yield from read_path(path)
        else:
            raise FileNotFoundError(f"no such file or directory: {name}")


def read_path(path: Path) -> Iterator[Any]:
    if path.suffix == ".jsonl":
        with path.open("rb") as f:
            yield from read_jsonl(f, str(path))
        return
    yield read_text_file(path)


def read_text_file(path: Path) -> dict[str, Any]:
    data = path.read_bytes()
    article: dict[str, Any] = {"id": id_from_path(str(path))}
    text, error = decode(data)
    article["text"] = text
    if error:
        article["_reject"] = error
    return article


# What legacy encodings are tried for bytes that are not UTF-8.
CHINESE_ENCODINGS = ("gb18030", "big5", "cp950", "big5hkscs")
# Under this share of undecodable sequences, bytes are damaged UTF-8: GB18030
# or Big5 text read as UTF-8 fails on most of its non-ASCII bytes.
_DAMAGED_UTF8 = 0.05


def decode(data: bytes) -> tuple[str, dict[str, str] | None]:
    """Text of a file or line, and the rejection to attach if it cannot be read.

    UTF-8 first; then GB18030 or Big5 when the bytes are unambiguously one of
    them; anything else is reported (``invalid_utf8``, ``unknown_encoding``),
    never guessed.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        first_error = exc
    shown = data.decode("utf-8", "replace")
    high = sum(1 for b in data if b >= 0x80)
    if shown.count("\ufffd") < _DAMAGED_UTF8 * max(1, high):
        return shown, {
            "code": "invalid_utf8",
            "message": f"not valid UTF-8: {first_error.reason} at byte {first_error.start}",
        }
    text, _encoding = _legacy_chinese(data)
    if text is not None:
        return text, None
    if any(b >= 0x80 for b in data[: first_error.start]):
        # It began as UTF-8 with non-ASCII characters, then went bad: damaged
        # UTF-8 (too short for the share above to tell), not another encoding.
        return shown, {
            "code": "invalid_utf8",
            "message": f"not valid UTF-8: {first_error.reason} at byte {first_error.start}",
        }
    return shown, {
        "code": "unknown_encoding",
        "message": "not UTF-8, and not unambiguously GB18030 or Big5; convert it to UTF-8",
    }


def _legacy_chinese(data: bytes) -> tuple[str | None, str]:
    from charset_normalizer import from_bytes

    readings = [m for m in from_bytes(data, cp_isolation=list(CHINESE_ENCODINGS)) if m.chaos < 0.1]
    texts = {str(m) for m in readings}
    if len(texts) != 1:
        return None, ""
    match = readings[0]
    try:
        text = data.decode(match.encoding)  # strict: the detector may have dropped bytes
    except (UnicodeDecodeError, LookupError):
        return None, ""
    return text, match.encoding


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[Any]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        text, error = decode(line)
        if error:
            error = {**error, "message": f"{name}:{number}: {error['message']}"}
            yield {"id": new_id(), "text": text, "_reject": error}
            continue
        try:
            yield orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            yield {
                "id": new_id(),
                "text": text,
                "_reject": {"code": "bad_json", "message": f"{name}:{number}: not JSON: {exc}"},
            }
