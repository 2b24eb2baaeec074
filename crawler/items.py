"""What the spider yields and the pipelines pass along: one article page, typed.

The spider fills the first block; ``NormalisePipeline`` adds ``record`` and ``StorePipeline``
``article_ids``. ``HandoffPipeline`` returns a small :class:`StoredItem` so a long crawl keeps no
page in memory.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import NotRequired, TypedDict

from covidnews.store import ArticleRecord
from crawler.extract import Extracted


class ArticleItem(TypedDict):
    page: Extracted
    source: str  # registry slug
    source_name: str
    source_id: int
    country: str
    zone: tzinfo
    default_language: str
    fetched_at: datetime
    listed_published: datetime | None  # the feed's or sitemap's date for it
    via: str  # feed, sitemap or listing
    fetched_urls: list[str]  # every URL fetched on the way (redirects)
    status: int
    # a consent or paywall kept the full text away: {"kind": consent | paywall, "reason": …}
    wall: dict[str, str] | None
    record: NotRequired[ArticleRecord]
    article_ids: NotRequired[list[int]]


class StoredItem(TypedDict):
    url: str
    source: str
    ids: list[int]
