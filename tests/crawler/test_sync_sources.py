"""Registry → sources table when several crawlers of one run start at once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from covidnews.schema import Source
from covidnews.store import Store
from crawler.frontier import sync_sources
from crawler.registry import load_registry


def test_concurrent_crawlers_sync_the_registry_without_conflicts(db_url: str) -> None:
    Store(db_url).migrate()
    entries = list(load_registry())
    errors: list[str] = []
    results: list[dict[str, int]] = []

    def crawler() -> None:
        store = Store(db_url)
        try:
            results.append(sync_sources(store, entries))
        except Exception as exc:  # the bug: a UniqueViolation on sources.name
            errors.append(repr(exc))
        finally:
            store.close()

    threads = [threading.Thread(target=crawler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 4 and all(r == results[0] for r in results)
    store = Store(db_url)
    try:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Source)) == len(entries)
    finally:
        store.close()
