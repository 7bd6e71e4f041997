"""Facts written once: the tables in docs/ are the code's, and the README stays a first visit."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from scripts.gen_docs import GENERATED, render
from tests.support import ROOT
from worker.config import MEANING, Settings
from worker.keys import LAYOUT, Keys

# Pages that other work adds; the README and docs already point at them.
PLANNED = {"docs/entities.md", "docs/real-feeds.md", "docs/compose.md", "docs/result-format.md"}


@pytest.mark.parametrize("page", sorted(GENERATED))
def test_generated_tables_in_docs_match_the_code(page):
    text = (ROOT / page).read_text(encoding="utf-8")
    assert render(page, text) == text, f"{page} drifted from the code: run `make docs`"


def test_every_setting_has_one_line_of_meaning():
    assert [f.name for f in fields(Settings)] == list(MEANING)


def test_every_key_the_code_names_is_in_the_key_table():
    keys = Keys("<prefix>")
    named = {
        getattr(keys, name)
        for name, member in vars(Keys).items()
        if isinstance(member, property) and isinstance(getattr(keys, name), str)
    }
    named |= {
        keys.result("ID").replace("ID", "<id>"),
        keys.batch("B").replace("B", "<batch>"),
        keys.stats_minute(7).replace("7", "<minute>"),
        keys.worker("N@h").replace("N@h", "<node>"),
        keys.dedupe_shard(1, 2).replace("1", "<bucket>").replace("2", "<shard>"),
        keys.dedupe_docs(1).replace("1", "<bucket>"),
    }
    named.discard(keys.queue)  # a queue name, not a key: kombu stores it as queue_list
    assert named - {key for key, _, _ in LAYOUT} == set()


def test_readme_is_a_first_visit_and_its_links_lead_somewhere():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        base = page.parent.relative_to(ROOT)
        for target in re.findall(r"\]\(([^)#\s]+\.md)", page.read_text(encoding="utf-8")):
            path = (base / target).as_posix().removeprefix("./")
            path = re.sub(r"[^/]+/\.\./", "", path)
            assert (ROOT / path).exists() or path in PLANNED, f"{page.name} links to missing {target}"
