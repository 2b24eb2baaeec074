"""Celery tasks: thin, idempotent, taking article ids. The work is in :mod:`nlp_worker.stages`.

Workers only write the store; every API node's indexes follow the store's change sequence
(:mod:`covidnews.follow`), so there is no index task."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from celery import shared_task
from sqlalchemy.exc import DBAPIError, OperationalError

from covidnews.metrics import record_batch
from covidnews.settings import get_settings
from covidnews.store import Store
from nlp_worker import leases
from nlp_worker.stages import Backends, process_leased

if TYPE_CHECKING:
    from celery import Task

log = logging.getLogger(__name__)
TRANSIENT = (OperationalError, DBAPIError, ConnectionError, TimeoutError, OSError)


@functools.cache
def _store() -> Store:
    return Store.from_settings(get_settings())


@functools.cache
def _backends() -> Backends:
    backends = Backends.from_settings(get_settings())  # loaded once per worker process
    if backends.translator_unavailable:
        log.warning("translations deferred: %s", backends.translator_unavailable)
    return backends


# Both tasks: acknowledged after the work, redelivered if the worker dies, retried with backoff
# on transient errors (the work is idempotent, so redelivery is safe).
RELIABLE: dict[str, Any] = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}


@shared_task(name="nlp_worker.tasks.process_batch", **RELIABLE)
def process_batch(self: Task, article_ids: list[int]) -> dict[str, int]:
    settings = get_settings()
    store = _store()
    # The lease is the task's: a retry of it (same task id, after a transient error) or its
    # redelivery (its worker died) takes back what it held at once; other tasks wait for expiry.
    owner = f"task:{self.request.id}"
    report = process_leased(store, article_ids, _backends(), settings, owner)
    record_batch(report)
    log.info(
        "batch of %d: %d done, %d failed, %d to retry",
        len(report.done) + len(report.failed) + len(report.retry),
        len(report.done),
        len(report.failed),
        len(report.retry),
    )
    if report.retry:
        # Articles that failed this time go back on the queue later, alone, so they cannot
        # hold up the batch they came with; after the last attempt they are marked failed.
        process_batch.apply_async((report.retry,), countdown=min(300, 10 * 2**self.request.retries))
    if report.released:
        process_batch.apply_async((report.released,))
    return {"done": len(report.done), "failed": len(report.failed), "retry": len(report.retry)}


@shared_task(name="nlp_worker.tasks.sweep", **RELIABLE)
def sweep(self: Task) -> int:
    """Hand over again what nobody holds (run by Celery beat every COVIDNEWS_SWEEP_SECONDS)."""
    from nlp_worker.factchecks import link_batch
    from nlp_worker.handoff import submit

    handed = leases.sweep(_store(), get_settings(), submit)
    link_batch(_store(), _backends().embedder, [])  # fact-checks collected without articles
    return handed
