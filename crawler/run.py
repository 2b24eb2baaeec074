"""Run a crawl: registry → sources table → Scrapy (one process, or many sharing Redis)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from covidnews.interfaces import Handoff
from covidnews.settings import Settings
from covidnews.store import Store
from crawler.frontier import sync_sources
from crawler.registry import Registry, load_registry

log = logging.getLogger(__name__)
REDIS_KEY_TTL = 24 * 3600


@dataclass
class CrawlReport:
    run_id: str
    stats: dict[str, Any] = field(default_factory=dict)
    #: what discovery found: source slug → {url: (kind, origin, found via, is a news sitemap)}
    found: dict[str, dict[str, tuple[str, str, str, bool]]] = field(default_factory=dict)

    def get(self, key: str) -> int:
        value = self.stats.get(key, 0)
        return int(value) if isinstance(value, int | float) else 0

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pages_fetched": self.get("response_received_count"),
            "articles_stored": self.get("covidnews/articles/stored"),
            "articles_unchanged": self.get("covidnews/articles/unchanged"),
            "articles_queued": self.get("covidnews/articles/queued"),
            "syndicated_copies": self.get("covidnews/articles/syndicated"),
            "factchecks_stored": self.get("covidnews/factchecks/stored"),
            "walled_pages": self.get("covidnews/walls/consent")
            + self.get("covidnews/walls/paywall"),
            "endpoints_discovered": self.get("covidnews/endpoints/discovered"),
            "endpoints_failed": self.get("covidnews/endpoints/failed"),
            "endpoints_demoted": self.get("covidnews/endpoints/demoted"),
            "not_articles": self.get("item_dropped_count"),
            "feeds_not_modified": self.get("covidnews/feed/not_modified"),
            "sitemaps_not_modified": self.get("covidnews/sitemap/not_modified"),
            "refused_offsite": self.get("covidnews/refused/offsite"),
            "refused_private": self.get("covidnews/refused/private_address"),
            "robots_forbidden": self.get("robotstxt/forbidden"),
            "errors": self.get("log_count/ERROR"),
            "elapsed_seconds": round(float(self.stats.get("elapsed_time_seconds", 0.0)), 3),
            "finish_reason": self.stats.get("finish_reason"),
        }


def load(settings: Settings, path: str | Path | None = None) -> Registry:
    return load_registry(path or settings.sources_file)


def run_crawl(
    settings: Settings,
    store: Store,
    *,
    registry: Registry | None = None,
    only: list[str] | None = None,
    since: datetime | None = None,
    max_pages: int | None = None,
    run_id: str | None = None,
    overrides: dict[str, Any] | None = None,  # Scrapy settings: values of every kind
    handoff: Handoff | None = None,
    discover_only: bool = False,
) -> CrawlReport:
    """Crawl the registry's sources (or ``only`` those) once; blocks until done. ``handoff``
    receives the ids of new or changed articles as the crawl goes (with a broker: the commands
    pass ``nlp_worker.handoff.submit``); without it they wait ``pending`` for the sweep or for
    the NLP run that follows the crawl. ``discover_only``: only look for the sources' feeds and
    sitemaps (robots.txt, sitemap indexes, page alternates), recorded in the store and returned
    in ``found``; no article is fetched."""
    from scrapy.crawler import CrawlerProcess

    from crawler.settings import scrapy_settings
    from crawler.spiders.news import NewsSpider

    registry = registry or load(settings)
    if only:
        # A source is named by its name, slug or domain.
        found = {name: registry.get(name) or registry.by_domain(name) for name in only}
        unknown = [name for name, entry in found.items() if entry is None]
        if unknown:
            raise ValueError(f"unknown source(s): {', '.join(unknown)}")
        only = [entry.slug for entry in found.values() if entry is not None]
    source_ids = sync_sources(store, registry)
    run_id = run_id or uuid.uuid4().hex[:12]
    values = scrapy_settings(settings, overrides)
    values["COVIDNEWS_HANDOFF"] = handoff
    if max_pages:
        values["CLOSESPIDER_PAGECOUNT"] = max_pages
    if settings.redis_url:
        values["SCHEDULER_QUEUE_KEY"] = f"covidnews:{run_id}:requests"
        values["SCHEDULER_DUPEFILTER_KEY"] = f"covidnews:{run_id}:dupefilter"
        values["COVIDNEWS_RUN_PREFIX"] = f"covidnews:{run_id}"
        values["EXTENSIONS"] = {**values["EXTENSIONS"], "crawler.distributed.SharedIdle": 600}
        values["DOWNLOADER_MIDDLEWARES"] = {
            **values["DOWNLOADER_MIDDLEWARES"],
            "crawler.distributed.FetchClaims": 120,  # after the guard and robots.txt
        }
    process = CrawlerProcess(values)
    crawler = process.create_crawler(NewsSpider)
    process.crawl(
        crawler,
        registry=registry,
        store=store,
        source_ids=source_ids,
        only=only,
        since=since,
        discover_only=discover_only,
    )
    process.start()
    if settings.redis_url:
        _expire_keys(settings.redis_url, run_id)
    stats = dict(crawler.stats.get_stats()) if crawler.stats else {}
    discovered = getattr(crawler.spider, "found", {}) if crawler.spider else {}
    return CrawlReport(run_id=run_id, stats=stats, found=discovered)


def _expire_keys(redis_url: str, run_id: str) -> None:
    try:
        import redis

        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"covidnews:{run_id}:*"):
            client.expire(key, REDIS_KEY_TTL)
    except Exception as exc:  # best effort: keys also go when Redis is flushed
        log.warning("could not set expiry on crawl keys: %s", exc)
