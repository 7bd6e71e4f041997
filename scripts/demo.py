"""`make demo`: a throwaway Redis, 2 workers, the sample articles streamed through, results shown.

Everything it starts, it stops, also when interrupted.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import orjson
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import RedisServer, Worker, free_port, newsflow_env, wait_for  # noqa: E402
from worker.errors import EXIT_REJECTED  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="newsflow-demo-"))
    newsflow = str(BIN / "newsflow")
    started: list[subprocess.Popen] = []
    server: RedisServer | None = None
    worker: Worker | None = None
    try:
        port = free_port()
        print(f"== starting a throwaway redis-server on port {port}")
        server = RedisServer(workdir / "redis", port=port)
        url = server.url
        env = newsflow_env({"NEWSFLOW_REDIS_URL": url, "NEWSFLOW_PREFIX": "demo"})
        client = redis.Redis.from_url(url)

        print("== starting 2 worker processes")
        worker = Worker(env, 2, "demo", workdir)

        metrics_port = free_port()
        print(f"== starting the Prometheus exporter: newsflow metrics --port {metrics_port}")
        started.append(
            subprocess.Popen(
                [newsflow, "metrics", "--port", str(metrics_port), "--addr", "127.0.0.1"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        wait_for(lambda: _scrape(metrics_url) is not None, 20, "the exporter")
        before = _scrape(metrics_url)

        print("== newsflow submit samples/ --wait")
        submitted = subprocess.run(
            [newsflow, "submit", "samples", "--wait", "--timeout", "120"], env=env, cwd=ROOT
        )
        # One sample is deliberately empty: --wait says "some rejected" with its documented exit code.
        if submitted.returncode != EXIT_REJECTED:
            print(
                f"== newsflow submit exited {submitted.returncode}; expected {EXIT_REJECTED} (some rejected)"
            )
            return 1
        print(
            f"== exit code {EXIT_REJECTED}: some articles were rejected, as expected "
            "(samples/10-feed.jsonl holds a deliberately empty one)"
        )
        after = _scrape(metrics_url)
        print(f"\n== curl {metrics_url} (newsflow_articles_total before -> after)")
        for series, value in after.items():
            if series.startswith("newsflow_articles_total"):
                print(f"  {series:50} {before.get(series, 0):g} -> {value:g}")

        print("\n== results (newest last)")
        for _entry, fields in client.xrange("demo:results"):
            result = orjson.loads(fields[b"result"])
            line = f"  {result.get('id') or '-':40} {result['status']:15}"
            if result.get("duplicate_of"):
                line += f" of {result['duplicate_of']}"
            elif result.get("keywords"):
                line += " keywords: " + " ".join(k["w"] for k in result["keywords"][:5])
            elif result.get("error"):
                line += f" {result['error']['code']}: {result['error']['message']}"
            if result.get("repeats_removed"):
                line += f" (repeats removed: {result['repeats_removed']})"
            print(line)

        print("\n== newsflow get samples/01-typhoon.txt (abridged)")
        out = subprocess.run(
            [newsflow, "get", "samples/01-typhoon.txt"], env=env, check=True, capture_output=True, cwd=ROOT
        ).stdout
        result = orjson.loads(out)
        print(f"  script={result['script']} text={result['text'][:40]}...")
        print("  tokens: " + " ".join(f"{w}/{p}" for w, p, _ in result["tokens"][:14]) + " ...")
        print(
            "  entities: "
            + ", ".join(
                f"{kind}: {[e['w'] for e in found]}" for kind, found in result["entities"].items() if found
            )
        )
        print("\n== newsflow status")
        subprocess.run([newsflow, "status"], env=env, check=False)
        status = orjson.loads(
            subprocess.run([newsflow, "status", "--json"], env=env, check=True, capture_output=True).stdout
        )
        submitted = _count_samples()
        verdict = "match" if status["processed"] == submitted == status["results_length"] else "DO NOT match"
        print(
            f"\n== newsflow status --json: {status['processed']} outcomes, "
            f"{status['results_length']} results for {submitted} articles submitted: counts {verdict}"
        )
        return 0 if verdict == "match" else 1
    finally:
        if worker is not None:
            worker.stop()
        for proc in reversed(started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if server is not None:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        print("\n== stopped the workers and the throwaway redis-server")


def _scrape(url: str) -> dict[str, float] | None:
    """The newsflow_ series of one Prometheus scrape, or None if the exporter is not up yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    found = {}
    for line in text.splitlines():
        if line.startswith("newsflow_"):
            series, _, value = line.rpartition(" ")
            found[series] = float(value)
    return found


def _count_samples() -> int:
    from producer.inputs import read_articles

    return sum(1 for _ in read_articles([str(ROOT / "samples")]))


if __name__ == "__main__":
    sys.exit(main())
