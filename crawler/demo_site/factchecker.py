"""The demo site's fictional fact-checker, "Verificado Austral" (``verificado.localhost``).

Its reviews come from ``content.json`` (``factchecks``, built by ``build_content.py``: claims are
excerpts of FakeDeS records, see ATTRIBUTION.md). Pages carry schema.org ``ClaimReview`` the way
real fact-checkers do: a round-up page with two reviews in one JSON-LD ``@graph``, a review whose
``itemReviewed`` is a ``Claim`` with ``appearance`` links to the demo outlets' articles, and one
in microdata. An RSS feed lists the review pages. It has no ordinary articles, so a crawl of the
demo stores the same 64 articles as before (a fact-checker's other pages being stored as
articles is tested on a server of its own: tests/crawler/test_factcheck_crawl.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from crawler.demo_site.common import e, jsonld

SLUG = "verificado"
NAME = "Verificado Austral"
COUNTRY = "CL"
CONTENT_PATH = Path(__file__).with_name("content.json")
METHOD_TEXT = (
    "Verificado Austral es un medio ficticio del sitio de demostración de covidnews. Cada "
    "verificación explica qué se afirmó, quién lo afirmó, dónde circuló y qué dicen las fuentes "
    "oficiales y los estudios publicados. Calificamos cada afirmación como verdadera, engañosa, "
    "falsa o sin pruebas, y enlazamos todas las fuentes consultadas para que cada lector pueda "
    "comprobarlas por sí mismo. Corregimos los errores en cuanto los detectamos y lo indicamos "
    "al final de la nota correspondiente."
)

#: Review records of content.json: JSON values of every kind
FactCheck = dict[str, Any]


@cache
def _factchecks() -> tuple[FactCheck, ...]:
    return tuple(json.loads(CONTENT_PATH.read_text(encoding="utf-8")).get("factchecks", []))


def _articles() -> dict[str, dict[str, Any]]:
    doc = json.loads(CONTENT_PATH.read_text(encoding="utf-8"))
    return {a["id"]: a for a in doc["articles"]}


def base_url(port: int) -> str:
    return f"http://{SLUG}.localhost:{port}"


def page_path(page: str) -> str:
    return f"/verificacion/{page}/"


def _appearances(fc: FactCheck, port: int) -> list[str]:
    articles = _articles()
    return [
        f"http://{articles[i]['outlet']}.localhost:{port}{articles[i]['path']}"
        for i in fc["appearances"]
    ]


def registry_entry(port: int) -> dict[str, Any]:
    """Its entry in the demo registry (``sources.yaml`` format)."""
    base = base_url(port)
    return {
        "name": NAME,
        "domains": [f"{SLUG}.localhost"],
        "country": COUNTRY,
        "language": "es",
        "kind": "factchecker",
        "scope": "national",
        "homepage": base + "/",
        "feeds": [base + "/rss.xml"],
        "sitemaps": [],
        "start_urls": [],
        "article_patterns": ["^/verificacion/", "^/20"],
        "exclude_patterns": [],
        "weight": 1.0,
    }


def expected_factchecks(port: int) -> list[dict[str, Any]]:
    """Ground truth: what a crawl of the fact-checker stores (claim, rating, claimant, page,
    appearances as URLs)."""
    return [
        {
            "claim": fc["claim"],
            "verdict_text": fc["verdict_text"],
            "claimant": fc["claimant"],
            "url": base_url(port) + page_path(fc["page"]),
            "appearances": _appearances(fc, port),
            "reviewed": fc["reviewed"],
        }
        for fc in _factchecks()
    ]


def _review(fc: FactCheck, port: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "@type": "Claim",
        "author": {"@type": "Organization", "name": fc["claimant"]},
    }
    if fc["appearances"]:
        item["appearance"] = [{"@type": "CreativeWork", "url": u} for u in _appearances(fc, port)]
    return {
        "@type": "ClaimReview",
        "url": base_url(port) + page_path(fc["page"]),
        "claimReviewed": fc["claim"],
        "datePublished": fc["reviewed"],
        "author": {"@type": "Organization", "name": NAME},
        "itemReviewed": item,
        "reviewRating": {
            "@type": "Rating",
            "alternateName": fc["verdict_text"],
            "ratingValue": 1 if fc["verdict_text"] == "Falso" else 5,
            "bestRating": 5,
            "worstRating": 1,
        },
    }


def _microdata(fc: FactCheck) -> str:
    return (
        '<div itemscope itemtype="https://schema.org/ClaimReview">'
        f'<p>Afirmación: <span itemprop="claimReviewed">{e(fc["claim"])}</span></p>'
        f'<meta itemprop="datePublished" content="{e(fc["reviewed"])}">'
        '<div itemprop="itemReviewed" itemscope itemtype="https://schema.org/Claim">'
        '<div itemprop="author" itemscope itemtype="https://schema.org/Organization">'
        f'<p>Quién lo dijo: <span itemprop="name">{e(fc["claimant"])}</span></p></div></div>'
        '<div itemprop="reviewRating" itemscope itemtype="https://schema.org/Rating">'
        f'<p>Calificación: <strong itemprop="alternateName">{e(fc["verdict_text"])}</strong></p>'
        "</div></div>"
    )


def _page(title: str, published: str, body: str, head: str = "") -> str:
    paragraphs = "".join(f"<p>{e(METHOD_TEXT)}</p>" for _ in range(2))
    return (
        f'<!DOCTYPE html><html lang="es"><head><meta charset="utf-8"><title>{e(title)} | {NAME}'
        f'</title><meta property="og:type" content="article">'
        f'<meta property="article:published_time" content="{e(published)}">{head}</head><body>'
        f'<header><a href="/">{NAME}</a></header><main><article><h1>{e(title)}</h1>{body}'
        f"{paragraphs}</article></main></body></html>"
    )


def _pages(port: int) -> dict[str, str]:
    by_page: dict[str, list[FactCheck]] = {}
    for fc in _factchecks():
        by_page.setdefault(fc["page"], []).append(fc)
    out: dict[str, str] = {}
    for page, reviews in by_page.items():
        title = "Verificamos: " + "; ".join(r["claim"][:60] for r in reviews)
        in_json = [r for r in reviews if r["markup"] == "json-ld"]
        head = (
            jsonld(
                {"@context": "https://schema.org", "@graph": [_review(r, port) for r in in_json]}
            )
            if in_json
            else ""
        )
        body = "".join(
            _microdata(r)
            if r["markup"] == "microdata"
            else f"<p>Afirmación: «{e(r['claim'])}». Calificación: {e(r['verdict_text'])}.</p>"
            for r in reviews
        )
        out[page_path(page)] = _page(title, reviews[0]["reviewed"], body, head)
    return out


def respond(target: str, port: int) -> tuple[int, str, str]:
    """(status, content type, body) for a path of the fact-checker."""
    path = target.split("?", 1)[0]
    pages = _pages(port)
    if path == "/robots.txt":
        return 200, "text/plain; charset=utf-8", "User-agent: *\nAllow: /\n"
    if path == "/rss.xml":
        items = "".join(
            f"<item><title>{e(p)}</title><link>{e(base_url(port) + p)}</link></item>" for p in pages
        )
        rss = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{NAME}</title><link>{base_url(port)}/</link>{items}</channel></rss>"
        )
        return 200, "application/rss+xml; charset=utf-8", rss
    if path == "/":
        links = "".join(f'<li><a href="{e(p)}">{e(p)}</a></li>' for p in pages)
        return 200, "text/html; charset=utf-8", _page(NAME, "", f"<ul>{links}</ul>")
    if path in pages:
        return 200, "text/html; charset=utf-8", pages[path]
    return 404, "text/plain; charset=utf-8", "Not found\n"
