"""The ``newsflow`` command.

Exit codes (see :mod:`worker.errors`): 0 done; 1 not found, not healthy, or
``--wait`` timed out; 2 a usage, configuration or input mistake; 3 Redis
unavailable or refusing the password; 4 ``--wait``: some articles rejected;
5 ``--wait``: some failed; 130 interrupted. A user's mistake is one line on
stderr, never a traceback. Commands that need Redis ask it once before they
start (:mod:`producer.preflight`), so a wrong URL or password fails at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from worker.config import Settings, redact
from worker.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_TIMED_OUT,
    BadInput,
    NewsflowError,
    NotFound,
)

# Statuses that count as done well for --wait's exit code.
GOOD = ("unique", "duplicate", "near_duplicate")
SUMMARY_STATUSES = (*GOOD, "rejected", "failed")
# --wait's default timeout: ten minutes, plus a tenth of a second per article.
WAIT_BASE_S = 600.0
WAIT_PER_ARTICLE_S = 0.1
# Seconds of waiting with no worker on the prefix before --wait says so.
NO_WORKER_WARNING_S = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "worker":
            return cmd_worker(argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        settings = Settings.from_env()
        if args.redis is not None:  # the commands that use Redis; the others never import redis-py
            from producer import preflight

            (preflight.check if args.redis == "check" else preflight.check_syntax)(settings)
        return run(args.func, args, settings)
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
    try:
        return int(func(args, settings) or 0)
    except NewsflowError:
        raise  # already in words (NotReplicated is also a Redis error)
    except FileNotFoundError as exc:
        raise BadInput(str(exc)) from None
    except Exception as exc:
        # A Redis error comes only from a command that imported redis-py; the
        # others (process, segment, config, keys) never import it.
        redis = sys.modules.get("redis")
        if redis is None or not isinstance(exc, redis.RedisError):
            raise
        if isinstance(exc, redis.ResponseError) and "DB index" not in str(exc) and "NOAUTH" not in str(exc):
            raise
        from producer.preflight import explain

        raise explain(exc, "NEWSFLOW_REDIS_URL", settings.redis_url) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsflow", description="Dedupe, segment and tag Chinese news through Redis and Celery."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "submit",
        help="queue articles from .txt, .jsonl, .json, directories or - (stdin)",
        description="Queue articles. With --wait, exit 0 only when every article came out unique, "
        "duplicate or near_duplicate; 4 some rejected, 5 some failed, 1 timed out.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    _input_options(p)
    p.add_argument("--wait", action="store_true", help="block until every article has a result")
    _wait_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_submit, redis="check")

    p = sub.add_parser(
        "wait",
        help="wait for the results of articles already submitted, by id",
        description="Wait until each id has a result; exit codes as for submit --wait.",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="article ids or .txt paths; - reads ids from stdin")
    p.add_argument("--root", default=None, help="ids of paths are relative to this (default: .)")
    _wait_options(p)
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_wait, redis="check")

    p = sub.add_parser("get", help="print the result of one article")
    p.add_argument("id", help="an article id, or a .txt path as given to submit")
    p.add_argument("--root", default=None, help="ids of paths are relative to this (default: .)")
    p.set_defaults(func=cmd_get, redis="check")

    p = sub.add_parser(
        "process",
        help="run the stages here, with no services; JSON lines out",
        description="Exit 0 once a result line is written for every input, whatever the statuses.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH")
    _input_options(p)
    p.set_defaults(func=cmd_process, redis=None)

    p = sub.add_parser("segment", help="segment each line (SIGHAN format: two spaces between words)")
    p.add_argument("path", metavar="PATH|-")
    p.add_argument("--pos", action="store_true", help="print word/POS")
    p.add_argument("--engine", choices=("jieba", "jieba-rs"), default=None)
    p.set_defaults(func=cmd_segment, redis=None)

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
    p.set_defaults(func=cmd_bridge, redis="check")

    p = sub.add_parser("results", help="print results as JSON lines (acknowledged once printed)")
    p.add_argument("--follow", "-f", action="store_true", help="keep waiting for new results")
    p.add_argument("--group", "-g", default=None, help="read through this consumer group")
    p.add_argument("--consumer", "-c", default=None, help="consumer name in the group (default host name)")
    p.add_argument("--from", dest="start", default="0", help="without --group: start after this entry id")
    p.set_defaults(func=cmd_results, redis="check")

    p = sub.add_parser("dead", help="list what could not be processed; replay it after a fix")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--replay", metavar="ID", help="replay one dead entry (its entry id or article id)")
    how.add_argument("--replay-all", action="store_true", help="replay every dead entry")
    p.add_argument("--limit", type=int, default=100, help="list at most N entries (default 100)")
    p.add_argument("--after", metavar="ENTRY", default=None, help="list entries after this entry id")
    p.set_defaults(func=cmd_dead, redis="check")

    p = sub.add_parser("forget", help="take an article down: its result, results entries, dedupe state")
    p.add_argument("ids", nargs="+", metavar="ID")
    p.set_defaults(func=cmd_forget, redis="check")

    p = sub.add_parser("status", help="queues, workers, totals and rates of this deployment")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--watch", action="store_true", help="refresh until interrupted (JSON: a line each)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes with --watch")
    p.set_defaults(func=cmd_status, redis="syntax")

    p = sub.add_parser("metrics", help="serve the status figures to Prometheus on HTTP /metrics")
    p.add_argument("--port", type=int, default=None, help="default: NEWSFLOW_METRICS_PORT (9808)")
    p.add_argument("--addr", default="0.0.0.0", help="address to listen on")
    p.set_defaults(func=cmd_metrics, redis="syntax")

    p = sub.add_parser("config", help="print the settings in effect (passwords masked)")
    p.add_argument("--markdown", action="store_true", help="print the reference table of every setting")
    p.set_defaults(func=cmd_config, redis=None)

    p = sub.add_parser("keys", help="print the Redis keys of this deployment")
    p.add_argument("--markdown", action="store_true", help="print the reference table of the key layout")
    p.set_defaults(func=cmd_keys, redis=None)

    sub.add_parser("worker", help="start a Celery worker (celery worker options pass through)")
    return parser


def _input_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--root", default=None, help="ids of .txt files are their paths relative to this (default: .)"
    )
    p.add_argument(
        "--text", action="store_true", help="- is plain text: one article per blank-line-separated block"
    )


def _wait_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="give up waiting after N seconds (default 600 + 0.1 per article; 0: never)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")


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
    from producer import preflight
    from worker.config import settings

    preflight.check(settings())  # Celery would retry a bad URL or password for ever, in tracebacks
    from worker.app import app

    _banner_shows_the_url_as_given(app, settings().redis_url)

    queue = ["-Q", settings().prefix] if not any(a in ("-Q", "--queues") for a in argv) else []
    app.worker_main(["worker", *queue, *argv])
    return 0


def _banner_shows_the_url_as_given(app: Any, url: str) -> None:
    """Celery's start-up banner, with the broker URL as newsflow shows it.

    kombu writes ``redis://:**@host`` whether or not there is a password; the
    banner shows the URL redacted the same way as the rest of newsflow does.
    """
    from celery.apps.worker import Worker

    original = Worker.startup_info

    def startup_info(self: Any, artlines: bool = True) -> str:
        return str(original(self, artlines)).replace(app.connection().as_uri(), redact(url))

    Worker.startup_info = startup_info


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

    if args.wait:
        # What waiting imports, imported before anything is queued: a Ctrl-C that
        # lands inside an import ends Python by the signal (status -2), even when
        # main() catches it and returns 130.
        import worker.heartbeat  # noqa: F401

    skipped: list[Path] = []
    articles = read_articles(
        args.paths, root=args.root, text=args.text, skipped=lambda path, _why: skipped.append(path)
    )
    client = Client(settings)
    started = time.monotonic()
    queued = [0]
    shown = _progress(None, "submitting", args.quiet)

    def advance(n: int) -> None:
        queued[0] += n
        if shown:
            shown[0].advance(shown[1], n)

    try:
        sent = client.submit_many(articles, progress=advance)
    except KeyboardInterrupt:
        print(
            f"newsflow: interrupted: {_n(queued[0], 'article')} {_was(queued[0])} queued and will be "
            "processed; the rest were not sent",
            file=sys.stderr,
        )
        raise
    finally:
        if shown:
            shown[0].stop()
    try:  # a Ctrl-C from here on still says what stays queued
        _report_skipped(skipped)
        if not sent:
            raise BadInput(
                f"nothing to submit: no articles in {' '.join(args.paths)} (.txt, .jsonl, .json or -)"
            )
        print(f"submitted {len(sent)} articles in {time.monotonic() - started:.2f}s", file=sys.stderr)
        if not args.wait:
            return 0
    except KeyboardInterrupt:
        _say_interrupted([str(s.id) for s in sent if s.trackable])
        raise
    return _wait_and_report(client, sent, args, started)


def _report_skipped(skipped: list[Path]) -> None:
    if not skipped:
        return
    names = ", ".join(str(p) for p in skipped[:5]) + (
        f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
    )
    print(f"skipped {_n(len(skipped), 'file')} (not .txt, .jsonl or .json): {names}", file=sys.stderr)


def cmd_wait(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client
    from producer.submitting import Submitted

    ids = [line.strip() for line in sys.stdin if line.strip()] if args.ids == ["-"] else args.ids
    wanted = [Submitted(_as_id(i, args.root), "") for i in ids]
    for given, found in zip(ids, wanted, strict=True):
        if not found.trackable:
            raise BadInput(f"invalid id {given!r}: ids are 1-128 characters of [A-Za-z0-9._/-]")
    if not wanted:
        raise BadInput("nothing to wait for: give article ids, or - with ids on stdin")
    return _wait_and_report(Client(settings), wanted, args, time.monotonic())


def _wait_and_report(client: Any, sent: list[Any], args: argparse.Namespace, started: float) -> int:
    """Wait for ``sent``'s results, print the summary, and return --wait's exit code."""
    trackable = [s for s in sent if s.trackable]
    results: dict[str, dict[str, Any]] = {}
    try:
        return _wait_for_results(client, sent, trackable, results, args, started)
    except KeyboardInterrupt:
        _say_interrupted([s.id for s in trackable if s.id not in results])
        raise


def _wait_for_results(
    client: Any,
    sent: list[Any],
    trackable: list[Any],
    results: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    started: float,
) -> int:
    from worker.heartbeat import read_all as workers_online

    timeout = args.timeout
    if timeout is None:
        timeout = WAIT_BASE_S + WAIT_PER_ARTICLE_S * len(sent)
    warned = False

    def tick(waited: float, done: int) -> None:
        nonlocal warned
        if warned or done or waited < NO_WORKER_WARNING_S:
            return
        warned = True
        if not workers_online(client.redis, client.keys):
            print(
                f"newsflow: no worker serves prefix {client.keys.prefix!r} on this Redis yet: start one "
                "with `newsflow worker` and the same NEWSFLOW_REDIS_URL and NEWSFLOW_PREFIX (still waiting)",
                file=sys.stderr,
            )

    shown = _progress(len(trackable), "processing", args.quiet)
    advance = (lambda n: shown[0].advance(shown[1], n)) if shown else None
    try:
        client.reader.wait(trackable, timeout=timeout or None, progress=advance, tick=tick, into=results)
        pending: list[str] = []
    except TimeoutError:
        pending = [s.id for s in trackable if s.id not in results]
    finally:
        if shown:
            shown[0].stop()  # before the caller's message on a Ctrl-C
    untracked = len(sent) - len(trackable)
    return print_summary(results.values(), time.monotonic() - started, untracked, pending, as_json=args.json)


def _say_interrupted(pending: list[str]) -> None:
    import tempfile

    if not pending:
        return
    if len(pending) <= 5:
        how = "newsflow wait " + " ".join(pending)
    else:
        with tempfile.NamedTemporaryFile("w", prefix="newsflow-pending-", suffix=".txt", delete=False) as f:
            f.write("\n".join(pending) + "\n")
        how = f"newsflow wait - < {f.name}"
    print(
        f"newsflow: interrupted: {_n(len(pending), 'article')} {'has' if len(pending) == 1 else 'have'} "
        f"no result yet; they stay queued and will be processed. Wait for them with: {how}",
        file=sys.stderr,
    )


def print_summary(
    results: Any,
    elapsed: float,
    untracked: int = 0,
    pending: Sequence[str] = (),
    *,
    as_json: bool = False,
) -> int:
    """Print the outcome of a wait (one line, or one JSON object) and return its exit code."""
    counts = Counter(r.get("status") for r in results)
    counts["rejected"] += untracked  # no usable id: the worker rejects them (bad_id, missing_id)
    by_status = {status: counts.get(status, 0) for status in SUMMARY_STATUSES}
    by_status["timed_out"] = len(pending)
    if pending:
        code = EXIT_TIMED_OUT
    elif by_status["failed"]:
        code = EXIT_FAILED
    elif by_status["rejected"]:
        code = EXIT_REJECTED
    else:
        code = EXIT_OK
    total = sum(by_status.values())
    rate = (total - len(pending)) / elapsed if elapsed > 0 else 0.0
    if as_json:
        summary = {
            "articles": total,
            "counts": by_status,
            "elapsed_s": round(elapsed, 3),
            "exit_code": code,
            "pending": list(pending[:100]),
        }
        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
        sys.stdout.flush()
        return code
    parts = ", ".join(f"{n} {status}" for status, n in by_status.items() if n)
    print(f"{total - len(pending)} results in {elapsed:.2f}s ({rate:.1f} articles/s): {parts or 'nothing'}")
    if untracked:
        print(f"{untracked} entries had no usable id; their rejections are in the results stream")
    if code == EXIT_TIMED_OUT:
        print(
            f"newsflow: timed out with {_n(len(pending), 'article')} still queued "
            f"(e.g. {', '.join(pending[:3])}); "
            "wait longer with `newsflow wait ID...` or --timeout (exit 1)",
            file=sys.stderr,
        )
    elif code == EXIT_FAILED:
        print(
            f"newsflow: {_n(by_status['failed'], 'article')} failed after retries: "
            "see `newsflow dead` (exit 5)",
            file=sys.stderr,
        )
    elif code == EXIT_REJECTED:
        print(
            f"newsflow: {_n(by_status['rejected'], 'article')} {_was(by_status['rejected'])} rejected as bad "
            "input: the error is in each result (`newsflow get ID`) (exit 4)",
            file=sys.stderr,
        )
    return code


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _as_id(given: str, root: str | None) -> str:
    """An id as submit would name it: a path that exists, or starts ./ or ../, becomes its path id."""
    import os

    from producer.inputs import path_id

    if (
        given.startswith(("./", "../"))
        or (os.sep in given and os.path.isfile(given))
        or os.path.isfile(given)
    ):
        return path_id(given, root)
    return given


def cmd_get(args: argparse.Namespace, settings: Settings) -> int:
    from producer.client import Client
    from worker.article import valid_id

    article_id = _as_id(args.id, args.root)
    if not valid_id(article_id):
        raise BadInput(f"invalid id {args.id!r}: ids are 1-128 characters of [A-Za-z0-9._/-]")
    result = Client(settings).get(article_id)
    if result is None:
        raise NotFound(f"no result for {article_id}")
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

    port = args.port or settings.metrics_port
    try:
        serve(settings, port, args.addr)
    except OSError as exc:
        raise BadInput(
            f"cannot listen on {args.addr}:{port} ({exc.strerror or exc}): "
            "another program holds the port; pick another with --port or NEWSFLOW_METRICS_PORT"
        ) from None
    return 0


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    import signal

    from producer.bridge import Bridge
    from producer.client import Client
    from worker.logs import configure

    configure(settings.log_format)
    stopping: list[int] = []

    def stop_now(_signum: int, _frame: Any) -> None:
        raise _StopNow

    def on_term(signum: int, _frame: Any) -> None:
        # SIGTERM finishes the batch in hand: what is read is queued and acknowledged
        # first. A bridge held up longer (backpressure, a Redis gone) stops anyway
        # after BRIDGE_STOP_S: what it read and did not acknowledge stays pending in
        # the inbox for another bridge, and a second queuing of it is a no-op.
        if stopping:
            raise _StopNow
        stopping.append(signum)
        signal.signal(signal.SIGALRM, stop_now)
        signal.alarm(BRIDGE_STOP_S)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    bridge = Bridge(
        Client(settings),
        consumer=args.consumer,
        count=args.count,
        block_ms=args.block_ms,
        min_idle_ms=args.min_idle_ms,
    )
    try:
        bridge.run(stop=lambda: bool(stopping))
    except _StopNow:
        print(
            "newsflow: bridge stopped before its batch in hand was done; it stays in the inbox",
            file=sys.stderr,
        )
    return 0


class _StopNow(Exception):
    """The bridge's grace after SIGTERM is over."""


# Seconds the bridge may take to finish its batch in hand after SIGTERM.
BRIDGE_STOP_S = 5


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
    if args.replay is None and not args.replay_all:
        if args.limit < 1:
            raise BadInput("--limit must be at least 1")
        start = f"({args.after}" if args.after else "-"
        try:
            entries = dead.entries(start=start, count=args.limit)
        except Exception as exc:  # redis.ResponseError: not an entry id
            if "Invalid stream ID" not in str(exc):
                raise
            raise BadInput(f"--after {args.after!r} is not a dead entry id (like 1764547200000-0)") from None
        out = sys.stdout.buffer
        for entry, fields in entries:
            out.write(orjson.dumps(_shown_dead(entry, fields)) + b"\n")
        if not entries:
            more = f" after {args.after}" if args.after else ""
            print(f"no dead entries{more} in {client.keys.dead}", file=sys.stderr)
        elif len(entries) == args.limit:
            print(f"more may follow: newsflow dead --after {entries[-1][0]}", file=sys.stderr)
        return 0
    if args.replay_all:
        latest: dict[Any, str] = {}
        for entry, fields in _all_dead(dead):  # one replay per article, page by page
            latest[fields.get("id", entry.encode())] = entry
        chosen = list(latest.values())
    elif re.fullmatch(r"\d+-\d+", args.replay) and dead.entry(args.replay) is not None:
        chosen = [args.replay]
    else:
        wanted = args.replay.encode()
        chosen = [e for e, f in _all_dead(dead) if f.get("id") == wanted][-1:]
        if not chosen:
            raise NotFound(f"nothing dead under {args.replay!r}")
    for entry in chosen:
        article_id = client.replay_dead(entry)
        print(f"replayed {entry} as {article_id or '(no id)'}", file=sys.stderr)
    return 0


def _all_dead(dead: Any, page: int = 500) -> Any:
    """Every dead entry, read a page at a time (the stream is never loaded whole)."""
    start = "-"
    while True:
        entries = dead.entries(start=start, count=page)
        yield from entries
        if len(entries) < page:
            return
        start = f"({entries[-1][0]}"


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
    if "attempts" in fields:
        shown["attempts"] = int(fields["attempts"])
    if "at" in fields:
        shown["at"] = float(fields["at"])
    if "inbox_entry" in fields:
        shown["inbox_entry"] = text(fields["inbox_entry"])
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
    from worker.embedded import BATCH, process_all

    skipped: list[Path] = []
    articles = read_articles(
        args.paths, root=args.root, text=args.text, skipped=lambda path, _why: skipped.append(path)
    )
    out = sys.stdout.buffer
    # At a terminal, each result as soon as its article is read; else a batch read ahead.
    typed = "-" in args.paths and sys.stdin.isatty()
    for result in process_all(articles, settings, batch=1 if typed else BATCH):
        out.write(orjson.dumps(result) + b"\n")
        if typed:
            out.flush()
    out.flush()
    _report_skipped(skipped)
    return 0  # a filter: a rejection is a result like any other


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
