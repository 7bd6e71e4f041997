"""The result format of docs/result.schema.json, checked wherever the tests read results.

``assert_valid_result(doc)`` checks a result body; ``assert_valid(doc, name)``
checks one of the schema's other records (``results_entry``, ``record``,
``inbox_entry``, ``dead_entry``). ``check_stored(r, prefix)`` checks every
results entry, its per-id record and every dead entry a test left in Redis:
tests/conftest.py runs it after each test that has a prefix of its own.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import orjson
import redis
from jsonschema import Draft202012Validator

from tests.support import ROOT

SCHEMA_PATH = ROOT / "docs" / "result.schema.json"


@cache
def schema() -> dict[str, Any]:
    return orjson.loads(SCHEMA_PATH.read_bytes())


@cache
def _validator(name: str | None) -> Draft202012Validator:
    root = schema()
    target = root if name is None else {"$ref": f"#/$defs/{name}", "$defs": root["$defs"]}
    return Draft202012Validator(target)


_BRANCH = {"unique": "analysed", "duplicate": "analysed", "near_duplicate": "analysed"}


def problems(doc: Any, name: str | None = None) -> list[str]:
    """What is wrong with ``doc`` (a result body, or the schema's record ``name``); empty if nothing.

    ``doc`` is checked as JSON, as a consumer reads it (Python tuples are JSON arrays).
    """
    doc = orjson.loads(orjson.dumps(doc))
    found = list(_validator(name).iter_errors(doc))
    if found and name is None and isinstance(doc, dict):
        # The root is a oneOf: report against the branch the status names, not "valid under none".
        status = doc.get("status")
        branch = _BRANCH.get(status, status if status in ("rejected", "failed") else None)
        if branch is not None:
            found = list(_validator(branch).iter_errors(doc)) or found
    out = []
    for error in sorted(found, key=lambda e: list(e.absolute_path)):
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        out.append(f"{path}: {error.message[:300]}")
    return out


def assert_valid_result(doc: Any) -> None:
    found = problems(doc)
    assert not found, f"result {str(doc)[:200]} breaks docs/result.schema.json:\n" + "\n".join(found)


def assert_valid(doc: Any, name: str) -> None:
    found = problems(doc, name)
    assert not found, f"{name} {str(doc)[:200]} breaks docs/result.schema.json:\n" + "\n".join(found)


def _text(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode("utf-8", "replace") for k, v in fields.items()}


def check_stored(r: redis.Redis, prefix: str) -> int:
    """Validate what ``prefix`` holds in ``r``: results entries and bodies, records, dead entries.

    Returns how many results were checked.
    """
    checked = 0
    for _, raw in r.xrange(f"{prefix}:results"):
        fields = _text(raw)
        assert_valid(fields, "results_entry")
        body = orjson.loads(fields["result"])
        assert_valid_result(body)
        assert body["status"] == fields["status"]
        checked += 1
        if fields["id"]:
            record = _text(r.hgetall(f"{prefix}:result:{fields['id']}"))
            if record:  # a takedown or an expiry removes it
                assert_valid(record, "record")
    for _, raw in r.xrange(f"{prefix}:dead"):
        fields = _text(raw)
        assert_valid(fields, "dead_entry")
        assert_valid(orjson.loads(fields["error"]), "error")
    return checked
