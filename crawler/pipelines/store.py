"""Store the article (idempotent upsert) and mark its page fetched. While the database restarts
the pipeline waits and tries again (up to two minutes; the crawl pauses meanwhile) rather than
dropping the article it holds."""

from __future__ import annotations

from typing import Any

from covidnews.metrics import record_article_stored
from covidnews.store import retrying


class StorePipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        spider = self.crawler.spider
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
