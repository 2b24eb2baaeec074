"""Prometheus counters of a crawl (see :mod:`covidnews.metrics`): responses by source and status.

Enabled (``COVIDNEWS_METRICS`` Scrapy setting) when ``COVIDNEWS_METRICS_PORT`` is set;
``covidnews crawl`` then serves them on that port while it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import NotConfigured

from covidnews.metrics import record_page

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response


class CrawlMetrics:
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlMetrics:
        if not crawler.settings.getbool("COVIDNEWS_METRICS"):
            raise NotConfigured
        ext = cls()
        crawler.signals.connect(ext.response_received, signal=signals.response_received)
        return ext

    def response_received(
        self, response: Response, request: Request, spider: Spider | None = None
    ) -> None:
        record_page(request.meta.get("source"), response.status)
