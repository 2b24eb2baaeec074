"""The ``news`` spider: every source of the registry, by whatever it publishes.

One generic spider built from shared parts, so a source is data (a registry entry), not code:

- **feeds** (RSS 0.9x/1.0/2.0, Atom, JSON Feed) read tolerantly — malformed XML still yields
  its items (feedparser's recovering parser);
- **news sitemaps** (and sitemap indexes) with ``news:publication_date``/``lastmod`` windows;
- **links** for sites without either: in-domain, depth-limited, article-URL heuristics.

Feeds and sitemaps are **endpoints** (:mod:`crawler.endpoints`): the registry's, plus what the site
announces itself — found by **discovery** (:mod:`crawler.discovery`: robots.txt ``Sitemap:``
lines, sitemap indexes, ``<link rel=alternate>`` feeds) when a source has nothing reliable to read
or one of its endpoints fails. Every read of an endpoint is recorded; one that keeps failing or
goes stale is demoted and no longer read.

Feeds and sitemaps are fetched with conditional GET; announced pages are queued in the store
(see :mod:`crawler.frontier`) and never fetched again once stored.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor

from covidnews.factchecks import upsert_factchecks
from covidnews.store import Store, retrying
from covidnews.urls import InvalidURL, canonical_or_raw, canonical_url
from crawler.dates import parse_date
from crawler.discovery import feed_links, prefer_news, robots_sitemaps
from crawler.endpoints import Endpoints
from crawler.extract import ExtractionError, extract
from crawler.extract.claimreview import claim_reviews
from crawler.frontier import Discovery, Frontier
from crawler.links import looks_like_article, worth_following
from crawler.registry import Registry, SourceEntry

log = logging.getLogger(__name__)

SITEMAP_MAX_BYTES = 50 * 1024 * 1024
LISTING_DEPTH = 2  # home → section → articles
PRIORITY_ARTICLE = 10
PRIORITY_LISTING = 0
#: child sitemaps of one index read while looking for news sitemaps
DISCOVERY_INDEX_CHILDREN = 25
#: sitemap indexes nested this deep are followed by discovery
DISCOVERY_INDEX_DEPTH = 2


class NewsSpider(scrapy.Spider):
    name = "news"

    def __init__(
        self,
        registry: Registry,
        store: Store,
        source_ids: dict[str, int],
        *,
        only: list[str] | None = None,
        since: datetime | None = None,
        discover_only: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.store = store
        self.frontier = Frontier(store)
        self.endpoints = Endpoints(store)
        #: `covidnews sources discover`: only discovery, for every source, nothing else fetched
        self.discover_only = discover_only
        self._discovering: set[str] = set()
        self._robots_read: set[str] = set()  # hosts whose robots.txt sitemaps discovery read
        #: what discovery found in this run: slug → {url: (kind, origin, found via, news)}
        self.found: dict[str, dict[str, tuple[str, str, str, bool]]] = {}
        self.source_ids = source_ids
        self.since = since
        self.entries = [e for e in registry if not only or e.slug in only or e.name in only]
        self.allowed_domains = sorted({d for e in self.entries for d in e.domains})
        # Domains are checked against the registry (host only: LinkExtractor's allow_domains
        # would compare host:port).
        self.link_extractor = LinkExtractor(unique=True, canonicalize=False)

    # Start --------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[Any]:
        for request in self._start_requests():
            yield request

    def _start_requests(self) -> Iterator[scrapy.Request]:
        if self.discover_only:
            for entry in self.entries:
                yield from self._discovery(entry, "asked for")
            return
        ids = [self.source_ids[e.slug] for e in self.entries]
        resumed = self.frontier.queued(ids)
        if resumed:
            log.info("resuming %d queued article pages", len(resumed))
        for found in resumed:
            # Past the run's duplicate filter: a crawler killed while holding these pages (taken
            # from the shared queue, never fetched) already marked them seen for this run id, so
            # a restart under the same run id would skip them. The store says they are due.
            yield self._article_request(found).replace(dont_filter=True)
        for entry in self.entries:
            source_id = self.source_ids[entry.slug]
            self.endpoints.sync_registry(source_id, entry.feeds, entry.sitemaps)
            for url in self.endpoints.demote_stale(source_id):
                log.warning("%s: %s is stale (nothing new while the site publishes): demoted",
                            entry.name, url)  # fmt: skip
            in_use = self.endpoints.in_use(source_id, [*entry.feeds, *entry.sitemaps])
            for endpoint in in_use:
                feed = endpoint.kind == "feed"
                request = self._listing_request(
                    endpoint.url,
                    entry,
                    endpoint.kind,
                    self.parse_feed if feed else self.parse_sitemap,
                )
                request.meta["endpoint"] = True
                yield request
            if not any(e.kind == "feed" or e.news or e.origin == "registry" for e in in_use):
                yield from self._discovery(
                    entry, "no feed or news sitemap in use", on_listings=True
                )
            # Links complete what feeds and sitemaps (which list only the latest items) miss.
            for url in entry.start_urls or ([entry.homepage] if entry.homepage else []):
                request = self._listing_request(url, entry, "listing", self.parse_listing)
                request.meta["listing_depth"] = 0
                yield request

    def _listing_request(
        self, url: str, entry: SourceEntry, kind: str, callback: Any
    ) -> scrapy.Request:
        headers = {}
        # Conditional GET for feeds and sitemaps; link listings (home, sections) are always read
        # in full, since what they lead to (deeper listings) may change while they do not.
        etag, modified = self.frontier.validators(url) if kind != "listing" else (None, None)
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified
        return scrapy.Request(
            url,
            callback=callback,
            headers=headers,
            priority=PRIORITY_LISTING,
            meta={"source": entry.slug, "kind": kind, "handle_httpstatus_list": [304]},
            errback=self._listing_failed,
            # Distributed: listings are deduplicated by claims (crawler.distributed), not by the
            # run's shared duplicate filter — a process killed while holding a listing it took
            # from the shared queue would otherwise leave it "seen" and never read, and the
            # articles only it links to lost for the run.
            dont_filter=bool(self.settings.get("COVIDNEWS_RUN_PREFIX")),
        )

    def _article_request(self, found: Discovery) -> scrapy.Request:
        entry = self._entry_for(found.url)
        return scrapy.Request(
            found.url,
            callback=self.parse_article,
            priority=PRIORITY_ARTICLE,
            meta={
                "source": entry.slug if entry else None,
                "kind": "article",
                "listed_published": found.published.isoformat() if found.published else None,
                "listed_title": found.title,
                "listed_summary": found.summary,
                "via": found.via,
            },
            errback=self._article_failed,
        )

    def _entry_for(self, url: str) -> SourceEntry | None:
        from urllib.parse import urlsplit

        return self.registry.by_domain(urlsplit(url).hostname or "")

    # Listings -----------------------------------------------------------------------------

    def _discover(
        self,
        response: Response,
        entry: SourceEntry,
        found: list[tuple[str, datetime | None]],
        error: str | None = None,
        said: dict[str, tuple[str, str]] | None = None,
    ) -> Iterator[scrapy.Request]:
        """Queue what a listing announced (``said``: a feed's title and summary of each item)."""
        source_id = self.source_ids[entry.slug]
        discoveries = []
        for raw_url, published in found:
            try:
                url = canonical_url(raw_url)
            except InvalidURL:
                continue
            owner = self._entry_for(url)
            if owner is None or owner.slug != entry.slug:
                self.crawler.stats.inc_value("covidnews/links/offsite")
                continue
            if self.since and published and published < self.since:
                self.crawler.stats.inc_value("covidnews/links/too_old")
                continue
            title, summary = (said or {}).get(raw_url, (None, None))
            discoveries.append(
                Discovery(
                    url,
                    source_id,
                    published,
                    response.meta.get("kind", "listing"),
                    title,
                    summary,
                )
            )
        todo = self.frontier.record_listing(
            response.url,
            response.meta.get("kind", "listing"),
            source_id,
            status=response.status,
            etag=_header(response, "ETag"),
            last_modified=_header(response, "Last-Modified"),
            error=error,
            found=discoveries,
        )
        self.crawler.stats.inc_value("covidnews/articles/discovered", len(discoveries))
        self.crawler.stats.inc_value("covidnews/articles/queued", len(todo))
        for item in todo:
            yield self._article_request(item)

    def _not_modified(self, response: Response) -> bool:
        if response.status == 304:
            self.crawler.stats.inc_value(f"covidnews/{response.meta.get('kind')}/not_modified")
            return True
        return False

    def parse_feed(self, response: Response) -> Iterator[scrapy.Request]:
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        if self._not_modified(response):
            yield from self._endpoint_read(response, entry, ok=True)
            return
        items, said, error = read_feed(
            response.body, _header(response, "Content-Type"), response.url, entry.zone
        )
        self.crawler.stats.inc_value("covidnews/feed/parsed")
        if error:
            log.warning("feed %s: %s (%d items read)", response.url, error, len(items))
        origin = response.meta.get("origin")
        if origin and not items:  # a discovered candidate that is no feed: not recorded
            log.info("%s: %s announced as a feed, but no items read", entry.name, response.url)
            return
        if origin:
            self._found(entry, _first_url(response), "feed", origin, response.meta["found_via"])
            if self.discover_only:  # `sources discover`: found is all it wants
                return
        requests = list(self._discover(response, entry, items, error if not items else None, said))
        yield from requests
        yield from self._endpoint_read(
            response, entry, ok=bool(items) or error is None, error=error,
            new_items=len(requests), newest=_newest(items),
        )  # fmt: skip

    def _sitemap_body(self, response: Response, entry: SourceEntry) -> tuple[bytes, str | None]:
        """The sitemap's XML, inflated when gzipped (capped), or the problem."""
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                # One byte more than the cap tells a sitemap that inflates past it (a gzip bomb)
                body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(SITEMAP_MAX_BYTES + 1)
            except OSError as exc:
                return b"", f"bad gzip: {exc}"
            if len(body) > SITEMAP_MAX_BYTES:
                problem = f"inflates past {SITEMAP_MAX_BYTES >> 20} MiB: not read"
                log.warning("sitemap %s: %s", response.url, problem)
                return b"", problem
        return body, None

    def _sitemap_entries(
        self, entry: SourceEntry, urls: list[tuple[str, datetime | None]], news: set[str]
    ) -> list[tuple[str, datetime | None]]:
        # A news sitemap lists articles; a plain one lists every page (home, sections, legal
        # notices…): keep only what looks like an article there.
        urls = [
            (u, d) for u, d in urls if u in news or looks_like_article(canonical_or_raw(u), entry)
        ]
        if self.since:
            # News sitemaps hold the last two days; older <lastmod> entries are outside the window.
            window = self.since - timedelta(days=1)
            urls = [(u, d) for u, d in urls if d is None or d >= window]
        return urls

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        if self._not_modified(response):
            yield from self._endpoint_read(response, entry, ok=True)
            return
        body, problem = self._sitemap_body(response, entry)
        if problem:
            yield from self._discover(response, entry, [], problem)
            yield from self._endpoint_read(response, entry, ok=False, error=problem)
            return
        children, urls, news, error = parse_sitemap_xml(body, entry.zone)
        for child in children:
            yield self._listing_request(child, entry, "sitemap", self.parse_sitemap)
        requests = list(
            self._discover(response, entry, self._sitemap_entries(entry, urls, news), error)
        )
        yield from requests
        yield from self._endpoint_read(
            response, entry, ok=error is None or bool(urls or children), error=error,
            new_items=len(requests), newest=_newest(urls), news=bool(news) or None,
        )  # fmt: skip

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        if self._not_modified(response):
            return
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        depth = int(response.meta.get("listing_depth", 0))
        if not isinstance(response, TextResponse):
            return
        if depth == 0 and entry.slug in self._discovering:
            yield from self._page_discovery(response, entry)
        articles: list[tuple[str, datetime | None]] = []
        listings: list[str] = []
        for link in self.link_extractor.extract_links(response):
            try:
                url = canonical_url(link.url)
            except InvalidURL:
                continue
            owner = self._entry_for(url)
            if owner is None or owner.slug != entry.slug:
                continue
            if looks_like_article(url, entry):
                articles.append((url, None))
            elif depth < LISTING_DEPTH and worth_following(url, entry):
                listings.append(url)
        yield from self._discover(response, entry, articles)
        for url in listings:
            request = self._listing_request(url, entry, "listing", self.parse_listing)
            request.meta["listing_depth"] = depth + 1
            yield request

    def _listing_failed(self, failure: Any) -> Iterator[scrapy.Request]:
        from crawler.distributed import ClaimedElsewhere

        if failure.check(ClaimedElsewhere):
            return  # a live peer of this distributed crawl reads it: nothing failed
        request = failure.request
        reason = failure.getErrorMessage() or type(failure.value).__name__
        if "Cancelled" in type(failure.value).__name__:  # what Scrapy does at DOWNLOAD_MAXSIZE
            reason = f"cancelled: larger than {self.settings.getint('DOWNLOAD_MAXSIZE'):,} bytes"
        log.warning("listing %s failed: %s", request.url, reason)
        self.crawler.stats.inc_value("covidnews/listing/failed")
        entry = self.registry.get(request.meta.get("source") or "")
        if entry is None:
            return
        response = getattr(failure.value, "response", None)
        status = response.status if response is not None else 0
        if request.meta.get("endpoint"):
            problem = f"HTTP {status}" if status else reason
            yield from self._endpoint_failed(entry, request.url, status, problem)

    # Endpoints and discovery --------------------------------------------------------------

    def _endpoint_read(
        self,
        response: Response,
        entry: SourceEntry,
        *,
        ok: bool,
        error: str | None = None,
        new_items: int = 0,
        newest: datetime | None = None,
        news: bool | None = None,
    ) -> Iterator[scrapy.Request]:
        """Record a read of one of the source's endpoints (not of a child sitemap or a link
        listing); a bad one starts discovery."""
        if not (response.meta.get("endpoint") or response.meta.get("origin")):
            return
        url = _first_url(response)
        if not ok:
            yield from self._endpoint_failed(entry, url, response.status, error or "unreadable")
            return
        self.endpoints.outcome(
            self.source_ids[entry.slug], url, ok=True, status=response.status,
            new_items=new_items, newest=newest, news=news,
        )  # fmt: skip

    def _endpoint_failed(
        self, entry: SourceEntry, url: str, status: int, reason: str
    ) -> Iterator[scrapy.Request]:
        state = self.endpoints.outcome(
            self.source_ids[entry.slug], url, ok=False, status=status, error=reason
        )
        self.crawler.stats.inc_value("covidnews/endpoints/failed")
        if state == "demoted":
            self.crawler.stats.inc_value("covidnews/endpoints/demoted")
            log.warning("%s: %s demoted (%s)", entry.name, url, reason)
        yield from self._discovery(entry, f"{url} failed: {reason}")

    def _starts(self, entry: SourceEntry) -> list[str]:
        """The pages the crawl reads as link listings first (start pages, else the homepage)."""
        return entry.start_urls or ([entry.homepage] if entry.homepage else [])

    def _discovery(
        self, entry: SourceEntry, why: str, *, on_listings: bool = False
    ) -> Iterator[scrapy.Request]:
        """Look for the source's feeds and sitemaps, once per crawl: the feed links of its
        homepage and start pages, and the ``Sitemap:`` lines of the robots.txt of the homepage's
        host (read from the robots.txt middleware's copy when it has one, so robots.txt is not
        fetched twice). ``on_listings``: the start pages are about to be read as link listings,
        which look for feeds too (:meth:`parse_listing`), so they are not fetched twice either."""
        if entry.slug in self._discovering:
            return
        self._discovering.add(entry.slug)
        self.found.setdefault(entry.slug, {})
        self.crawler.stats.inc_value("covidnews/discovery/sources")
        log.info("%s: looking for feeds and sitemaps (%s)", entry.name, why)
        home = entry.homepage or (entry.start_urls[0] if entry.start_urls else None)
        home = home or f"https://{entry.domains[0]}/"
        listed = set(self._starts(entry)) if on_listings else set()
        for page in dict.fromkeys([home, *entry.start_urls]):
            if page in listed:
                continue
            yield scrapy.Request(
                page,
                callback=self.parse_page_feeds,
                meta={
                    "source": entry.slug,
                    "kind": "discovery",
                    "origin": "homepage" if page == home else "page",
                },
                dont_filter=True,
                errback=self._discovery_failed,
                priority=PRIORITY_LISTING + 1,
            )

    def _page_discovery(self, response: Response, entry: SourceEntry) -> Iterator[scrapy.Request]:
        """What a homepage or start page of a source being discovered announces: its feed links
        (each read, and recorded once it proves to be a feed: :meth:`parse_feed`) and, once per
        host, its robots.txt's sitemaps."""
        if not isinstance(response, TextResponse):
            return
        home = entry.homepage or ""
        origin = response.meta.get("origin") or (
            "homepage" if response.url.rstrip("/") == home.rstrip("/") else "page"
        )
        for url in feed_links(response.text, response.url):
            if not self._owned(url, entry):
                continue
            request = self._listing_request(url, entry, "feed", self.parse_feed)
            request.meta.update(origin=origin, found_via=response.url)
            yield request.replace(dont_filter=True, priority=PRIORITY_LISTING + 1)
        host = urlsplit(response.url).netloc
        if host in self._robots_read:
            return
        self._robots_read.add(host)
        robots = urljoin(response.url, "/robots.txt")
        sitemaps = self._robots_middleware_sitemaps(host)
        if sitemaps is None:  # robots.txt not obeyed, or not read yet: read it for its sitemaps
            yield scrapy.Request(
                robots,
                callback=self.parse_robots_sitemaps,
                meta={"source": entry.slug, "kind": "discovery"},
                dont_filter=True,
                errback=self._discovery_failed,
                priority=PRIORITY_LISTING + 1,
            )
            return
        for url in sitemaps:
            if self._owned(url, entry):
                yield self._discovered_sitemap(url, entry, "robots", robots, 0)

    def _robots_middleware_sitemaps(self, host: str) -> list[str] | None:
        """The ``Sitemap:`` lines of ``host``'s robots.txt as the robots.txt middleware parsed
        it for this crawl (Protego), or None when it has not."""
        from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware

        engine = getattr(self.crawler, "engine", None)
        downloader = getattr(engine, "downloader", None)
        middlewares = getattr(getattr(downloader, "middleware", None), "middlewares", ())
        for mw in middlewares:
            if isinstance(mw, RobotsTxtMiddleware):
                parser = getattr(mw, "_parsers", {}).get(host)
                protego = getattr(parser, "rp", None)
                if protego is not None and hasattr(protego, "sitemaps"):
                    return [str(u) for u in protego.sitemaps]
        return None

    def _discovery_failed(self, failure: Any) -> None:
        log.info("discovery: %s not read: %s", failure.request.url, failure.getErrorMessage())

    def _owned(self, url: str, entry: SourceEntry) -> bool:
        owner = self._entry_for(url)
        return owner is not None and owner.slug == entry.slug

    def _found(
        self, entry: SourceEntry, url: str, kind: str, origin: str, via: str, news: bool = False
    ) -> None:
        self.found.setdefault(entry.slug, {})[url] = (kind, origin, via, news)
        if self.endpoints.found(self.source_ids[entry.slug], url, kind, origin, via, news=news):
            self.crawler.stats.inc_value("covidnews/endpoints/discovered")
            log.info("%s: found %s%s %s (%s %s)", entry.name, "news " if news else "", kind, url,
                     origin, via)  # fmt: skip

    def parse_robots_sitemaps(self, response: Response) -> Iterator[scrapy.Request]:
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        for url in robots_sitemaps(response.body):
            if self._owned(url, entry):
                yield self._discovered_sitemap(url, entry, "robots", response.url, 0)

    def _discovered_sitemap(
        self, url: str, entry: SourceEntry, origin: str, via: str, depth: int
    ) -> scrapy.Request:
        request = self._listing_request(url, entry, "sitemap", self.parse_discovered_sitemap)
        request.meta.update(origin=origin, found_via=via, index_depth=depth)
        return request.replace(dont_filter=True, priority=PRIORITY_LISTING + 1)

    def parse_discovered_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        """A sitemap named by robots.txt or an index: an index is followed (news-named children
        first) to the sitemaps it lists; a sitemap with entries is recorded (as a news sitemap
        when it has Google News markup) and read like any."""
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        if response.status == 304:  # read in an earlier crawl: known already
            self._not_modified(response)
            return
        body, problem = self._sitemap_body(response, entry)
        if problem:
            return
        children, urls, news, error = parse_sitemap_xml(body, entry.zone)
        url = _first_url(response)
        depth = int(response.meta.get("index_depth", 0))
        if children:  # an index: recorded (not read while a feed or news sitemap works)
            self._found(entry, url, "sitemap", response.meta["origin"], response.meta["found_via"])
        if children and depth < DISCOVERY_INDEX_DEPTH:
            for child in prefer_news(children, DISCOVERY_INDEX_CHILDREN):
                if self._owned(child, entry):
                    yield self._discovered_sitemap(child, entry, "sitemap_index", url, depth + 1)
        if not urls:
            return
        origin, via = response.meta["origin"], response.meta["found_via"]
        self._found(entry, url, "sitemap", origin, via, news=bool(news))
        if self.discover_only:
            return
        requests = list(
            self._discover(response, entry, self._sitemap_entries(entry, urls, news), error)
        )
        yield from requests
        self.endpoints.outcome(
            self.source_ids[entry.slug], url, ok=True, status=response.status,
            new_items=len(requests), newest=_newest(urls), news=bool(news),
        )  # fmt: skip

    def parse_page_feeds(self, response: Response) -> Iterator[scrapy.Request]:
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        yield from self._page_discovery(response, entry)

    # Articles -----------------------------------------------------------------------------

    def parse_article(self, response: Response) -> Iterator[dict[str, Any]]:
        entry = self.registry.get(response.meta.get("source") or "") or self._entry_for(
            response.url
        )
        if entry is None:
            return
        fetched_at = datetime.now(UTC)
        try:
            page = extract(
                response.body,
                response.url,
                content_type=_header(response, "Content-Type"),
                fetched_at=fetched_at,
                tz=entry.zone,
                selectors=entry.selectors,
            )
        except ExtractionError as exc:
            self.frontier.mark_fetched(_urls(response), response.status, f"extraction: {exc}")
            self.crawler.stats.inc_value("covidnews/articles/unreadable")
            return
        if self._factchecks(response, entry, page.title, page.published_at):
            return
        wall = page.wall
        if wall is not None:
            self.crawler.stats.inc_value(f"covidnews/walls/{wall.kind}")
            if wall.kind == "consent":
                # The page is a consent banner: never stored as the article. What its feed said
                # of it is what can be had.
                title = response.meta.get("listed_title") or ""
                summary = response.meta.get("listed_summary") or ""
                if not (title and summary):
                    gave_up = self.frontier.defer_walled(
                        response.url, f"consent wall: {wall.reason}"
                    )
                    log.info("%s: consent wall, no feed summary yet: %s", response.url,
                             "given up" if gave_up else "left for the next crawl")  # fmt: skip
                    return
                page = dataclasses.replace(
                    page, title=title, text=summary, description=summary, is_article=True
                )
            log.info("%s: %s wall (%s): stored as incomplete", response.url, wall.kind,
                     wall.reason)  # fmt: skip
        listed = response.meta.get("listed_published")
        yield {
            "page": page,
            "source": entry.slug,
            "source_name": entry.name,
            "source_id": self.source_ids[entry.slug],
            "country": entry.country,
            "zone": entry.zone,
            "default_language": entry.language,
            "fetched_at": fetched_at,
            "listed_published": datetime.fromisoformat(listed) if listed else None,
            "via": response.meta.get("via", "listing"),
            "fetched_urls": _urls(response),
            "status": response.status,
            "wall": {"kind": wall.kind, "reason": wall.reason} if wall else None,
        }

    def _factchecks(
        self, response: Response, entry: SourceEntry, title: str, published: datetime | None
    ) -> bool:
        """A page with ClaimReview markup is stored as fact-checks (not as an article)."""
        if b"ClaimReview" not in response.body:
            return False  # most pages: no decoding or parsing for this
        reviews = claim_reviews(
            response.body,
            response.url,
            content_type=_header(response, "Content-Type"),
            tz=entry.zone,
            title=title,
        )
        if not reviews:
            return False
        for review in reviews:
            review.reviewed_at = review.reviewed_at or published
            review.language = review.language or entry.language
        source_id = self.source_ids[entry.slug]
        retrying(lambda: upsert_factchecks(self.store, reviews, source_id))
        self.frontier.mark_fetched(_urls(response), response.status)
        self.crawler.stats.inc_value("covidnews/factchecks/stored", len(reviews))
        return True

    def _article_failed(self, failure: Any) -> None:
        from crawler.distributed import ClaimedElsewhere

        if failure.check(ClaimedElsewhere):
            return  # a live peer of this distributed crawl fetches it: nothing failed
        request = failure.request
        response = getattr(failure.value, "response", None)
        status = response.status if response is not None else 0
        message = failure.getErrorMessage()
        if "robots.txt" in message:  # the site asks us not to: expected, counted in the summary
            log.info("article %s not fetched: %s", request.url, message)
        else:
            self.crawler.stats.inc_value("covidnews/articles/failed")
            log.warning("article %s failed: %s", request.url, message)
        if status in {404, 410, 451}:  # gone for good: don't queue it forever
            self.frontier.mark_fetched([request.url], status, message[:500])
        elif "robots.txt" in message:  # the site asks us not to: respect that
            self.frontier.mark_fetched([request.url], 0, "forbidden by robots.txt")


def _header(response: Response, name: str) -> str | None:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else None


def _first_url(response: Response) -> str:
    """The URL that was asked for (before redirects): the endpoint's own."""
    redirects = response.meta.get("redirect_urls") or []
    return str(redirects[0]) if redirects else response.url


def _newest(items: list[tuple[str, datetime | None]]) -> datetime | None:
    dates = [d for _, d in items if d is not None]
    return max(dates) if dates else None


def _urls(response: Response) -> list[str]:
    urls = {response.url, response.request.url if response.request else response.url}
    urls.update(response.meta.get("redirect_urls", []))
    return sorted(urls)


# Parsers (pure functions, tested on their own) -------------------------------------------------


def parse_feed_items(
    body: bytes, content_type: str | None, base_url: str, tz: tzinfo
) -> tuple[list[tuple[str, datetime | None]], str | None]:
    """(link, published) of every item of an RSS/Atom/JSON feed, and a parse problem if any."""
    items, _, error = read_feed(body, content_type, base_url, tz)
    return items, error


def _plain(text: object) -> str:
    """A feed's title or summary as text (summaries are often HTML)."""
    if not isinstance(text, str) or not text.strip():
        return ""
    if "<" in text:
        import lxml.html

        with contextlib.suppress(Exception):  # not HTML after all: the text as it is
            text = lxml.html.fromstring(text).text_content()
    return " ".join(str(text).split())


def read_feed(
    body: bytes, content_type: str | None, base_url: str, tz: tzinfo
) -> tuple[list[tuple[str, datetime | None]], dict[str, tuple[str, str]], str | None]:
    """(link, published) of every item of an RSS/Atom/JSON feed, what it says of each (link →
    (title, summary), as text), and a parse problem if any."""
    said: dict[str, tuple[str, str]] = {}
    stripped = body.lstrip()[:1]
    if stripped in (b"{", b"[") or (content_type or "").split(";")[0].strip().endswith("json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            return [], said, f"invalid JSON feed: {exc}"
        items = data.get("items", []) if isinstance(data, dict) else []
        out = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                date = item.get("date_published") or item.get("date_modified")
                out.append(
                    (item["url"], parse_date(date, tz=tz) if isinstance(date, str) else None)
                )
                summary = item.get("summary") or item.get("content_text") or ""
                said[item["url"]] = (_plain(item.get("title")), _plain(summary))
        return out, said, None
    import feedparser

    parsed = feedparser.parse(
        body,
        response_headers={
            "content-type": content_type or "application/xml",
            "content-location": base_url,
        },
    )
    out = []
    for entry in parsed.entries:
        # FeedBurner-style proxies: the original article link is kept aside.
        link = entry.get("feedburner_origlink") or entry.get("link") or ""
        if not link:
            for alt in entry.get("links", []):
                if alt.get("rel") in (None, "alternate") and alt.get("href"):
                    link = alt["href"]
                    break
        if not link and str(entry.get("id", "")).startswith("http"):
            link = entry["id"]
        if not link:
            continue
        raw_date = entry.get("published") or entry.get("updated") or entry.get("created")
        out.append((link, parse_date(raw_date, tz=tz) if raw_date else None))
        said[link] = (_plain(entry.get("title")), _plain(entry.get("summary")))
    if not out and b"<NewsML" in body[:2000]:
        out = _newsml_items(body, tz)
    error = None
    if parsed.get("bozo") and not (out and b"<NewsML" in body[:2000]):
        problem = parsed.get("bozo_exception")
        error = f"malformed feed ({type(problem).__name__}: {problem})"
    return out, said, error


def _newsml_items(body: bytes, tz: Any) -> list[tuple[str, datetime | None]]:
    """NewsML 1.x/2.0 item lists (as syndicated to portals): link and first-created date."""
    from lxml import etree

    root = etree.fromstring(
        body, parser=etree.XMLParser(recover=True, resolve_entities=False, no_network=True)
    )
    if root is None:
        return []
    out = []
    for item in root.iter("{*}NewsItem"):
        link, date = None, None
        for node in item.iter():
            name = str(node.tag).rsplit("}", 1)[-1].lower()
            text = (node.text or "").strip()
            if (
                name in {"deriveredfrom", "derivedfrom", "url"}
                and text.startswith("http")
                and not link
            ):
                link = text
            elif name in {"firstcreated", "thisrevisioncreated"} and text and date is None:
                date = parse_date(text, tz=tz)
        if link:
            out.append((link, date))
    return out


def parse_sitemap_xml(
    body: bytes, tz: tzinfo
) -> tuple[list[str], list[tuple[str, datetime | None]], set[str], str | None]:
    """(child sitemaps, (url, date) entries, URLs with news:news markup, problem)."""
    from lxml import etree

    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(body, parser=parser)
    except etree.XMLSyntaxError as exc:
        return [], [], set(), f"unreadable sitemap: {exc}"
    if root is None:
        return [], [], set(), "empty sitemap"

    def local(tag: object) -> str:
        return str(tag).rsplit("}", 1)[-1].lower()

    children: list[str] = []
    urls: list[tuple[str, datetime | None]] = []
    news: set[str] = set()
    for node in root:
        kind = local(node.tag)
        loc, date, is_news = None, None, False
        for child in node.iter():
            name = local(child.tag)
            text = (child.text or "").strip()
            if name == "loc" and loc is None:
                loc = text
            elif name == "news":
                is_news = True
            if (name == "publication_date" and text) or (
                name == "lastmod" and text and date is None
            ):
                date = parse_date(text, tz=tz)
        if not loc:
            continue
        if kind == "sitemap":
            children.append(loc)
        elif kind == "url":
            urls.append((loc, date))
            if is_news:
                news.add(loc)
    return children, urls, news, None
