"""Tolerant feed and sitemap parsing over real captured feeds (two of them malformed)."""

from __future__ import annotations

import json
import re
from datetime import UTC
from pathlib import Path

import pytest

from crawler.spiders.news import parse_feed_items, parse_sitemap_xml
from tests.conftest import SHARED

SNAPSHOTS = sorted((SHARED / "feeds" / "rss-snapshots").glob("*.xml"))


def _declared_items(raw: bytes) -> int:
    return len(re.findall(rb"<(?:item|entry|NewsItem)[\s>]", raw))


@pytest.mark.parametrize("path", SNAPSHOTS, ids=[p.stem for p in SNAPSHOTS])
def test_every_snapshot_yields_all_its_items(path: Path) -> None:
    raw = path.read_bytes()
    items, error = parse_feed_items(raw, None, "https://example.com/", UTC)
    assert len(items) == _declared_items(raw) > 0
    assert all(url.startswith("http") for url, _ in items)
    assert all(date is not None and date.tzinfo is not None for _, date in items)
    assert not any("feedproxy" in url for url, _ in items)  # original links, not the proxy's
    if path.stem in {"elpais", "europapress"}:
        assert error is not None and "malformed" in error  # known broken XML: read anyway


def test_malformed_feed_items_are_the_real_ones() -> None:
    items, _ = parse_feed_items(
        (SHARED / "feeds" / "rss-snapshots" / "elpais.xml").read_bytes(),
        None,
        "https://elpais.com/",
        UTC,
    )
    urls = [u for u, _ in items]
    assert any("coronavirus" in u for u in urls)
    assert len(set(urls)) == len(urls)


def test_json_feed() -> None:
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {
                "id": "1",
                "url": "https://d.example/a",
                "date_published": "2020-03-12T10:00:00-06:00",
            },
            {"id": "2", "url": "https://d.example/b"},
            {"id": "3"},
        ],
    }
    items, error = parse_feed_items(
        json.dumps(feed).encode(), "application/feed+json", "https://d.example/", UTC
    )
    assert error is None
    assert [u for u, _ in items] == ["https://d.example/a", "https://d.example/b"]
    assert items[0][1] is not None and items[0][1].utcoffset() is not None


def test_garbage_is_an_error_not_a_crash() -> None:
    items, error = parse_feed_items(b"\x00\x01 not a feed <<<", None, "https://d.example/", UTC)
    assert items == []
    assert error
    items, error = parse_feed_items(b"{not json", "application/json", "https://d.example/", UTC)
    assert items == [] and error


SITEMAP = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">
  <url><loc>https://d.example/2020/03/12/a.html</loc>
    <news:news><news:publication><news:name>D</news:name><news:language>es</news:language></news:publication>
    <news:publication_date>2020-03-12T10:00:00+01:00</news:publication_date><news:title>A</news:title></news:news>
  </url>
  <url><loc>https://d.example/b.html</loc><lastmod>2020-03-11</lastmod></url>
  <url><loc>https://d.example/c.html</loc></url>
</urlset>"""
INDEX = b"""<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>https://d.example/news-1.xml</loc></sitemap><sitemap><loc>https://d.example/news-2.xml</loc></sitemap>
</sitemapindex>"""


def test_news_sitemap_and_index() -> None:
    children, urls, news, error = parse_sitemap_xml(SITEMAP, UTC)
    assert news == {"https://d.example/2020/03/12/a.html"}
    assert error is None and children == []
    assert [u for u, _ in urls] == [
        "https://d.example/2020/03/12/a.html",
        "https://d.example/b.html",
        "https://d.example/c.html",
    ]
    assert urls[0][1] is not None and urls[0][1].isoformat() == "2020-03-12T10:00:00+01:00"
    assert urls[1][1] is not None and urls[2][1] is None
    children, urls, _, _ = parse_sitemap_xml(INDEX, UTC)
    assert (
        children == ["https://d.example/news-1.xml", "https://d.example/news-2.xml"] and urls == []
    )


def test_broken_sitemap_recovers_what_it_can() -> None:
    broken = SITEMAP.replace(b"</urlset>", b"").replace(
        b"<url><loc>https://d.example/c.html</loc></url>",
        b"<url><loc>https://d.example/c.html & more</loc>",
    )
    _, urls, _, _ = parse_sitemap_xml(broken, UTC)
    assert [u for u, _ in urls][:2] == [
        "https://d.example/2020/03/12/a.html",
        "https://d.example/b.html",
    ]
    assert parse_sitemap_xml(b"", UTC)[3] is not None


# Hostile input from the network: entity expansion and external entities ----------------------

_LAUGHS_DTD = '<!ENTITY a "lol">' + "".join(
    f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)  # &i; would expand to 10^8 "lol"s
_XXE_DTD = '<!ENTITY x SYSTEM "file:///etc/passwd"><!ENTITY y SYSTEM "http://127.0.0.1:9/x">'


def _hostile(kind: str, dtd: str, ref: str) -> bytes:
    if kind == "rss":
        doc = (
            f'<rss version="2.0"><channel><title>{ref}</title><item><title>{ref}</title>'
            f"<link>https://d.example/a</link><description>{ref}</description></item>"
            "</channel></rss>"
        )
        root = "rss"
    elif kind == "atom":
        doc = (
            f'<feed xmlns="http://www.w3.org/2005/Atom"><title>{ref}</title><entry>'
            f'<title>{ref}</title><link href="https://d.example/a"/><summary>{ref}</summary>'
            "</entry></feed>"
        )
        root = "feed"
    else:
        doc = (
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"<url><loc>https://d.example/a{ref}</loc></url></urlset>"
        )
        root = "urlset"
    return f'<?xml version="1.0"?><!DOCTYPE {root} [{dtd}]>{doc}'.encode()


@pytest.mark.parametrize("kind", ["rss", "atom"])
def test_feeds_never_expand_entities(kind: str) -> None:
    """A billion-laughs feed is refused by the parser's amplification limit (one problem, the
    links still read); an external entity (a local file, a local port) is never fetched."""
    items, error = parse_feed_items(
        _hostile(kind, _LAUGHS_DTD, "&i;"), None, "https://d.example/", UTC
    )
    assert error and "malformed feed" in error
    assert all("lol" not in link for link, _ in items)
    items, _ = parse_feed_items(_hostile(kind, _XXE_DTD, "&x;&y;"), None, "https://d.example/", UTC)
    assert [link for link, _ in items] == ["https://d.example/a"]
    assert "root:" not in repr(items)


def test_sitemaps_never_expand_entities() -> None:
    for dtd, ref in ((_LAUGHS_DTD, "&i;"), (_XXE_DTD, "&x;")):
        children, urls, news, _ = parse_sitemap_xml(_hostile("sitemap", dtd, ref), UTC)
        assert children == [] and not news
        assert all("lol" not in u and "root:" not in u and len(u) < 200 for u, _ in urls)
