"""The worker's Celery app: ``celery -A worker.app worker`` and ``celery -A worker.app flower``.

Importing this module builds the app from the environment (:func:`make_app`,
configured in :mod:`worker.appconfig`) and connects the worker's signal
handlers: logging, loading the stages before fork, the janitor and the
heartbeat. Code that only sends tasks builds its own app with
:func:`worker.appconfig.make_app`; code that only needs a task's name reads
:mod:`worker.tasknames`.
"""

from __future__ import annotations

from celery import signals

from worker.appconfig import make_app as make_app  # re-exported: `from worker.app import make_app`
from worker.config import settings
from worker.tasknames import PROCESS_BATCH as PROCESS_BATCH  # re-exported, as before
from worker.tasknames import SUBMIT as SUBMIT

app = make_app(settings())


@signals.setup_logging.connect
def _setup_logging(loglevel: int | str | None = None, **_: object) -> None:
    from worker.logs import configure

    configure(settings().log_format, level=loglevel or "INFO")


@signals.worker_ready.connect
def _start_janitor(sender: object = None, **_: object) -> None:
    """Look for batches whose message was lost (see :mod:`worker.janitor`)."""
    from worker import janitor
    from worker.batchqueue import celery_send

    s = settings()
    janitor.start(s, celery_send(lambda: app, s.prefix))


@signals.worker_init.connect
def _load_before_fork(**_: object) -> None:
    """Load jieba, OpenCC and the IDF table in the parent, so children share the pages."""
    import gc

    from worker.batch import analyser

    analyser(settings()).warm()
    # Move everything loaded so far out of the collector's reach: a collection
    # in a child would otherwise write to every object's header and copy the
    # shared dictionary pages into each child.
    gc.freeze()


_heartbeat = None


@signals.worker_ready.connect
def _start_heartbeat(sender: object = None, **_: object) -> None:
    """Tell ``newsflow status`` this worker is online (see :mod:`worker.heartbeat`)."""
    global _heartbeat
    from worker.heartbeat import start_for

    s = settings()
    _heartbeat = start_for(sender, s.redis_url, s.prefix)


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: object) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
