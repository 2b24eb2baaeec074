"""Group syndicated copies: a near-duplicate of a stored article joins its story.

Exact URL duplicates need nothing here: the store's upsert is keyed by the canonical URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidnews.dedup import find_story
from covidnews.store import retrying
from crawler.pipelines import news_spider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.items import ArticleItem


class DedupPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DedupPipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        spider = news_spider(self.crawler)
        record = item["record"]
        when = record.published_at or item["fetched_at"]

        def story() -> int | None:
            with spider.store.session() as session:
                return find_story(
                    session,
                    record.simhash,
                    when,
                    words=len(record.text.split()),
                    exclude_url_hash=record.url_hash,
                )

        record.duplicate_of = retrying(story)  # waits while the database restarts
        if record.duplicate_of is not None:
            spider.crawler.stats.inc_value("covidnews/articles/syndicated")
        return item
