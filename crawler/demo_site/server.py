"""The demo news site: one threaded stdlib HTTP server, one virtual host per fictional outlet.

``http://<slug>.localhost:<port>/`` serves an outlet (RFC 6761: ``*.localhost`` is loopback);
``http://127.0.0.1:<port>/`` lists the outlets; other hosts get 404. Content comes only from
``content.json`` next to this file (see ``build_content.py`` and ``ATTRIBUTION.md``).

Over 600 lines on purpose: the routes and the fault modes (slow, errors, redirect loops, oversized
pages, hostile feeds and sitemaps) are one test fixture whose behaviours tests refer to together.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import signal
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawler.demo_site import factchecker, feeds, realweb
from crawler.demo_site.common import Article, Ctx, e, http_date, parse_dt
from crawler.demo_site.outlets import OUTLETS, Outlet, amp_path, article_path, slugify
from crawler.demo_site.templates import FAULT_LINKS, THEMES

CONTENT_PATH = Path(__file__).with_name("content.json")
FAULTS = frozenset({"slow", "errors", "redirect-loop", "oversized", "hostile-feeds", "real-web"})
#: ``hostile-feeds``: extra feeds and sitemaps of the fault outlet, each hostile in one way
HOSTILE_FEEDS = ("/rss/risa.xml", "/rss/xxe.xml", "/rss/sin-fin.xml", "/rss/bomba.xml")
HOSTILE_SITEMAPS = ("/sitemaps/bucle.xml", "/sitemaps/bomba.xml.gz", "/sitemaps/archivo.xml")
#: entries of the fault outlet's 50,000-URL sitemap (the protocol's maximum)
BIG_SITEMAP_URLS = 50_000
_LAUGHS = '<!ENTITY a "lol">' + "".join(
    f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
FAULT_OUTLET = "elfaro"
SLOW_SECONDS = 3.0
OVERSIZED_BYTES = 30 * 1024 * 1024
BOMB_BYTES = 100 * 1024 * 1024
_INDEX_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
_ARTICLE_FIELDS = {
    "title",
    "paragraphs",
    "text",
    "authors",
    "published",
    "modified",
    "section",
    "tags",
    "topics",
    "is_covid",
    "syndication_group",
    "disallowed",
    "path",
    "amp_path",
}


# --- content and ground truth -----------------------------------------------------------------
@cache
def _content() -> tuple[Article, ...]:
    doc = json.loads(CONTENT_PATH.read_text(encoding="utf-8"))
    return tuple(doc["articles"])


def load_articles() -> list[Article]:
    """A fresh copy of the bundled articles (newest first within each outlet)."""
    return copy.deepcopy(list(_content()))


def _reachable_by(outlet: Outlet, article: Article, visible: list[Article]) -> list[str]:
    ways: list[str] = []
    if article["disallowed"]:
        return ["links"]
    if outlet.feed_path and article in visible[: outlet.feed_limit]:
        ways.append("feed")
    if outlet.news_sitemap_path or outlet.sitemap_path:
        ways.append("sitemap")
    ways.append("links")
    return ways


def _walls(by_outlet: dict[str, list[Article]], faults: Iterable[str]) -> dict[str, str]:
    """Article path → the wall in front of it (``real-web`` fault)."""
    if "real-web" not in faults:
        return {}
    consent = realweb.consent_article(by_outlet.get(realweb.CONSENT_OUTLET, []))
    paywall = realweb.paywall_article(by_outlet.get(realweb.PAYWALL_OUTLET, []))
    out = {}
    if consent is not None:
        out[consent["path"]] = "consent"
    if paywall is not None:
        out[paywall["path"]] = "paywall"
    return out


def _expected(
    port: int, articles: Iterable[Article], include_disallowed: bool, faults: Iterable[str] = ()
) -> list[Article]:
    by_outlet: dict[str, list[Article]] = {slug: [] for slug in OUTLETS}
    for article in articles:
        by_outlet[article["outlet"]].append(article)
    walls = _walls(by_outlet, faults)
    out: list[Article] = []
    for slug, mine in by_outlet.items():
        outlet = OUTLETS[slug]
        base = f"http://{slug}.localhost:{port}"
        visible = [a for a in mine if not a["disallowed"]]
        for article in mine:
            if article["disallowed"] and not include_disallowed:
                continue
            wall = walls.get(article["path"])
            text = "\n\n".join(article["paragraphs"])
            if wall == "paywall":  # what the page shows
                text = "\n\n".join(article["paragraphs"][: realweb.PAYWALL_KEEP])
            elif wall == "consent":  # what its feed says (the page shows only the banner)
                text = article["paragraphs"][0][:300]
            out.append(
                {
                    "url": base + article["path"],
                    "amp_url": base + article["amp_path"] if article["amp_path"] else None,
                    "outlet": slug,
                    "outlet_name": outlet.name,
                    "country": outlet.country,
                    "title": article["title"],
                    "authors": list(article["authors"]),
                    "published": article["published"],
                    "modified": article["modified"],
                    "section": article["section"],
                    "tags": list(article["tags"]),
                    "text": text,
                    "wall": wall,
                    "is_covid": article["is_covid"],
                    "syndication_group": article["syndication_group"],
                    "disallowed": article["disallowed"],
                    "reachable_by": _reachable_by(outlet, article, visible),
                    "source": dict(article["source"]),
                }
            )
    return out


def expected_articles(
    port: int, include_disallowed: bool = False, faults: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Ground truth of the bundled content for a site on ``port``: one dict per article page.

    Keys: url (canonical), amp_url, outlet, outlet_name, country, title (no site suffix),
    authors, published/modified (ISO 8601 with offset), section, tags, text (paragraphs joined by
    blank lines), is_covid, syndication_group, disallowed (behind robots.txt), reachable_by
    (subset of feed/sitemap/links: how a polite crawler can find it), source (dataset, id),
    wall (``consent``/``paywall`` under the ``real-web`` fault, else None: then ``text`` is
    what can be had — the feed's summary, the paragraphs before the paywall).
    """
    return _expected(port, _content(), include_disallowed, faults)


def demo_registry(port: int, faults: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Registry entries (the crawler's ``sources.yaml`` format) for the demo outlets; with the
    ``hostile-feeds`` fault, the fault outlet also lists its hostile feeds and sitemaps; with
    ``real-web``, two outlets list none and one a feed that has moved (:mod:`realweb`)."""
    entries: list[dict[str, Any]] = []
    for slug, outlet in OUTLETS.items():
        base = f"http://{slug}.localhost:{port}"
        sitemaps = [base + p for p in (outlet.sitemap_index_path, outlet.sitemap_path) if p]
        feeds_ = [base + outlet.feed_path] if outlet.feed_path else []
        if slug == FAULT_OUTLET and "hostile-feeds" in faults:
            feeds_ += [base + p for p in HOSTILE_FEEDS]
            sitemaps += [base + p for p in HOSTILE_SITEMAPS]
        if "real-web" in faults and slug in realweb.UNLISTED:
            feeds_, sitemaps = [], []
        if "real-web" in faults and slug == realweb.MOVED:
            feeds_ = [base + realweb.STALE_FEED]
        entries.append(
            {
                "name": outlet.name,
                "domains": [f"{slug}.localhost"],
                "country": outlet.country,
                "language": "es",
                "kind": outlet.kind,
                "scope": outlet.scope,
                "homepage": base + "/",
                "feeds": feeds_,
                "sitemaps": sitemaps,
                "start_urls": [] if feeds_ or sitemaps else [base + "/"],
                "article_patterns": list(outlet.article_patterns),
                "exclude_patterns": list(outlet.exclude_patterns),
                "weight": 1.0,
            }
        )
    entries.append(factchecker.registry_entry(port))
    return entries


def write_registry(port: int, path: str | Path, faults: Iterable[str] = ()) -> None:
    """Write ``{"version": 1, "sources": demo_registry(port, faults)}`` as YAML to ``path``."""
    import yaml

    doc = {"version": 1, "sources": demo_registry(port, faults)}
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100)
    Path(path).write_text(text, encoding="utf-8")


# --- binary helpers ---------------------------------------------------------------------------
def _png(seed: str, width: int = 48, height: int = 27) -> bytes:
    """A small solid-colour PNG (article images)."""
    h = hashlib.sha256(seed.encode()).digest()
    row = b"\x00" + bytes(h[:3]) * width
    raw = zlib.compress(row * height)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


_bomb_lock = threading.Lock()
_bombs: dict[bytes, bytes] = {}


def _bomb(head: bytes) -> bytes:
    """~100 KB of gzip that inflates to ``head`` and ~100 MiB of whitespace (built once)."""
    with _bomb_lock:
        if head not in _bombs:
            comp = zlib.compressobj(9, zlib.DEFLATED, 31)
            parts = [comp.compress(head)]
            block = b" " * (1 << 20)
            parts += [comp.compress(block) for _ in range(BOMB_BYTES >> 20)]
            parts.append(comp.flush())
            _bombs[head] = b"".join(parts)
        return _bombs[head]


def gzip_bomb() -> bytes:
    """A gzip bomb of HTML (the ``oversized`` fault's gallery page)."""
    return _bomb(b"<!DOCTYPE html><html><head><title>Galer\xc3\xada</title>")


def xml_bomb() -> bytes:
    """A gzip bomb of RSS (the ``hostile-feeds`` fault's feed and ``.xml.gz`` sitemap)."""
    return _bomb(b'<?xml version="1.0"?><rss version="2.0"><channel>')


# --- responses --------------------------------------------------------------------------------
@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    last_modified: datetime | None = None
    etag: bool = False
    stream: Callable[[BufferedIOBase], None] | None = None
    length: int | None = None


def _html(text: str, charset: str = "utf-8", status: int = 200) -> Response:
    if charset == "cp1252":
        # Served without a charset parameter; the page's <meta> claims iso-8859-1.
        body = text.encode("cp1252", "xmlcharrefreplace")
        return Response(status, body, "text/html", etag=status == 200)
    return Response(status, text.encode("utf-8"), "text/html; charset=utf-8", etag=status == 200)


def _not_modified(headers: Any, etag: str | None, last_modified: datetime | None) -> bool:
    inm = headers.get("If-None-Match")
    if inm is not None:
        if etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or etag in tags
    ims = headers.get("If-Modified-Since")
    if ims and last_modified is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return last_modified.replace(microsecond=0) <= since
    return False


def _zone(outlet: Outlet) -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(outlet.tz)
    except Exception:  # no tz database: the outlet's standard offset
        sign = -1 if outlet.utc_offset.startswith("-") else 1
        hours, minutes = outlet.utc_offset[1:].split(":")
        return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))


# --- the site ---------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    site: DemoSite


class DemoSite:
    """The demo news site on ``host:port`` (port 0 = any free port), optionally with faults.

    ``faults``: ``slow`` (some article pages take 3 s), ``errors`` (some article pages answer 500
    once, then 200), ``redirect-loop`` (linked pages redirect in a loop), ``oversized`` (a linked
    page streams 30 MiB, another is a gzip bomb inflating to 100 MiB), ``hostile-feeds`` (extra
    feeds and sitemaps: billion laughs, external entities, an endless feed, gzip bombs, sitemap
    indexes naming each other; in the registry with ``write_registry(..., faults)``). Fault pages
    and faulty articles are on ``elfaro``; :meth:`fault_urls` lists them.
    """

    def __init__(
        self,
        port: int = 0,
        faults: set[str] | frozenset[str] = frozenset(),
        host: str = "127.0.0.1",
    ) -> None:
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {sorted(FAULTS)}")
        self.host = host
        self.faults = frozenset(faults)
        self.verbose = False
        self.hits: Counter[tuple[str, str]] = Counter()
        self.responses: Counter[tuple[str, str, int]] = Counter()
        self._port = port
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failed_once: set[str] = set()
        self._articles: dict[str, list[Article]] = {slug: [] for slug in OUTLETS}
        for article in load_articles():
            self._articles[article["outlet"]].append(article)
        self._updated: dict[str, datetime] = {
            slug: datetime.min.replace(tzinfo=UTC) for slug in OUTLETS
        }
        self._added = 0
        visible = [a["path"] for a in self._articles[FAULT_OUTLET] if not a["disallowed"]]
        self._error_paths = frozenset(visible[1:6:2])  # 2nd, 4th, 6th newest
        self._slow_paths = frozenset(visible[2:5:2])  # 3rd, 5th newest

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> DemoSite:
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        server.site = self
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
            name=f"demo-site-{self._port}",
        )  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    def base_url(self, outlet_slug: str) -> str:
        if outlet_slug not in OUTLETS:
            raise KeyError(f"unknown outlet {outlet_slug!r}; known: {sorted(OUTLETS)}")
        return f"http://{outlet_slug}.localhost:{self._port}"

    @property
    def index_url(self) -> str:
        return f"http://{self.host}:{self._port}/"

    # counters ------------------------------------------------------------------------------
    def reset_hits(self) -> None:
        """Zero ``hits`` and ``responses`` (and forget which error pages already failed)."""
        with self._lock:
            self.hits.clear()
            self.responses.clear()
            self._failed_once.clear()

    def _count(self, host: str, path: str, status: int) -> None:
        with self._lock:
            self.hits[(host, path)] += 1
            self.responses[(host, path, status)] += 1

    # content -------------------------------------------------------------------------------
    def articles(self, outlet_slug: str | None = None) -> list[Article]:
        """Current articles (bundled + added), newest first per outlet."""
        with self._lock:
            slugs = [outlet_slug] if outlet_slug else list(OUTLETS)
            return [dict(a) for slug in slugs for a in self._articles[slug]]

    def expected_articles(self, include_disallowed: bool = False) -> list[dict[str, Any]]:
        """Like the module-level :func:`expected_articles`, including articles added at run time."""
        return _expected(self._port, self.articles(), include_disallowed, self.faults)

    def registry(self) -> list[dict[str, Any]]:
        return demo_registry(self._port, self.faults)

    def fault_urls(self) -> dict[str, list[str]]:
        """URLs affected by each enabled fault (all on the ``elfaro`` outlet)."""
        base = self.base_url(FAULT_OUTLET)
        out: dict[str, list[str]] = {}
        if "slow" in self.faults:
            out["slow"] = [base + p for p in sorted(self._slow_paths)]
        if "errors" in self.faults:
            out["errors"] = [base + p for p in sorted(self._error_paths)]
        for fault, links in FAULT_LINKS.items():
            if fault in self.faults:
                out[fault] = [base + p for p, _ in links]
        if "hostile-feeds" in self.faults:
            out["hostile-feeds"] = [base + p for p in (*HOSTILE_FEEDS, *HOSTILE_SITEMAPS)]
        return out

    def add_article(self, outlet_slug: str, **fields: Any) -> dict[str, Any]:  # JSON-like record
        """Publish a new article on ``outlet_slug`` now; returns it (with its ``url``).

        Fields: title, paragraphs (list) or text (blank-line separated), authors, published
        (datetime or ISO string; default now), modified, section, tags, topics, is_covid,
        syndication_group, disallowed, path, amp_path. It tops the outlet's home page, feed and
        sitemap (when it is the newest), and changes their ETag and Last-Modified.
        """
        if outlet_slug not in OUTLETS:
            raise KeyError(f"unknown outlet {outlet_slug!r}")
        unknown = set(fields) - _ARTICLE_FIELDS
        if unknown:
            raise TypeError(f"unknown article field(s): {sorted(unknown)}")
        outlet = OUTLETS[outlet_slug]
        zone = _zone(outlet)
        now = datetime.now(zone).replace(microsecond=0)
        published = _as_datetime(fields.get("published"), now, zone)
        modified = _as_datetime(fields.get("modified"), published, zone)
        paragraphs = list(fields.get("paragraphs") or [])
        if not paragraphs and fields.get("text"):
            paragraphs = [p.strip() for p in str(fields["text"]).split("\n\n") if p.strip()]
        if not paragraphs:
            raise ValueError("an article needs paragraphs or text")
        title = str(fields.get("title") or paragraphs[0][:90])
        section = str(fields.get("section") or "Salud")
        disallowed = bool(fields.get("disallowed", False))
        with self._lock:
            existing = self._articles[outlet_slug]
            number = max((int(a["number"]) for a in existing), default=1000) + 11
            self._added += 1
            path = str(
                fields.get("path")
                or article_path(outlet_slug, slugify(title), published, number, section, disallowed)
            )
            if any(a["path"] == path for a in existing):
                raise ValueError(f"{outlet_slug} already has an article at {path}")
            default_amp = None if disallowed else amp_path(outlet_slug, path)
            article: Article = {
                "id": f"{outlet_slug}-r{self._added:03d}",
                "outlet": outlet_slug,
                "path": path,
                "amp_path": fields.get("amp_path", default_amp),
                "number": number,
                "title": title,
                "paragraphs": paragraphs,
                "authors": list(fields.get("authors", [])),
                "published": published.isoformat(timespec="seconds"),
                "modified": modified.isoformat(timespec="seconds"),
                "section": section,
                "tags": list(fields.get("tags") or ["Coronavirus"]),
                "topics": list(fields.get("topics") or []),
                "is_covid": bool(fields.get("is_covid", True)),
                "syndication_group": fields.get("syndication_group"),
                "disallowed": disallowed,
                "source": {"dataset": "runtime", "id": f"r{self._added:03d}"},
            }
            updated = sorted(
                [*existing, article], key=lambda a: parse_dt(a["published"]), reverse=True
            )
            self._articles[outlet_slug] = updated
            self._updated[outlet_slug] = max(datetime.now(UTC), modified).replace(microsecond=0)
        return dict(article, url=self.base_url(outlet_slug) + path)

    # request handling ----------------------------------------------------------------------
    def _ctx(self, slug: str) -> tuple[Ctx, datetime]:
        with self._lock:
            articles = self._articles[slug]
            stamp = self._updated[slug]
        ctx = Ctx(OUTLETS[slug], self._port, articles, self.faults, datetime.now(UTC))
        return ctx, stamp

    def respond(self, host: str, target: str, method: str) -> Response:
        """The response for ``target`` (path + query) on virtual host ``host`` (no port)."""
        if host in _INDEX_HOSTS or host == self.host:
            split = urlsplit(target)
            if split.path in ("/", "/index.html"):
                return _html(self._index_page())
            return Response(404, b"Not found\n", "text/plain; charset=utf-8")
        slug = host.removesuffix(".localhost")
        if host == f"{factchecker.SLUG}.localhost":
            status, ctype, text = factchecker.respond(target, self._port)
            return Response(status, text.encode("utf-8"), ctype, etag=status == 200)
        if not host.endswith(".localhost") or slug not in OUTLETS:
            return Response(404, b"Unknown host\n", "text/plain; charset=utf-8")
        return self._outlet(slug, target, method)

    def _index_page(self) -> str:
        rows = "".join(
            f'<li><a href="{e(self.base_url(slug))}/">{e(o.name)}</a> ({e(o.country)}) — '
            f"{e(o.metadata)}</li>"
            for slug, o in OUTLETS.items()
        )
        faults = ", ".join(sorted(self.faults)) or "ninguno"
        return (
            '<!DOCTYPE html><html lang="es"><head><meta charset="utf-8"><title>Sitio de '
            f"demostración de covidnews</title></head><body><h1>Medios ficticios</h1><ul>{rows}"
            f"</ul><p>Fallos activos: {e(faults)}.</p><p>Los nombres <code>*.localhost</code> "
            "apuntan a esta máquina (RFC 6761).</p></body></html>"
        )

    def _outlet(self, slug: str, target: str, method: str) -> Response:
        ctx, stamp = self._ctx(slug)
        outlet = ctx.outlet
        theme = THEMES[slug]
        split = urlsplit(target)
        path, query = split.path or "/", parse_qs(split.query)
        full = path + ("?" + split.query if split.query else "")
        articles = ctx.visible

        def newest(items: list[Article]) -> datetime:
            moments = [parse_dt(a["modified"]) for a in items]
            return max([stamp, *moments]).astimezone(UTC)

        if path == "/robots.txt":
            return Response(body=feeds.robots(ctx), content_type="text/plain; charset=utf-8")
        if outlet.feed_path and (full == outlet.feed_path or path == outlet.feed_path):
            items = feeds.feed_items(ctx)
            updated = newest(items)
            body, ctype = feeds.render_feed(ctx, updated)
            return Response(200, body, ctype, last_modified=updated, etag=True)
        if path == outlet.sitemap_index_path:
            updated = newest(articles)
            return Response(
                200, feeds.sitemap_index(ctx, updated), "application/xml; charset=utf-8",
                last_modified=updated, etag=True,
            )  # fmt: skip
        if path == outlet.news_sitemap_path:
            return Response(
                200, feeds.news_sitemap(ctx), "application/xml; charset=utf-8",
                last_modified=newest(articles), etag=True,
            )  # fmt: skip
        if outlet.news_sitemap_path and path == "/sitemap-secciones.xml":
            return Response(200, feeds.sections_sitemap(ctx), "application/xml; charset=utf-8")
        if path == outlet.sitemap_path:
            return Response(
                200, feeds.plain_sitemap(ctx), "application/xml; charset=utf-8",
                last_modified=newest(articles), etag=True,
            )  # fmt: skip

        by_path = {a["path"]: a for a in ctx.articles}
        if path in by_path:
            return self._article(ctx, by_path[path], method)
        for article in articles:
            if article["amp_path"] == path:
                resp = _html(theme.amp(ctx, article))
                resp.last_modified = parse_dt(article["modified"])
                return resp
        if path.startswith("/media/") and path.endswith(".png"):
            ident = path[len("/media/") : -len(".png")]
            if any(a["id"] == ident for a in ctx.articles):
                return Response(200, _png(ident), "image/png", etag=True)
        if slug == FAULT_OUTLET and path.startswith("/especial/"):
            fault = self._fault_page(ctx, path)
            if fault is not None:
                return fault
        if slug == FAULT_OUTLET and "hostile-feeds" in self.faults:
            hostile = _hostile_listing(ctx, path)
            if hostile is not None:
                return hostile

        try:
            page = int(query.get("page", ["1"])[0])
        except ValueError:
            page = 0
        if path in ("/", "/index.php") or (slug == "saludhoy" and path == "/salud/"):
            return self._listing(ctx, outlet.name, articles, path, page, home=path != "/salud/")
        found = theme.route(path)
        if found is not None:
            kind, key = found
            if kind == "static":
                return _html(theme.static(ctx, key), outlet.charset)
            if kind == "section":
                items = ctx.by_section(key)
                heading = items[0]["section"] if items else key
            elif kind == "tag":
                items, heading = ctx.by_tag(key), ctx.name_of_tag(key)
            else:
                items, heading = ctx.by_author(key), ctx.name_of_author(key)
            if items:
                return self._listing(ctx, heading, items, path, page)
        return _html(theme.not_found(ctx), outlet.charset, status=404)

    def _listing(
        self, ctx: Ctx, heading: str, items: list[Article], path: str, page: int, home: bool = False
    ) -> Response:
        size = ctx.outlet.page_size
        pages = max(1, -(-len(items) // size))
        theme = THEMES[ctx.outlet.slug]
        if not 1 <= page <= pages:
            return _html(theme.not_found(ctx), ctx.outlet.charset, status=404)
        chunk = items[(page - 1) * size : page * size]
        text = theme.listing(ctx, heading, chunk, path, page, pages, home=home)
        return _html(text, ctx.outlet.charset)

    def _article(self, ctx: Ctx, article: Article, method: str) -> Response:
        path = article["path"]
        if ctx.outlet.slug == FAULT_OUTLET:
            if "slow" in self.faults and path in self._slow_paths:
                time.sleep(SLOW_SECONDS)
            if "errors" in self.faults and path in self._error_paths and method == "GET":
                with self._lock:
                    first = path not in self._failed_once
                    self._failed_once.add(path)
                if first:
                    body = b"<html><body><h1>500 Internal Server Error</h1></body></html>"
                    return Response(500, body, "text/html; charset=utf-8")
        if "real-web" in self.faults:
            wall = _walls({ctx.outlet.slug: ctx.articles}, self.faults).get(path)
            if wall == "consent":
                return _html(realweb.consent_page(ctx), ctx.outlet.charset)
            if wall == "paywall":
                article = realweb.paywalled(article)
        resp = _html(THEMES[ctx.outlet.slug].article(ctx, article), ctx.outlet.charset)
        resp.last_modified = parse_dt(article["modified"])
        resp.headers.append(("Cache-Control", "public, max-age=300"))
        return resp

    def _fault_page(self, ctx: Ctx, path: str) -> Response | None:
        if "redirect-loop" in self.faults:
            loops = {
                "/especial/bucle/": "/especial/bucle/",
                "/especial/ida/": "/especial/vuelta/",
                "/especial/vuelta/": "/especial/ida/",
            }
            if path in loops:
                status = 302 if path == "/especial/bucle/" else 301
                resp = Response(status, b"", "text/html; charset=utf-8")
                resp.headers.append(("Location", ctx.url(loops[path])))
                return resp
        if "oversized" in self.faults:
            if path == "/especial/hemeroteca-completa.html":
                return Response(
                    200, content_type="text/html; charset=utf-8", stream=_stream_oversized,
                    length=OVERSIZED_BYTES,
                )  # fmt: skip
            if path == "/especial/hemeroteca-continua.html":  # no Content-Length: chunked
                return Response(
                    200, content_type="text/html; charset=utf-8", stream=_stream_oversized
                )
            if path == "/especial/galeria-imagenes.html":
                resp = Response(200, gzip_bomb(), "text/html; charset=utf-8")
                resp.headers.append(("Content-Encoding", "gzip"))
                return resp
        return None


def _hostile_listing(ctx: Ctx, path: str) -> Response | None:
    """The ``hostile-feeds`` fault's feeds and sitemaps (each names one real article, so a
    crawler that survives them loses nothing)."""
    real = ctx.url(ctx.visible[0]["path"]) if ctx.visible else ctx.url("/")

    def rss(dtd: str, ref: str) -> bytes:
        return (
            f'<?xml version="1.0"?><!DOCTYPE rss [{dtd}]><rss version="2.0"><channel>'
            f"<title>{ref}</title><item><title>{ref}</title><link>{real}</link>"
            f"<description>{ref}</description></item></channel></rss>"
        ).encode()

    xml = "application/rss+xml; charset=utf-8"
    if path == "/rss/risa.xml":  # billion laughs: &i; is 10^8 "lol"s
        return Response(200, rss(_LAUGHS, "&i;"), xml)
    if path == "/rss/xxe.xml":  # external entities: a local file, a local port
        dtd = '<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y SYSTEM "http://127.0.0.1:9/">'
        return Response(200, rss(dtd, "&x;&y;"), xml)
    if path == "/rss/sin-fin.xml":  # never ends (chunked, until the client hangs up)
        return Response(200, content_type=xml, stream=_stream_endless_feed)
    if path == "/rss/bomba.xml":  # gzip transfer coding inflating to 100 MiB
        resp = Response(200, xml_bomb(), xml)
        resp.headers.append(("Content-Encoding", "gzip"))
        return resp
    if path in ("/sitemaps/bucle.xml", "/sitemaps/bucle-2.xml"):  # two indexes naming each other
        other = "/sitemaps/bucle-2.xml" if path == "/sitemaps/bucle.xml" else "/sitemaps/bucle.xml"
        body = (
            '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<sitemap><loc>{ctx.url(path)}</loc></sitemap>"
            f"<sitemap><loc>{ctx.url(other)}</loc></sitemap></sitemapindex>"
        )
        return Response(200, body.encode(), "application/xml; charset=utf-8")
    if path == "/sitemaps/bomba.xml.gz":  # a gzip file (not transfer coding) inflating to 100 MiB
        return Response(200, xml_bomb(), "application/gzip")
    if path == "/sitemaps/archivo.xml":  # 50,000 URLs: the articles among tag and author pages
        return Response(200, _big_sitemap(ctx), "application/xml; charset=utf-8")
    return None


def _big_sitemap(ctx: Ctx) -> bytes:
    """A plain sitemap at the protocol's limit, as big outlets have: every article of the outlet
    and, to fill it, tag and author pages (not articles, so not fetched)."""
    articles = [ctx.url(a["path"]) for a in ctx.visible]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">']  # fmt: skip
    for url in articles:
        lines.append(f"<url><loc>{e(url)}</loc><lastmod>2020-03-15</lastmod></url>")
    for i in range(BIG_SITEMAP_URLS - len(articles)):
        kind = "etiquetas/tema" if i % 2 else "autores/firma"
        lines.append(
            f"<url><loc>{e(ctx.url(f'/{kind}-{i}/'))}</loc><lastmod>2019-11-0{1 + i % 9}</lastmod>"
            "<changefreq>weekly</changefreq></url>"
        )
    lines.append("</urlset>")
    return "\n".join(lines).encode()


def _stream_endless_feed(out: BufferedIOBase) -> None:
    out.write(b'<?xml version="1.0"?><rss version="2.0"><channel><title>Sin fin</title>')
    item = b"<item><title>Otra</title><link>http://elfaro.localhost/x</link></item>" * 500
    for _ in range(1 << 16):  # ~2 GiB at most, were the client never to hang up
        out.write(item)


def _as_datetime(value: object, default: datetime, zone: tzinfo) -> datetime:
    if value is None:
        return default
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.replace(microsecond=0)


def _stream_oversized(out: BufferedIOBase) -> None:
    head = b"<!DOCTYPE html><html><head><title>Hemeroteca completa</title></head><body>\n"
    line = b"<p>" + b"Archivo hist\xc3\xb3rico de noticias. " * 30 + b"</p>\n"
    sent = 0
    out.write(head)
    sent += len(head)
    block = line * max(1, 65536 // len(line))
    while sent < OVERSIZED_BYTES:
        piece = block[: OVERSIZED_BYTES - sent]
        out.write(piece)
        sent += len(piece)


class _Chunked(BufferedIOBase):
    """Writes HTTP/1.1 chunked transfer coding to ``raw``."""

    def __init__(self, raw: BufferedIOBase) -> None:
        super().__init__()
        self._raw = raw

    def write(self, data: Any) -> int:  # Any: a file-like's write takes any buffer
        chunk = bytes(data)
        if chunk:
            self._raw.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
        return len(chunk)

    def close(self) -> None:
        if not self.closed:
            self._raw.write(b"0\r\n\r\n")
        super().close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections are dropped
    server: _Server

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.site.verbose:
            sys.stderr.write(f"{self.headers.get('Host', '-')} {format % args}\n")

    def _serve(self, method: str) -> None:
        site = self.server.site
        host = _host_only(self.headers.get("Host", ""))
        target = self.path
        if target.startswith(("http://", "https://")):  # absolute-form request target
            split = urlsplit(target)
            target = split.path + ("?" + split.query if split.query else "")
        try:
            resp = site.respond(host, target, method)
        except Exception as exc:  # a bug in the demo site: answer 500, keep serving
            resp = Response(500, f"demo site error: {exc!r}\n".encode(), "text/plain")
        etag = None
        if resp.etag and resp.status == 200:
            etag = '"' + hashlib.sha256(resp.body).hexdigest()[:20] + '"'
        status = resp.status
        if status == 200 and _not_modified(self.headers, etag, resp.last_modified):
            status = 304
        site._count(host, self.path, status)
        try:
            self.send_response(status)
            self.send_header("Content-Type", resp.content_type)
            if etag:
                self.send_header("ETag", etag)
            if resp.last_modified is not None:
                self.send_header("Last-Modified", http_date(resp.last_modified))
            for name, value in resp.headers:
                self.send_header(name, value)
            if status == 304:
                self.end_headers()
                return
            chunked = resp.stream is not None and resp.length is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                length = resp.length if resp.stream is not None else len(resp.body)
                self.send_header("Content-Length", str(length))
            self.end_headers()
            if method == "HEAD":
                return
            if resp.stream is None:
                self.wfile.write(resp.body)
            elif chunked:
                writer = _Chunked(self.wfile)
                resp.stream(writer)
                writer.close()
            else:
                resp.stream(self.wfile)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True


def _host_only(header: str) -> str:
    host = header.strip().lower()
    if host.startswith("["):  # [::1]:8800
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


# --- command line -----------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    """``python -m crawler.demo_site --port 8800 [--fault slow …] [--registry-out FILE]``."""
    parser = argparse.ArgumentParser(
        prog="python -m crawler.demo_site",
        description="Serve the fictional Spanish-language news outlets of the demo site.",
    )
    parser.add_argument("--port", type=int, default=8800, help="TCP port (0 = any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument(
        "--fault",
        action="extend",
        nargs="+",
        choices=sorted(FAULTS),
        default=[],
        help="enable fault modes (repeatable)",
    )
    parser.add_argument("--registry-out", metavar="FILE", help="write a registry YAML for the site")
    parser.add_argument("--log", action="store_true", help="print one line per request")
    args = parser.parse_args(argv)
    site = DemoSite(port=args.port, faults=frozenset(args.fault), host=args.host)
    try:
        site.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    site.verbose = args.log
    # Ctrl-C stops the site even when started from a process that ignores SIGINT (an ignored
    # signal is inherited across exec: seen when launched from a test runner).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:  # Ctrl-C at any moment from here on stops the site cleanly
        if args.registry_out:
            write_registry(site.port, args.registry_out, site.faults)
            print(f"registry written to {args.registry_out}")
        print(f"demo news site on http://{args.host}:{site.port}/ (Ctrl-C to stop)")
        for slug, outlet in OUTLETS.items():
            print(f"  {outlet.name:<20} {outlet.country}  {site.base_url(slug)}/")
        for fault, urls in site.fault_urls().items():
            print(f"  fault {fault}: {', '.join(urls)}")
        sys.stdout.flush()
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
    return 0
