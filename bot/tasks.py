"""Celery tasks of the bot (thin: the work is in bot.post and bot.digest).

Celery beat runs them (``covidnews.celery``: ``bot.tasks.run_once`` every 30 minutes,
``bot.tasks.digest`` daily) on the ``bot`` queue: run ONE worker on it
(``celery -A covidnews.celery worker -Q bot -c 1``); posts are keyed in the store, so even
two would never post a story twice.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from celery import shared_task

from covidnews.settings import get_settings
from covidnews.store import Store


@shared_task(name="bot.tasks.run_once", ignore_result=True, acks_late=False)
def run_once() -> dict[str, Any]:
    from bot.post import run_once as run

    settings = get_settings()
    store = Store(settings.db_url)
    try:
        store.ensure_schema()
        return run(store, settings).as_dict()
    finally:
        store.close()


@shared_task(name="bot.tasks.digest", ignore_result=True, acks_late=False)
def digest(day: str | None = None) -> dict[str, Any]:
    from bot.digest import run_digest

    settings = get_settings()
    store = Store(settings.db_url)
    try:
        store.ensure_schema()
        when = date.fromisoformat(day) if day else None
        return run_digest(store, settings, when).as_dict()
    finally:
        store.close()
