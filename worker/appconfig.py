"""How newsflow's Celery app is configured: :func:`make_app`, for the worker and for senders.

Configured for JSON only (pickle is refused), one queue named after the prefix,
and every broker key under ``<prefix>:`` via kombu's ``global_keyprefix``.
Building an app here starts nothing and connects nowhere; the worker's own app
and its signal handlers are :mod:`worker.app`.

Delivery (see docs/delivery.md): a batch is acked only after it ran
(``task_acks_late``); a batch whose child died or hit the hard time limit is
put back at once (``task_reject_on_worker_lost``, ``acks_on_timeout`` off); a
batch held by a worker that vanished is put back by any other worker's sweep
once ``NEWSFLOW_VISIBILITY_TIMEOUT`` has passed. The time limits sit below that
timeout, so a live worker's batch is never handed out twice for being slow.

A ``sentinel://`` broker URL uses kombu's Sentinel transport, which asks the
sentinels for the master again whenever its connection drops (docs/failover.md).
"""

from __future__ import annotations

from celery import Celery

from worker.config import Settings
from worker.connection import SOCKET_TIMEOUT, celery_sentinel_options, tls_options, without_tls_query
from worker.tasknames import PROCESS_BATCH, SUBMIT


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
            # sentinel:// brokers: which master, and how to reach the sentinels.
            **celery_sentinel_options(s.redis_url, s.sentinel_master, s.sentinel_password),
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
