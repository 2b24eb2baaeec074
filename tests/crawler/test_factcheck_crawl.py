"""A fact-checker crawled for real (`covidnews crawl` over HTTP on 127.0.0.1): its pages with
ClaimReview markup become fact-checks (several per page, microdata too), its other pages
articles; the fact-check citing an article's URL is linked to it; a re-crawl changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from covidnews.schema import Article, FactCheck, FactCheckLink, Source
from covidnews.store import Store
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

NEWS = "http://diario.localhost:{port}/2021/03/01/vacunas-llegan-al-pais"
BODY = "<p>" + ("La campaña de vacunación contra la covid-19 sigue en todo el país. " * 8) + "</p>"


def pages(port: int) -> dict[str, tuple[str, str]]:
    base = f"http://verifica.localhost:{port}"
    review = {
        "@context": "https://schema.org",
        "@type": "ClaimReview",
        "claimReviewed": "Las vacunas llegan con un microchip",
        "datePublished": "2021-03-03T12:00:00-06:00",
        "reviewRating": {"@type": "Rating", "alternateName": "Falso"},
        "itemReviewed": {
            "@type": "Claim",
            "appearance": [{"@type": "CreativeWork", "url": NEWS.format(port=port)}],
        },
    }
    micro = """<div itemscope itemtype="https://schema.org/ClaimReview">
      <span itemprop="claimReviewed">El agua tibia con limón previene el contagio</span>
      <div itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">
        <meta itemprop="alternateName" content="Engañoso"></div></div>"""
    feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>Verifica</title>
      <item><title>Bulos</title><link>{base}/2021/03/03/dos-bulos</link></item>
      <item><title>Nota</title><link>{base}/2021/03/04/como-verificamos</link></item>
    </channel></rss>"""

    def html(title: str, head: str = "", body: str = "") -> str:
        return (
            f"<html lang='es'><head><title>{title}</title>{head}"
            "<meta property='article:published_time' content='2021-03-03T12:00:00-06:00'>"
            f"</head><body><article><h1>{title}</h1>{body}{BODY}</article></body></html>"
        )

    ld = f"<script type='application/ld+json'>{json.dumps(review)}</script>"
    return {
        "/feed.xml": ("application/rss+xml", feed),
        "/2021/03/03/dos-bulos": ("text/html", html("Dos bulos sobre la vacuna", ld, micro)),
        "/2021/03/04/como-verificamos": ("text/html", html("Cómo verificamos")),
        "/robots.txt": ("text/plain", ""),
    }


@pytest.fixture
def server() -> Iterator[int]:
    served: dict[str, tuple[str, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = served.get(self.path.split("?")[0])
            body = found[1].encode() if found else b"not found"
            self.send_response(200 if found else 404)
            self.send_header(
                "Content-Type", f"{found[0] if found else 'text/plain'}; charset=utf-8"
            )
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = httpd.server_address[1]
    served.update(pages(port))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield port
    httpd.shutdown()


def test_a_factcheckers_pages_become_fact_checks(
    server: int, cli_env: dict[str, str], tmp_path: Path
) -> None:
    registry = tmp_path / "sources.yaml"
    entry = {
        "name": "Verifica Local",
        "domains": ["verifica.localhost"],
        "country": "MX",
        "language": "es",
        "kind": "factchecker",
        "feeds": [f"http://verifica.localhost:{server}/feed.xml"],
    }
    registry.write_text(yaml.safe_dump({"version": 1, "sources": [entry]}))
    env = dict(
        cli_env,
        COVIDNEWS_SOURCES_FILE=str(registry),
        COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
        COVIDNEWS_EMBEDDER="hashing",
    )
    store = Store(env["COVIDNEWS_DATABASE_URL"])
    store.migrate()
    from covidnews.ingest import parse_record

    # The article the fact-check cites is already in the store.
    (cited,) = store.upsert_articles(
        [parse_record({"url": NEWS.format(port=server), "title": "Llegan vacunas", "text": BODY})]
    ).changed_ids

    def run(*args: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "covidnews", *args],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        return proc.stdout

    def crawl() -> dict[str, object]:
        out = run("crawl", "--json", "-s", "DOWNLOAD_DELAY=0", "-s", "AUTOTHROTTLE_ENABLED=false")
        summary: dict[str, object] = json.loads(out.strip().splitlines()[-1])
        return summary

    first = crawl()
    assert first["factchecks_stored"] == 2 and first["articles_stored"] == 1, first
    run("process")  # the NLP (deferred in these tests): articles, then fact-check links
    with store.session() as s:
        checks = {f.claim: f for f in s.scalars(select(FactCheck))}
        assert {c: f.verdict for c, f in checks.items()} == {
            "Las vacunas llegan con un microchip": "false",
            "El agua tibia con limón previene el contagio": "misleading",
        }
        chip = checks["Las vacunas llegan con un microchip"]
        source = s.get(Source, chip.source_id)
        assert source is not None and source.kind == "factchecker"
        assert chip.url.endswith("/2021/03/03/dos-bulos") and chip.language == "es"
        # the other page is an article, not a fact-check
        titles = set(s.scalars(select(Article.title)))
        assert "Cómo verificamos" in titles and "Dos bulos sobre la vacuna" not in titles
        links = set(s.execute(select(FactCheckLink.factcheck_id, FactCheckLink.article_id)))
        assert links == {(chip.id, cited)}  # the appearance
        assert all(f.linked_at is not None for f in checks.values())

    crawl()  # again: the same fact-checks, nothing new
    with store.session() as s:
        assert len(list(s.scalars(select(FactCheck)))) == 2
    store.close()
