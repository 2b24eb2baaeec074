"""Finding a source's feeds and news sitemaps the way the site itself announces them.

Real crawlers do not depend on hand-written feed URLs. A site says where its feeds and sitemaps
are in three places, and the spider reads all three when a source has nothing reliable to read
(no feed or news sitemap in use) or one of its endpoints fails:

1. ``Sitemap:`` lines of its robots.txt (read with Protego, Scrapy's own robots.txt parser);
2. sitemap indexes those lines point to, followed to the sitemaps they list: a sitemap with
   Google News markup (``news:news``) is a **news sitemap**;
3. ``<link rel="alternate" type="application/rss+xml | atom+xml | rdf+xml | feed+json">`` on
   its homepage and start pages (comment feeds left out).

Every request goes through the spider, so discovery obeys the same guard (registry domains, no
non-public addresses), robots.txt, AutoThrottle and size caps as any crawl. What is found is
stored per source with how and when (:mod:`crawler.endpoints`), read in the same crawl, and
written back to the registry file on request (``covidnews sources discover --write``).

Why not ultimate-sitemap-parser or feed-seeker: both fetch with their own HTTP clients
(requests / aiohttp), which would bypass the guard, robots.txt and throttling the spider
enforces; the parsing they would add is the few lines below plus the spider's sitemap parser,
which already survives hostile sitemaps (XXE, bombs, loops: tests/crawler/test_crawl.py).
"""

from __future__ import annotations

from urllib.parse import urljoin

FEED_TYPES = frozenset(
    {
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/feed+json",
    }
)
_COMMENTS = ("comment", "comentario")


def robots_sitemaps(body: bytes | str) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt, in order, without repeats."""
    from protego import Protego

    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        parsed = Protego.parse(text)
    except Exception:  # a robots.txt Protego cannot read announces nothing
        return []
    return list(dict.fromkeys(str(u).strip() for u in parsed.sitemaps if str(u).strip()))


def feed_links(html: str, base_url: str) -> list[str]:
    """The feeds a page announces with ``<link rel="alternate">`` (or ``<a type=…>``), absolute,
    in page order, comment feeds left out."""
    import lxml.html

    try:
        doc = lxml.html.fromstring(html)
    except Exception:  # an empty or unparsable page announces nothing
        return []
    base = doc.xpath("string(//base/@href)") or base_url
    out: dict[str, None] = {}
    for el in doc.xpath("//link[@href] | //a[@href and @type]"):
        rel = (el.get("rel") or "").lower().split()
        kind = (el.get("type") or "").split(";")[0].strip().lower()
        if kind not in FEED_TYPES or (el.tag == "link" and "alternate" not in rel):
            continue
        href = (el.get("href") or "").strip()
        title = (el.get("title") or "").lower()
        if not href or any(c in title or c in href.lower() for c in _COMMENTS):
            continue
        url = urljoin(urljoin(base_url, base), href)
        if url.startswith(("http://", "https://")):
            out.setdefault(url, None)
    return list(out)


def prefer_news(children: list[str], limit: int) -> list[str]:
    """Child sitemaps of an index worth reading to find news sitemaps: those whose name says
    news first, then the rest, at most ``limit``."""
    newsy = [c for c in children if any(w in c.lower() for w in ("news", "noticia"))]
    rest = [c for c in children if c not in newsy]
    return (newsy + rest)[:limit]
