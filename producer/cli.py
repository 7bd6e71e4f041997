"""The ``newsflow`` command.

Exit codes (see :mod:`worker.errors`): 0 done; 1 not found, not healthy, or
``--wait`` timed out; 2 a usage, configuration or input mistake; 3 Redis
unavailable; 130 interrupted. A user's mistake is one line on stderr, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from worker.config import Settings, redact
from worker.errors import EXIT_INTERRUPTED, EXIT_OK, BadInput, NewsflowError, NotFound, RedisUnavailable


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "worker":
            return cmd_worker(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        return run(args.func, args, Settings.from_env())
    except NewsflowError as exc:
        print(f"newsflow: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `newsflow results | head`: the reader has gone, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def run(func: Any, args: argparse.Namespace, settings: Settings) -> int:
    """Run one command, turning the errors a user meets into :mod:`worker.errors` kinds."""
    import redis

    from worker.connection import UNAVAILABLE

    try:
        return int(func(args, settings) or 0)
    except NewsflowError:
        raise  # already in words (NotReplicated is also a Redis error)
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from None
    except redis.AuthenticationError as exc:
        raise RedisUnavailable(f"Redis refused the credentials in NEWSFLOW_REDIS_URL: {exc}") from None
    except UNAVAILABLE as exc:
        raise RedisUnavailable(f"Redis is unavailable ({exc}); check NEWSFLOW_REDIS_URL") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsflow", description="Dedupe, segment and tag Chinese news through Redis and Celery."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("submit", help="queue articles from .txt, .jsonl, directories or - (stdin)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--wait", action="store_true", help="block until every article has a result")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after N seconds")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("get", help="print the result of one article")
    p.add_argument("id")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("process", help="run the stages here, with no services; JSON lines out")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("segment", help="segment each line (SIGHAN format: two spaces between words)")
    p.add_argument("path", metavar="PATH|-")
    p.add_argument("--pos", action="store_true", help="print word/POS")
    p.add_argument("--engine", choices=("jieba", "jieba-rs"), default=None)
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("bridge", help="move articles from <prefix>:inbox (any language, XADD) to the queue")
    p.add_argument("--consumer", default=None, help="consumer name in the bridge group (default host/pid)")
    p.add_argument("--count", type=int, default=None, help="entries per read (default NEWSFLOW_BATCH_SIZE)")
    p.add_argument("--block-ms", type=int, default=1000, help="how long one read waits for entries")
    p.add_argument(
        "--min-idle-ms",
        type=int,
        default=60_000,
        help="take over entries another bridge left pending this long (default 60000)",
    )
    p.set_defaults(func=cmd_bridge)

    p = sub.add_parser("results", help="print results as JSON lines (acknowledged once printed)")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new results")
    p.add_argument("--group", "-g", default=None, help="read through this consumer group")
    p.add_argument("--consumer", "-c", default=None, help="consumer name in the group (default host name)")
    p.add_argument("--from", dest="start", default="0", help="without --group: start after this entry id")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("dead", help="list what could not be processed; replay it after a fix")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--replay", metavar="ID", help="replay one dead entry (its entry id or article id)")
    how.add_argument("--replay-all", action="store_true", help="replay every dead entry")
    p.set_defaults(func=cmd_dead)

    p = sub.add_parser("forget", help="take an article down: its result, results entries, dedupe state")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("status", help="queues, workers, totals and rates of this deployment")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted (JSON: a line each)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes with --watch")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("metrics", help="serve the status figures to Prometheus on HTTP /metrics")
    p.add_argument("--port", type=int, default=None, help="default: NEWSFLOW_METRICS_PORT (9808)")
    p.add_argument("--addr", default="0.0.0.0", help="address to listen on")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("config", help="print the settings in effect (passwords masked)")
    p.add_argument("--markdown", action="store_true", help="print the reference table of every setting")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("keys", help="print the Redis keys of this deployment")
    p.add_argument("--markdown", action="store_true", help="print the reference table of the key layout")
    p.set_defaults(func=cmd_keys)

    sub.add_parser("worker", help="start a Celery worker (celery worker options pass through)")
    return parser


def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import fields

    from worker.config import reference_markdown

    if args.markdown:
        sys.stdout.write(reference_markdown())
        return 0
    for spec in fields(settings):
        value = getattr(settings, spec.name)
        shown = int(value) if isinstance(value, bool) else value
        print(f"NEWSFLOW_{spec.name.upper()}={redact(str(shown))}")
    return 0


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from worker.keys import LAYOUT, reference_markdown

    if args.markdown:
        sys.stdout.write(reference_markdown())
        return 0
    for key, kind, _meaning in LAYOUT:
        print(f"{key.replace('<prefix>', settings.prefix):40} {kind}")
    return 0


def cmd_worker(argv: list[str]) -> int:
    from worker.app import app
    from worker.config import settings

    queue = ["-Q", settings().prefix] if not any(a in ("-Q", "--queues") for a in argv) else []
    app.worker_main(["worker", *queue, *argv])
    return 0


def _progress(total: int | None, label: str, quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    bar.start()
    return bar, bar.add_task(label, total=total)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client
    from producer.inputs import read_articles

    client = Client(settings)
    started = time.monotonic()
    shown = _progress(None, "submitting", args.quiet)
    advance = (lambda n: shown[0].advance(shown[1], n)) if shown else None
    try:
        sent = client.submit_many(read_articles(args.paths), progress=advance)
    finally:
        if shown:
            shown[0].stop()
    submitted_in = time.monotonic() - started
    print(f"submitted {len(sent)} articles in {submitted_in:.2f}s", file=sys.stderr)
    if not args.wait:
        return 0
    shown = _progress(sum(1 for s in sent if s.trackable), "processing", args.quiet)
    advance = (lambda n: shown[0].advance(shown[1], n)) if shown else None
    try:
        results = client.wait(sent, timeout=args.timeout, progress=advance)
    except TimeoutError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return 1
    finally:
        if shown:
            shown[0].stop()
    elapsed = time.monotonic() - started
    untracked = sum(1 for s in sent if not s.trackable)
    print_summary(results.values(), elapsed, untracked)
    return 0


def print_summary(results: Any, elapsed: float, untracked: int = 0) -> None:
    counts = Counter(r.get("status") for r in results)
    total = sum(counts.values())
    parts = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    rate = total / elapsed if elapsed > 0 else 0.0
    print(f"{total} results in {elapsed:.2f}s ({rate:.1f} articles/s): {parts}")
    if untracked:
        print(f"{untracked} entries had no usable id; their rejections are in the results stream")


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client
    from worker.article import valid_id

    if not valid_id(args.id):
        raise BadInput(f"invalid id {args.id!r}: ids are 1-128 characters of [A-Za-z0-9._/-]")
    result = Client(settings).get(args.id)
    if result is None:
        raise NotFound(f"no result for {args.id}")
    sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from producer.status import collect, table, watch

    if args.watch:
        return watch(settings, args.interval, as_json=args.json)
    status = collect(settings)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(status, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        from rich.console import Console

        Console().print(table(status))
    return 0 if status["redis"]["ok"] else 1


def cmd_metrics(args: argparse.Namespace, settings: Settings) -> int:
    from producer.metrics import serve

    serve(settings, args.port or settings.metrics_port, args.addr)
    return 0


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from producer.bridge import Bridge
    from producer.client import Client
    from worker.logs import configure

    configure(settings.log_format)
    stopping: list[int] = []
    # SIGTERM finishes the batch in hand: what is read is queued and acknowledged first.
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    bridge = Bridge(
        Client(settings),
        consumer=args.consumer,
        count=args.count,
        block_ms=args.block_ms,
        min_idle_ms=args.min_idle_ms,
    )
    bridge.run(stop=lambda: bool(stopping))
    return 0


def cmd_results(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client

    out = sys.stdout.buffer
    reader = Client(settings).iter_results(
        group=args.group, consumer=args.consumer, follow=args.follow, start=args.start
    )
    for _entry, result in reader:
        out.write(orjson.dumps(result) + b"\n")
        out.flush()  # printed before the reader acknowledges it on the next round
    return 0


def cmd_dead(args: argparse.Namespace, settings: Settings) -> int:
    import re

    from producer.client import Client

    client = Client(settings)
    dead = client.dead
    entries = dead.entries(count=1_000_000)
    if args.replay is None and not args.replay_all:
        out = sys.stdout.buffer
        for entry, fields in entries:
            out.write(orjson.dumps(_shown_dead(entry, fields)) + b"\n")
        return 0
    if args.replay_all:
        latest = {f.get("id", e.encode()): e for e, f in entries}  # one replay per article
        chosen = list(latest.values())
    elif re.fullmatch(r"\d+-\d+", args.replay) and dead.entry(args.replay) is not None:
        chosen = [args.replay]
    else:
        chosen = [e for e, f in entries if f.get("id") == args.replay.encode()][-1:]
        if not chosen:
            raise NotFound(f"nothing dead under {args.replay!r}")
    for entry in chosen:
        article_id = client.replay_dead(entry)
        print(f"replayed {entry} as {article_id or '(no id)'}", file=sys.stderr)
    return 0


def _shown_dead(entry: str, fields: dict[str, bytes]) -> dict[str, Any]:
    def text(value: bytes) -> str:
        return value.decode("utf-8", "backslashreplace")

    shown: dict[str, Any] = {"entry": entry, "id": text(fields.get("id", b""))}
    for name in ("error", "article"):
        if name in fields:
            shown[name] = orjson.loads(fields[name])
    raw = {k[len("raw.") :]: text(v) for k, v in fields.items() if k.startswith("raw.")}
    if raw:
        shown["raw"] = raw
    for name in ("attempts", "at", "inbox_entry"):
        if name in fields:
            shown[name] = text(fields[name])
    return shown


def cmd_forget(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client
    from worker.article import valid_id
    from worker.dedupe.redis_index import RedisIndex
    from worker.takedown import Takedown

    client = Client(settings)
    index = RedisIndex.from_settings(client.results_redis, client.keys, settings)
    takedown = Takedown(client.results_redis, client.keys, index)
    missing = 0
    for article_id in args.ids:
        if not valid_id(article_id):
            raise BadInput(f"invalid id {article_id!r}: ids are 1-128 characters of [A-Za-z0-9._/-]")
        removed = takedown.forget(article_id)
        if not any(removed.values()):
            missing += 1
            print(f"{article_id}: nothing stored under this id", file=sys.stderr)
            continue
        print(
            f"{article_id}: removed {removed['records']} record, {removed['results']} results entries, "
            f"{removed['dead']} dead entries"
        )
    return 1 if missing else 0


def cmd_process(args: argparse.Namespace, settings: Settings) -> int:
    from producer.inputs import read_articles
    from worker.embedded import process_all

    out = sys.stdout.buffer
    for result in process_all(read_articles(args.paths), settings):
        out.write(orjson.dumps(result) + b"\n")
    out.flush()
    return 0


def cmd_segment(args: argparse.Namespace, settings: Settings) -> int:
    from worker.embedded import segment_lines

    stream = sys.stdin if args.path == "-" else open(args.path, encoding="utf-8")
    out = sys.stdout
    with stream:
        for line in segment_lines(stream, args.engine or settings.engine, settings, args.pos):
            out.write(line + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
