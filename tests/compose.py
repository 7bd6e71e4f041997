"""Reading docker-compose.yml the way Compose does, to run its services without Docker."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.support import ROOT

COMPOSE = ROOT / "docker-compose.yml"
_VAR = re.compile(r"\$(\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])|(?=\})))")


def load(path: Path = COMPOSE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ``$$``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}`` and ``${VAR:?error}``,
    defaults nested as deep as they go."""
    out, i = [], 0
    while True:
        m = _VAR.search(text, i)
        if m is None:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        if m.group(1) == "$":
            out.append("$")
            i = m.end()
            continue
        name, op = m["name"], m["op"]
        if op is None:
            out.append(env.get(name, ""))
            i = m.end() + 1
            continue
        depth, j = 1, m.end()
        while depth:
            if text.startswith("${", j):
                depth, j = depth + 1, j + 2
                continue
            depth -= text[j] == "}"
            j += 1
        word = text[m.end() : j - 1]
        value = env.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise KeyError(f"{name}: {word}")
        out.append(interpolate(word, env) if unset and op.endswith("-") else (value or ""))
        i = j


def resolve(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return interpolate(value, env)
    if isinstance(value, list):
        return [resolve(v, env) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    return value
