"""Live crawl statistics on a terminal (one refreshing status line on stderr)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector


FIELDS = (
    ("pages", "response_received_count"),
    ("stored", "covidnews/articles/stored"),
    ("queued", "covidnews/articles/queued"),
    ("304", "covidnews/feed/not_modified"),
    ("dropped", "item_dropped_count"),
    ("refused", "covidnews/refused/offsite"),
    ("errors", "log_count/ERROR"),
)


class LiveStats:
    def __init__(self, stats: StatsCollector, interval: float = 1.0) -> None:
        self.stats = stats
        self.interval = interval
        self.loop: task.LoopingCall | None = None
        self.started = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LiveStats:
        enabled = crawler.settings.getbool("COVIDNEWS_LIVE_STATS", sys.stderr.isatty())
        if not enabled:
            raise NotConfigured
        ext = cls(crawler.stats)
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        parts = [f"{label} {self.stats.get_value(key, 0):,}" for label, key in FIELDS]
        return f"\r[{elapsed:6.0f}s] " + " · ".join(parts) + "   "

    def opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        self.loop = task.LoopingCall(lambda: sys.stderr.write(self.line()))
        self.loop.start(self.interval)

    def closed(self, spider: Spider) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        sys.stderr.write(self.line() + "\n")
