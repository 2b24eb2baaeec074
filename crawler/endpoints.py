"""Where a source is read from, and whether it still works (table ``source_endpoints``).

An endpoint is a feed or a sitemap. The registry's own are endpoints of origin ``registry``;
discovery (:mod:`crawler.discovery`, run by the spider) adds the ones a site publishes itself:
``robots`` (a ``Sitemap:`` line of its robots.txt), ``sitemap_index`` (a news sitemap listed by a
sitemap index), ``homepage`` / ``page`` (a ``<link rel="alternate">`` feed on the homepage or a
start page).

Every read of an endpoint is an outcome (:meth:`Endpoints.outcome`):

- good (200 and parsed, or 304): the failure streak ends; ``new_items_at`` moves to the read's
  time when its newest item changed (kept in ``crawl_state.extra.newest_item``) or, without
  dates, when it announced unseen pages; a demoted endpoint that works again is reinstated;
- bad (404/410 and other HTTP errors, DNS and connection failures, a feed or sitemap that cannot be
  parsed): the streak grows, and at :data:`DEMOTE_AFTER` failures in a row (410 Gone: at once) the
  endpoint is **demoted**: not read again until :data:`REPROBE_AFTER` has passed (then tried once:
  reinstated if it works, demoted again if not);
- **stale**: an endpoint that announced nothing new for :data:`STALE_DAYS` while its source
  published (articles stored through its other endpoints or links) is demoted too.

A failing or missing endpoint makes the spider run discovery for the source in the same crawl, so
what the site now publishes is read at once: healing does not wait for the demotion. Each outcome
that changes something is appended to the URL's ``crawl_state.extra.history`` (the newest
:data:`HISTORY` events): when it was found, failed, was demoted or reinstated.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select

from covidnews.schema import Article, CrawlState, SourceEndpoint, utcnow
from covidnews.store import Store, retrying
from covidnews.urls import url_hash

T = TypeVar("T")

#: failed reads in a row before an endpoint is demoted (410 Gone: one)
DEMOTE_AFTER = 3
#: a demoted endpoint is tried again this long after it was demoted
REPROBE_AFTER = timedelta(days=7)
#: an endpoint announcing nothing new this long while its source publishes is stale
STALE_DAYS = 14
#: articles the source must have stored in that time for "while it publishes"
STALE_MIN_ARTICLES = 3
#: events kept per URL in crawl_state.extra.history
HISTORY = 50

ACTIVE, DEMOTED = "active", "demoted"


@dataclass(frozen=True)
class Endpoint:
    url: str
    kind: str  # feed | sitemap
    news: bool
    origin: str
    state: str
    failures: int


def _patient(method: Callable[..., T]) -> Callable[..., T]:
    """Tried again while the database restarts (a crawl pauses rather than forgetting)."""

    @functools.wraps(method)
    def wrapper(self: Endpoints, *args: Any, **kwargs: Any) -> T:
        return retrying(lambda: method(self, *args, **kwargs))

    return wrapper


def _event(s: Any, url: str, kind: str, source_id: int, event: str, detail: str = "") -> None:
    key = url_hash(url)
    row = s.get(CrawlState, key)
    if row is None:
        row = CrawlState(url_hash=key, url=url, kind=kind, source_id=source_id, extra={})
        s.add(row)
    extra = dict(row.extra or {})
    history = list(extra.get("history") or [])
    history.append({"at": utcnow().isoformat(), "event": event, "detail": detail[:300]})
    extra["history"] = history[-HISTORY:]
    row.extra = extra


class Endpoints:
    def __init__(self, store: Store) -> None:
        self.store = store

    @_patient
    def sync_registry(self, source_id: int, feeds: Iterable[str], sitemaps: Iterable[str]) -> None:
        """Make the registry's feeds and sitemaps endpoints of ``source_id`` (origin
        ``registry``); an endpoint first discovered and later written into the registry keeps
        its history and origin."""
        wanted = [(u, "feed") for u in feeds] + [(u, "sitemap") for u in sitemaps]
        if not wanted:
            return
        with self.store.session() as s:
            known = set(
                s.scalars(
                    select(SourceEndpoint.url_hash).where(SourceEndpoint.source_id == source_id)
                )
            )
            for url, kind in wanted:
                if url_hash(url) not in known:
                    s.add(self._new(source_id, url, kind, "registry", None, news=False))
                    known.add(url_hash(url))

    @staticmethod
    def _new(
        source_id: int, url: str, kind: str, origin: str, found_via: str | None, *, news: bool
    ) -> SourceEndpoint:
        return SourceEndpoint(
            source_id=source_id,
            url=url,
            url_hash=url_hash(url),
            kind=kind,
            news=news,
            origin=origin,
            found_via=found_via,
            state=ACTIVE,
            failures=0,
            found_at=utcnow(),
        )

    @_patient
    def in_use(self, source_id: int, registry_urls: Iterable[str]) -> list[Endpoint]:
        """What to read for a source now: active endpoints (a registry one only while it is
        still in the registry) and demoted ones due for their re-probe. A plain sitemap is
        read only when the source has no working feed or news sitemap."""
        registry = {url_hash(u) for u in registry_urls}
        now = utcnow()
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(SourceEndpoint)
                    .where(SourceEndpoint.source_id == source_id)
                    .order_by(SourceEndpoint.id)
                )
            )
        rows = [r for r in rows if r.origin != "registry" or r.url_hash in registry]
        due = [
            r
            for r in rows
            if r.state == ACTIVE
            or (r.demoted_at is not None and now - r.demoted_at >= REPROBE_AFTER)
        ]
        primary = [r for r in due if r.kind == "feed" or r.news or r.origin == "registry"]
        chosen = primary or due
        return [Endpoint(r.url, r.kind, r.news, r.origin, r.state, r.failures) for r in chosen]

    @_patient
    def found(
        self,
        source_id: int,
        url: str,
        kind: str,
        origin: str,
        found_via: str | None = None,
        *,
        news: bool = False,
    ) -> bool:
        """Record an endpoint discovery found (and read successfully); True when it is new."""
        with self.store.session() as s:
            row = s.scalar(
                select(SourceEndpoint).where(
                    SourceEndpoint.source_id == source_id,
                    SourceEndpoint.url_hash == url_hash(url),
                )
            )
            if row is not None:
                if news and not row.news:
                    row.news = True
                return False
            s.add(self._new(source_id, url, kind, origin, found_via, news=news))
            _event(s, url, kind, source_id, "found", f"{origin}: {found_via or ''}".strip())
            return True

    @_patient
    def outcome(
        self,
        source_id: int,
        url: str,
        *,
        ok: bool,
        status: int,
        error: str | None = None,
        new_items: int = 0,
        newest: datetime | None = None,
        news: bool | None = None,
    ) -> str | None:
        """Record one read of an endpoint; returns its state afterwards (None: not an endpoint
        of this source)."""
        now = utcnow()
        with self.store.session() as s:
            row = s.scalar(
                select(SourceEndpoint).where(
                    SourceEndpoint.source_id == source_id,
                    SourceEndpoint.url_hash == url_hash(url),
                )
            )
            if row is None:
                return None
            row.checked_at = now
            if news is not None and news and not row.news:
                row.news = True
            if ok:
                if row.state == DEMOTED:
                    _event(s, url, row.kind, source_id, "reinstated", f"HTTP {status}")
                if row.failures:
                    _event(s, url, row.kind, source_id, "recovered", f"HTTP {status}")
                row.state, row.failures, row.ok_at, row.reason = ACTIVE, 0, now, None
                row.demoted_at = None
                # When the endpoint last had something new: its newest item changed (a feed that
                # keeps listing the same items is stale, whatever their dates), or it announced
                # unseen pages without dates
                if newest is not None:
                    state = s.get(CrawlState, url_hash(url))
                    extra = dict(state.extra or {}) if state is not None else {}
                    before = extra.get("newest_item")
                    newest = newest.astimezone(UTC)
                    if before is None or newest.isoformat() > str(before):
                        row.new_items_at = now
                        if state is not None:
                            extra["newest_item"] = newest.isoformat()
                            state.extra = extra
                elif new_items:
                    row.new_items_at = now
                return ACTIVE
            row.failures = (row.failures or 0) + 1
            problem = error or f"HTTP {status}"
            row.reason = problem[:500]
            _event(s, url, row.kind, source_id, "failed", problem)
            if row.state == DEMOTED or status == 410 or row.failures >= DEMOTE_AFTER:
                why = "410 Gone" if status == 410 else f"{row.failures} failed reads in a row"
                if row.state != DEMOTED:
                    _event(s, url, row.kind, source_id, "demoted", f"{why}: {problem}")
                row.state, row.demoted_at = DEMOTED, now
                row.reason = f"{why}: {problem}"[:500]
            return str(row.state)

    @_patient
    def demote_stale(self, source_id: int) -> list[str]:
        """Demote the source's endpoints that announced nothing new for :data:`STALE_DAYS` while
        it published at least :data:`STALE_MIN_ARTICLES` articles; returns their URLs."""
        now = utcnow()
        since = now - timedelta(days=STALE_DAYS)
        with self.store.session() as s:
            published = int(
                s.scalar(
                    select(func.count())
                    .select_from(Article)
                    .where(Article.source_id == source_id, Article.created_at >= since)
                )
                or 0
            )
            if published < STALE_MIN_ARTICLES:
                return []
            out = []
            for row in s.scalars(
                select(SourceEndpoint).where(
                    SourceEndpoint.source_id == source_id, SourceEndpoint.state == ACTIVE
                )
            ):
                last = row.new_items_at or row.found_at
                if last is not None and last < since:
                    row.state, row.demoted_at = DEMOTED, now
                    row.reason = (
                        f"nothing new for {STALE_DAYS} days while the source published "
                        f"{published} articles"
                    )
                    _event(s, row.url, row.kind, source_id, "demoted", row.reason)
                    out.append(row.url)
            return out
