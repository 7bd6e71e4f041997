"""The README's five-minute tour, run exactly as written, twice in a row.

The commands are the ``sh`` blocks of the README's tour section, so the test
fails when the README drifts. They run in bash from the project's directory,
with ``REDIS_PORT`` set to a free port (the tour's own recipe starts a Redis
there), and the venv in place as ``make install`` leaves it. The second run
meets the state of the first: the samples, the redis-cli entry and the
examples are all re-submissions, which must work as well. The Node block
needs node and npm (and the ``redis`` package, installed once); without them
it is left out with a reason.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import redis

from tests.support import ROOT, free_port, wait_for

# Real redis-server and worker processes, started by the README's own commands.
pytestmark = pytest.mark.e2e

README = ROOT / "README.md"


def tour_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def node_usable() -> str | None:
    """None when the Node block can run; else why not."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node and npm are not installed"
    if (ROOT / "examples" / "node" / "node_modules" / "redis").is_dir():
        return None
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--no-package-lock"],
        cwd=ROOT / "examples" / "node",
        capture_output=True,
        text=True,
        timeout=300,
    )
    return None if done.returncode == 0 else f"npm could not install the redis package: {done.stderr[-200:]}"


def test_the_tour_has_what_it_promises():
    blocks = tour_blocks()
    script = "\n".join(blocks)
    assert ". .venv/bin/activate" in script
    assert "6379" not in script and "localhost" not in script
    assert 'redis-cli -u "$NEWSFLOW_REDIS_URL"' in script
    assert "examples/python/submit_and_wait.py" in script and "node submit-and-read.mjs" in script
    assert '"text": "..."' not in README.read_text(encoding="utf-8")


def test_the_readme_tour_runs_as_written_twice(tmp_path: Path):
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("the tour starts from `make install`'s .venv")
    blocks = tour_blocks()
    skipped_node = node_usable()
    if skipped_node:
        blocks = [b for b in blocks if "node submit-and-read.mjs" not in b]
    port = free_port()
    script = tmp_path / "tour.sh"
    script.write_text("set -e\n" + "\n".join(blocks) + "\nkill %1 %2\nwait\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "VIRTUAL_ENV"))}
    env["REDIS_PORT"] = str(port)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)
    client = redis.Redis(port=port)
    outputs = []
    try:
        for _run in range(2):
            proc = subprocess.Popen(
                ["bash", str(script)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
            try:
                out, _ = proc.communicate(timeout=420)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                raise AssertionError(f"the tour hung:\n{out[-3000:]}") from None
            assert proc.returncode == 0, out[-4000:]
            outputs.append(out)
    finally:
        try:
            client.shutdown(nosave=True)
        except redis.RedisError:
            pass
    for out in outputs:
        assert "exit code 4" in out, out[-3000:]
        assert "9 unique, 4 duplicate, 1 near_duplicate, 1 rejected" in out
        assert "Traceback" not in out
        assert re.search(r"py/1 +(unique|near_duplicate|duplicate) ", out) and re.search(
            r"py/3 +rejected", out
        )
        if not skipped_node:
            assert '"id":"node/1"' in out and '"id":"node/3"' in out
    assert "1 unique" in outputs[0]  # newsflow wait cli/1
    wait_for(lambda: not _listening(port), 10, "the tour's Redis to stop")
    if skipped_node:
        pytest.skip(f"the tour passed twice without its Node block: {skipped_node}")


def _listening(port: int) -> bool:
    try:
        redis.Redis(port=port, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False
    return True
