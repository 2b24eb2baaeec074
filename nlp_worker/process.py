"""Run the NLP stages in this process (the embedded default) — the same code Celery tasks run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select, update

from covidnews.follow import Follower
from covidnews.schema import Article, ProcessingState, StageRun
from covidnews.store import Store
from nlp_worker import leases
from nlp_worker.factchecks import link_batch
from nlp_worker.stages import Backends, process_leased

if TYPE_CHECKING:
    from covidnews.settings import Settings


@dataclass
class ProcessReport:
    done: int = 0
    failed: int = 0
    retry: int = 0
    indexed: int = 0  # vectors written to this machine's vector index
    searchable: int = 0  # documents written to this machine's keyword index
    failed_ids: list[int] = field(default_factory=list)


_WAITING = Article.state.in_([ProcessingState.pending.value, ProcessingState.processing.value])


def pending_count(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Article).where(_WAITING)) or 0)


def pending_ids(store: Store, limit: int | None = None) -> list[int]:
    """Articles waiting for the NLP stages, oldest first: every pending one, and those
    ``processing`` under a lease that expired (not those a live process holds). This is the
    one-machine sweep, run by every ``process``, and ``crawl``/``ingest`` before their NLP."""
    return leases.due(store, None, limit)


_DEFERRED = (StageRun.stage == "translate", StageRun.status == "deferred")


def deferred_count(store: Store) -> int:
    """Articles whose translation waits for a translator that could not run."""
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(StageRun).where(*_DEFERRED)) or 0)


def requeue_deferred(store: Store) -> int:
    """Put articles with a deferred translation back in the queue (call it when the translator
    can run): every other stage is fresh, so only the translation runs. They stay searchable
    meanwhile: the indexes keep an article's last version while it is processed again."""
    with store.session() as s:
        result = s.execute(
            update(Article)
            .where(
                Article.id.in_(select(StageRun.article_id).where(*_DEFERRED)),
                Article.state == ProcessingState.done.value,
            )
            .values(state=ProcessingState.pending.value)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)  # CursorResult


def process_ids(
    store: Store,
    settings: Settings,
    ids: Sequence[int],
    *,
    backends: Backends | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ProcessReport:
    """Process these articles in batches. Without a broker (one machine) this machine's indexes
    then follow the store after each batch — the follower an API node runs; with one, the API
    nodes' followers index what was processed and nothing is built here."""
    backends = backends or Backends.from_settings(settings)
    report = ProcessReport()
    follower = None
    if settings.embedded:
        follower = Follower.from_settings(settings, store, backends.embedder.model_id)
    size = settings.nlp_batch_size
    owner = leases.new_owner()
    for start in range(0, len(ids), size):
        result = process_leased(store, ids[start : start + size], backends, settings, owner)
        report.done += len(result.done)
        report.failed += len(result.failed)
        report.retry += len(result.retry)
        report.failed_ids += result.failed
        if follower is not None and (result.done or result.embedded):
            followed = follower.poll()
            report.indexed += followed.vectors
            report.searchable += followed.written
        if on_batch:
            on_batch(len(ids[start : start + size]))
    if not ids:  # fact-checks collected without articles still get their links
        link_batch(store, backends.embedder, [])
    return report


def process_pending(
    store: Store,
    settings: Settings,
    *,
    limit: int | None = None,
    backends: Backends | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> ProcessReport:
    return process_ids(
        store, settings, pending_ids(store, limit), backends=backends, on_batch=on_batch
    )
