"""Sources in the real web: the demo site's ``real-web`` fault crawled by `covidnews crawl`.

Two outlets list no feed or sitemap in the registry (El Faro's are announced by robots.txt →
a sitemap index → a news sitemap, and by its homepage; La Montaña's Atom feed only by its
homepage), one lists a feed that now answers 404 while its homepage announces the new one, one
article is behind a consent interstitial and one behind a paywall (``isAccessibleForFree:
false``). See ``crawler/demo_site/realweb.py``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from covidnews.schema import CrawlState, Source, SourceEndpoint
from covidnews.store import Store
from covidnews.urls import url_hash
from crawler.demo_site import DemoSite, write_registry
from crawler.demo_site.outlets import OUTLETS
from crawler.demo_site.realweb import STALE_FEED
from tests.conftest import run_cli
from tests.crawler.test_crawl import crawl, key, path_of, stored

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite(faults={"real-web"}) as demo:
        yield demo


@pytest.fixture
def env(cli_env: dict[str, str], site: DemoSite, tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "demo-sources.yaml"
    write_registry(site.port, registry, site.faults)
    return dict(
        cli_env,
        COVIDNEWS_SOURCES_FILE=str(registry),
        COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
        COVIDNEWS_LOG_LEVEL="DEBUG",
    )


def endpoints(env: dict[str, str]) -> dict[tuple[str, str], SourceEndpoint]:
    store = Store(env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            slugs = {src.id: src.slug for src in s.scalars(select(Source))}
            rows = list(s.scalars(select(SourceEndpoint)))
            s.expunge_all()
        return {(slugs[r.source_id], r.url): r for r in rows}
    finally:
        store.close()


def history(env: dict[str, str], url: str) -> list[str]:
    store = Store(env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            row = s.get(CrawlState, url_hash(url))
            return [e["event"] for e in (row.extra or {}).get("history", [])] if row else []
    finally:
        store.close()


def health(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    out = run_cli("sources", "health", "--json", env=env)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    return out.returncode, {r["slug"]: r for r in rows}


def test_the_crawl_finds_moved_feeds_heals_the_stale_one_and_flags_walls(
    env: dict[str, str], site: DemoSite
) -> None:
    summary, _ = crawl(env)
    expected = {key(e["url"]): e for e in site.expected_articles()}
    consent_key = next(k for k, e in expected.items() if e["wall"] == "consent")
    first = stored(env)
    # The consent-walled page may be reached by links before its feed says what it is: then it
    # is left queued, never stored as the banner, and stored from the feed on the next crawl.
    assert set(first) - {consent_key} == set(expected) - {consent_key}
    pages = {path_of(e["url"]) for e in expected.values()}
    assert all(site.hits[p] == 1 for p in pages), [p for p in pages if site.hits[p] != 1]
    crawls = 1
    if consent_key not in first:
        crawl(env)
        crawls = 2
    articles = stored(env)
    # Every reachable article, exactly once.
    assert set(articles) == set(expected), {
        "missing": sorted(expected[k]["url"] for k in set(expected) - set(articles)),
        "extra": sorted(articles[k].url for k in set(articles) - set(expected)),
    }
    assert summary["articles_stored"] == len(first)

    # The walled articles: what could be had, flagged; never the consent banner.
    walled = {k: e for k, e in expected.items() if e["wall"]}
    assert sorted(e["wall"] for e in walled.values()) == ["consent", "paywall"]
    for k, exp in expected.items():
        got = articles[k]
        if exp["wall"]:
            assert got.text_complete is False, got.url
            assert got.extra["wall"]["kind"] == exp["wall"] and got.extra["wall"]["reason"]
            assert " ".join(got.text.split()) == " ".join(exp["text"].split()), got.url
            assert got.title == exp["title"]
        else:
            assert got.text_complete is True, got.url
    consent = next(articles[k] for k, e in walled.items() if e["wall"] == "consent")
    assert "cookies" not in consent.text and "privacidad" not in consent.text
    assert summary["walled_pages"] == 2

    # Discovery: what the registry does not list, found where the sites announce it.
    found = endpoints(env)
    from covidnews.store import slugify

    base = {slugify(o.name): site.base_url(slug) for slug, o in OUTLETS.items()}

    def ep(slug: str, path: str) -> SourceEndpoint:
        return found[(slug, base[slug] + path)]

    elfaro_feed = ep("el-faro-del-sur", "/rss.xml")
    assert (elfaro_feed.kind, elfaro_feed.origin, elfaro_feed.state) == (
        "feed",
        "homepage",
        "active",
    )
    news = ep("el-faro-del-sur", "/sitemap-news.xml")
    assert (news.kind, news.news, news.origin) == ("sitemap", True, "sitemap_index")
    assert news.found_via == base["el-faro-del-sur"] + "/sitemap_index.xml"
    index = ep("el-faro-del-sur", "/sitemap_index.xml")
    assert (index.origin, index.found_via) == ("robots", base["el-faro-del-sur"] + "/robots.txt")
    atom = ep("diario-la-montana", "/feeds/ultimas.atom")
    assert (atom.kind, atom.origin, atom.ok_at is not None) == ("feed", "homepage", True)
    # The moved feed: the stale one failed, the new one was found and read in the same crawl.
    stale, new = ep("noticias-del-valle", STALE_FEED), ep("noticias-del-valle", "/feed.json")
    assert (stale.origin, stale.state, stale.failures) == ("registry", "active", crawls)
    assert "404" in (stale.reason or "")
    assert (new.origin, new.state, new.ok_at is not None) == ("homepage", "active", True)
    assert history(env, stale.url) == ["failed"] * crawls
    assert history(env, new.url) == ["found"]
    # Robots.txt was read once per host and crawl (discovery used the middleware's copy).
    assert site.hits[("elfaro.localhost", "/robots.txt")] == crawls

    # More crawls: the stale feed's third failure demotes it; the next crawl does not read it.
    while endpoints(env)[("noticias-del-valle", stale.url)].failures < 3:
        crawl(env)
    stale = endpoints(env)[("noticias-del-valle", stale.url)]
    assert (stale.state, stale.failures) == ("demoted", 3)
    assert history(env, stale.url) == ["failed", "failed", "failed", "demoted"]
    hits = site.hits[("delvalle.localhost", STALE_FEED)]
    again, _ = crawl(env)
    assert site.hits[("delvalle.localhost", STALE_FEED)] == hits
    assert len(stored(env)) == len(expected) and again["articles_stored"] == 0

    # Health: every source reported; the walls counted; the demoted feed shown, nothing failing.
    code, rows = health(env)
    assert code == 0, rows
    assert set(rows) >= {"el-faro-del-sur", "noticias-del-valle", "la-gaceta-insular"}
    valle = rows["noticias-del-valle"]
    assert valle["status"] == "ok" and valle["error_streak"] == 0
    assert {(e["url"], e["state"]) for e in valle["endpoints"]} == {
        (stale.url, "demoted"),
        (new.url, "active"),
    }
    assert rows["el-faro-del-sur"]["walled_30d"] == 1
    assert rows["la-gaceta-insular"]["walled_30d"] == 1
    assert rows["el-faro-del-sur"]["articles_7d"] + rows["el-faro-del-sur"]["articles_30d"] > 0
    assert rows["el-faro-del-sur"]["last_article_at"]
    table = run_cli("sources", "health", env=env)
    assert "demoted" in table.stdout and STALE_FEED in table.stdout


def test_sources_discover_finds_every_feed_and_sitemap_the_demo_publishes(
    env: dict[str, str], site: DemoSite
) -> None:
    out = run_cli("sources", "discover", "--json", env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    found = {(r["slug"], r["url"]) for r in rows}
    published = {
        site.base_url(slug) + path
        for slug, outlet in OUTLETS.items()
        for path in (
            outlet.feed_path,
            outlet.news_sitemap_path,
            outlet.sitemap_index_path,
            outlet.sitemap_path,
            "/sitemap-secciones.xml" if outlet.news_sitemap_path else None,
        )
        if path
    }
    assert published <= {url for _, url in found}, sorted(published - {u for _, u in found})
    news = {r["url"] for r in rows if r["news"]}
    assert news == {site.base_url("elfaro") + "/sitemap-news.xml"}
    assert not any(site.hits[path_of(e["url"])] for e in site.expected_articles())  # no article

    # --write: the registry gains what it did not list; its comments and order are kept.
    path = Path(env["COVIDNEWS_SOURCES_FILE"])
    original = "# demo registry, written by the test\n" + path.read_text("utf-8")
    path.write_text(original, "utf-8")
    wrote = run_cli("sources", "discover", "--write", env=env)
    assert wrote.returncode == 0, wrote.stderr[-2000:]
    text = path.read_text("utf-8")
    assert text.startswith("# demo registry, written by the test\n")
    doc = yaml.safe_load(text)
    names = [s["name"] for s in doc["sources"]]
    assert names == [s["name"] for s in yaml.safe_load(original)["sources"]]
    elfaro = next(s for s in doc["sources"] if s["name"] == OUTLETS["elfaro"].name)
    assert site.base_url("elfaro") + "/rss.xml" in elfaro["feeds"]
    assert site.base_url("elfaro") + "/sitemap-news.xml" in elfaro["sitemaps"]
    valle = next(s for s in doc["sources"] if s["name"] == OUTLETS["delvalle"].name)
    assert valle["feeds"][0].endswith(STALE_FEED) and valle["feeds"][1].endswith("/feed.json")
