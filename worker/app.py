"""The Celery app: ``celery -A worker.app worker`` and ``celery -A worker.app flower``.

Configured for JSON only (pickle is refused), one queue named after the prefix,
and every broker key under ``<prefix>:`` via kombu's ``global_keyprefix``.

Delivery (see the README, "Delivery and failure"): a batch is acked only after
it ran (``task_acks_late``); a batch whose child died or hit the hard time
limit is put back at once (``task_reject_on_worker_lost``, ``acks_on_timeout``
off); a batch held by a worker that vanished is put back by any other worker's
sweep once ``NEWSFLOW_VISIBILITY_TIMEOUT`` has passed. The time limits sit
below that timeout, so a live worker's batch is never handed out twice for
being slow.
"""

from __future__ import annotations

from celery import Celery, signals

from worker.config import Settings, settings
from worker.connection import SOCKET_TIMEOUT, tls_options, without_tls_query

# A batch task is small: it names a batch whose articles wait in Redis.
PROCESS_BATCH = "newsflow.process_batch"
# The stable public task: send_task("newsflow.submit", kwargs={"articles": [...]}).
SUBMIT = "newsflow.submit"


def make_app(s: Settings) -> Celery:
    app = Celery("newsflow", broker=without_tls_query(s.redis_url), include=["worker.tasks"])
    app.conf.update(
        broker_use_ssl=tls_options(s.redis_url) or None,
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
            "visibility_timeout": s.visibility_timeout,
            # Sweep for abandoned batches every few seconds (kombu's default
            # sweeps every 10 x 10 s), so redelivery takes the visibility
            # timeout plus at most one interval.
            "unacked_restore_interval": s.restore_interval,
            "unacked_restore_throttle": 1,
            # A sweeper that dies holding the lock blocks others this long.
            "unacked_mutex_expire": max(10, s.restore_interval * 3),
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": 5,
            "socket_keepalive": True,
            "health_check_interval": 10,
        },
        # Publishing (submit, requeues) rides out a Redis restart as the
        # redis-py clients do: about 20 s of retries instead of Celery's 0.6 s.
        task_publish_retry=True,
        task_publish_retry_policy={
            "max_retries": 10,
            "interval_start": 0.1,
            "interval_step": 0.5,
            "interval_max": 3.0,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A batch over its hard limit is requeued, not acked: the attempt count
        # of the article that hung decides when it is given up.
        task_acks_on_timeout=False,
        task_time_limit=s.hard_time_limit,
        task_soft_time_limit=s.soft_time_limit,
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


@signals.worker_ready.connect
def _start_janitor(sender: object = None, **_: object) -> None:
    """Look for batches whose message was lost (see :mod:`worker.janitor`)."""
    from worker import janitor

    s = settings()
    janitor.start(s, lambda batch_id: app.send_task(PROCESS_BATCH, args=[batch_id], queue=s.prefix))


@signals.worker_init.connect
def _load_before_fork(**_: object) -> None:
    """Load jieba, OpenCC and the IDF table in the parent, so children share the pages."""
    import gc

    from worker.tasks import analyser

    analyser().warm()
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
