"""``submit --wait`` and ``wait`` for scripts: exit codes, summary, --json, no worker, Ctrl-C; inputs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from producer.cli import print_summary
from tests.support import ROOT, newsflow_env, wait_for
from worker.errors import EXIT_FAILED, EXIT_OK, EXIT_REJECTED, EXIT_TIMED_OUT, EXIT_USAGE

GOOD = "颱風今天清晨在東部沿海登陸，氣象局發布陸上警報，各地學校停課一天。"


def newsflow(env, *args, cwd=ROOT, stdin=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "producer.cli", *args],
        env=newsflow_env(env),
        capture_output=True,
        text=True,
        cwd=cwd,
        input=stdin,
        timeout=timeout,
    )


def test_samples_show_the_some_rejected_exit_code(env, start_worker):
    start_worker(2)
    ran = newsflow(env, "submit", "samples/", "--wait", "--quiet")
    assert ran.returncode == EXIT_REJECTED, ran.stderr
    assert "1 rejected" in ran.stdout and "9 unique" in ran.stdout
    assert "1 articles were rejected" not in ran.stderr and "1 article was rejected" in ran.stderr
    # Again, as JSON: every id is already done, so this is immediate, and the same.
    ran = newsflow(env, "submit", "samples/", "--wait", "--json")
    summary = orjson.loads(ran.stdout)
    assert summary["counts"] == {
        "unique": 9,
        "duplicate": 4,
        "near_duplicate": 1,
        "rejected": 1,
        "failed": 0,
        "timed_out": 0,
    }
    assert summary["exit_code"] == ran.returncode == EXIT_REJECTED


def test_all_good_is_exit_0_and_wait_by_path_finds_them(env, start_worker, tmp_path):
    tmp_path = tmp_path / "feed"  # apart from the worker's log
    tmp_path.mkdir()
    (tmp_path / "a.TXT").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.json").write_text(orjson.dumps({"id": "j/1", "text": GOOD + "又及。"}).decode())
    (tmp_path / "notes.md").write_text("not an article")
    start_worker(1)
    ran = newsflow(env, "submit", str(tmp_path), "--wait", "--root", str(tmp_path))
    assert ran.returncode == EXIT_OK, ran.stderr
    assert "2 results" in ran.stdout
    assert "skipped 1 file (not .txt, .jsonl or .json)" in ran.stderr and "notes.md" in ran.stderr
    # ids of paths are relative to --root; get and wait normalise a path as submit does
    got = newsflow(env, "get", "a.TXT", cwd=tmp_path)
    assert got.returncode == 0 and orjson.loads(got.stdout)["id"] == "a.TXT"
    got = newsflow(env, "get", "./a.TXT", cwd=tmp_path)
    assert got.returncode == 0
    waited = newsflow(env, "wait", "./a.TXT", "j/1", cwd=tmp_path)
    assert waited.returncode == EXIT_OK and "2 results" in waited.stdout


def test_no_worker_warns_then_times_out_with_exit_1(env, tmp_path):
    (tmp_path / "one.txt").write_text(GOOD, encoding="utf-8")
    started = time.monotonic()
    ran = newsflow(env, "submit", str(tmp_path / "one.txt"), "--wait", "--timeout", "7")
    assert ran.returncode == EXIT_TIMED_OUT
    assert "no worker serves prefix" in ran.stderr and "newsflow worker" in ran.stderr
    assert "timed out with 1 article still queued" in ran.stderr
    assert "newsflow wait" in ran.stderr
    assert time.monotonic() - started < 60


def test_ctrl_c_says_what_stays_queued_and_wait_finds_it(env, start_worker, tmp_path):
    (tmp_path / "one.txt").write_text(GOOD, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer.cli", "submit", "one.txt", "--wait"],
        env=newsflow_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    from redis import Redis

    r = Redis.from_url(env["NEWSFLOW_REDIS_URL"])
    prefix = env["NEWSFLOW_PREFIX"]
    wait_for(lambda: r.llen(f"{prefix}:{prefix}") >= 1, 30, "the article queued")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    # 130, or the end by the signal itself, which a shell reports as 130 too: Python ends
    # that way after a Ctrl-C that landed inside an import, though main() caught it.
    assert proc.returncode in (130, -signal.SIGINT), err
    assert "1 article has no result yet; they stay queued" in err
    assert "newsflow wait one.txt" in err
    start_worker(1)
    ran = newsflow(env, "wait", "one.txt", cwd=tmp_path)
    assert ran.returncode == EXIT_OK and "1 unique" in ran.stdout


def test_an_empty_directory_is_a_mistake(env, tmp_path):
    ran = newsflow(env, "submit", str(tmp_path), "--wait")
    assert ran.returncode == EXIT_USAGE
    assert "nothing to submit" in ran.stderr and "Traceback" not in ran.stderr


@pytest.mark.parametrize(
    ("statuses", "pending", "code"),
    [
        (["unique", "duplicate", "near_duplicate"], [], EXIT_OK),
        (["unique", "rejected"], [], EXIT_REJECTED),
        (["rejected", "failed"], [], EXIT_FAILED),
        (["failed"], ["x"], EXIT_TIMED_OUT),
    ],
)
def test_the_worst_outcome_decides_the_exit_code(statuses, pending, code, capsys):
    assert print_summary([{"status": s} for s in statuses], 1.0, pending=pending) == code
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 1
    assert (code == EXIT_OK) == (err == "")


def test_process_exits_0_whatever_the_statuses(tmp_path):
    lines = [{"id": "p/1", "text": GOOD}, {"id": "p/2", "text": "   "}, {"id": "p/3", "text": "!!!"}]
    ran = newsflow({}, "process", "-", stdin="\n".join(orjson.dumps(x).decode() for x in lines))
    assert ran.returncode == 0
    assert [orjson.loads(x)["status"] for x in ran.stdout.splitlines()] == ["unique", "rejected", "rejected"]


def test_plain_text_on_stdin_is_one_article_per_block():
    ran = newsflow({}, "process", "-", "--text", stdin=f"{GOOD}\n第二行。\n\n   \n市政府宣布新的交通計畫。\n")
    results = [orjson.loads(x) for x in ran.stdout.splitlines()]
    assert [r["status"] for r in results] == ["unique", "unique"]
    assert results[0]["id"].startswith("c-")
    again = newsflow(
        {}, "process", "-", "--text", stdin=f"{GOOD}\n第二行。\n\n   \n市政府宣布新的交通計畫。\n"
    )
    assert [orjson.loads(x)["id"] for x in again.stdout.splitlines()] == [r["id"] for r in results]


def test_jsonl_without_ids_gets_stable_content_ids(tmp_path: Path):
    from producer.inputs import read_articles

    feed = tmp_path / "feed.jsonl"
    feed.write_text(
        "\n".join(
            orjson.dumps(x).decode() for x in [{"text": GOOD}, {"text": GOOD, "title": "t"}, {"text": GOOD}]
        )
    )
    first = [a["id"] for a in read_articles([str(feed)])]
    assert first == [a["id"] for a in read_articles([str(feed)])]
    assert first[0] == first[2] != first[1]


def test_published_at_feed_forms_and_a_kept_unreadable_one():
    from worker.article import parse_article

    def parsed(value):
        return parse_article({"id": "x", "text": GOOD, "published_at": value}, max_chars=1000)

    assert parsed("2026/11/28 10:00").published_at == "2026-11-28T10:00:00"
    assert parsed("Fri, 28 Nov 2026 10:00:00 +0800").published_at == "2026-11-28T10:00:00+08:00"
    assert parsed("2026-11-28T10:00:00Z").published_at == "2026-11-28T10:00:00Z"
    odd = parsed("下週二")
    assert odd.published_at is None and odd.meta == {"published_at": "下週二"}
    assert odd.passthrough()["warnings"][0]["code"] == "bad_published_at"


def test_wait_refuses_an_invalid_id(env):
    ran = newsflow(env, "wait", "not an id")
    assert ran.returncode == EXIT_USAGE and "invalid id 'not an id'" in ran.stderr
