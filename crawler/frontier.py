"""The crawl's memory in the store (table ``crawl_state``): what to fetch, what was fetched.

- Listings (feeds, sitemaps, section pages) keep their ETag/Last-Modified for conditional GET.
- Article pages they announce are written as *queued* rows in the same transaction as the
  listing's new validators. So if the crawler is killed, a restart finds every announced page
  still queued (the feed itself may answer 304 now) — nothing is lost.
- A page is marked fetched once its article is stored (or found not to be an article), so it is
  never fetched again; pages already stored as articles are never queued.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, update

from covidnews.schema import Article, CrawlState, Source, utcnow
from covidnews.store import Store, retrying, slugify
from covidnews.urls import canonical_or_raw, url_hash

if TYPE_CHECKING:
    from crawler.registry import SourceEntry

T = TypeVar("T")

PAGE = "page"


@dataclass(frozen=True, slots=True)
class Discovery:
    url: str  # canonical
    source_id: int
    published: datetime | None = None  # what the listing said, a fallback for the page's date
    via: str = "listing"  # feed | sitemap | listing (links): feeds and sitemaps vouch for articles
    # what a feed said of it: all there is to store when a consent wall hides the page
    title: str | None = None
    summary: str | None = None


def _patient(method: Callable[..., T]) -> Callable[..., T]:
    """The method, tried again while the database restarts (:func:`covidnews.store.retrying`):
    a crawl pauses rather than dropping what a listing announced or a page's state."""

    @functools.wraps(method)
    def wrapper(self: Frontier, *args: Any, **kwargs: Any) -> T:
        return retrying(lambda: method(self, *args, **kwargs))

    return wrapper


class Frontier:
    def __init__(self, store: Store) -> None:
        self.store = store

    @_patient
    def validators(self, url: str) -> tuple[str | None, str | None]:
        """(ETag, Last-Modified) last seen for a listing URL."""
        with self.store.session() as s:
            row = s.get(CrawlState, url_hash(url))
            return (row.etag, row.last_modified) if row else (None, None)

    @_patient
    def record_listing(
        self,
        url: str,
        kind: str,
        source_id: int | None,
        *,
        status: int,
        etag: str | None = None,
        last_modified: str | None = None,
        error: str | None = None,
        found: Sequence[Discovery] = (),
    ) -> list[Discovery]:
        """Save a fetched listing and queue what it announced, in one transaction.

        Returns the announced pages still to fetch (new ones and ones queued earlier).
        """
        now = utcnow()
        with self.store.session() as s:
            todo = self._queue(s, found)
            key = url_hash(url)
            row = s.get(CrawlState, key)
            if row is None:
                row = CrawlState(url_hash=key, url=url, kind=kind, source_id=source_id, extra={})
                s.add(row)
            row.http_status, row.error, row.fetched_at = status, error, now
            if error is None and status == 200:
                # Validators only after a good parse: a broken feed is fetched in full next time.
                row.etag, row.last_modified = etag, last_modified
            return todo

    def _queue(self, s: Any, found: Sequence[Discovery]) -> list[Discovery]:
        unique = {url_hash(d.url): d for d in found}
        if not unique:
            return []
        keys = list(unique)
        stored = set(s.scalars(select(Article.url_hash).where(Article.url_hash.in_(keys))))
        known = {
            row.url_hash: row
            for row in s.scalars(select(CrawlState).where(CrawlState.url_hash.in_(keys)))
        }
        todo = []
        for key, found_page in unique.items():
            if key in stored:
                continue
            row = known.get(key)
            if row is None:
                extra: dict[str, Any] = {"via": found_page.via}
                if found_page.published:
                    extra["published"] = found_page.published.isoformat()
                if found_page.title:
                    extra["title"] = found_page.title[:500]
                if found_page.summary:
                    extra["summary"] = found_page.summary[:2000]
                s.add(
                    CrawlState(
                        url_hash=key,
                        url=found_page.url,
                        kind=PAGE,
                        source_id=found_page.source_id,
                        extra=extra,
                    )
                )
                todo.append(found_page)
            elif row.kind == PAGE and row.fetched_at is None:
                if found_page.title and not (row.extra or {}).get("title"):
                    # a feed says what a page found by links is: kept for a consent wall
                    extra = dict(row.extra or {})
                    extra["title"] = found_page.title[:500]
                    extra["summary"] = (found_page.summary or "")[:2000]
                    row.extra = extra
                todo.append(found_page)
        return todo

    @_patient
    def defer_walled(self, url: str, reason: str, tries: int = 3) -> bool:
        """A page behind a consent wall with nothing else known of it yet: left queued for a
        later crawl (by then a feed may have said what it is), at most ``tries`` times; True
        when it was given up (marked fetched)."""
        with self.store.session() as s:
            row = s.get(CrawlState, url_hash(canonical_or_raw(url)))
            if row is None:
                return True
            extra = dict(row.extra or {})
            extra["walled_tries"] = int(extra.get("walled_tries", 0)) + 1
            row.extra, row.error = extra, reason[:500]
            if extra["walled_tries"] >= tries:
                row.fetched_at = utcnow()
                return True
            return False

    @_patient
    def queued(self, source_ids: Iterable[int] | None = None) -> list[Discovery]:
        """Pages announced earlier and not fetched yet (what a killed crawl left)."""
        with self.store.session() as s:
            query = select(CrawlState).where(
                CrawlState.kind == PAGE, CrawlState.fetched_at.is_(None)
            )
            if source_ids is not None:
                query = query.where(CrawlState.source_id.in_(list(source_ids)))
            out = []
            for row in s.scalars(query.order_by(CrawlState.url)):
                extra = row.extra or {}
                published = extra.get("published")
                out.append(
                    Discovery(
                        row.url,
                        row.source_id or 0,
                        datetime.fromisoformat(published) if published else None,
                        extra.get("via", "listing"),
                        extra.get("title"),
                        extra.get("summary"),
                    )
                )
            return out

    @_patient
    def mark_fetched(self, urls: Iterable[str], status: int, error: str | None = None) -> None:
        keys = list({url_hash(canonical_or_raw(u)) for u in urls if u})
        if not keys:
            return
        with self.store.session() as s:
            s.execute(
                update(CrawlState)
                .where(CrawlState.url_hash.in_(keys), CrawlState.kind == PAGE)
                .values(fetched_at=utcnow(), http_status=status, error=error)
                .execution_options(synchronize_session=False)
            )

    @_patient
    def is_stored(self, url: str) -> bool:
        with self.store.session() as s:
            return s.scalar(select(Article.id).where(Article.url_hash == url_hash(url))) is not None


def sync_sources(store: Store, entries: Iterable[SourceEntry]) -> dict[str, int]:
    """Write registry entries into the ``sources`` table (insert or update by slug).

    Returns slug → source id. Sources that only came from ingest are left alone.
    """
    ids: dict[str, int] = {}
    entries = list(entries)
    with store.session() as s:
        # Several crawlers of one run start together: the store creates missing rows with ON
        # CONFLICT DO NOTHING (a concurrent insert wins quietly); every row is then updated.
        store._ensure_sources(
            s, {slugify(e.name): (e.name, "", e.country, e.language) for e in entries}
        )
        existing = {src.slug: src for src in s.scalars(select(Source))}
        for entry in entries:
            slug = slugify(entry.name)
            src = existing[slug]
            src.name = entry.name
            src.kind = entry.kind
            src.country = entry.country
            src.language = entry.language
            src.homepage = entry.homepage
            src.domains = list(entry.domains)
            src.feeds = list(entry.feeds)
            src.sitemaps = list(entry.sitemaps)
            src.weight = entry.weight
            src.extra = {**(src.extra or {}), "scope": getattr(entry, "scope", None)}
            s.flush()
            ids[slug] = src.id
    store._source_cache.clear()
    store._domain_cache = None
    return ids
