"""The ``news`` spider: every source of the registry, by whatever it publishes.

One generic spider built from shared parts, so a source is data (a registry entry), not code:

- **feeds** (RSS 0.9x/1.0/2.0, Atom, JSON Feed) read tolerantly — malformed XML still yields
  its items (feedparser's recovering parser);
- **news sitemaps** (and sitemap indexes) with ``news:publication_date``/``lastmod`` windows;
- **links** for sites without either: in-domain, depth-limited, article-URL heuristics.

Feeds and sitemaps are fetched with conditional GET; announced pages are queued in the store
(see :mod:`crawler.frontier`) and never fetched again once stored.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

import scrapy
from scrapy.http import Response, TextResponse
from scrapy.linkextractors import LinkExtractor

from covidnews.factchecks import upsert_factchecks
from covidnews.store import Store, retrying
from covidnews.urls import InvalidURL, canonical_or_raw, canonical_url
from crawler.dates import parse_date
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
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.registry = registry
        self.store = store
        self.frontier = Frontier(store)
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
            for url in entry.feeds:
                yield self._listing_request(url, entry, "feed", self.parse_feed)
            for url in entry.sitemaps:
                yield self._listing_request(url, entry, "sitemap", self.parse_sitemap)
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
    ) -> Iterator[scrapy.Request]:
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
            discoveries.append(
                Discovery(url, source_id, published, response.meta.get("kind", "listing"))
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
        if self._not_modified(response):
            return
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        tz = entry.zone
        items, error = parse_feed_items(
            response.body, _header(response, "Content-Type"), response.url, tz
        )
        self.crawler.stats.inc_value("covidnews/feed/parsed")
        if error:
            log.warning("feed %s: %s (%d items read)", response.url, error, len(items))
        yield from self._discover(response, entry, items, error if not items else None)

    def parse_sitemap(self, response: Response) -> Iterator[scrapy.Request]:
        if self._not_modified(response):
            return
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        body = response.body
        if body[:2] == b"\x1f\x8b":
            try:
                # One byte more than the cap tells a sitemap that inflates past it (a gzip bomb)
                body = gzip.GzipFile(fileobj=io.BytesIO(body)).read(SITEMAP_MAX_BYTES + 1)
            except OSError as exc:
                yield from self._discover(response, entry, [], f"bad gzip: {exc}")
                return
            if len(body) > SITEMAP_MAX_BYTES:
                problem = f"inflates past {SITEMAP_MAX_BYTES >> 20} MiB: not read"
                log.warning("sitemap %s: %s", response.url, problem)
                yield from self._discover(response, entry, [], problem)
                return
        children, urls, news, error = parse_sitemap_xml(body, entry.zone)
        for child in children:
            yield self._listing_request(child, entry, "sitemap", self.parse_sitemap)
        # A news sitemap lists articles; a plain one lists every page (home, sections, legal
        # notices…): keep only what looks like an article there.
        urls = [
            (u, d) for u, d in urls if u in news or looks_like_article(canonical_or_raw(u), entry)
        ]
        if self.since:
            # News sitemaps hold the last two days; older <lastmod> entries are outside the window.
            window = self.since - timedelta(days=1)
            urls = [(u, d) for u, d in urls if d is None or d >= window]
        yield from self._discover(response, entry, urls, error)

    def parse_listing(self, response: Response) -> Iterator[scrapy.Request]:
        if self._not_modified(response):
            return
        entry = self.registry.get(response.meta["source"])
        assert entry is not None
        depth = int(response.meta.get("listing_depth", 0))
        if not isinstance(response, TextResponse):
            return
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

    def _listing_failed(self, failure: Any) -> None:
        from crawler.distributed import ClaimedElsewhere

        if failure.check(ClaimedElsewhere):
            return  # a live peer of this distributed crawl reads it: nothing failed
        request = failure.request
        reason = failure.getErrorMessage() or type(failure.value).__name__
        if "Cancelled" in type(failure.value).__name__:  # what Scrapy does at DOWNLOAD_MAXSIZE
            reason = f"cancelled: larger than {self.settings.getint('DOWNLOAD_MAXSIZE'):,} bytes"
        log.warning("listing %s failed: %s", request.url, reason)
        self.crawler.stats.inc_value("covidnews/listing/failed")

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


def _urls(response: Response) -> list[str]:
    urls = {response.url, response.request.url if response.request else response.url}
    urls.update(response.meta.get("redirect_urls", []))
    return sorted(urls)


# Parsers (pure functions, tested on their own) -------------------------------------------------


def parse_feed_items(
    body: bytes, content_type: str | None, base_url: str, tz: tzinfo
) -> tuple[list[tuple[str, datetime | None]], str | None]:
    """(link, published) of every item of an RSS/Atom/JSON feed, and a parse problem if any."""
    stripped = body.lstrip()[:1]
    if stripped in (b"{", b"[") or (content_type or "").split(";")[0].strip().endswith("json"):
        try:
            data = json.loads(body)
        except ValueError as exc:
            return [], f"invalid JSON feed: {exc}"
        items = data.get("items", []) if isinstance(data, dict) else []
        out = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                date = item.get("date_published") or item.get("date_modified")
                out.append(
                    (item["url"], parse_date(date, tz=tz) if isinstance(date, str) else None)
                )
        return out, None
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
    if not out and b"<NewsML" in body[:2000]:
        out = _newsml_items(body, tz)
    error = None
    if parsed.get("bozo") and not (out and b"<NewsML" in body[:2000]):
        problem = parsed.get("bozo_exception")
        error = f"malformed feed ({type(problem).__name__}: {problem})"
    return out, error


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
