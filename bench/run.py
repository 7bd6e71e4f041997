"""The benchmark suite: throughput, scaling, latency and memory, each compared in one run.

    python -m bench.run --profile quick     # 5,000 articles, all cores (make bench)
    python -m bench.run --profile full      # 20,000 articles, 1, 2, 4, ... processes (make bench-full)
    python -m bench.run --lengths 400-560 --procs 2 --engines jieba-rs --skip-latency

For each engine and process count it runs the same stage composition
(worker/pipeline.py) on the same articles in a bare ``multiprocessing`` pool
and through the real path (submit -> Redis -> N worker processes -> results
stream), alternating ``--rounds`` times (2: bare, newsflow, bare, newsflow,
each on half the articles). The ratio of the two is the figure that matters:
the machine may be shared and noisy, but both halves of a ratio run
interleaved, minutes apart at most.
Prints tables and writes bench/out/report.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import redis

from bench.corpus import SIGHAN, stream
from bench.stages import report as stage_report
from tests.support import Bridge, RedisServer, Worker, newsflow_env
from worker import pipeline
from worker.config import Settings
from worker.dedupe.index import BUCKETS, Buckets, MemoryIndex, Registration
from worker.dedupe.redis_index import RedisIndex
from worker.keys import Keys
from worker.stages import fingerprint, segment

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
# Articles per configuration. quick measures at every core (`make bench`, about
# 7 minutes on 2 cores); full adds the scaling steps 1, 2, 4, ... (`make bench-full`).
PROFILES = {"quick": 5_000, "full": 20_000, "smoke": 300}
LATENCY_SECONDS = {"quick": 10, "full": 20, "smoke": 5}
# The share of the articles the entity model's rows run.
MODEL_SHARE = 0.2
# Articles of 400-560 characters in the stage table (bench/stages.py).
STAGE_ARTICLES = {"quick": 200, "full": 600, "smoke": 50}


# -- bare pool -----------------------------------------------------------------

_state: dict[str, Any] = {}


def _bare_init(decisions: dict[str, Any]) -> None:
    _state["index"] = _Decided(decisions)


class _Decided:
    """The dedupe decisions the shared index made, replayed: same work per article as the real path."""

    def __init__(self, decisions: dict[str, Any]) -> None:
        self.decisions = decisions

    def decide(self, entry: Any) -> Any:
        return self.decisions[entry.id]

    def forget(self, article_id: str, fingerprint: str) -> None:  # pragma: no cover
        pass


def _bare_chunk(chunk: list[dict[str, Any]]) -> int:
    analyser, settings = _state["analyser"], _state["settings"]
    size = 0
    for raw in chunk:
        outcome = pipeline.process(raw, _state["index"], analyser, settings, worker="bare")
        size += len(orjson.dumps(outcome.result))
    return size


def decide_all(articles: list[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """The dedupe decision of every article, made once, in order, as the shared index makes them.

    The bare pool replays them, so that it analyses the same articles as the
    workers (a copy judged a duplicate skips analysis in both).
    """
    index, decisions = MemoryIndex(), {}
    for raw in articles:
        # With the sketch, as the workers decide: near-duplicates decide which
        # copies count as exact duplicates (and so skip analysis).
        prepared = pipeline.prepare(raw, settings)
        if isinstance(prepared, pipeline.Prepared):
            decisions[prepared.entry.id] = index.decide(prepared.entry)
    return decisions


def run_bare(
    articles: list[dict[str, Any]], procs: int, settings: Settings, decisions: dict[str, Any]
) -> dict[str, Any]:
    analyser = pipeline.Analyser.from_settings(settings)
    analyser.warm()
    _state.update(analyser=analyser, settings=settings)  # loaded before fork: shared pages
    gc.freeze()  # as the worker's pool parent does before it forks (worker/app.py)
    chunks = [articles[i : i + settings.batch_size] for i in range(0, len(articles), settings.batch_size)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs, initializer=_bare_init, initargs=(decisions,)) as pool:
        children = psutil.Process().children()
        cpu_before = _cpu(children)
        started = time.perf_counter()
        total_bytes = sum(pool.imap_unordered(_bare_chunk, chunks))
        elapsed = time.perf_counter() - started
        cpu = _cpu(children) - cpu_before
    return {
        "articles": len(articles),
        "seconds": elapsed,
        "rate": len(articles) / elapsed,
        "result_bytes": total_bytes,
        "cpu_ms_per_article": cpu * 1000 / len(articles),
    }


def _cpu(processes: list[psutil.Process]) -> float:
    """CPU seconds (user + system) the ``processes`` have used; one that has ended counts nothing."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


# -- the real path ---------------------------------------------------------------


class Deployment:
    """A throwaway redis-server and one ``newsflow worker`` with ``procs`` children (tests/support.py)."""

    def __init__(self, procs: int, env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
        self.server = RedisServer(self.dir / "redis")
        self.url = self.server.url
        self.redis = redis.Redis.from_url(self.url)
        self.env = dict(
            env,
            NEWSFLOW_REDIS_URL=self.url,
            NEWSFLOW_PREFIX="bench",
            NEWSFLOW_LOG_FORMAT="json",
            NEWSFLOW_RESULT_TTL="3600",
        )
        self.settings = Settings.from_env(newsflow_env(self.env))
        self.worker = Worker(self.env, procs, "bench", self.dir, loglevel="ERROR")

    def children(self) -> list[psutil.Process]:
        return psutil.Process(self.worker.proc.pid).children(recursive=True)

    def stop(self) -> None:
        self.worker.stop(30)
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _wait(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.02)


def run_real(
    articles: list[dict[str, Any]],
    procs: int,
    engine: str,
    entities: str = "model",
    aged: list[Registration] | None = None,
) -> dict[str, Any]:
    from producer.client import Client

    deployment = Deployment(procs, {"NEWSFLOW_ENGINE": engine, "NEWSFLOW_ENTITIES": entities})
    try:
        client = Client(deployment.settings)
        results_key = client.keys.results
        if aged:
            age(deployment, aged)
        # Warm up: the worker is up and has loaded its dictionaries once this has a result.
        client.wait([client.submit({"id": "warmup", "text": "预热文章。"})], timeout=120)
        base = deployment.redis.xlen(results_key)
        before = deployment.redis.info("memory")["used_memory"]
        workers = [psutil.Process(deployment.worker.proc.pid), *deployment.children()]
        me = psutil.Process()
        cpu_before = _redis_cpu(deployment.redis)
        workers_before, me_before = _cpu(workers), _cpu([me])
        started = time.perf_counter()
        client.submit_many(articles)
        queued_bytes = deployment.redis.info("memory")["used_memory"] - before
        _wait(lambda: deployment.redis.xlen(results_key) >= base + len(articles), 3600)
        elapsed = time.perf_counter() - started
        redis_cpu = _redis_cpu(deployment.redis) - cpu_before
        worker_cpu, client_cpu = _cpu(workers) - workers_before, _cpu([me]) - me_before
        memory = worker_memory(deployment)
        return {
            "articles": len(articles),
            "seconds": elapsed,
            "rate": len(articles) / elapsed,
            "memory": memory,
            "queued_bytes_upper_bound": queued_bytes,
            "redis_cpu_ms_per_article": redis_cpu * 1000 / len(articles),
            "redis_busy": redis_cpu / elapsed,
            # the worker's parent and its children; the submitting (and waiting) client
            "cpu_ms_per_article": worker_cpu * 1000 / len(articles),
            "client_cpu_ms_per_article": client_cpu * 1000 / len(articles),
        }
    finally:
        deployment.stop()


def aged_entries(articles: list[dict[str, Any]], per_bucket: int) -> list[Registration]:
    """What ``per_bucket`` articles in each older bucket of the dedupe window register.

    Made from the benchmark's own articles read backwards: the same kind of
    text, but no 3-gram in common with them, so no decision changes and both
    halves of a ratio still analyse the same articles.
    """
    out: list[Registration] = []
    for i in range(per_bucket * BUCKETS):
        text = articles[i % len(articles)]["text"][::-1]
        out.append(Registration.of(f"aged-{i}", fingerprint.letters(segment.to_simplified(text))))
    return out


def age(deployment: Deployment, entries: list[Registration]) -> None:
    """Register ``entries`` spread over the older buckets of the dedupe window, a bucket at a time.

    A deployment older than its window (7 days by default) holds documents in
    all BUCKETS + 1 buckets, and every decision then looks its fields up in
    each; a fresh Redis holds only the newest bucket.
    """
    s = deployment.settings
    span = Buckets(s.dedupe_window).span
    per_bucket = len(entries) // BUCKETS
    for back in range(1, BUCKETS + 1):
        index = RedisIndex(
            deployment.redis,
            Keys(s.prefix),
            s.dedupe_window,
            threshold=s.near_threshold,
            shards=s.dedupe_shards,
            clock=lambda back=back: time.time() - back * span,
        )
        chunk = entries[(back - 1) * per_bucket : back * per_bucket]
        for at in range(0, len(chunk), 500):
            index.decide_many(chunk[at : at + 500])


def _redis_cpu(client: redis.Redis) -> float:
    """CPU seconds redis-server has used (user + system)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def worker_memory(deployment: Deployment) -> dict[str, Any]:
    rows = [row for child in deployment.children() if (row := _memory(child))]
    parent = _memory(psutil.Process(deployment.worker.proc.pid)) or {"rss_mb": 0.0, "pss_mb": 0.0}
    return {
        "children": rows,
        "parent_rss_mb": parent["rss_mb"],
        "pool_pss_mb": parent["pss_mb"] + sum(r["pss_mb"] for r in rows),
    }


def _memory(process: psutil.Process) -> dict[str, Any] | None:
    """RSS, PSS and USS in MB; PSS and USS are 0 where the kernel gives no smaps."""
    try:
        rss = process.memory_info().rss / 2**20
    except psutil.Error:
        return None
    try:
        info = process.memory_full_info()
        pss, uss = info.pss / 2**20, info.uss / 2**20
    except (psutil.Error, OSError, AttributeError):
        pss = uss = 0.0
    return {"pid": process.pid, "rss_mb": rss, "pss_mb": pss, "uss_mb": uss}


def run_latency(
    articles: list[dict[str, Any]], procs: int, engine: str, rate: float, seconds: float
) -> dict[str, dict[str, Any]]:
    """Submit to results entry at ``rate`` articles/s, the two ways articles arrive.

    ``submit``: one ``Client.submit`` per article, so one batch task each (the
    worst case for a producer that trickles). ``inbox``: one XADD per article to
    ``<prefix>:inbox`` and a ``newsflow bridge`` that queues whatever arrived
    since its last read as one batch, so batches fill under load and are
    flushed at once when traffic is light. Both are timed by the Redis clock
    where they can be (inbox entry id to results entry id).
    """
    from producer.client import Client

    deployment = Deployment(procs, {"NEWSFLOW_ENGINE": engine})
    bridge = None
    try:
        client = Client(deployment.settings)
        client.wait([client.submit({"id": "warmup", "text": "预热文章。"})], timeout=120)
        count = min(len(articles) // 2, max(20, int(rate * seconds)))  # never wait for more than was sent
        out = {"submit": _paced(deployment, client, articles[:count], rate, "submit")}
        bridge = Bridge(deployment.env, deployment.dir)
        _wait(lambda: _reading(deployment.redis), 60)
        # Warm up the bridge too: its first enqueue connects its Celery producer.
        warmed = deployment.redis.xlen(client.keys.results) + 1
        deployment.redis.xadd(client.keys.inbox, {"id": "warmup-inbox", "text": "预热文章。"})
        _wait(lambda: deployment.redis.xlen(client.keys.results) >= warmed, 120)
        out["inbox"] = _paced(deployment, client, articles[count : 2 * count], rate, "inbox")
        return out
    finally:
        if bridge is not None:
            bridge.stop(30)
        deployment.stop()


def _reading(client: redis.Redis) -> bool:
    """Whether a bridge is reading the inbox (blocked in XREADGROUP)."""
    return any(c.get("cmd") == "xreadgroup" for c in client.client_list())


def _paced(
    deployment: Deployment, client: Any, articles: list[dict[str, Any]], rate: float, way: str
) -> dict[str, Any]:
    r = deployment.redis
    results = client.keys.results
    base = r.xlen(results)
    sent_at: dict[str, float] = {}
    started = time.perf_counter()
    for i, article in enumerate(articles):
        due = started + i / rate
        pause = due - time.perf_counter()
        if pause > 0:
            time.sleep(pause)  # pacing the producer, not synchronising
        article_id = f"lat-{way}-{i}"
        if way == "inbox":
            entry = r.xadd(client.keys.inbox, {"id": article_id, "text": article["text"]})
            sent_at[article_id] = int(entry.split(b"-")[0]) / 1000
        else:
            sent_at[article_id] = time.time()
            client.submit(dict(article, id=article_id))
    _wait(lambda: r.xlen(results) >= base + len(articles), 600)
    latencies = []
    for entry_id, fields in r.xrange(results):
        article_id = fields[b"id"].decode()
        if article_id in sent_at:
            written = int(entry_id.split(b"-")[0]) / 1000
            latencies.append((written - sent_at[article_id]) * 1000)
    latencies.sort()
    return {"rate": rate, "articles": len(latencies), **percentiles(latencies)}


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": q[49], "p95_ms": q[94], "p99_ms": q[98]}


# -- driver -------------------------------------------------------------------------


def table(title: str, header: list[str], rows: list[list[Any]]) -> str:
    cells = [header] + [[f"{c:,.1f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells[1:]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--articles", type=int, default=None)
    parser.add_argument("--lengths", default="300-3000", help="article length range in characters")
    parser.add_argument(
        "--procs",
        default=None,
        help="comma list; default all cores (quick), 1,2,4,... up to the cores (full)",
    )
    parser.add_argument("--engines", default="jieba,jieba-rs")
    parser.add_argument(
        "--entities", default="model,pos", help="entity recognisers to measure (NEWSFLOW_ENTITIES)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternate the bare pool and newsflow this many times, on articles/rounds each",
    )
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument(
        "--aged",
        type=int,
        default=0,
        metavar="N",
        help="first register N other articles in each older bucket of the dedupe window, as a "
        "deployment older than its window holds them (default 0: a fresh Redis)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=SIGHAN,
        help="SIGHAN 2005 gold files to take sentences from (else samples/)",
    )
    parser.add_argument("--out", default=str(OUT / "report.json"))
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("bench: redis-server is not installed (make redis)", file=sys.stderr)
        return 2
    n = args.articles or PROFILES[args.profile]
    cores = os.cpu_count() or 1
    if args.procs:
        procs = [int(p) for p in args.procs.split(",")]
    else:
        procs = _powers(cores) if args.profile == "full" else [cores]
    engines = [e for e in args.engines.split(",") if e != "jieba-rs" or _has_rjieba()]
    low, _, high = args.lengths.partition("-")
    rounds = max(1, args.rounds)
    # One list, run `rounds` times by each half in turn (bare, newsflow, bare, ...), so that
    # a machine that slows down or speeds up for a minute weighs on both halves.
    articles = stream(max(1, n // rounds), lengths=(int(low), int(high or low)), sighan=args.data)
    n = len(articles) * rounds
    chars = sum(len(a["text"]) for a in articles) * rounds
    report: dict[str, Any] = {
        "machine": {
            "cores": cores,
            "cpu": _cpu_model(),
            "python": platform.python_version(),
            "redis": _redis_version(),
        },
        "articles": n,
        "chars": chars,
        "sentences": "sighan2005" if args.data.is_dir() else "samples",
        "throughput": [],
        "latency": [],
    }
    cpu = report["machine"]["cpu"]
    print(
        f"{n:,} articles ({len(articles):,} x {rounds} rounds), {chars / n:,.0f} characters on average, "
        f"{cores} cores, {cpu}"
    )
    decisions = decide_all(articles, Settings())
    aged = aged_entries(articles, args.aged) if args.aged else None
    if aged:
        print(f"dedupe state: {args.aged:,} other articles in each of the {BUCKETS} older buckets")
    report["aged_per_bucket"] = args.aged
    header = [
        "engine",
        "entities",
        "procs",
        "bare/s",
        "newsflow/s",
        "ratio",
        "newsflow chars/s",
        "child USS MB",
        "pool PSS MB",
        "redis ms/article",
        "redis busy",
        "bare CPU ms/article",
        "worker CPU ms/article",
        "client CPU ms/article",
    ]
    rows = []
    recognisers = args.entities.split(",")
    # The stage table and each engine's pipeline against the bare engine, in one process
    # (bench/stages.py): what an article costs around segmentation.
    report["stages"] = stage_report(
        engines, recognisers, n=STAGE_ARTICLES[args.profile], repeat=2, sighan=args.data
    )
    print()
    for engine, entities in ((e, r) for e in engines for r in recognisers):
        settings = Settings(engine=engine, entities=entities)
        # The model costs many times the rest of an article: its rows take a share of the
        # articles, so that `make bench` stays within minutes (the ratio is per article).
        chosen = articles[: max(1, int(len(articles) * MODEL_SHARE))] if entities == "model" else articles
        for p in procs:
            bares, reals = [], []
            for _ in range(rounds):
                bares.append(run_bare(chosen, p, settings, decisions))
                reals.append(run_real(chosen, p, engine, entities, aged))
            bare, real = _combined(bares), _combined(reals)
            ratio = real["rate"] / bare["rate"]
            mem = real["memory"]
            uss = [c["uss_mb"] for c in mem["children"]]
            report["throughput"].append(
                {"engine": engine, "entities": entities, "procs": p}
                | {"bare": bare, "real": real, "ratio": ratio}
            )
            rows.append(
                [
                    engine,
                    entities,
                    p,
                    bare["rate"],
                    real["rate"],
                    f"{ratio:.2f}",
                    f"{sum(len(a['text']) for a in chosen) * rounds / real['seconds']:,.0f}",
                    max(uss) if uss else 0.0,
                    mem["pool_pss_mb"],
                    f"{real['redis_cpu_ms_per_article']:.3f}",
                    f"{real['redis_busy']:.0%}",
                    f"{bare['cpu_ms_per_article']:.3f}",
                    f"{real['cpu_ms_per_article']:.3f}",
                    f"{real['client_cpu_ms_per_article']:.3f}",
                ]
            )
            print(table("", header, rows[-1:]).split("\n", 1)[1], flush=True)
    print()
    print(
        table(
            "Throughput (articles/s): bare multiprocessing pool vs submit -> workers -> results", header, rows
        )
    )
    if not args.skip_latency:
        lat_rows = []
        for engine in engines:
            # The latency runs use the default recogniser (the model), the slower one.
            ran = [t for t in report["throughput"] if t["engine"] == engine]
            best = max(t["real"]["rate"] for t in ran if t["entities"] == ran[0]["entities"])
            p = max(procs)
            lat = run_latency(articles, p, engine, rate=best / 2, seconds=LATENCY_SECONDS[args.profile])
            for way, figures in lat.items():
                report["latency"].append({"engine": engine, "procs": p, "way": way, **figures})
                lat_rows.append(
                    [
                        engine,
                        p,
                        way,
                        figures["rate"],
                        figures.get("p50_ms", 0.0),
                        figures.get("p95_ms", 0.0),
                        figures.get("p99_ms", 0.0),
                    ]
                )
        print()
        print(
            table(
                "Latency at half the measured maximum rate (submit -> results entry, ms)",
                ["engine", "procs", "way in", "rate/s", "p50", "p95", "p99"],
                lat_rows,
            )
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"\nreport: {args.out}")
    return 0


def _combined(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several rounds as one: rates over the total time; memory from the last round."""
    seconds = sum(r["seconds"] for r in runs)
    count = sum(r["articles"] for r in runs)
    out = {
        **runs[-1],
        "articles": count,
        "seconds": seconds,
        "rate": count / seconds,
        "round_rates": [r["rate"] for r in runs],
    }
    if "redis_cpu_ms_per_article" in out:
        cpu = sum(r["redis_cpu_ms_per_article"] * r["articles"] for r in runs) / 1000
        out.update(redis_cpu_ms_per_article=cpu * 1000 / count, redis_busy=cpu / seconds)
    for name in ("cpu_ms_per_article", "client_cpu_ms_per_article"):
        if name in out:
            out[name] = sum(r[name] * r["articles"] for r in runs) / count
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _redis_version() -> str:
    out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, check=False).stdout
    return out.split("v=", 1)[1].split()[0] if "v=" in out else out.strip()


def _powers(cores: int) -> list[int]:
    out, p = [], 1
    while p <= cores:
        out.append(p)
        p *= 2
    return out


def _has_rjieba() -> bool:
    try:
        import rjieba  # noqa: F401
    except ImportError:
        print("bench: rjieba is not installed; skipping the jieba-rs engine", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
