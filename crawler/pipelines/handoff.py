"""Hand new or changed articles to the NLP stage.

With a broker they are queued in batches as the crawl goes. In-process (the embedded default)
nothing runs here: the articles are stored ``pending`` and the command that ran the crawl
(``covidnews crawl``, ``covidnews demo``) processes them when the crawl ends, with progress, so
models never stall the crawler's event loop and a crawl killed midway loses nothing.

The hand-off itself is given by whoever runs the crawl (``run_crawl(handoff=...)``, Scrapy setting
``COVIDNEWS_HANDOFF``: ``nlp_worker.handoff.submit`` from the commands), so the crawler does not
depend on the NLP. Without one the articles stay ``pending`` and the sweep hands them over.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidnews.settings import get_settings

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from covidnews.interfaces import Handoff
    from crawler.items import ArticleItem, StoredItem


class HandoffPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.pending: list[int] = []
        self.settings = get_settings()
        self.submit: Handoff | None = crawler.settings.get("COVIDNEWS_HANDOFF")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HandoffPipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> StoredItem:
        ids = item.get("article_ids") or []
        if self.settings.broker_url and self.submit is not None:
            self.pending.extend(ids)
            if len(self.pending) >= self.settings.nlp_batch_size:
                self._flush()
        # Items are not exported anywhere: keep memory flat on long crawls.
        return {"url": item["record"].url, "source": item["source"], "ids": ids}

    def _flush(self) -> None:
        ids, self.pending = self.pending, []
        if ids and self.submit is not None:
            self.submit(ids, self.settings, getattr(self.crawler.spider, "store", None))

    def close_spider(self, spider: object = None) -> None:
        self._flush()
