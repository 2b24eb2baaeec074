"""The Celery application and the beat schedule (an entry point, used when
``COVIDNEWS_BROKER_URL`` is set). Laid out as the Celery docs lay out ``proj/celery.py``: the app
lives here, the tasks live with the service that does the work (``nlp_worker/tasks.py``,
``bot/tasks.py``, both ``shared_task``), so no service imports this module.

Queue ``nlp``: heavy model work; scale these workers out. Workers write the store only: each
API node's indexes follow the store (:mod:`covidnews.follow`), there is no index queue. Tasks
are acknowledged late and rejected if the worker dies, so a SIGKILLed worker's batch is
redelivered; tasks are idempotent, so redelivery never duplicates anything. Models load once per
worker process, with thread caps so a 2-core machine is not oversubscribed
(``COVIDNEWS_NLP_THREADS``).

Operations: with ``COVIDNEWS_METRICS_PORT`` a worker serves Prometheus metrics (task durations and
failures, articles per stage, queue depths; see :mod:`covidnews.metrics`);
``COVIDNEWS_LOG_FORMAT=json`` makes its log lines JSON objects carrying the ``task_id``.

Run: ``celery -A covidnews.celery worker -Q nlp -c 2``.

The bot (``bot/tasks.py``) runs on a second queue, ``bot``, scheduled by Celery beat: a run every
30 minutes and the daily digest at 21:00 UTC (``celery -A covidnews.celery beat`` and
``celery -A covidnews.celery worker -Q bot -c 1``). Beat also runs the sweep on ``nlp`` every
``COVIDNEWS_SWEEP_SECONDS``: articles nobody holds are handed over again (:mod:`nlp_worker.leases`).
The old name ``nlp_worker.celery_app`` still starts the same app.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.schedules import crontab
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    celeryd_init,
    task_failure,
    task_postrun,
    task_prerun,
    worker_process_init,
)

from covidnews.settings import get_settings

NLP_QUEUE = "nlp"
BOT_QUEUE = "bot"

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "bot-run-once": {
        "task": "bot.tasks.run_once",
        "schedule": 30 * 60.0,
        "options": {"queue": BOT_QUEUE, "expires": 25 * 60},
    },
    "bot-digest": {
        "task": "bot.tasks.digest",
        "schedule": crontab(hour=21, minute=0),
        "options": {"queue": BOT_QUEUE, "expires": 3 * 3600},
    },
}


def make_app(broker_url: str | None = None) -> Celery:
    settings = get_settings()
    app = Celery("covidnews", include=["nlp_worker.tasks", "bot.tasks"])
    app.conf.update(
        broker_url=broker_url or settings.broker_url or "memory://",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=NLP_QUEUE,
        task_routes={
            "bot.tasks.*": {"queue": BOT_QUEUE},
        },
        beat_schedule={
            **(BEAT_SCHEDULE if settings.beat_bot else {}),
            # Leases (nlp_worker.leases): hand over again what nobody holds.
            "nlp-sweep": {
                "task": "nlp_worker.tasks.sweep",
                "schedule": float(settings.sweep_seconds),
                "options": {"queue": NLP_QUEUE, "expires": settings.sweep_seconds},
            },
        },
        timezone="UTC",
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        worker_hijack_root_logger=False,
    )
    return app


app = make_app()


@worker_process_init.connect
def _cap_threads(**_: Any) -> None:
    threads = str(get_settings().nlp_threads)
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "ONNXRUNTIME_NUM_THREADS",
    ):
        os.environ.setdefault(var, threads)
    try:
        import torch

        torch.set_num_threads(int(threads))
    except ImportError:
        pass


# Operations: metrics and logs ----------------------------------------------------------------


@celeryd_init.connect
def _serve_metrics(**_: Any) -> None:
    """The worker's main process, before its pool starts: the metrics exporter."""
    from covidnews.metrics import start_worker_metrics

    start_worker_metrics(get_settings(), [NLP_QUEUE, BOT_QUEUE])


@task_prerun.connect
def _task_started(task_id: str | None = None, **_: Any) -> None:
    from covidnews.metrics import task_started

    task_started(task_id)


@task_postrun.connect
def _task_finished(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    from covidnews.metrics import task_finished

    task_finished(task_id, str(getattr(task, "name", "?")))


@task_failure.connect
def _task_failed(sender: Any = None, **_: Any) -> None:
    from covidnews.metrics import task_failed

    task_failed(str(getattr(sender, "name", "?")))


@after_setup_logger.connect
@after_setup_task_logger.connect
def _log_format(logger: Any = None, **_: Any) -> None:
    """Celery's handlers in our format (text or JSON lines), with the running task's id."""
    from covidnews.logging import setup_logging

    settings = get_settings()
    if logger is not None and settings.log_format == "json":  # text: Celery's own format
        setup_logging(None, "json", logger=logger, reformat=True)
