"""How long noise takes: 100,000 random characters through ``newsflow process`` and ``segment --pos``.

    python -m bench.noise_speed [--chars 100000] [--kinds news,block] [--timeout 900]

Two kinds of noise, each one article (one line) of ``--chars`` characters:

- ``news``: characters drawn at random, with repetition, from the project's
  own news copy (samples/ and the tests' seed story), so their frequencies are
  those of real news: common characters, punctuation and digits. No
  mis-decoding makes such text, so it must be analysed, not rejected.
- ``block``: characters drawn uniformly from the main CJK Unified Ideographs
  block (U+4E00-U+9FA5), nearly all of them rare.

Each run is a real ``newsflow process`` (the jieba engine, every stage) and a
real ``newsflow segment --pos``, timed from the outside (start-up included;
it is shown apart), with the status the article got and, for ``process``, the
time its stages took by the result's own ``timings_ms``. Run it on two
checkouts (``PYTHONPATH=<checkout>``) to compare before and after; the figures
go in docs/real-feeds.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def news_characters() -> list[str]:
    copy = [p.read_text("utf-8") for p in sorted((ROOT / "samples").glob("*.txt"))]
    copy.append((ROOT / "tests" / "data" / "seed_story.txt").read_text("utf-8"))
    return [c for c in "".join(copy) if not c.isspace()]


def noise(kind: str, n: int, seed: int = 1) -> str:
    rng = random.Random(f"{seed}:{kind}")
    if kind == "news":
        pool = news_characters()
        return "".join(rng.choice(pool) for _ in range(n))
    if kind == "block":
        return "".join(chr(rng.randrange(0x4E00, 0x9FA6)) for _ in range(n))
    raise ValueError(kind)


def timed(args: list[str], stdin: bytes, timeout: float) -> tuple[float, str]:
    env = dict(os.environ, NEWSFLOW_ENGINE="jieba")
    started = time.perf_counter()
    try:
        done = subprocess.run(args, input=stdin, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - started, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return seconds, f"exit {done.returncode}: {done.stderr.decode()[-200:]}"
    return seconds, done.stdout.decode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=100_000)
    ap.add_argument("--kinds", default="news,block")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args(argv)
    cli = [sys.executable, "-m", "producer.cli"]
    # Start-up (imports, dictionaries) is measured once and shown apart.
    startup, _ = timed([*cli, "segment", "--pos", "-"], "预热\n".encode(), args.timeout)
    print(f"{args.chars:,} characters per article; start-up of segment alone {startup:.1f} s")
    print(f"  {'noise':<6} {'command':<14} {'seconds':>8}  outcome")
    for kind in args.kinds.split(","):
        text = noise(kind, args.chars)
        article = json.dumps({"id": f"noise-{kind}", "text": text}, ensure_ascii=False).encode() + b"\n"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "noise.jsonl"
            path.write_bytes(article)
            seconds, out = timed([*cli, "process", str(path)], b"", args.timeout)
        status = out
        if out.startswith("{"):
            result = json.loads(out)
            status = result["status"]
            if status == "rejected":
                status += " " + result["error"]["code"]
            # The stages' own clock: what the article costs a warm worker.
            status += f"; stages {sum(result.get('timings_ms', {}).values()) / 1000:.1f} s"
            if result.get("hmm_skipped"):
                status += f", hmm_skipped {result['hmm_skipped']:,}"
        print(f"  {kind:<6} {'process':<14} {seconds:>8.1f}  {status}")
        seconds, out = timed([*cli, "segment", "--pos", "-"], text.encode() + b"\n", args.timeout)
        outcome = f"{len(out.split('  '))} tokens" if not out.startswith(("exit", "timed")) else out
        print(f"  {kind:<6} {'segment --pos':<14} {seconds:>8.1f}  {outcome}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
