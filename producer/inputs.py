"""Reading articles from the command line's paths: ``.txt``, ``.jsonl``, directories and ``-``.

A ``.txt`` file is one article whose id comes from its path. A ``.jsonl`` file
or standard input holds one JSON object per line. What cannot be read becomes
an article that the worker rejects with a clear code, so it shows up in the
results instead of vanishing.
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


def decode(data: bytes) -> tuple[str, dict[str, str] | None]:
    """Decode UTF-8 (with or without a BOM); anything else is reported, never guessed."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return data.decode("utf-8", "replace"), {
            "code": "invalid_utf8",
            "message": f"not valid UTF-8: {exc.reason} at byte {exc.start}",
        }


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[Any]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            text, _ = decode(line)
            yield {
                "id": new_id(),
                "text": text,
                "_reject": {"code": "bad_json", "message": f"{name}:{number}: not JSON: {exc}"},
            }
