"""Reading articles from the command line's paths: files, directories and ``-``.

- A ``.txt`` file (any case: ``.TXT`` too) is one article whose id comes from
  its path relative to the root (``--root``, default the current directory),
  so ``newsflow submit ./samples/x.txt`` and ``newsflow get samples/x.txt``
  name the same article wherever they are typed from (:func:`path_id`).
- A ``.jsonl`` file holds one article object per line; a ``.json`` file holds
  one article object or a list of them.
- A directory is walked for those three kinds; every other file in it is
  skipped and reported (hidden files and directories are skipped quietly).
- ``-`` reads standard input: JSON lines, or with ``text=True`` plain text,
  one article per block of lines separated by a blank line.

An article object without an id gets one derived from its content
(:func:`content_id`), so running the same feed again is a no-op rather than
a second set of articles. What cannot be read becomes an article that the
worker rejects with a clear code, so it shows up in the results instead of
vanishing.

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

import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import xxhash

from worker.article import id_from_path

ARTICLE_SUFFIXES = (".txt", ".jsonl", ".json")

# Told about each file a directory walk leaves out: (path, why).
Skipped = Callable[[Path, str], None]


def read_articles(
    paths: Iterable[str],
    stdin: BinaryIO | None = None,
    *,
    root: str | None = None,
    text: bool = False,
    skipped: Skipped | None = None,
) -> Iterator[Any]:
    """Article objects from ``paths`` (files, directories, ``-``), in order.

    Args:
        paths: what the command line named.
        stdin: read for ``-`` (default: this process's standard input).
        root: ids of files are their paths relative to this (default: the current directory).
        text: ``-`` is plain text, one article per blank-line-separated block, not JSON lines.
        skipped: told about each file a directory walk leaves out.

    Raises:
        FileNotFoundError: a named path does not exist.
    """
    base = Path(root or os.getcwd())
    for name in paths:
        if name == "-":
            stream = stdin or sys.stdin.buffer
            yield from (read_text_blocks(stream) if text else read_jsonl(stream, "<stdin>"))
            continue
        path = Path(name)
        if path.is_dir():
            for child in walk(path, skipped):
                yield from read_path(child, base)
        elif path.exists():
            yield from read_path(path, base)
        else:
            raise FileNotFoundError(f"no such file or directory: {name}")


def walk(directory: Path, skipped: Skipped | None = None) -> Iterator[Path]:
    """The article files under ``directory``, sorted; the others are told to ``skipped``."""
    for child in sorted(directory.rglob("*")):
        relative = child.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts) or child.is_dir():
            continue
        if child.suffix.lower() in ARTICLE_SUFFIXES:
            yield child
        elif skipped is not None:
            skipped(child, "not .txt, .jsonl or .json")


def path_id(path: str | Path, root: str | Path | None = None) -> str:
    """The id of the article in file ``path``: its path relative to ``root`` (default: the current directory).

    ``./samples/x.txt``, ``samples//x.txt`` and an absolute path to the same
    file all give ``samples/x.txt`` from the project's directory. A file
    outside the root is named by its absolute path.
    """
    base = os.path.abspath(root or os.getcwd())
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, base)
    shown = absolute if relative == ".." or relative.startswith(".." + os.sep) else relative
    return id_from_path(shown)


def content_id(article: dict[str, Any]) -> str:
    """A stable id for an article object that brings none: ``c-`` and a hash of its fields.

    The same object submitted again gets the same id, so it is a no-op; two
    objects that differ in any field (text, title, meta, ...) get different ids.
    """
    digest = xxhash.xxh3_128_hexdigest(orjson.dumps(article, option=orjson.OPT_SORT_KEYS, default=str))
    return f"c-{digest}"


def read_path(path: Path, root: Path | None = None) -> Iterator[Any]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open("rb") as f:
            yield from read_jsonl(f, str(path))
        return
    if suffix == ".json":
        yield from read_json(path)
        return
    yield read_text_file(path, root)


def read_json(path: Path) -> Iterator[Any]:
    """A ``.json`` file: one article object, or a list of them."""
    data = path.read_bytes()
    text, error = decode(data)
    if error is None:
        try:
            found = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            error = {"code": "bad_json", "message": f"{path}: not JSON: {exc}"}
    if error is not None:
        yield {"id": content_id({"text": text}), "text": text, "_reject": error}
        return
    for article in found if isinstance(found, list) else [found]:
        yield with_id(article)


def read_text_blocks(stream: BinaryIO) -> Iterator[Any]:
    """Plain text: one article per block of lines, blocks separated by a blank line."""
    text, error = decode(stream.read())
    if error is not None:
        yield {"id": content_id({"text": text}), "text": text, "_reject": error}
        return
    for block in re.split(r"\n[ \t\u3000]*\n", text.replace("\r\n", "\n")):
        if block.strip():
            yield with_id({"text": block.strip("\n")})


def with_id(article: Any) -> Any:
    """``article`` with its content id if it is an object without an id (others are left to the worker)."""
    if isinstance(article, dict) and "id" not in article:
        return {"id": content_id(article), **article}
    return article


def read_text_file(path: Path, root: Path | None = None) -> dict[str, Any]:
    data = path.read_bytes()
    article: dict[str, Any] = {"id": path_id(path, root)}
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
            yield {"id": content_id({"text": text}), "text": text, "_reject": error}
            continue
        try:
            yield with_id(orjson.loads(text))
        except orjson.JSONDecodeError as exc:
            yield {
                "id": content_id({"text": text}),
                "text": text,
                "_reject": {"code": "bad_json", "message": f"{name}:{number}: not JSON: {exc}"},
            }
