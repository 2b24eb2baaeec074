"""Store the article (idempotent upsert) and mark its page fetched. While the database restarts
the pipeline waits and tries again (up to two minutes; the crawl pauses meanwhile) rather than
dropping the article it holds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from covidnews.metrics import record_article_stored
from covidnews.store import retrying
from crawler.pipelines import news_spider

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.items import ArticleItem


class StorePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        spider = news_spider(self.crawler)
        record = item["record"]
        result = retrying(lambda: spider.store.upsert_articles([record]))
        item["article_ids"] = result.changed_ids
        stats = spider.crawler.stats
        stats.inc_value(
            "covidnews/articles/stored" if result.inserted else "covidnews/articles/unchanged"
        )
        if result.inserted and self.crawler.settings.getbool("COVIDNEWS_METRICS"):
            record_article_stored(len(result.inserted))
        spider.frontier.mark_fetched([*item["fetched_urls"], record.url], item["status"])
        return item
