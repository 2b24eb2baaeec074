"""Hand new or changed articles to the NLP stage (in-process, or Celery with a broker)."""

from __future__ import annotations

from typing import Any

from covidnews.pipeline import submit


class HandoffPipeline:
    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Any) -> HandoffPipeline:
        return cls(crawler)

    def process_item(self, item: dict[str, Any]) -> dict[str, Any]:
        ids = item.get("article_ids") or []
        if ids:
            submit(ids)
        # Items are not exported anywhere: keep memory flat on long crawls.
        return {"url": item["record"].url, "source": item["source"], "ids": ids}
