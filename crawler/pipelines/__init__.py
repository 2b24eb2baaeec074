"""Item pipelines, one per module, in this order (see ``crawler/settings.py``):

validate → normalise → dedup → store → handoff

Each takes the :class:`~crawler.items.ArticleItem` the spider yielded and passes it on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.frontier import Frontier
    from crawler.spiders.news import NewsSpider


def news_spider(crawler: Crawler) -> NewsSpider:
    """The running spider, which holds the store and the frontier the pipelines write to."""
    from crawler.spiders.news import NewsSpider

    spider = crawler.spider
    if not isinstance(spider, NewsSpider):
        raise TypeError(f"the covidnews pipelines run under NewsSpider, not {spider!r}")
    return spider


def frontier_of(crawler: Crawler) -> Frontier | None:
    """The spider's frontier, if a spider runs (a pipeline used on its own has none)."""
    spider = getattr(crawler, "spider", None)
    return getattr(spider, "frontier", None)
