"""Distributed crawling: several processes share one crawl through Redis (scrapy-redis).

scrapy-redis shares the request queue and the dupefilter. What it does not share is *when the crawl
is over*: a process whose local work runs out would close while another is still finding links.
:class:`SharedIdle` keeps every process of a run alive while any other one is still busy (a
heartbeat key per process in Redis with a short expiry, so a killed process stops counting within
seconds), and lets them all close once the queue is empty and nobody is busy.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured
from twisted.internet import task

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 1.0
BUSY_TTL_SECONDS = 5


class SharedIdle:
    def __init__(self, crawler: Any, client: Any, prefix: str, queue_key: str) -> None:
        self.crawler = crawler
        self.client = client
        self.prefix = prefix
        self.queue_key = queue_key
        self.me = f"{prefix}:busy:{socket.gethostname()}:{os.getpid()}"
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Any) -> SharedIdle:
        url = crawler.settings.get("REDIS_URL")
        prefix = crawler.settings.get("COVIDNEWS_RUN_PREFIX")
        if not url or not prefix:
            raise NotConfigured
        import redis

        ext = cls(
            crawler, redis.Redis.from_url(url), prefix, crawler.settings.get("SCHEDULER_QUEUE_KEY")
        )
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def _busy_locally(self) -> bool:
        engine = self.crawler.engine
        downloader_active = bool(getattr(engine.downloader, "active", ()))
        scraper_slot = getattr(engine.scraper, "slot", None)
        scraping = bool(getattr(scraper_slot, "active", ())) if scraper_slot else False
        return downloader_active or scraping

    def beat(self) -> None:
        if self._busy_locally():
            self.client.set(self.me, 1, ex=BUSY_TTL_SECONDS)

    def opened(self, spider: Any) -> None:
        self.client.set(self.me, 1, ex=BUSY_TTL_SECONDS)
        self.loop = task.LoopingCall(self.beat)
        self.loop.start(HEARTBEAT_SECONDS)

    def idle(self, spider: Any) -> None:
        self.client.delete(self.me)
        others = [
            k for k in self.client.scan_iter(f"{self.prefix}:busy:*") if k.decode() != self.me
        ]
        queued = self.client.zcard(self.queue_key) if self.queue_key else 0
        if others or queued:
            log.debug(
                "idle, but %d other crawler(s) busy and %d requests queued", len(others), queued
            )
            raise DontCloseSpider

    def closed(self, spider: Any) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        self.client.delete(self.me)
