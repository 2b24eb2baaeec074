"""Store the article (idempotent upsert) and mark its page fetched."""

from __future__ import annotations

from typing import Any


class StorePipeline:
    def process_item(self, item: dict[str, Any], spider: Any) -> dict[str, Any]:
        record = item["record"]
        result = spider.store.upsert_articles([record])
        item["article_ids"] = result.changed_ids
        stats = spider.crawler.stats
        stats.inc_value(
            "covidnews/articles/stored" if result.inserted else "covidnews/articles/unchanged"
        )
        spider.frontier.mark_fetched([*item["fetched_urls"], record.url], item["status"])
        return item
