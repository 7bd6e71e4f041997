"""The Node.js example in examples/node, run for real with node and the ``redis`` npm package."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support import ROOT, newsflow_env

EXAMPLE = ROOT / "examples" / "node"


@pytest.fixture(scope="module")
def node_example() -> str:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run the Node.js example; install Node.js to run this test")
    if not (EXAMPLE / "node_modules" / "redis").is_dir():
        # Cached next to the example (ignored by git), so only the first run needs the registry.
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--no-package-lock"],
            cwd=EXAMPLE,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"npm could not install the redis package: {done.stderr.strip()[-300:]}")
    return node


def test_node_example_submits_and_reads_its_results_through_a_group(
    node_example, env, start_worker, start_bridge
):
    start_worker()
    start_bridge("--block-ms", "200")
    node_env = newsflow_env(env) | {"REDIS_URL": env["NEWSFLOW_REDIS_URL"], "TIMEOUT_MS": "90000"}
    done = subprocess.run(
        [node_example, "submit-and-read.mjs"],
        cwd=EXAMPLE,
        env=node_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = {r["id"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert set(results) == {"node/1", "node/2", "node/3"}
    assert results["node/1"]["status"] == "unique" and results["node/1"]["title"] == "預算案三讀"
    assert results["node/2"]["meta"] == {"desk": "business"}
    assert results["node/3"]["status"] == "rejected"
    assert results["node/3"]["error"]["code"] == "missing_text"
