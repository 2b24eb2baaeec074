"""The archive in a real browser: headless Chromium (the Debian package) driven by Playwright.

`covidnews serve` runs on a copy of the processed corpus; a reader's flow goes home → search →
article → translation → English → topic → date archive → statistics, with a screenshot of every
step (``$COVIDNEWS_TEST_ARTIFACTS``, default ``test-artifacts/browser/``), axe-core on every page
(no serious or critical violations), no Content-Security-Policy violation or console error
anywhere, no horizontal scrolling on a 360 px phone, and the skip link first in the tab order.

axe-core is injected through the DevTools protocol (``page.evaluate``), which the page's CSP does
not govern, so the flow runs with the CSP enforced: ``bypass_csp`` would hide the very errors
this test looks for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from covidnews.search.results import load_articles
from covidnews.store import Store
from tests.conftest import ROOT, Corpus
from tests.corpus import serve_copy

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("COVIDNEWS_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "assets" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("COVIDNEWS_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "browser"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}

# Records CSP violations from the moment a document starts (init scripts run before the page's).
CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@pytest.fixture(scope="module")
def server(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`covidnews serve --workers 1` on a copy of the corpus; yields its base URL."""
    with serve_copy(corpus, tmp_path_factory.mktemp("browser"), workers=1) as (base, _):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@dataclass
class Watcher:
    """Console errors, uncaught exceptions, failed requests and CSP violations of one page."""

    problems: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.add_init_script(CSP_LISTENER)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):  # CSP refusals are console errors too
            where = message.location.get("url", "")
            self.problems.append(f"console {message.type}: {message.text} at {where}")

    def _failed(self, request: Any) -> None:
        # net::ERR_ABORTED is Chromium cancelling a request itself — a favicon still loading when
        # the test navigates on. What the server failed shows up as an HTTP status (below) or as
        # another net:: error (refused, reset, empty response).
        if "ERR_ABORTED" not in (request.failure or ""):
            self.problems.append(f"failed: {request.url} {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def check(self, page: Any, step: str) -> None:
        csp = page.evaluate("window.__cspViolations || []")
        found = self.problems + [f"CSP violation: {v}" for v in csp]
        self.problems.clear()
        assert not found, f"{step}: {found}"


def axe_check(page: Any, step: str) -> list[dict[str, Any]]:
    """axe-core on the page: fails on serious/critical violations, prints the others."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    violations: list[dict[str, Any]] = result["violations"]
    assert result["testEngine"]["version"], result.keys()
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    for v in violations:
        targets = [n["target"] for n in v["nodes"]][:5]
        print(f"axe {step}: {v['impact']} {v['id']}: {v['help']} ({len(v['nodes'])}) {targets}")
    for v in result["incomplete"]:  # what axe cannot decide alone (e.g. contrast of SVG text)
        print(f"axe {step}: needs review: {v['id']} ({len(v['nodes'])} elements)")
    assert not bad, f"{step}: " + "; ".join(
        f"{v['impact']} {v['id']}: {v['help']} at {[n['target'] for n in v['nodes']][:5]}"
        for v in bad
    )
    return violations


def no_horizontal_scroll(page: Any) -> None:
    width, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width <= inner, f"{page.url}: {width} px wide in a {inner} px window"


# The reader's flow ------------------------------------------------------------------------------


def test_reader_flow(server: str, browser: Any, artifacts: Path, corpus: Corpus) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="es-ES")
    page = context.new_page()
    watch = Watcher()
    watch.attach(page)
    step = 0

    def done(name: str) -> None:
        nonlocal step
        step += 1
        page.screenshot(path=str(artifacts / f"{step:02d}-{name}.png"), full_page=True)
        watch.check(page, name)
        axe_check(page, name)

    def html_lang() -> str:
        return str(page.locator("html").get_attribute("lang"))

    # Home
    page.goto(server + "/")
    assert page.title() == "Portada · covidnews"
    assert html_lang() == "es"
    assert page.locator("main#main").count() == 1
    assert page.locator(".latest .story").count() > 0
    assert page.locator(".topic-list .topic-link").count() > 0
    done("home")

    # Search from the header form
    page.fill("#site-q", "vacunas")
    with page.expect_navigation():
        page.press("#site-q", "Enter")
    assert "/buscar?q=vacunas" in page.url
    assert page.title() == "Búsqueda: vacunas · covidnews"
    assert page.locator("#q").input_value() == "vacunas"
    results = page.locator("#results .story-link")
    assert results.count() > 0
    assert "resultado" in page.inner_text("#results-h")
    assert page.locator("#results mark").count() > 0  # highlighted snippets
    done("search")

    # An article with a translation
    first = page.locator("#results .story").filter(has=page.locator(".story-link[lang=es]"))
    link = first.first.locator(".story-link")
    title = link.inner_text().strip()
    with page.expect_navigation():
        link.click()
    assert "/articulo/" in page.url
    article_id = int(page.url.split("/articulo/")[1].split("?")[0].split("#")[0])
    assert page.inner_text("#article-title").strip() == title
    assert page.title() == f"{title} · covidnews"
    assert page.locator("#original .article-body[lang=es] p").count() > 0
    assert page.locator("#original-link").get_attribute("href", timeout=5000)
    done("article")

    # Its translation
    store = Store(corpus.url)
    try:
        view = load_articles(store, [article_id])[article_id]
    finally:
        store.close()
    translation = view.translations["en"]
    with page.expect_navigation():
        page.click("#view-translation")
    assert "ver=en" in page.url
    section = page.locator("#translation")
    assert section.is_visible()
    body = section.locator(".article-body")
    assert body.get_attribute("lang") == "en"
    shown = " ".join(body.inner_text().split())
    assert translation.text and translation.title
    first_paragraph = " ".join(translation.text.split("\n\n")[0].split())
    assert first_paragraph and first_paragraph[:200] in shown
    assert section.locator(".tr-title").inner_text().strip() == translation.title.strip()
    assert page.locator("#view-translation").get_attribute("aria-current") == "page"
    done("translation")

    # The interface in English (same page, same version)
    with page.expect_navigation():
        page.click("#lang-switch")
    assert "lang=en" in page.url and "ver=en" in page.url
    assert html_lang() == "en"
    assert page.inner_text("#nav-home").strip() == "Home"
    assert page.inner_text(".skip-link").strip() == "Skip to content"
    assert page.inner_text("#article-title").strip() == title  # the text keeps its language
    assert page.locator("#article-title").get_attribute("lang") == "es"
    assert page.locator("#lang-switch").inner_text().strip() == "Español"
    done("article-english")

    # A topic page, from the article's topic chips
    chip = page.locator("#article .topic-link").first
    topic_name = chip.inner_text().strip()
    with page.expect_navigation():
        chip.click()
    assert "/tema/" in page.url and "lang=en" in page.url
    assert html_lang() == "en"
    assert page.inner_text("#page-title").strip() == topic_name
    assert str(page.text_content(".kicker")).strip() == "Topic"  # (CSS upper-cases it)
    assert page.locator(".stories .story").count() > 0
    done("topic")

    # The date archive: index → a month → a day
    with page.expect_navigation():
        page.click("#nav-archive")
    assert page.inner_text("#page-title").strip() == "Archive by date"
    done("archive")
    with page.expect_navigation():
        page.locator(".month-link").first.click()
    assert page.locator("#calendar").is_visible()
    day_links = page.locator(".day-link")
    assert day_links.count() > 0
    done("archive-month")
    day_id = str(day_links.first.get_attribute("id")).removeprefix("day-")
    with page.expect_navigation():
        day_links.first.click()
    assert f"/archivo/{day_id.replace('-', '/')}/" in page.url
    assert page.locator("#page-title time").get_attribute("datetime") == day_id
    stories = page.locator(".stories .story")
    assert stories.count() > 0
    for time_el in stories.locator(".story-meta time").all():
        assert str(time_el.get_attribute("datetime")).startswith(day_id)
    assert html_lang() == "en"
    done("archive-day")

    # Statistics: three SVG charts, drawn and visible
    with page.expect_navigation():
        page.click("#nav-stats")
    assert page.title() == "Statistics · covidnews"
    charts = page.locator("svg.chart")
    assert charts.count() == 3
    for chart in charts.all():
        assert chart.is_visible()
        assert chart.get_attribute("role") == "img"
        box = chart.bounding_box()
        assert box and box["width"] > 200 and box["height"] > 80
    total, topics, countries = charts.all()
    assert total.get_attribute("aria-labelledby") == "chart-total-t chart-total-d"
    assert total.locator("rect").count() > 0  # bars
    assert topics.locator("polyline").count() > 0  # a line per topic
    assert countries.locator("polyline").count() > 0
    assert page.locator("table.data").count() == 3
    done("stats")
    context.close()


def test_the_other_pages_pass_axe_too(server: str, browser: Any, artifacts: Path) -> None:
    """The archive's pages the flow does not visit, error pages included."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    watch = Watcher()
    watch.attach(page)
    page.goto(server + "/")
    source = page.locator(".latest .source-link").first.get_attribute("href")
    article = page.locator(".latest .story-link").first.get_attribute("href")
    page.goto(server + "/archivo/")
    year = page.locator(".year-link").first.get_attribute("href")
    pages = [
        ("/acerca", 200),
        ("/acerca?lang=en", 200),
        ("/buscar", 200),
        ("/buscar?q=vacunas&mode=keyword&from=2020-01-01&to=2021-12-31&topic=vaccines", 200),
        ("/buscar?q=vacunas&from=ayer", 400),
        (f"{year}", 200),
        (f"{source}", 200),
        ("/pais/mx?lang=en", 200),
        (f"{article}?ver=ambos", 200),
        ("/estadisticas?interval=month&lang=en", 200),
        ("/articulo/987654321", 404),
    ]
    watch.check(page, "setup")
    for n, (url, status) in enumerate(pages, 1):
        response = page.goto(server + url)
        assert response.status == status, url
        if status != 200:  # the error page's own status is expected, nothing else
            watch.problems = [p for p in watch.problems if not p.endswith(server + url)]
            assert page.locator("main#main h1").count() == 1
        page.screenshot(path=str(artifacts / f"other-{n:02d}.png"), full_page=True)
        watch.check(page, url)
        axe_check(page, url)
    context.close()


def test_phone_has_no_horizontal_scrolling(
    server: str, browser: Any, artifacts: Path, corpus: Corpus
) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    watch = Watcher()
    watch.attach(page)
    page.goto(server + "/")
    no_horizontal_scroll(page)
    page.screenshot(path=str(artifacts / "phone-home.png"), full_page=True)
    watch.check(page, "phone home")
    href = page.locator(".latest .story-link").first.get_attribute("href")
    for url, name in [(f"{href}", "phone-article"), (f"{href}?ver=ambos", "phone-article-both")]:
        page.goto(server + url)
        assert page.locator("#article-title").is_visible()
        no_horizontal_scroll(page)
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        watch.check(page, name)
    axe_check(page, "phone article")
    context.close()


def test_keyboard_skip_link_moves_focus_to_main(server: str, browser: Any) -> None:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(server + "/buscar?q=vacunas")
    page.keyboard.press("Tab")
    focused = page.evaluate(
        "[document.activeElement.className, document.activeElement.getAttribute('href')]"
    )
    assert focused == ["skip-link", "#main"]
    box = page.locator(".skip-link").bounding_box()
    assert box and box["y"] >= 0, "the focused skip link must be on screen"
    page.keyboard.press("Enter")
    # Following an in-page link is asynchronous in Chromium: wait until it has happened (fails
    # after the default timeout if it never does) instead of reading the URL at once.
    page.wait_for_function("location.hash === '#main' && document.activeElement.id === 'main'")
    assert page.url.endswith("#main")
    assert page.evaluate("document.activeElement.id") == "main"
    # The next Tab continues inside main, not back in the header.
    page.keyboard.press("Tab")
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")
    context.close()


def test_an_articles_fact_checks_show_their_verdict_in_words(
    corpus: Corpus, browser: Any, artifacts: Path, tmp_path: Path
) -> None:
    """A fact-check citing an article's URL (added to the running server's store) shows on the
    article page: the verdict in words (Spanish, then English), the claim, the fact-checker's
    link; axe-core passes and nothing is refused by the CSP."""
    from datetime import UTC, datetime

    from covidnews.embed import get_embedder
    from covidnews.factchecks import FactCheckRecord, upsert_factchecks
    from nlp_worker.factchecks import link_pending

    with serve_copy(corpus, tmp_path, workers=1) as (base, data_dir):
        store = Store(f"sqlite:///{data_dir.parent / 'covidnews.db'}")
        url, article_id = next(iter(corpus.ids.items()))
        claim = "Las vacunas contienen un chip <script>alert(1)</script>"
        upsert_factchecks(
            store,
            [
                FactCheckRecord(
                    url="https://verifica.example/2021/chip",
                    claim=claim,
                    verdict="false",
                    verdict_text="FALSO",
                    language="es",
                    reviewed_at=datetime(2021, 3, 3, 12, tzinfo=UTC),
                    appearances=[url],
                )
            ],
            None,
        )
        link_pending(store, get_embedder("hashing"))
        store.close()
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        watch = Watcher()
        watch.attach(page)
        page.goto(f"{base}/articulo/{article_id}")
        section = page.locator("#factchecks")
        section.wait_for()
        assert section.locator(".verdict").inner_text() == "Falso"
        assert section.locator(".claim").inner_text() == claim  # text, never markup
        assert section.locator(".factcheck-link").get_attribute("href") == (
            "https://verifica.example/2021/chip"
        )
        assert "cita esta noticia" in section.inner_text()
        page.screenshot(path=str(artifacts / "factchecks-es.png"), full_page=True)
        watch.check(page, "fact-checks (es)")
        axe_check(page, "fact-checks (es)")
        page.goto(f"{base}/articulo/{article_id}?lang=en")
        assert page.locator("#factchecks .verdict").inner_text() == "False"
        assert page.locator("#factchecks-h").inner_text() == "Fact-checks"
        watch.check(page, "fact-checks (en)")
        axe_check(page, "fact-checks (en)")
        page.goto(f"{base}/verificaciones?lang=es")  # the list of verdicts, back in Spanish
        assert page.locator(".factcheck-list .verdict").first.inner_text() == "Falso"
        page.screenshot(path=str(artifacts / "factchecks-list.png"), full_page=True)
        watch.check(page, "verificaciones")
        axe_check(page, "verificaciones")
        no_horizontal_scroll(page)
        context.close()


def test_an_article_page_publishes_valid_opengraph_tags(
    corpus: Corpus, browser: Any, tmp_path: Path
) -> None:
    """What a platform's card crawler reads, read in the browser from the served page: every
    required OpenGraph property (og:title, og:type, og:image, og:url) once, absolute http(s)
    URLs, a language_TERRITORY locale, and the Twitter card; the English page names its
    translation."""
    import re

    from sqlalchemy import update

    from covidnews.schema import Article

    image = "https://media.example.org/fotos/vacunas.jpg"
    with serve_copy(corpus, tmp_path, workers=1) as (base, data_dir):
        store = Store(f"sqlite:///{data_dir.parent / 'covidnews.db'}")
        views = load_articles(store, list(corpus.ids.values()))
        view = next(v for v in views.values() if v.language == "es" and "en" in v.translations)
        article_id = view.id
        with store.session() as s:
            s.execute(update(Article).where(Article.id == article_id).values(image_url=image))
        store.close()
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        for lang, title in (("es", view.title), ("en", view.translations["en"].title)):
            page.goto(f"{base}/articulo/{article_id}?lang={lang}")
            tags = page.evaluate(
                """() => [...document.head.querySelectorAll('meta[property], meta[name]')]
                       .map(m => [m.getAttribute('property') || m.getAttribute('name'),
                                  m.getAttribute('content')])"""
            )
            meta: dict[str, list[str]] = {}
            for key, value in tags:
                meta.setdefault(key, []).append(value)
            for required in ("og:title", "og:type", "og:image", "og:url", "og:description"):
                assert len(meta.get(required, [])) == 1, (lang, required)
            assert meta["og:title"] == [title] and meta["og:type"] == ["article"]
            assert meta["og:image"] == [image] == meta["twitter:image"]
            assert meta["twitter:card"] == ["summary_large_image"]
            assert re.fullmatch(r"https?://[^/]+/articulo/\d+(\?lang=en)?", meta["og:url"][0])
            assert meta["og:url"][0].endswith(
                f"/articulo/{article_id}" + ("?lang=en" if lang == "en" else "")
            )
            assert re.fullmatch(r"[a-z]{2}_[A-Z]{2}", meta["og:locale"][0])
            assert meta["og:locale"][0].startswith(lang + "_")
            assert page.locator("html").get_attribute("lang") == lang
            canonical = page.locator("link[rel=canonical]").get_attribute("href")
            assert canonical == meta["og:url"][0]
        context.close()
