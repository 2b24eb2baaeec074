"""The local demo news site: virtual hosts, pages, feeds, sitemaps, robots, faults, ground truth.

Requests go to 127.0.0.1:PORT with an explicit ``Host: <slug>.localhost:PORT`` header, since
``*.localhost`` need not resolve through the system resolver here.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.robotparser
import xml.etree.ElementTree as ET
import zlib
from collections import Counter
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import lxml.html
import pytest
import yaml

from crawler.demo_site import (
    OUTLETS,
    DemoSite,
    demo_registry,
    expected_articles,
    load_articles,
    write_registry,
)
from crawler.demo_site.server import CONTENT_PATH, OVERSIZED_BYTES

ROOT = Path(__file__).resolve().parents[3]
NS = {
    "sm": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
}


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        return self.body.decode(charset)


def fetch(
    port: int,
    url: str,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    max_bytes: int | None = None,
) -> Reply:
    """One request to the site at 127.0.0.1:port, Host taken from ``url``; no redirects."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target or "/", headers={"Host": parts.netloc, **(headers or {})})
        resp = conn.getresponse()
        body = resp.read(max_bytes) if max_bytes is not None else resp.read()
        return Reply(resp.status, resp.headers, body)
    finally:
        conn.close()


def decode(reply: Reply, outlet: str) -> str:
    return reply.body.decode("cp1252" if OUTLETS[outlet].charset == "cp1252" else "utf-8")


def strip_tracking(url: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("utm_")]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite() as running:
        yield running


@pytest.fixture
def fresh_site() -> Iterator[DemoSite]:
    with DemoSite() as running:
        yield running


@pytest.fixture(scope="module")
def faulty() -> Iterator[DemoSite]:
    with DemoSite(faults={"slow", "errors", "redirect-loop", "oversized"}) as running:
        yield running


# --- hosting ------------------------------------------------------------------------------------
def test_home_pages_answer_with_distinct_templates(site: DemoSite) -> None:
    classes: dict[str, set[str]] = {}
    for slug in OUTLETS:
        reply = fetch(site.port, site.base_url(slug) + "/")
        assert reply.status == 200, slug
        page = decode(reply, slug)
        assert OUTLETS[slug].name in page or slug == "delvalle"  # delvalle's logo is upper-case
        classes[slug] = {c for attr in re.findall(r'class="([^"]+)"', page) for c in attr.split()}
    for slug, mine in classes.items():
        others = set().union(*(c for s, c in classes.items() if s != slug))
        assert len(mine - others) >= 5, f"{slug} shares its markup with another outlet"


def test_index_host_lists_outlets_and_unknown_hosts_get_404(site: DemoSite) -> None:
    index = fetch(site.port, f"http://127.0.0.1:{site.port}/")
    assert index.status == 200
    for slug, outlet in OUTLETS.items():
        assert site.base_url(slug) in index.text()
        assert outlet.name in index.text()
    assert fetch(site.port, f"http://localhost:{site.port}/").status == 200
    assert fetch(site.port, f"http://nope.localhost:{site.port}/").status == 404
    assert fetch(site.port, f"http://www.example.org:{site.port}/").status == 404
    assert fetch(site.port, site.base_url("elfaro") + "/no/such/page").status == 404


def test_every_expected_article_answers_with_its_title(site: DemoSite) -> None:
    expected = expected_articles(site.port, include_disallowed=True)
    assert len(expected) == len(load_articles())
    for article in expected:
        reply = fetch(site.port, article["url"])
        assert reply.status == 200, article["url"]
        assert reply.headers["ETag"] and reply.headers["Last-Modified"]
        doc = lxml.html.fromstring(decode(reply, article["outlet"]))
        headline = doc.xpath("//h1") or doc.xpath("//td[@class='contentheading']")  # Joomla
        assert " ".join(headline[0].text_content().split()) == article["title"], article["url"]
        title_tag = doc.findtext(".//title")
        assert title_tag is not None and title_tag.startswith(article["title"])
        assert title_tag != article["title"]  # carries a site-name suffix
        body = " ".join(doc.text_content().split())
        for paragraph in article["text"].split("\n\n")[1:]:
            assert paragraph in body, article["url"]


def test_amp_variants_point_to_their_canonical_page(site: DemoSite) -> None:
    with_amp = [a for a in expected_articles(site.port) if a["amp_url"]]
    assert {a["outlet"] for a in with_amp} == {"elfaro", "lamontana"}
    for article in with_amp:
        page = fetch(site.port, article["url"]).text()
        amp_href = urlsplit(article["amp_url"]).path
        assert f'rel="amphtml" href="{amp_href}"' in page or article["amp_url"] in page
        amp = fetch(site.port, article["amp_url"])
        assert amp.status == 200
        doc = lxml.html.fromstring(amp.text())
        assert doc.xpath("//link[@rel='canonical']/@href") == [article["url"]]


def test_titles_and_texts_are_escaped(site: DemoSite) -> None:
    quoted = [a for a in expected_articles(site.port) if '"' in a["title"] or "&" in a["text"]]
    assert quoted
    for article in quoted:
        page = decode(fetch(site.port, article["url"]), article["outlet"])
        if '"' in article["title"]:
            assert article["title"].replace('"', "&quot;") in page
        assert " & " not in page  # every ampersand in text is escaped
    pages = [fetch(site.port, a["url"]).text() for a in expected_articles(site.port)[:15]]
    assert any("Graciela &amp; Co." in p for p in pages)  # a reader comment


def test_listing_pages_paginate(site: DemoSite) -> None:
    for slug, outlet in OUTLETS.items():
        base = site.base_url(slug)
        visible = [a for a in expected_articles(site.port) if a["outlet"] == slug]
        pages = -(-len(visible) // outlet.page_size)
        assert pages >= 2, slug
        first, second = fetch(site.port, base + "/"), fetch(site.port, base + "/?page=2")
        assert first.status == second.status == 200
        assert first.body != second.body
        assert fetch(site.port, f"{base}/?page={pages + 1}").status == 404
        assert fetch(site.port, f"{base}/?page=0").status == 404


# --- link graph -------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.extend(v for k, v in attrs if k == "href" and v)


def _crawl(site: DemoSite, slug: str) -> tuple[set[str], set[str]]:
    """Breadth-first over same-host links from the home page, obeying robots.txt."""
    base = site.base_url(slug)
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(fetch(site.port, base + "/robots.txt").text().splitlines())
    seen, pages, queue, external = {base + "/"}, set(), [base + "/"], set()
    while queue:
        url = queue.pop(0)
        reply = fetch(site.port, url)
        if reply.status != 200 or "text/html" not in reply.headers["Content-Type"]:
            continue
        pages.add(url)
        parser = _Links()
        parser.feed(decode(reply, slug))
        for href in parser.hrefs:
            link = urljoin(url, href).split("#")[0]
            parts = urlsplit(link)
            if parts.netloc != urlsplit(base).netloc:
                external.add(link)
                continue
            if parts.path.startswith(("/amp/", "/media/", "/wp-content/", "/images/")):
                continue
            link = strip_tracking(link)
            if link not in seen and robots.can_fetch("covidnews-test", link):
                seen.add(link)
                queue.append(link)
    return pages, external


def test_every_article_is_reachable_by_links_and_no_disallowed_page_is(site: DemoSite) -> None:
    for slug in OUTLETS:
        pages, external = _crawl(site, slug)
        expected = [a for a in expected_articles(site.port, True) if a["outlet"] == slug]
        for article in expected:
            assert ("links" in article["reachable_by"]) is True
            assert (article["url"] in pages) is (not article["disallowed"]), article["url"]
        assert all(not urlsplit(u).netloc.endswith(f"{slug}.localhost") for u in external)


def test_dangerous_links_are_present(site: DemoSite) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    for slug in ("elfaro", "lamontana"):
        page = fetch(site.port, site.base_url(slug) + "/").text()
        assert f'href="{metadata}"' in page
        assert 'href="https://www.example.org/' in page


def test_disallowed_pages_are_linked_from_home_and_blocked_by_robots(site: DemoSite) -> None:
    private = [a for a in expected_articles(site.port, True) if a["disallowed"]]
    assert {a["outlet"] for a in private} == {"elfaro", "cronica"}
    assert not any(a["disallowed"] for a in expected_articles(site.port))
    for article in private:
        base = site.base_url(article["outlet"])
        robots_txt = fetch(site.port, base + "/robots.txt")
        assert robots_txt.status == 200
        robots = urllib.robotparser.RobotFileParser()
        robots.parse(robots_txt.text().splitlines())
        assert not robots.can_fetch("covidnews", article["url"])
        home = fetch(site.port, base + "/").text()
        assert urlsplit(article["url"]).path in home
        assert any(re.search(p, urlsplit(article["url"]).path) for p in _patterns(article))
    assert "Disallow: /privado/" in fetch(site.port, site.base_url("elfaro") + "/robots.txt").text()
    for slug in OUTLETS:
        text = fetch(site.port, site.base_url(slug) + "/robots.txt").text()
        robots = urllib.robotparser.RobotFileParser()
        robots.parse(text.splitlines())
        assert robots.can_fetch("covidnews", site.base_url(slug) + "/")


def _patterns(article: dict[str, Any]) -> list[str]:
    return list(OUTLETS[article["outlet"]].article_patterns)


def test_article_patterns_match_articles_only(site: DemoSite) -> None:
    registry = {e["domains"][0]: e for e in demo_registry(site.port)}
    for article in expected_articles(site.port, True):
        entry = registry[f"{article['outlet']}.localhost"]
        path = urlsplit(article["url"]).path
        assert any(re.search(p, path) for p in entry["article_patterns"]), path
        assert not any(re.search(p, path) for p in entry["exclude_patterns"]), path
        if article["amp_url"]:
            amp = urlsplit(article["amp_url"]).path
            matches = any(re.search(p, amp) for p in entry["article_patterns"])
            assert not matches or any(re.search(p, amp) for p in entry["exclude_patterns"])
    for slug in OUTLETS:
        pages, _ = _crawl_listing_paths(site, slug)
        entry = registry[f"{slug}.localhost"]
        for path in pages:
            assert not any(re.search(p, path) for p in entry["article_patterns"]), path


def _crawl_listing_paths(site: DemoSite, slug: str) -> tuple[set[str], None]:
    home = fetch(site.port, site.base_url(slug) + "/")
    parser = _Links()
    parser.feed(decode(home, slug))
    articles = {urlsplit(a["url"]).path for a in expected_articles(site.port, True)}
    paths = set()
    for href in parser.hrefs:
        parts = urlsplit(urljoin(site.base_url(slug) + "/", href))
        if parts.netloc == f"{slug}.localhost:{site.port}" and parts.path not in articles:
            paths.add(parts.path)
    assert len(paths) >= 3
    return paths, None


# --- feeds and sitemaps -----------------------------------------------------------------------
def _feed_url(site: DemoSite, slug: str) -> str:
    path = OUTLETS[slug].feed_path
    assert path
    return site.base_url(slug) + path


@pytest.mark.parametrize("slug", ["elfaro", "lamontana", "gaceta", "saludhoy"])
def test_xml_feeds_parse_with_feedparser(site: DemoSite, slug: str) -> None:
    reply = fetch(site.port, _feed_url(site, slug))
    assert reply.status == 200
    parsed = feedparser.parse(
        reply.body, response_headers={"content-type": reply.headers["Content-Type"]}
    )
    mine = [a for a in expected_articles(site.port) if a["outlet"] == slug]
    in_feed = [a for a in mine if "feed" in a["reachable_by"]]
    assert 0 < len(in_feed) <= OUTLETS[slug].feed_limit
    assert len(parsed.entries) == len(in_feed) == len(re.findall(rb"<(?:item|entry)>", reply.body))
    assert [strip_tracking(entry.link) for entry in parsed.entries] == [a["url"] for a in in_feed]
    assert [entry.title for entry in parsed.entries] == [a["title"] for a in in_feed]
    assert all(entry.get("published_parsed") for entry in parsed.entries)
    if slug == "saludhoy":
        assert parsed.bozo  # not well-formed XML …
        with pytest.raises(ET.ParseError):
            ET.fromstring(reply.body)
        assert b" & " in reply.body  # … an unescaped ampersand and an unclosed <br>
    else:
        assert not parsed.bozo, parsed.get("bozo_exception")
    if slug == "lamontana":
        assert all("utm_source=rss" in entry.link for entry in parsed.entries)
    if slug == "gaceta":
        assert reply.headers.get_content_charset() is None
        assert reply.body.startswith(b'<?xml version="1.0" encoding="windows-1252"?>')


def test_json_feed(site: DemoSite) -> None:
    reply = fetch(site.port, _feed_url(site, "delvalle"))
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("application/feed+json")
    doc = json.loads(reply.body)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    mine = [a for a in expected_articles(site.port) if a["outlet"] == "delvalle"]
    in_feed = [a for a in mine if "feed" in a["reachable_by"]]
    assert [item["url"] for item in doc["items"]] == [a["url"] for a in in_feed]
    assert [item["date_published"] for item in doc["items"]] == [a["published"] for a in in_feed]


def test_news_sitemap_and_index(site: DemoSite) -> None:
    base = site.base_url("elfaro")
    robots = fetch(site.port, base + "/robots.txt").text()
    assert f"Sitemap: {base}/sitemap_index.xml" in robots
    index = ET.fromstring(fetch(site.port, base + "/sitemap_index.xml").body)
    assert index.tag == f"{{{NS['sm']}}}sitemapindex"
    locs = [loc.text for loc in index.findall("sm:sitemap/sm:loc", NS)]
    assert f"{base}/sitemap-news.xml" in locs
    for loc in locs:
        assert loc and fetch(site.port, loc).status == 200
    news = ET.fromstring(fetch(site.port, base + "/sitemap-news.xml").body)
    listed = {
        url.findtext("sm:loc", namespaces=NS): url.findtext(
            "news:news/news:publication_date", namespaces=NS
        )
        for url in news.findall("sm:url", NS)
    }
    expected = {a["url"]: a["published"] for a in expected_articles(site.port)}
    elfaro = {u: p for u, p in expected.items() if u.startswith(base)}
    assert listed == elfaro
    private = [a["url"] for a in expected_articles(site.port, True) if a["disallowed"]]
    assert not set(private) & set(listed)


def test_plain_sitemap(site: DemoSite) -> None:
    base = site.base_url("saludhoy")
    doc = ET.fromstring(fetch(site.port, base + "/sitemap.xml").body)
    locs = {u.findtext("sm:loc", namespaces=NS) for u in doc.findall("sm:url", NS)}
    mine = {a["url"] for a in expected_articles(site.port) if a["outlet"] == "saludhoy"}
    assert mine <= locs
    assert all(u.findtext("sm:lastmod", namespaces=NS) for u in doc.findall("sm:url", NS)[:3])


def test_outlet_without_feed_or_sitemap(site: DemoSite) -> None:
    outlet = OUTLETS["cronica"]
    assert not (outlet.feed_path or outlet.sitemap_path or outlet.news_sitemap_path)
    for path in ("/rss.xml", "/feed/", "/sitemap.xml", "/sitemap_index.xml", "/feed.json"):
        assert fetch(site.port, site.base_url("cronica") + path).status == 404
    for article in expected_articles(site.port):
        if article["outlet"] == "cronica":
            assert article["reachable_by"] == ["links"]


# --- conditional GET and run-time publishing ------------------------------------------------
def test_conditional_get_and_add_article(fresh_site: DemoSite) -> None:
    site = fresh_site
    base = site.base_url("elfaro")
    feed_url = _feed_url(site, "elfaro")
    first = fetch(site.port, feed_url)
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag and modified
    assert fetch(site.port, feed_url, {"If-None-Match": etag}).status == 304
    assert fetch(site.port, feed_url, {"If-Modified-Since": modified}).status == 304
    assert fetch(site.port, feed_url, {"If-None-Match": '"other"'}).status == 200
    host, path = "elfaro.localhost", urlsplit(feed_url).path
    assert site.responses[(host, path, 304)] == 2
    assert site.responses[(host, path, 200)] == 2
    sitemap_url = base + "/sitemap-news.xml"
    sitemap_etag = fetch(site.port, sitemap_url).headers["ETag"]
    assert fetch(site.port, sitemap_url, {"If-None-Match": sitemap_etag}).status == 304

    time.sleep(1.1)  # Last-Modified has one-second resolution
    added = site.add_article(
        "elfaro",
        title="Nueva campaña de vacunación en la región",
        paragraphs=["Primer párrafo de la nota.", "Segundo párrafo & más."],
        authors=["Sofía Benítez"],
        tags=["Coronavirus", "Vacunas"],
    )
    assert added["url"].startswith(base + "/") and added["url"].endswith(".html")
    assert fetch(site.port, added["url"]).status == 200
    again = fetch(site.port, feed_url, {"If-None-Match": etag})
    assert again.status == 200 and again.headers["ETag"] != etag
    assert again.headers["Last-Modified"] != modified
    assert fetch(site.port, feed_url, {"If-Modified-Since": modified}).status == 200
    parsed = feedparser.parse(again.body)
    assert parsed.entries[0].link == added["url"]
    assert len(parsed.entries) == OUTLETS["elfaro"].feed_limit
    assert fetch(site.port, sitemap_url, {"If-None-Match": sitemap_etag}).status == 200
    assert added["url"] in fetch(site.port, sitemap_url).text()
    assert urlsplit(added["url"]).path in fetch(site.port, base + "/").text()
    assert added["url"] in [a["url"] for a in site.expected_articles()]
    assert added["url"] not in [a["url"] for a in expected_articles(site.port)]

    with pytest.raises(KeyError):
        site.add_article("nope", title="x", paragraphs=["y"])
    with pytest.raises(TypeError):
        site.add_article("elfaro", title="x", paragraphs=["y"], colour="red")
    with pytest.raises(ValueError, match="already has"):
        site.add_article("elfaro", title="x", paragraphs=["y"], path=urlsplit(added["url"]).path)


def test_add_article_on_other_outlets_uses_their_url_shapes(fresh_site: DemoSite) -> None:
    site = fresh_site
    for slug in OUTLETS:
        added = site.add_article(
            slug, title="Última hora: reabren las escuelas", text="Uno.\n\nDos."
        )
        path = urlsplit(added["url"]).path
        assert any(re.search(p, path) for p in OUTLETS[slug].article_patterns), path
        page = fetch(site.port, added["url"])
        assert page.status == 200
        assert "Última hora: reabren las escuelas" in decode(page, slug)
        assert added["paragraphs"] == ["Uno.", "Dos."]


def test_article_pages_support_conditional_get(site: DemoSite) -> None:
    article = expected_articles(site.port)[0]
    first = fetch(site.port, article["url"])
    assert fetch(site.port, article["url"], {"If-None-Match": first.headers["ETag"]}).status == 304
    since = {"If-Modified-Since": first.headers["Last-Modified"]}
    assert fetch(site.port, article["url"], since).status == 304


# --- encodings and counters --------------------------------------------------------------------
def test_cp1252_outlet_is_not_utf8(site: DemoSite) -> None:
    articles = [a for a in expected_articles(site.port) if a["outlet"] == "gaceta"]
    saw_cp1252_only_bytes = False
    for article in articles:
        reply = fetch(site.port, article["url"])
        assert reply.headers["Content-Type"] == "text/html"  # no charset parameter
        assert b'content="text/html; charset=iso-8859-1"' in reply.body  # and a wrong one
        with pytest.raises(UnicodeDecodeError):
            reply.body.decode("utf-8")
        text = reply.body.decode("cp1252")
        assert article["title"] in text or article["title"].replace('"', "&quot;") in text
        saw_cp1252_only_bytes |= bool(re.search(rb"[\x80-\x9f]", reply.body))
    assert saw_cp1252_only_bytes  # curly quotes/dashes: cp1252, not latin-1


def test_hit_counters(fresh_site: DemoSite) -> None:
    site = fresh_site
    site.reset_hits()
    url = site.base_url("gaceta") + "/index.php?format=feed&type=rss"
    for _ in range(3):
        fetch(site.port, url)
    fetch(site.port, site.base_url("gaceta") + "/robots.txt")
    fetch(site.port, f"http://nowhere.localhost:{site.port}/x")
    assert site.hits[("gaceta.localhost", "/index.php?format=feed&type=rss")] == 3
    assert site.hits[("gaceta.localhost", "/robots.txt")] == 1
    assert site.responses[("nowhere.localhost", "/x", 404)] == 1
    assert sum(site.hits.values()) == 5

    def hammer() -> None:
        for _ in range(20):
            fetch(site.port, site.base_url("cronica") + "/robots.txt")

    threads = [threading.Thread(target=hammer) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert site.hits[("cronica.localhost", "/robots.txt")] == 100
    site.reset_hits()
    assert not site.hits and not site.responses


# --- faults ------------------------------------------------------------------------------------
def test_fault_pages_absent_without_faults(site: DemoSite) -> None:
    home = fetch(site.port, site.base_url("elfaro") + "/").text()
    assert "/especial/" not in home
    for path in ("/especial/bucle/", "/especial/hemeroteca-completa.html"):
        assert fetch(site.port, site.base_url("elfaro") + path).status == 404
    assert site.fault_urls() == {}
    with pytest.raises(ValueError, match="unknown fault"):
        DemoSite(faults={"gremlins"})


def test_errors_fault_answers_500_then_200(faulty: DemoSite) -> None:
    urls = faulty.fault_urls()["errors"]
    assert urls
    for url in urls:
        assert fetch(faulty.port, url).status == 500
        assert fetch(faulty.port, url).status == 200


def test_slow_fault_delays_some_articles(faulty: DemoSite) -> None:
    slow = faulty.fault_urls()["slow"]
    start = time.monotonic()
    assert fetch(faulty.port, slow[0]).status == 200
    assert time.monotonic() - start >= 2.9
    normal = next(
        a["url"]
        for a in expected_articles(faulty.port)
        if a["outlet"] == "lamontana"
    )  # fmt: skip
    start = time.monotonic()
    assert fetch(faulty.port, normal).status == 200
    assert time.monotonic() - start < 1.0


def test_redirect_loops(faulty: DemoSite) -> None:
    home = fetch(faulty.port, faulty.base_url("elfaro") + "/").text()
    loop, pair = faulty.fault_urls()["redirect-loop"]
    assert urlsplit(loop).path in home and urlsplit(pair).path in home
    reply = fetch(faulty.port, loop)
    assert reply.status in (301, 302) and reply.headers["Location"] == loop
    seen = [pair]
    for _ in range(4):
        reply = fetch(faulty.port, seen[-1])
        assert reply.status in (301, 302)
        seen.append(reply.headers["Location"])
    assert seen[0] == seen[2] == seen[4] and seen[1] == seen[3] != seen[0]


def test_oversized_and_gzip_bomb(faulty: DemoSite) -> None:
    big, endless, bomb = faulty.fault_urls()["oversized"]
    home = fetch(faulty.port, faulty.base_url("elfaro") + "/").text()
    assert all(urlsplit(u).path in home for u in (big, endless, bomb))

    head = fetch(faulty.port, big, method="HEAD")
    assert head.status == 200 and int(head.headers["Content-Length"]) == OVERSIZED_BYTES
    start = fetch(faulty.port, big, max_bytes=65536)  # then hang up
    assert start.body.startswith(b"<!DOCTYPE html>") and len(start.body) == 65536

    chunked = fetch(faulty.port, endless, max_bytes=65536)
    assert chunked.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in chunked.headers
    assert chunked.body.startswith(b"<!DOCTYPE html>") and len(chunked.body) == 65536

    reply = fetch(faulty.port, bomb)
    assert reply.headers["Content-Encoding"] == "gzip"
    assert len(reply.body) == int(reply.headers["Content-Length"]) < 1_000_000
    inflater = zlib.decompressobj(31)
    first = inflater.decompress(reply.body, 1024)
    assert first.startswith(b"<!DOCTYPE html>")
    total, data = len(first), inflater.unconsumed_tail
    while data:  # count without holding 100 MB in memory
        total += len(inflater.decompress(data, 1 << 20))
        data = inflater.unconsumed_tail
    assert total >= 100 * 1024 * 1024
    assert fetch(faulty.port, faulty.base_url("elfaro") + "/").status == 200  # still serving


# --- ground truth, registry, content ------------------------------------------------------------
def test_expected_articles_ground_truth() -> None:
    everything = expected_articles(8800, include_disallowed=True)
    public = expected_articles(8800)
    assert len(everything) == len(public) + 3
    keys = {"url", "outlet", "title", "authors", "published", "is_covid"}
    keys |= {"syndication_group", "disallowed", "reachable_by"}
    for article in everything:
        assert keys <= set(article)
        assert article["url"].startswith(f"http://{article['outlet']}.localhost:8800/")
        assert re.search(r"[+-]\d\d:\d\d$", article["published"])
        assert set(article["reachable_by"]) <= {"feed", "sitemap", "links"}
    assert len({a["url"] for a in everything}) == len(everything)
    covid = [a for a in public if a["is_covid"]]
    assert len(covid) >= 55 and sum(not a["is_covid"] for a in public) == 8
    groups = Counter(a["syndication_group"] for a in public if a["syndication_group"])
    assert len(groups) == 2 and set(groups.values()) == {3}
    for group in groups:
        copies = [a for a in public if a["syndication_group"] == group]
        assert len({a["outlet"] for a in copies}) == 3
        assert len({a["text"] for a in copies}) == 3  # edited differently
    offsets = {a["outlet"]: a["published"][-6:] for a in public if a["outlet"] != "delvalle"}
    assert offsets["elfaro"] == "-03:00" and offsets["gaceta"] == "-04:00"
    assert offsets["cronica"] == offsets["lamontana"] == "-05:00"


def test_registry(tmp_path: Path) -> None:
    entries = demo_registry(8800)
    assert [e["domains"] for e in entries] == [
        *([f"{s}.localhost"] for s in OUTLETS),
        ["verificado.localhost"],  # the fact-checker
    ]
    assert [e["kind"] for e in entries][-1] == "factchecker"
    keys = {"name", "domains", "country", "language", "kind", "scope", "homepage", "feeds"}
    keys |= {"sitemaps", "start_urls", "article_patterns", "exclude_patterns", "weight"}
    for entry in entries:
        assert set(entry) == keys
        assert entry["homepage"].startswith("http://") and entry["homepage"].endswith(":8800/")
        assert entry["feeds"] or entry["sitemaps"] or entry["start_urls"]
    feedless = [e for e in entries if not e["feeds"] and not e["sitemaps"]]
    assert [e["start_urls"] for e in feedless] == [["http://cronica.localhost:8800/"]]
    elfaro = entries[0]
    assert elfaro["feeds"] == ["http://elfaro.localhost:8800/rss.xml"]
    assert elfaro["sitemaps"] == ["http://elfaro.localhost:8800/sitemap_index.xml"]

    out = tmp_path / "sources.yaml"
    write_registry(8800, out)
    doc = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert doc == {"version": 1, "sources": entries}

    registry = pytest.importorskip("crawler.registry")
    model = getattr(registry, "SourceEntry", None)
    if model is None:
        pytest.skip("crawler.registry has no SourceEntry")
    for entry in entries:
        model(**entry)


def test_content_json_is_small_and_traceable(shared_data: Path) -> None:
    assert CONTENT_PATH.stat().st_size < 2 * 1024 * 1024
    doc = json.loads(CONTENT_PATH.read_text(encoding="utf-8"))
    articles = doc["articles"]
    sources: dict[tuple[str, str], str] = {}
    for name in ("labelled_dev", "train"):
        for line in (shared_data / "fakedes" / f"{name}.jsonl").read_text().splitlines():
            row = json.loads(line)
            text = " ".join(((row["headline"] or "") + " " + row["text"]).split())
            sources[(f"fakedes/{name}", str(row["id"]))] = text
    for article in articles:
        dataset, ident = article["source"]["dataset"], article["source"]["id"]
        if dataset == "covid19mx/corpus_simple":
            path = shared_data / "covid19mx" / "corpus_simple" / f"{ident}.txt"
            original = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            assert article["published"].startswith(ident)
        else:
            original = sources[(dataset, ident)]
        for piece in [article["title"], *article["paragraphs"]]:
            assert piece in original, (article["id"], piece[:60])
        assert 1 <= len(article["paragraphs"]) <= 8
        assert re.fullmatch(r"202[01]-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", article["published"])
        assert article["modified"] >= article["published"][:19] or article["modified"]
    datasets = Counter(a["source"]["dataset"] for a in articles)
    assert datasets["covid19mx/corpus_simple"] == 10
    assert datasets["fakedes/train"] == 8
    assert datasets["fakedes/labelled_dev"] == 49  # 40 + 3 disallowed + 2 stories x 3 copies
    text = (ROOT / "crawler" / "demo_site" / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY 4.0" in text and "FakeNewsCorpusSpanish" in text and "fictional" in text


# --- command line ------------------------------------------------------------------------------
@pytest.mark.slow
def test_main_serves_until_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "registry.yaml"
    proc = subprocess.Popen(
        [sys.executable, "-m", "crawler.demo_site", "--port", "0", "--registry-out", str(out)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(3)]
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", "".join(lines))
        assert match, lines
        port = int(match.group(1))
        assert fetch(port, f"http://elfaro.localhost:{port}/").status == 200
        doc = yaml.safe_load(out.read_text(encoding="utf-8"))
        assert doc["sources"][0]["homepage"] == f"http://elfaro.localhost:{port}/"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_fact_checker_serves_claim_reviews_matching_its_ground_truth(site: DemoSite) -> None:
    """Verificado Austral: a round-up page with two reviews (JSON-LD @graph), one whose claim
    appeared in the three copies of a wire story (their URLs), one in microdata; each claim an
    excerpt of its FakeDeS record; the feed lists the review pages only."""
    from crawler.demo_site import expected_factchecks
    from crawler.extract.claimreview import claim_reviews

    expected = expected_factchecks(site.port)
    assert len(expected) == 4 and len({f["url"] for f in expected}) == 3
    read = []
    for url in sorted({f["url"] for f in expected}):
        r = fetch(site.port, url)
        assert r.status == 200
        read += claim_reviews(r.body, url)
    assert sorted(
        (r.claim, r.verdict_text, r.claimant or "", tuple(r.appearances)) for r in read
    ) == sorted(
        (f["claim"], f["verdict_text"], f["claimant"], tuple(f["appearances"])) for f in expected
    )
    wire = {
        a["url"] for a in expected_articles(site.port) if a["syndication_group"] == "wire-sip-oms"
    }
    assert {u for f in expected for u in f["appearances"]} == wire
    feed = fetch(site.port, f"http://verificado.localhost:{site.port}/rss.xml")
    assert feed.status == 200 and feed.body.count(b"<item>") == 3
