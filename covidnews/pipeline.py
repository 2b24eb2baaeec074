"""Hand-off from the collectors (crawler, ingest) to the NLP stage.

Collectors call :func:`submit` with the ids of articles they inserted or whose content changed.
With no broker configured the work runs in-process; with ``COVIDNEWS_BROKER_URL`` set it becomes a
Celery task. Until the NLP stages exist (the NLP-worker issue) there is nothing to run: articles
stay in the ``pending`` state, where ``covidnews process`` will find them, so nothing is lost.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def submit(article_ids: Sequence[int], settings: Any = None) -> int:
    """Queue articles for NLP processing; returns how many were handed over (0: none to run)."""
    if not article_ids:
        return 0
    log.debug("%d articles pending NLP (no NLP stages installed yet)", len(article_ids))
    return 0
