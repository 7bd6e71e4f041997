"""The article record, its validation, and ids.

Pure Python: no Celery, no Redis, no jieba, so the producer side can import it.
Every way in (``newsflow submit``, the inbox bridge, ``newsflow.submit`` by
name) ends in :func:`parse_article`, so one table of rejection codes holds for
all of them.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any

import xxhash

from worker.errors import BadInput
from worker.result_body import not_analysed

ID_PATTERN = re.compile(r"[A-Za-z0-9._/-]{1,128}")
PASSTHROUGH = ("title", "source", "url", "published_at")
KNOWN_FIELDS = frozenset(("id", "text", "meta", *PASSTHROUGH))

# Control characters other than tab, newline and carriage return make text that
# downstream tools choke on; they are rejected rather than silently dropped.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A control character or a surrogate (what "surrogateescape" leaves of bytes that are not UTF-8).
_SUSPECT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
# A Unicode letter or number (category L* or N*: str.isalnum, which is what \w means less "_").
_LETTER = re.compile(r"[^\W_]")


def valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def new_id() -> str:
    """A unique, time-ordered id: UTC time to the millisecond plus 48 random bits."""
    now = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now))
    return f"{stamp}.{int(now * 1000) % 1000:03d}-{os.urandom(6).hex()}"


def id_from_path(path: str) -> str:
    """A stable id for a file: its path in the id charset, hashed when too long."""
    cleaned = re.sub(r"[^A-Za-z0-9._/-]+", "_", path.replace(os.sep, "/")).strip("/") or "_"
    cleaned = re.sub(r"/+", "/", cleaned)
    if len(cleaned) <= 128:
        return cleaned
    digest = xxhash.xxh3_64_hexdigest(path.encode("utf-8", "surrogatepass"))
    return f"{cleaned[-(128 - 17) :].lstrip('/')}-{digest}"


def text_hash(text: str) -> str:
    """Identity of a submitted text: same id + same hash is the same article."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True)
class Rejection(BadInput):
    """Bad input in an article: never retried, reported as a ``rejected`` result."""

    code: str
    message: str

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def result(self, article_id: str | None, worker: str) -> dict[str, Any]:
        """The ``rejected`` result body (see :func:`worker.result_body.not_analysed`)."""
        return not_analysed(article_id, "rejected", self.as_error(), worker)


@dataclass(frozen=True)
class Article:
    id: str
    text: str
    title: str | None = None
    source: str | None = None
    url: str | None = None
    published_at: str | None = None
    meta: dict[str, Any] | None = None
    submitted_at: float | None = field(default=None, compare=False)
    # What was accepted but not as given: [{"code", "message"}], shown in the result.
    warnings: tuple[dict[str, str], ...] = ()

    def passthrough(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: getattr(self, name) for name in PASSTHROUGH if getattr(self, name) is not None
        }
        if self.meta is not None:
            out["meta"] = self.meta
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


def parse_article(raw: object, *, max_chars: int) -> Article:
    """Validate one submitted article object, raising :class:`Rejection` if bad.

    ``raw`` is what came in: a dict from JSON, an inbox entry decoded to str, or
    a file read by the producer. ``_submitted_at`` is the producer's stamp.
    """
    if not isinstance(raw, dict):
        raise Rejection("not_an_object", f"an article must be a JSON object, got {_kind(raw)}")
    article_id = raw.get("id")
    if not valid_id(article_id):
        if article_id is None:
            raise Rejection("missing_id", "the article has no id")
        shown = article_id if isinstance(article_id, str) else _kind(article_id)
        raise Rejection("bad_id", f"id must be 1-128 characters of [A-Za-z0-9._/-], got {str(shown)[:80]!r}")
    early = raw.get("_reject")
    if isinstance(early, dict):  # the producer found the input unreadable
        raise Rejection(str(early.get("code", "bad_input")), str(early.get("message", "")))
    text = raw.get("text")
    if text is None:
        raise Rejection("missing_text", "the article has no text field")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejection(
                "invalid_utf8", f"text is not valid UTF-8: {exc.reason} at byte {exc.start}"
            ) from None
    if not isinstance(text, str):
        raise Rejection("bad_field", f"text must be a string, got {_kind(text)}")
    # One scan finds whether either of the checks below has anything to find (most text: no).
    suspect = _SUSPECT.search(text) is not None
    if suspect and _has_surrogates(text):
        raise Rejection("invalid_utf8", "text contains bytes that are not valid UTF-8")
    if len(text) > max_chars:
        raise Rejection("too_large", f"text has {len(text):,} characters; the limit is {max_chars:,}")
    if not text.strip():
        raise Rejection("empty_text", "text is empty or only whitespace")
    bad = _CONTROL.search(text) if suspect else None
    if bad:
        raise Rejection(
            "control_chars", f"text contains control character U+{ord(bad.group()):04X} at {bad.start()}"
        )
    if not _has_letter(text):
        # Nothing to segment, and no letters to fingerprint: every such text
        # would look like a copy of every other.
        raise Rejection("no_letters", "text has no letters or digits (only punctuation, symbols or emoji)")
    fields: dict[str, Any] = {}
    for name in PASSTHROUGH:
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise Rejection("bad_field", f"{name} must be a string, got {_kind(value)}")
        fields[name] = value
    meta = raw.get("meta")
    if meta is not None and not isinstance(meta, dict):
        raise Rejection("bad_meta", f"meta must be a JSON object, got {_kind(meta)}")
    warnings: list[dict[str, str]] = []
    if "published_at" in fields:
        given = fields["published_at"]
        parsed = published_at(given)
        if parsed is None:
            # The text is still worth analysing: keep the value where a reader finds it, and say so.
            del fields["published_at"]
            meta = {**(meta or {}), "published_at": given}
            warnings.append(
                {
                    "code": "bad_published_at",
                    "message": f"published_at {given[:40]!r} is not a date newsflow reads "
                    "(ISO 8601, YYYY/MM/DD HH:MM or RFC 2822); kept as meta.published_at",
                }
            )
        else:
            fields["published_at"] = parsed
    submitted = raw.get("_submitted_at")
    return Article(
        id=str(article_id),
        text=text,
        meta=meta,
        submitted_at=float(submitted) if isinstance(submitted, int | float) else None,
        warnings=tuple(warnings),
        **fields,
    )


def _kind(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _has_letter(text: str) -> bool:
    return _LETTER.search(text) is not None


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?")
# Feeds' own form: 2026/11/28, 2026/11/28 10:00, 2026/11/28 10:00:05 (also with - or . between).
_SLASHED = re.compile(
    r"(?P<y>\d{4})[/.](?P<m>\d{1,2})[/.](?P<d>\d{1,2})"
    r"(?:[ T](?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?"
)


def published_at(value: str) -> str | None:
    """``value`` as ISO 8601 if it is a date in a common feed form, else None.

    ISO 8601 is kept exactly as given. ``YYYY/MM/DD[ HH:MM[:SS]]`` and RFC 2822
    (``Fri, 28 Nov 2026 10:00:00 +0800``) are rewritten as ISO 8601; a time
    without a zone stays without one rather than being given a guessed zone.
    """
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    value = value.strip()
    if _ISO.fullmatch(value):
        return value
    slashed = _SLASHED.fullmatch(value)
    try:
        if slashed:
            parts = {k: int(v) for k, v in slashed.groupdict().items() if v is not None}
            date = datetime(
                parts["y"], parts["m"], parts["d"], parts.get("H", 0), parts.get("M", 0), parts.get("S", 0)
            )
            return date.date().isoformat() if slashed["H"] is None else date.isoformat()
        date = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return date.isoformat()
