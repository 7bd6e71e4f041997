"""The Celery app: ``celery -A worker.app worker`` and ``celery -A worker.app flower``.

Configured for JSON only (pickle is refused), one queue named after the prefix,
and every broker key under ``<prefix>:`` via kombu's ``global_keyprefix``.
"""

from __future__ import annotations

from celery import Celery, signals

from worker.config import Settings, settings

# A batch task is small: it names a batch whose articles wait in Redis.
PROCESS_BATCH = "newsflow.process_batch"
# The stable public task: send_task("newsflow.submit", kwargs={"articles": [...]}).
SUBMIT = "newsflow.submit"


def make_app(s: Settings) -> Celery:
    app = Celery("newsflow", broker=s.redis_url, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=s.prefix,
        task_default_exchange=s.prefix,
        task_default_routing_key=s.prefix,
        task_routes={SUBMIT: {"queue": s.prefix}, PROCESS_BATCH: {"queue": s.prefix}},
        broker_transport_options={
            "global_keyprefix": f"{s.prefix}:",
            "visibility_timeout": 3600,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_send_task_events=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_channel_error_retry=True,
    )
    if s.concurrency:
        app.conf.worker_concurrency = s.concurrency
    return app


app = make_app(settings())


@signals.setup_logging.connect
def _setup_logging(loglevel: object = None, **_: object) -> None:
    from worker.logs import configure

    configure(settings().log_format, level=loglevel or "INFO")


@signals.worker_init.connect
def _load_before_fork(**_: object) -> None:
    """Load jieba, OpenCC and the IDF table in the parent, so children share the pages."""
    from worker.tasks import analyser

    analyser().warm()


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
