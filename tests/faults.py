"""Test-only fault injection: poison articles and a TCP link that can be cut.

Never imported by newsflow itself. A test starts a worker with
``--include tests.faults`` (Celery imports the module in the pool's parent
before it forks), which wraps :func:`worker.pipeline.prepare` (the first
stages, run by every path) so that an
article whose text contains a marker misbehaves, deterministically:

- ``FAULT:crash``  the pool child exits at once (``os._exit``), as a segfault in
  native code would: no ``except`` sees it.
- ``FAULT:hang``   the child blocks the soft-time-limit signal and sleeps, as a
  loop inside native code (OpenCC, jieba-rs) would: only the hard limit ends it.
- ``FAULT:slow``   the article takes 3 s.
- ``FAULT:raise``  a stage raises an ordinary Python exception.

Each time a marked article starts, a line ``<pid>`` is appended to
``$FAULT_DIR/<id>.<fault>``, so a test can count attempts.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

FAULTS = ("crash", "hang", "slow", "raise")


def attempts(fault_dir: Path, article_id: str, fault: str) -> int:
    """How many times the marked article was started."""
    path = fault_dir / f"{article_id.replace('/', '_')}.{fault}"
    return len(path.read_text().split()) if path.exists() else 0


def _install() -> None:
    from worker import pipeline

    real = pipeline.prepare

    def prepare(raw: object, *args: Any, **kwargs: Any) -> Any:
        text = raw.get("text") if isinstance(raw, dict) else None
        for fault in FAULTS:
            if isinstance(text, str) and f"FAULT:{fault}" in text:
                _record(str(raw.get("id")), fault)
                _misbehave(fault)
        return real(raw, *args, **kwargs)

    pipeline.prepare = prepare


def _record(article_id: str, fault: str) -> None:
    fault_dir = Path(os.environ.get("FAULT_DIR", "/tmp"))
    with open(fault_dir / f"{article_id.replace('/', '_')}.{fault}", "a") as f:
        f.write(f"{os.getpid()}\n")


def _misbehave(fault: str) -> None:
    if fault == "crash":
        os._exit(1)
    if fault == "hang":
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})  # Celery's soft limit
        time.sleep(3600)
    if fault == "slow":
        time.sleep(3)
    if fault == "raise":
        raise RuntimeError("a stage failed on this article")


if os.environ.get("FAULT_DIR"):
    _install()


class Link:
    """A TCP proxy in front of Redis whose link can be cut and restored.

    Cut: every open connection is closed and new ones are closed as soon as
    they are accepted, as when a host loses its network and its peers reset.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def cut(self) -> None:
        self._up.clear()
        with self._lock:
            for s in self._open:
                _close(s)
            self._open.clear()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self._closed = True
        self.cut()
        _close(self._listener)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if not self._up.is_set():
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._open.discard(src)
                self._open.discard(dst)
            _close(src)
            _close(dst)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
