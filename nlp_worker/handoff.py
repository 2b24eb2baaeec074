"""Hand-off from the collectors (crawler, ingest) to the NLP stage — wiring, so an entry-layer
module: the commands pass :func:`submit` to the collectors (``run_crawl(handoff=submit)``, the
ingest's ``on_batch``) and to the sweep; the collectors themselves never import the NLP.

Collectors call :func:`submit` with the ids of articles they inserted or whose content changed.
With ``COVIDNEWS_BROKER_URL`` set, the ids go to Celery (``nlp`` queue) in batches and this returns
at once. Without a broker the stages run here, in-process (the embedded default). With
``COVIDNEWS_PROCESS_ON_INGEST=false`` nothing runs now: the articles stay ``pending`` until
``covidnews process`` (or a worker) takes them — nothing is lost either way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from covidnews.settings import Settings
    from covidnews.store import Store

log = logging.getLogger(__name__)


def submit(
    article_ids: Sequence[int], settings: Settings | None = None, store: Store | None = None
) -> int:
    """Queue or run the NLP stages for these articles; returns how many were handed over."""
    if not article_ids:
        return 0
    if settings is None:
        from covidnews.settings import get_settings

        settings = get_settings()
    if not settings.process_on_ingest:
        return 0
    ids = [int(i) for i in article_ids]
    if settings.broker_url:
        import covidnews.celery  # noqa: F401 - the configured app (broker) sends the tasks
        from nlp_worker.tasks import process_batch

        size = settings.nlp_batch_size
        for start in range(0, len(ids), size):
            process_batch.delay(ids[start : start + size])
        return len(ids)
    from covidnews.store import Store
    from nlp_worker.process import process_ids

    own = store is None
    store = store or Store.from_settings(settings)
    try:
        report = process_ids(store, settings, ids)
    finally:
        if own:
            store.close()
    log.info("processed %d articles in-process (%d failed)", report.done, report.failed)
    return len(ids)
