"""Turn an extracted page into the store's :class:`~covidnews.store.ArticleRecord`.

The same validation as ``covidnews ingest`` (canonical URL, ISO dates, language and country
codes, hashes, SimHash); the source's language and the listing's date fill gaps. Dates keep the
offset the outlet wrote them in; one written in UTC is placed in the source country's zone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from covidnews.ingest import RecordError, parse_record
from crawler.dates import zone_for
from crawler.pipelines import frontier_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.items import ArticleItem


class NormalisePipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        return cls(crawler)

    def process_item(self, item: ArticleItem) -> ArticleItem:
        page = item["page"]
        published, published_from = page.published_at, page.published_from
        if published is None and item.get("listed_published"):
            # the date the outlet's feed or sitemap gave it: its own statement, not the page's
            published, published_from = item["listed_published"], "listing"
        if published is not None and not published.utcoffset():
            # Written in UTC (a machine's "Z"): the outlet's own clock is its country's zone.
            published = published.astimezone(item.get("zone") or zone_for(item.get("country")))
        try:
            item["record"] = parse_record(
                {
                    "url": page.url,
                    "title": page.title,
                    "text": page.text,
                    "authors": page.authors,
                    "language": page.language or item.get("default_language"),
                    "published_at": published.isoformat() if published else None,
                    "modified_at": page.modified_at.isoformat() if page.modified_at else None,
                    "section": page.section,
                    "image": page.image,
                    "source": item["source_name"],
                    "description": page.description,
                    # kept in the article's `extra`: measured (metadata, byline…) vs estimated,
                    # and the wire agencies credited (EFE, Europa Press…), who are not authors
                    "published_from": published_from,
                    **({"agencies": page.agencies} if page.agencies else {}),
                    # behind a paywall or consent wall: what could be had, flagged
                    **({"text_complete": False, "wall": item["wall"]} if item.get("wall") else {}),
                },
                origin="crawl",
            )
        except RecordError as exc:
            frontier = frontier_of(self.crawler)
            if frontier is not None:
                frontier.mark_fetched(item["fetched_urls"], item["status"], f"invalid: {exc}")
            raise DropItem(f"{page.url}: {exc}") from None
        return item
