"""The readers' web archive: pages in both languages, escaping, feeds, headers, caching."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update

from api import create_app
from covidnews.schema import Article, ArticleTopic, Source
from covidnews.search.results import local_time
from covidnews.settings import load_settings
from covidnews.store import Store

EVIL_TITLE = "Vacunas <script>alert(1)</script> llegan"
EVIL_TEXT = (
    "Primer párrafo con <img src=x onerror=alert(1)> y vacunas.\n\n"
    "Segundo párrafo <script>alert(1)</script> sobre la vacunación."
)
EVIL_IMAGE = 'https://evil.example.org/foto.jpg?a=1&b="><script>alert(1)</script>'
TAG = re.compile(r"<script|<img|<b>", re.IGNORECASE)  # as tags: escaped text is fine
ARTICLE_LINK = re.compile(r'href="/articulo/(\d+)')


@pytest.fixture(scope="module")
def app(corpus: Any) -> Iterator[Any]:
    app = create_app({"SETTINGS": corpus.settings, "TESTING": True, "RATELIMIT_ENABLED": False})
    yield app
    app.extensions["covidnews"].close()


@pytest.fixture
def client(app: Any) -> FlaskClient:
    return app.test_client()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def store(corpus: Any) -> Iterator[Store]:
    s = Store(corpus.url)
    yield s
    s.close()


@pytest.fixture(scope="module")
def facts(store: Store) -> dict[str, Any]:
    """Ids and values of the corpus the tests look for."""
    with store.session() as s:
        covid = s.execute(
            select(
                Article.id,
                Article.published_at,
                Article.duplicate_of,
                Article.language,
                Article.published_offset,
            ).where(Article.is_covid.is_(True), Article.state == "done")
        ).all()
        copied = next(a for _, _, a, _, _ in covid if a is not None)
        english = next(i for i, _, _, lang, _ in covid if lang == "en")
        source = s.scalars(
            select(Source.slug)
            .join(Article, Article.source_id == Source.id)
            .where(Article.id == copied)
        ).one()
        vaccines = set(
            s.scalars(select(ArticleTopic.article_id).where(ArticleTopic.topic == "vaccines"))
        )
    by_day: dict[date, set[int]] = {}
    for i, published, _, _, offset in covid:  # the outlet's day: its clock, not UTC's
        by_day.setdefault(local_time(published, offset).date(), set()).add(i)
    return {
        "copied": copied,
        "english": english,
        "source": source,
        "vaccines": vaccines,
        "by_day": by_day,
        "any": covid[0][0],
    }


def pages(facts: dict[str, Any]) -> list[str]:
    day = min(facts["by_day"])
    return [
        "/",
        "/tema/vaccines",
        f"/fuente/{facts['source']}",
        "/pais/mx",
        "/archivo/",
        f"/archivo/{day:%Y}/",
        f"/archivo/{day:%Y/%m}/",
        f"/archivo/{day:%Y/%m/%d}/",
        f"/articulo/{facts['copied']}",
        f"/articulo/{facts['copied']}?ver=en",
        f"/articulo/{facts['copied']}?ver=ambos",
        f"/articulo/{facts['english']}?ver=es",
        "/buscar",
        "/buscar?q=vacunas",
        "/buscar?q=vaccines&mode=keyword&topic=vaccines&country=MX&from=2021-01-01&to=2021-12-31",
        "/estadisticas",
        "/estadisticas?interval=day&topic=vaccines",
        "/estadisticas?interval=month",
        "/acerca",
    ]


# Every page, both languages ------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["es", "en"])
def test_every_page_answers_in_both_languages(
    client: FlaskClient, facts: dict[str, Any], lang: str
) -> None:
    for url in pages(facts):
        sep = "&" if "?" in url else "?"
        r = client.get(f"{url}{sep}lang={lang}")
        html = r.get_data(as_text=True)
        assert r.status_code == 200, (url, html[:500])
        assert r.mimetype == "text/html"
        assert f'<html lang="{lang}">' in html, url
        # Landmarks, skip link, no inline script or style anywhere (CSP forbids them).
        for needle in ("<header", "<nav", '<main id="main"', "<footer", 'href="#main"'):
            assert needle in html, (url, needle)
        assert "<script" not in html and "style=" not in html, url
        if lang == "en":  # links keep the language
            assert 'href="/?lang=en"' in html and 'id="lang-switch"' in html


def test_spanish_by_default_english_remembered(client: FlaskClient) -> None:
    html = client.get("/tema/vaccines").get_data(as_text=True)
    assert '<html lang="es">' in html and '<h1 id="page-title">Vacunas</h1>' in html
    r = client.get("/tema/vaccines?lang=en")
    assert '<h1 id="page-title">Vaccines</h1>' in r.get_data(as_text=True)
    assert "lang=en" in r.headers["Set-Cookie"]
    html = client.get("/acerca").get_data(as_text=True)  # the cookie switches too
    assert '<html lang="en">' in html and "About covidnews" in html
    html = client.get("/acerca?lang=es").get_data(as_text=True)
    assert '<html lang="es">' in html and "Acerca de covidnews" in html


def test_dates_and_numbers_follow_the_locale(client: FlaskClient, facts: dict[str, Any]) -> None:
    day = min(facts["by_day"])
    es = client.get(f"/archivo/{day:%Y/%m/%d}/").get_data(as_text=True)
    en = client.get(f"/archivo/{day:%Y/%m/%d}/?lang=en").get_data(as_text=True)
    assert "enero de 2021" in es and "January" in en
    assert "lunes" in es or "martes" in es or "domingo" in es or "jueves" in es


@pytest.mark.parametrize(
    "url",
    [
        "/articulo/99999999",
        "/tema/nope",
        "/fuente/no-such-source",
        "/pais/qq",
        "/archivo/2021/13/",
        "/feeds/tema/nope.rss",
    ],
)
def test_unknown_things_are_404_pages(client: FlaskClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404
    if not url.startswith("/feeds"):
        html = r.get_data(as_text=True)
        assert r.mimetype == "text/html" and "Página no encontrada" in html
    html = client.get(url + "?lang=en").get_data(as_text=True)
    if not url.startswith("/feeds"):
        assert '<html lang="en">' in html and "Page not found" in html


def test_bad_cursor_is_a_400_page(client: FlaskClient) -> None:
    r = client.get("/tema/vaccines?cursor=garbage")
    assert r.status_code == 400 and r.mimetype == "text/html"
    r = client.get("/buscar?q=vacunas&cursor=garbage")
    assert r.status_code == 400 and 'id="search-form"' in r.get_data(as_text=True)
    r = client.get("/buscar?from=yesterday")
    assert r.status_code == 400 and 'id="err-from"' in r.get_data(as_text=True)


# Lists, article, search, stats -----------------------------------------------------------------


def _story_ids(html: str) -> set[int]:
    block = html.split('<ol class="stories">', 1)[1].split("</ol>", 1)[0] if "<ol" in html else ""
    return {int(i) for i in ARTICLE_LINK.findall(block)}


def test_day_page_lists_exactly_that_days_articles(
    client: FlaskClient, facts: dict[str, Any]
) -> None:
    with_copies = 0
    for day, expected in facts["by_day"].items():
        html = client.get(f"/archivo/{day:%Y/%m/%d}/").get_data(as_text=True)
        assert _story_ids(html) == expected, day
        with_copies += 'class="also"' in html
    assert with_copies == 1  # the syndicated story: one entry, "también en" the others
    empty = client.get("/archivo/2019/06/15/").get_data(as_text=True)
    assert _story_ids(empty) == set()


def test_month_calendar_counts_days(client: FlaskClient, facts: dict[str, Any]) -> None:
    day = min(facts["by_day"])
    html = client.get(f"/archivo/{day:%Y/%m}/").get_data(as_text=True)
    assert 'id="calendar"' in html and "<caption>" in html
    linked = set(re.findall(r'href="/archivo/(\d{4}/\d{2}/\d{2})/"', html))
    expected = {
        f"{d:%Y/%m/%d}" for d in facts["by_day"] if (d.year, d.month) == (day.year, day.month)
    }
    assert linked == expected
    assert 'id="next"' in html  # the corpus spans several months


def test_topic_page_pagination_walks_every_story(
    client: FlaskClient, facts: dict[str, Any], store: Store
) -> None:
    seen: list[int] = []
    url: str | None = "/tema/vaccines"
    pages_walked = 0
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += sorted(_story_ids(html))
        m = re.search(r'id="older" rel="next" href="([^"]+)"', html)
        url = m.group(1).replace("&amp;", "&") if m else None
        pages_walked += 1
    assert len(seen) == len(set(seen))
    listed = set(seen)
    assert listed and listed <= facts["vaccines"] | {
        i for ids in facts["by_day"].values() for i in ids
    }


def test_article_page(client: FlaskClient, facts: dict[str, Any]) -> None:
    html = client.get(f"/articulo/{facts['copied']}").get_data(as_text=True)
    assert 'id="article-title"' in html and 'id="original-link"' in html
    assert 'id="view-translation"' in html and 'id="translation"' not in html
    copies = html.split('id="copies"', 1)[1].split("</section>", 1)[0]
    assert len(ARTICLE_LINK.findall(copies)) == 2  # the two other outlets
    assert 'id="similar"' in html and "similar-link" in html
    tr = client.get(f"/articulo/{facts['copied']}?ver=en").get_data(as_text=True)
    assert 'id="translation"' in tr and 'lang="en"' in tr and 'id="original-h"' not in tr
    both = client.get(f"/articulo/{facts['copied']}?ver=ambos").get_data(as_text=True)
    assert 'id="translation"' in both and 'id="original"' in both and "side-by-side" in both
    en = client.get(f"/articulo/{facts['english']}?ver=es").get_data(as_text=True)
    assert 'id="translation"' in en and '<div class="article-body" lang="es">' in en


def test_search_page_marks_matches(client: FlaskClient) -> None:
    html = client.get("/buscar?q=vacunas").get_data(as_text=True)
    assert 'id="results"' in html and "<mark>" in html
    assert 'type="application/rss+xml"' in html and "/feeds/buscar.rss?q=vacunas" in html
    # Cross-lingual: an English query finds Spanish articles, marked in the translation.
    html = client.get("/buscar?q=vaccines&mode=keyword").get_data(as_text=True)
    assert _story_ids(html) and "<mark>" in html


def test_stats_page_has_charts_and_tables(client: FlaskClient) -> None:
    for url in (
        "/estadisticas",
        "/estadisticas?interval=day&lang=en",
        "/estadisticas?interval=month",
    ):
        html = client.get(url).get_data(as_text=True)
        assert html.count("<svg") >= 3 and html.count('<table id="table-') == 3, url
        assert html.count("<caption") == 3 and 'role="img"' in html
    html = client.get("/estadisticas?interval=hour").get_data(as_text=True)
    assert 'id="err-interval"' in html


# Feeds -------------------------------------------------------------------------------------


def _feed(client: FlaskClient, url: str, content_type: str) -> Any:
    r = client.get(url)
    assert r.status_code == 200, url
    assert r.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    parsed = feedparser.parse(r.get_data())
    assert not parsed.bozo, (url, parsed.get("bozo_exception"))
    return parsed


def _ids(parsed: Any) -> list[int]:
    return [int(e.link.rsplit("/", 1)[1].split("?")[0]) for e in parsed.entries]


def test_topic_feeds_hold_that_topic(client: FlaskClient, facts: dict[str, Any]) -> None:
    for fmt, ctype in (("rss", "application/rss+xml"), ("atom", "application/atom+xml")):
        parsed = _feed(client, f"/feeds/tema/vaccines.{fmt}", ctype)
        assert parsed.entries and set(_ids(parsed)) <= facts["vaccines"]
        for e in parsed.entries:
            assert "vaccines" in {t.term for t in e.tags}
        assert parsed.version == ("rss20" if fmt == "rss" else "atom10")
    html = client.get("/tema/vaccines").get_data(as_text=True)
    assert '<link rel="alternate" type="application/atom+xml"' in html


def test_search_feed_is_the_search(client: FlaskClient, facts: dict[str, Any]) -> None:
    parsed = _feed(client, "/feeds/buscar.rss?q=vacunas&topic=vaccines", "application/rss+xml")
    ids = _ids(parsed)
    assert ids and set(ids) <= facts["vaccines"]
    dates = [e.published_parsed for e in parsed.entries]
    assert dates == sorted(dates, reverse=True)  # newest first
    en = _feed(client, "/feeds/ultimas.atom?lang=en", "application/atom+xml")
    assert len(en.entries) <= 50 and en.feed.title.startswith("Latest news")
    src = _feed(client, f"/feeds/fuente/{facts['source']}.atom", "application/atom+xml")
    assert src.entries
    assert client.get("/feeds/buscar.rss?from=nope").status_code == 400


# Headers and caching -------------------------------------------------------------------------


def test_security_headers(client: FlaskClient, facts: dict[str, Any]) -> None:
    for url in ("/", f"/articulo/{facts['any']}", "/feeds/ultimas.rss", "/tema/nope"):
        h = client.get(url).headers
        csp = h["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] and "camera=()" in h["Permissions-Policy"]
    api = client.get("/api/v1/topics").headers  # the API keeps its own headers
    assert "Content-Security-Policy" not in api


def test_etag_and_304(client: FlaskClient, facts: dict[str, Any]) -> None:
    for url in ("/", f"/articulo/{facts['any']}", "/feeds/tema/vaccines.atom", "/estadisticas"):
        r = client.get(url)
        etag = r.headers["ETag"]
        assert "max-age=" in r.headers["Cache-Control"]
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 304 and not again.get_data()
        other = client.get(url, headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200
    es, en = client.get("/").headers["ETag"], client.get("/?lang=en").headers["ETag"]
    assert es != en


def _meta(html: str) -> dict[str, list[str]]:
    """The page's <meta property|name=… content=…> tags, values as a browser reads them."""
    import lxml.html

    out: dict[str, list[str]] = {}
    for el in lxml.html.fromstring(html).xpath("//head/meta[@content]"):
        key = el.get("property") or el.get("name")
        if key:
            out.setdefault(key, []).append(el.get("content"))
    return out


def test_article_page_publishes_a_link_preview(
    client: FlaskClient, store: Store, facts: dict[str, Any]
) -> None:
    """OpenGraph and Twitter-card tags of the article (title, description, url, locale, date,
    section): what X, Mastodon and chat apps draw the card from; in English, the translation's."""
    from covidnews.search.results import load_articles

    view = load_articles(store, [facts["copied"]])[facts["copied"]]
    tr = view.translations["en"]
    html = client.get(f"/articulo/{view.id}").get_data(as_text=True)
    meta = _meta(html)
    assert meta["og:type"] == ["article"] and meta["og:site_name"] == ["covidnews"]
    assert meta["og:title"] == [view.title] == meta["twitter:title"]
    description = meta["og:description"][0]
    assert len(description) <= 200 and description == meta["description"][0]
    assert " ".join((view.summary or view.text or "").split()).startswith(
        description.removesuffix("…")
    )
    assert meta["og:url"] == [f"http://localhost/articulo/{view.id}"]
    assert f'<link rel="canonical" href="http://localhost/articulo/{view.id}">' in html
    assert meta["og:locale"] == [f"es_{view.source.country.upper()}"]
    assert meta["og:locale:alternate"] == ["en_US"]
    assert meta["article:published_time"] == [view.published_at.isoformat()]
    assert meta["article:section"][0]  # the topic's name
    assert meta["twitter:card"] == ["summary"] and "og:image" not in meta  # no image stored

    en = _meta(client.get(f"/articulo/{view.id}?lang=en").get_data(as_text=True))
    assert en["og:title"] == [tr.title] and en["og:locale"] == ["en_US"]
    assert en["og:url"] == [f"http://localhost/articulo/{view.id}?lang=en"]
    assert en["og:locale:alternate"] == [f"es_{view.source.country.upper()}"]

    home = _meta(client.get("/buscar?q=vacunas").get_data(as_text=True))
    assert home["og:type"] == ["website"] and home["og:url"] == [
        "http://localhost/buscar?q=vacunas"
    ]
    assert home["og:title"][0].endswith("vacunas") or "vacunas" in home["og:title"][0]


# Escaping ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evil(corpus: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, int]]:
    """A copy of the corpus plus one article whose title and text carry HTML."""
    from covidnews.follow import Follower
    from covidnews.ingest import ingest_path
    from tests.corpus import copy_store, write_jsonl

    root: Path = tmp_path_factory.mktemp("evil")
    url = f"sqlite:///{root / 'evil.db'}"
    store = Store(url)
    store.migrate()
    copy_store(corpus.url, url)
    row = {
        "url": "https://evil.example.org/nota",
        "title": EVIL_TITLE,
        "text": EVIL_TEXT,
        "source": "Evil <b>Outlet</b>",
        "language": "es",
        "country": "MX",
        "published_at": "2021-03-10T09:00:00+00:00",
    }
    report = ingest_path(store, write_jsonl([row], root / "evil.jsonl"))
    assert report.inserted == 1
    with store.session() as s:
        evil_id = s.scalars(select(Article.id).where(Article.url == row["url"])).one()
        s.execute(
            update(Article)
            .where(Article.id == evil_id)
            .values(
                state="done",
                is_covid=True,
                covid_score=0.99,
                summary=EVIL_TITLE,
                image_url=EVIL_IMAGE,
            )
        )
        s.add(ArticleTopic(article_id=evil_id, topic="vaccines", score=0.9, rank=1, model="test"))
    settings = load_settings(
        data_dir=root / "var", database_url=url, process_on_ingest=False, broker_url=None
    )
    Follower(store, settings.data_dir, "none").poll()  # keyword documents (no vectors here)
    store.close()
    app = create_app({"SETTINGS": settings, "TESTING": True, "RATELIMIT_ENABLED": False})
    yield app, evil_id
    app.extensions["covidnews"].close()


def test_stored_html_is_always_escaped(evil: tuple[Any, int]) -> None:
    app, evil_id = evil
    client = app.test_client()
    for url in (
        f"/articulo/{evil_id}",
        f"/articulo/{evil_id}?ver=ambos",
        "/",
        "/tema/vaccines",
        "/archivo/2021/03/10/",
        "/buscar?q=alert&mode=keyword",
        "/buscar?q=vacunas&mode=keyword",
        "/acerca",
    ):
        r = client.get(url)
        html = r.get_data(as_text=True)
        assert r.status_code == 200, url
        assert f"/articulo/{evil_id}" in html or url == "/acerca", url
        assert not TAG.search(html), (url, TAG.search(html))
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or url == "/acerca", url
    html = client.get(f"/articulo/{evil_id}").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count('<div class="article-body" lang="es">\n  <p>') == 1  # two paragraphs
    assert "Evil &lt;b&gt;Outlet&lt;/b&gt;" in html
    meta = _meta(html)  # the link preview: the same text, as text
    assert meta["og:title"] == [EVIL_TITLE] and meta["og:description"] == [EVIL_TITLE]
    assert meta["og:image"] == [EVIL_IMAGE] == meta["twitter:image"]
    assert meta["twitter:card"] == ["summary_large_image"]
    search = client.get("/buscar?q=alert&mode=keyword").get_data(as_text=True)
    assert "<mark>alert</mark>" in search
    for fmt in ("rss", "atom"):
        body = client.get(f"/feeds/tema/vaccines.{fmt}").get_data(as_text=True)
        assert not TAG.search(body)
        parsed = feedparser.parse(body)
        entry = next(e for e in parsed.entries if e.link.endswith(f"/articulo/{evil_id}"))
        if fmt == "rss":  # descriptions are HTML: the text is escaped in it
            assert "&amp;lt;script&amp;gt;" in body
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in entry.summary
        else:  # Atom summary type="text": the exact text, never markup
            assert entry.summary_detail.type == "text/plain"
            assert entry.summary == EVIL_TITLE


def test_snippet_markup_is_checked() -> None:
    from api.archive.data import safe_snippet

    assert str(safe_snippet("a <mark>b</mark> &lt;c&gt;")) == "a <mark>b</mark> &lt;c&gt;"
    assert str(safe_snippet('<mark>x</mark><img src="y">')) == "x&lt;img src=&#34;y&#34;&gt;"


def test_charts_escape_labels() -> None:
    from api.archive.charts import Series, bar_chart, line_chart, nice_max

    svg = str(line_chart("c", "<t>", "<d>", ["<a>", "b"], [Series("k", "<s>", [1, 3])]))
    assert "<t>" not in svg and "&lt;s&gt;" in svg and svg.count("<circle") == 2
    assert str(bar_chart("b", "t", "d", ["x"], [0])).count("<rect") == 1
    assert nice_max(0) == (1.0, 1.0) and nice_max(7) == (8.0, 2.0)


def test_feed_dates_are_stable() -> None:
    """Feeds carry no 'now': their ETag changes only when their items do."""
    from api.archive import feeds

    assert datetime(2020, 1, 1, tzinfo=UTC) == feeds.EPOCH


def test_about_page_shows_each_sources_freshness(client: FlaskClient, store: Store) -> None:
    """The newest article stored from each source, as a date (the corpus is old: no source is
    'silent', which needs articles in the last 30 days)."""
    import lxml.html

    from covidnews.source_health import source_health

    html = client.get("/acerca").get_data(as_text=True)
    doc = lxml.html.fromstring(html)
    assert doc.xpath("//table[@id='sources']//th[normalize-space()='Última noticia']")
    cells = doc.xpath("//table[@id='sources']//td[@class='freshness']")
    rows = source_health(store)
    assert len(cells) == len(doc.xpath("//table[@id='sources']/tbody/tr"))
    newest = {h.last_article_at.date().isoformat() for h in rows if h.last_article_at}
    shown = {t.get("datetime")[:10] for t in doc.xpath("//td[@class='freshness']/time")}
    assert shown and shown <= newest
    assert not doc.xpath("//td[@class='freshness']/span[@class='silent']")
    en = client.get("/acerca?lang=en").get_data(as_text=True)
    assert "Latest article" in en
