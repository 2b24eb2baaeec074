"""Leases on NLP work, and the sweep that hands over what nobody holds.

An article waiting for the NLP stages is ``pending``; a worker that takes it makes it
``processing`` under a **lease**: ``lease_owner`` (who) and ``lease_until`` (until when). The
worker renews the lease while it works (:class:`Heartbeat`, every third of the lease) and clears
it when it writes the result. A lease not renewed in time — its worker was killed, its machine
lost — may be taken over by anyone.

The **sweep** (:func:`sweep`) hands over again what nobody will otherwise process:

- ``pending`` articles not claimed ``COVIDNEWS_HANDOFF_SECONDS`` after they were stored or last
  handed over (a collector killed between storing and handing over; a Redis restart that dropped
  the queue), and
- ``processing`` articles whose lease expired (``COVIDNEWS_LEASE_SECONDS``).

It runs every ``COVIDNEWS_SWEEP_SECONDS`` under Celery beat (scaled deployment) and at the start of
the NLP step of every ``crawl``, ``ingest`` and ``process`` on one machine. A sweep may race a live
worker: a claim only takes an article that is pending or whose lease expired, and a worker writes
its result only while it still holds the lease (checked under a row lock in the transaction that
writes it), so no stage runs twice and nothing is written by a worker that lost its lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from covidnews.schema import Article, ProcessingState, utcnow
from covidnews.store import Store

if TYPE_CHECKING:
    from covidnews.interfaces import Handoff
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

PENDING, PROCESSING = ProcessingState.pending.value, ProcessingState.processing.value
#: articles handed over per sweep (the next sweep goes on)
SWEEP_LIMIT = 50_000


class LeaseLost(RuntimeError):
    """A worker's lease on some of its articles was taken over before it wrote its result."""

    def __init__(self, lost: Sequence[int]) -> None:
        super().__init__(f"lease lost on {len(lost)} articles: {list(lost)[:10]}")
        self.lost = list(lost)


def new_owner() -> str:
    """A lease owner for a run of ``covidnews process`` (and the NLP step of ``crawl``/``ingest``):
    this host and process and a random token. A Celery task's owner is ``task:<task id>``."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _expired(now: datetime) -> ColumnElement[bool]:
    return or_(Article.lease_until.is_(None), Article.lease_until < now)


def _held_by(ids: Sequence[int], owner: str) -> ColumnElement[bool]:
    """Which of ``ids`` ``owner`` holds: processing, under its lease."""
    return and_(
        Article.id.in_(list(ids)), Article.state == PROCESSING, Article.lease_owner == owner
    )


def claim(store: Store, ids: Sequence[int], owner: str, seconds: int) -> list[int]:
    """Take the lease on those of ``ids`` that are pending, held by ``owner`` already (a Celery
    task retried after an error), or held by a lease that expired. Returns the ids taken."""
    if not ids:
        return []
    now = utcnow()
    with store.session() as s:
        s.execute(
            update(Article)
            .where(
                Article.id.in_(list(ids)),
                or_(
                    Article.state == PENDING,
                    and_(
                        Article.state == PROCESSING,
                        or_(Article.lease_owner == owner, _expired(now)),
                    ),
                ),
            )
            .values(
                state=PROCESSING, lease_owner=owner, lease_until=now + timedelta(seconds=seconds)
            )
            .execution_options(synchronize_session=False)
        )
        return list(
            s.scalars(
                select(Article.id).where(
                    _held_by(ids, owner),
                )
            )
        )


def renew(store: Store, ids: Sequence[int], owner: str, seconds: int) -> int:
    """Push the lease of ``owner`` on these articles ``seconds`` from now; returns how many."""
    if not ids:
        return 0
    with store.session() as s:
        result = s.execute(
            update(Article)
            .where(
                _held_by(ids, owner),
            )
            .values(lease_until=utcnow() + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


def still_held(s: Session, ids: Sequence[int], owner: str) -> set[int]:
    """In the caller's transaction: which of ``ids`` ``owner`` still holds, row-locked on
    PostgreSQL so no claim can take them over before this transaction commits (SQLite's single
    writer gives the same guarantee: a stale read cannot commit a write)."""
    return set(
        s.scalars(
            select(Article.id)
            .where(
                _held_by(ids, owner),
            )
            .with_for_update()
        )
    )


def release(store: Store, ids: Sequence[int], owner: str) -> list[int]:
    """Give back ``owner``'s lease on these articles unprocessed (``pending``, due for the next
    hand-over at once); returns the ids released."""
    if not ids:
        return []
    with store.session() as s:
        held = list(
            s.scalars(
                select(Article.id).where(
                    _held_by(ids, owner),
                )
            )
        )
        if held:
            s.execute(
                update(Article)
                .where(Article.id.in_(held), Article.lease_owner == owner)
                .values(state=PENDING, lease_owner=None, lease_until=utcnow())  # due now
                .execution_options(synchronize_session=False)
            )
        return held


class Heartbeat:
    """Renews ``owner``'s lease on ``ids`` every third of the lease while the ``with`` block
    runs (a thread with its own database connection). A failed renewal (the database is
    restarting) is logged and tried again at the next beat."""

    def __init__(self, store: Store, ids: Sequence[int], owner: str, seconds: int) -> None:
        self.store, self.ids, self.owner, self.seconds = store, list(ids), owner, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="covidnews-lease", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                renew(self.store, self.ids, self.owner, self.seconds)
            except Exception as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0]
                log.warning("lease renewal failed (will retry): %s", first)

    def __enter__(self) -> Heartbeat:
        if self.ids:
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)


def waiting_filter(now: datetime, handoff_seconds: int | None) -> ColumnElement[bool]:
    """What a sweep hands over: pending articles whose hand-over is older than the grace (all
    pending ones when ``handoff_seconds`` is None: one machine, nobody else to hand them to),
    and processing ones whose lease expired."""
    if handoff_seconds is None:
        pending: ColumnElement[bool] = Article.state == PENDING
    else:
        stale = now - timedelta(seconds=handoff_seconds)
        pending = and_(
            Article.state == PENDING,
            or_(
                Article.lease_until < now,
                and_(Article.lease_until.is_(None), Article.updated_at < stale),
            ),
        )
    return or_(pending, and_(Article.state == PROCESSING, _expired(now)))


def due(store: Store, handoff_seconds: int | None, limit: int | None = None) -> list[int]:
    """Ids of the articles a sweep hands over now, oldest first."""
    with store.session() as s:
        query = select(Article.id).where(waiting_filter(utcnow(), handoff_seconds))
        query = query.order_by(Article.id)
        if limit:
            query = query.limit(limit)
        return list(s.scalars(query))


def sweep(
    store: Store,
    settings: Settings,
    hand_over: Handoff,
    *,
    limit: int = SWEEP_LIMIT,
) -> int:
    """Hand over again what nobody holds: pending articles past the hand-off grace, processing
    ones whose lease expired, through ``hand_over`` (``nlp_worker.handoff.submit``: to the broker
    in batches). Each is stamped so the next sweep hands it over again only after another grace
    period. Returns how many were due."""
    ids = due(store, settings.handoff_seconds, limit)
    if not ids:
        return 0
    now = utcnow()
    with store.session() as s:
        for start in range(0, len(ids), 1000):
            s.execute(
                update(Article)
                .where(
                    Article.id.in_(ids[start : start + 1000]),
                    waiting_filter(now, settings.handoff_seconds),
                )
                .values(
                    state=PENDING,
                    lease_owner=None,
                    lease_until=now + timedelta(seconds=settings.handoff_seconds),
                )
                .execution_options(synchronize_session=False)
            )
    hand_over(ids, settings, store)
    log.info("sweep: %d articles handed over again", len(ids))
    return len(ids)
