"""Drop what is not an article: index/tag/author pages, empty or tiny texts, pages with no title."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import DropItem

from crawler.pipelines import frontier_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from crawler.items import ArticleItem

MIN_TEXT_CHARS = 250
#: behind a wall, what could be had (a feed's summary, the paragraphs before a paywall) is kept
#: when it says at least this much
MIN_WALLED_CHARS = 40


class ValidatePipeline:
    def __init__(self, crawler: Crawler, min_chars: int = MIN_TEXT_CHARS) -> None:
        self.crawler = crawler
        self.min_chars = min_chars

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler, crawler.settings.getint("COVIDNEWS_MIN_TEXT_CHARS", MIN_TEXT_CHARS))

    def process_item(self, item: ArticleItem) -> ArticleItem:
        page = item["page"]
        reason = None
        # Feeds and sitemaps vouch for their items; a link found by crawling must look like an
        # article itself (metadata says so, or a substantial body).
        vouched = item.get("via") in {"feed", "sitemap"}
        if not page.is_article and not vouched:
            reason = "not an article page"
        elif not page.title.strip():
            reason = "no title"
        elif len(page.text) < (MIN_WALLED_CHARS if item.get("wall") else self.min_chars):
            reason = f"text shorter than {self.min_chars} characters"
        if reason:
            frontier = frontier_of(self.crawler)
            if frontier is not None:
                frontier.mark_fetched(item["fetched_urls"], item["status"], reason)
            raise DropItem(f"{page.url}: {reason}")
        return item
