"""Real Scrapy crawls (`covidnews crawl` subprocesses) of the real local demo site.

Counts are taken at the server: every request the crawler makes is seen by the DemoSite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from covidnews.schema import Article, CrawlState, Source
from covidnews.store import Store
from covidnews.urls import canonical_url, url_hash
from crawler.demo_site import DemoSite, write_registry
from tests.conftest import ROOT, redis_url

FAST = [
    "-s",
    "AUTOTHROTTLE_ENABLED=false",
    "-s",
    "DOWNLOAD_DELAY=0",
    "-s",
    "CONCURRENT_REQUESTS_PER_DOMAIN=4",
]
pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite() as demo:
        yield demo


@pytest.fixture
def crawl_env(cli_env: dict[str, str], site: DemoSite, tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "demo-sources.yaml"
    write_registry(site.port, registry)
    return dict(
        cli_env,
        COVIDNEWS_SOURCES_FILE=str(registry),
        COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
        COVIDNEWS_LOG_LEVEL="DEBUG",
    )


def crawl(env: dict[str, str], *args: str, timeout: float = 300) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, "-m", "covidnews", "crawl", "--json", *FAST, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def stored(env: dict[str, str]) -> dict[str, Article]:
    store = Store(env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            return {a.url_hash: a for a in s.scalars(select(Article))}
    finally:
        store.close()


def key(url: str) -> str:
    return url_hash(canonical_url(url))


def path_of(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "", parts.path + (f"?{parts.query}" if parts.query else "")


def assert_matches_demo(site: DemoSite, articles: dict[str, Article]) -> None:
    expected = {key(e["url"]): e for e in site.expected_articles()}
    assert set(articles) == set(expected), {
        "missing": sorted(expected[k]["url"] for k in set(expected) - set(articles)),
        "extra": sorted(articles[k].url for k in set(articles) - set(expected)),
    }
    for k, exp in expected.items():
        got = articles[k]
        assert got.title == exp["title"], got.url
        assert got.published_at == datetime.fromisoformat(exp["published"]), got.url
        assert got.authors == exp["authors"], got.url
        assert got.language == "es"
        assert len(got.text) > 200


def test_crawl_stores_every_demo_article_once(crawl_env: dict[str, str], site: DemoSite) -> None:
    summary, log = crawl(crawl_env)
    articles = stored(crawl_env)
    assert_matches_demo(site, articles)
    assert summary["articles_stored"] == len(articles)

    # Each page fetched at most once; robots-disallowed article pages never.
    hits = site.hits
    assert max(hits.values()) == 1, [k for k, v in hits.items() if v > 1]
    for exp in site.expected_articles(include_disallowed=True):
        if exp["disallowed"]:
            assert path_of(exp["url"]) not in hits
            assert key(exp["url"]) not in articles
    assert summary["robots_forbidden"] >= 3

    # Syndicated wire copies: one story, every outlet's copy kept.
    groups: dict[str, set[int]] = {}
    for exp in site.expected_articles():
        if exp["syndication_group"]:
            art = articles[key(exp["url"])]
            groups.setdefault(exp["syndication_group"], set()).add(art.duplicate_of or art.id)
    assert len(groups) == 2
    assert all(len(roots) == 1 for roots in groups.values()), groups
    assert sum(1 for a in articles.values() if a.duplicate_of) == 4
    assert not any(
        a.duplicate_of
        for k, a in articles.items()
        if not site_expected(site)[k]["syndication_group"]
    )

    # Links to the cloud metadata address and to non-registry sites were never requested.
    for line in log.splitlines():
        if "Crawled (" in line or "Error downloading" in line or "Retrying" in line:
            assert "169.254.169.254" not in line and "example.org" not in line, line

    store = Store(crawl_env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Source)) == 7  # + the fact-checker
    finally:
        store.close()


def site_expected(site: DemoSite) -> dict[str, dict[str, Any]]:
    return {key(e["url"]): e for e in site.expected_articles()}


def test_second_crawl_fetches_no_article_again_and_feeds_answer_304(
    crawl_env: dict[str, str], site: DemoSite
) -> None:
    crawl(crawl_env)
    first = stored(crawl_env)
    site.reset_hits()
    summary, _ = crawl(crawl_env)
    article_paths = {path_of(e["url"]) for e in site.expected_articles()}
    refetched = [k for k in site.hits if k in article_paths]
    assert refetched == []
    not_modified = [k for k, n in site.responses.items() if k[2] == 304]
    feeds = [k for k in not_modified if k[1].endswith((".xml", ".atom", ".json", "type=rss"))]
    assert len(feeds) >= 6, site.responses
    assert summary["articles_stored"] == 0
    assert set(stored(crawl_env)) == set(first)

    # A newly published article is picked up by the next crawl, and only it.
    new = site.add_article(
        "elfaro",
        title="Llegan nuevas dosis de la vacuna a Buenos Aires",
        text="\n\n".join([PARA] * 4),
        authors=["Lucía Gómez"],
    )
    site.reset_hits()
    summary, _ = crawl(crawl_env)
    assert summary["articles_stored"] == 1
    assert path_of(new["url"]) in site.hits
    assert not [k for k in site.hits if k in article_paths]
    assert key(new["url"]) in stored(crawl_env)


PARA = (
    "El Ministerio de Salud informó que las nuevas dosis llegaron esta mañana al aeropuerto y serán "
    "distribuidas entre los centros de vacunación de la provincia durante la semana próxima."
)


def test_private_addresses_are_refused_unless_allowed(
    crawl_env: dict[str, str], site: DemoSite
) -> None:
    env = {k: v for k, v in crawl_env.items() if k != "COVIDNEWS_CRAWL_ALLOW_PRIVATE"}
    summary, log = crawl(env)
    assert sum(site.hits.values()) == 0  # *.localhost resolves to 127.0.0.1: refused
    assert summary["articles_stored"] == 0
    assert "non-public address" in log


def test_sigkill_mid_crawl_then_resume_loses_and_duplicates_nothing(
    crawl_env: dict[str, str], site: DemoSite
) -> None:
    url = crawl_env["COVIDNEWS_DATABASE_URL"]
    slow = ["-s", "CONCURRENT_REQUESTS_PER_DOMAIN=1", "-s", "DOWNLOAD_DELAY=0.15"]
    subprocess.run(
        [sys.executable, "-m", "covidnews", "init"],
        env=crawl_env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "covidnews", "crawl", *FAST, *slow],
        env=crawl_env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        count = len(stored(crawl_env))
        if count >= 12:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "crawl finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = len(stored(crawl_env))
    assert 0 < killed_at < len(site.expected_articles())

    crawl(crawl_env)
    articles = stored(crawl_env)
    assert_matches_demo(site, articles)
    store = Store(url)
    try:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Article)) == len(
                site.expected_articles()
            )
    finally:
        store.close()
    article_paths = {path_of(e["url"]) for e in site.expected_articles()}
    # Across both runs, no article page was fetched more than twice (the one in flight at the
    # kill may be fetched again; everything already stored was not).
    assert max(n for k, n in site.hits.items() if k in article_paths) <= 2


def test_two_crawlers_with_redis_split_one_crawl(crawl_env: dict[str, str], site: DemoSite) -> None:
    import redis

    client = redis.Redis.from_url(redis_url(0))
    run_id = f"test-{os.getpid()}-{time.time_ns()}"
    env = dict(crawl_env, COVIDNEWS_REDIS_URL=redis_url(0))
    subprocess.run(
        [sys.executable, "-m", "covidnews", "init"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    args = [
        sys.executable,
        "-m",
        "covidnews",
        "crawl",
        "--json",
        "--run-id",
        run_id,
        *FAST,
        "-s",
        "CONCURRENT_REQUESTS_PER_DOMAIN=1",
        "-s",
        "DOWNLOAD_DELAY=0.2",
    ]
    procs = [
        subprocess.Popen(
            args, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    summaries = [json.loads(o[0].strip().splitlines()[-1]) for o in outs]
    # Both processes worked, and every page was fetched once in all (robots.txt excepted:
    # each process reads it for itself).
    assert all(s["pages_fetched"] > 0 for s in summaries), summaries
    pages = Counter({k: n for k, n in site.hits.items() if k[1] != "/robots.txt"})
    assert max(pages.values()) == 1, [k for k, n in pages.items() if n > 1]
    assert_matches_demo(site, stored(crawl_env))
    assert sum(s["articles_stored"] for s in summaries) == len(site.expected_articles())
    assert all(client.ttl(k) > 0 for k in client.scan_iter(f"covidnews:{run_id}:*"))


def test_fault_modes_do_not_break_the_crawl(cli_env: dict[str, str], tmp_path: Path) -> None:
    with DemoSite(faults=frozenset({"slow", "errors", "redirect-loop", "oversized"})) as site:
        registry = tmp_path / "demo-sources.yaml"
        write_registry(site.port, registry)
        env = dict(
            cli_env, COVIDNEWS_SOURCES_FILE=str(registry), COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1"
        )
        started = datetime.now(UTC)
        summary, _ = crawl(env, "--source", "El Faro del Sur")
        elapsed = (datetime.now(UTC) - started).total_seconds()
        articles = stored(env)
        expected = [e for e in site.expected_articles() if e["outlet"] == "elfaro"]
        assert {key(e["url"]) for e in expected} == set(articles)  # 500s were retried
        for fault_url in site.fault_urls().get("oversized", []) + site.fault_urls().get(
            "redirect-loop", []
        ):
            assert key(fault_url) not in articles
        assert elapsed < 120
        assert summary["finish_reason"] == "finished"


# Peak resident memory of this process's own address space (VmHWM). Not getrusage's ru_maxrss:
# Linux carries the parent's high-water mark across fork/vfork + exec, so under a big pytest
# process a small child would report the parent's size.
CRAWL_MEASURED = """
import atexit, re, sys
def _peak():
    with open("/proc/self/status") as f:
        print("MAXRSS_KB", re.search(r"VmHWM:\\s+(\\d+)", f.read()).group(1), file=sys.stderr)
atexit.register(_peak)
from covidnews.cli import main
sys.argv = ["covidnews", "crawl", "--json", *sys.argv[1:]]
main()
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_hostile_feeds_and_sitemaps_do_not_stop_the_crawl(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Billion laughs, external entities, an endless feed, gzip bombs (transfer coding and a
    `.xml.gz` file), sitemap indexes naming each other, a 50,000-URL sitemap: the crawl ends, every article of every
    outlet is stored, nothing of /etc/passwd is anywhere in the store, the crawler's memory stays
    bounded, and each hostile listing costs at most a warning."""
    import re

    with DemoSite(faults=frozenset({"hostile-feeds"})) as site:
        registry = tmp_path / "demo-sources.yaml"
        write_registry(site.port, registry, site.faults)
        env = dict(
            cli_env, COVIDNEWS_SOURCES_FILE=str(registry), COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1"
        )
        started = datetime.now(UTC)
        proc = subprocess.run(
            [sys.executable, "-c", CRAWL_MEASURED, *FAST],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=500,
        )  # fmt: skip
        elapsed = (datetime.now(UTC) - started).total_seconds()
        assert proc.returncode == 0, proc.stderr[-3000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        assert summary["finish_reason"] == "finished"
        assert_matches_demo(site, stored(env))  # every outlet's articles, the fault outlet's too
        hostile = site.fault_urls()["hostile-feeds"]
        for url in hostile:  # each was asked for (the loop's second index too, once)
            assert site.hits[path_of(url)] >= 1, url
        assert site.hits[("elfaro.localhost", "/sitemaps/bucle-2.xml")] == 1
        assert site.hits[("elfaro.localhost", "/sitemaps/bucle.xml")] == 1
        # The 50,000-URL sitemap was read once; of its URLs only articles were fetched.
        assert site.hits[("elfaro.localhost", "/sitemaps/archivo.xml")] == 1
        assert not [p for _, p in site.hits if p.startswith(("/etiquetas/", "/autores/"))]
        warnings = [line for line in proc.stderr.splitlines() if " WARNING " in line]
        for path in (
            "/rss/risa.xml",
            "/rss/bomba.xml",
            "/rss/sin-fin.xml",
            "/sitemaps/bomba.xml.gz",
        ):
            assert sum(path in line for line in warnings) == 1, (path, warnings)
    assert elapsed < 180
    store = Store(env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            texts = [
                " ".join(str(v) for v in row)
                for table in (Article, CrawlState)
                for row in s.execute(select(*table.__table__.columns))
            ]
    finally:
        store.close()
    assert texts and not [t for t in texts if "root:x:0:0" in t or "lollollol" in t]
    maxrss_mb = int(re.findall(r"MAXRSS_KB (\d+)", proc.stderr)[-1]) / 1024
    print(f"hostile crawl: {elapsed:.0f} s, max RSS {maxrss_mb:.0f} MB")
    assert maxrss_mb < 700
