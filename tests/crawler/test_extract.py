"""Extraction on hand-made pages: each metadata source, charsets, and pages that are not articles."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from crawler.extract import ExtractionError, decode_html, extract
from tests.conftest import ROOT

PARAS = [
    "El Ministerio de Salud informó este jueves de 1.200 nuevos casos de coronavirus en el país, la cifra más alta desde el inicio de la pandemia.",
    "Las autoridades sanitarias pidieron a la población mantener la distancia social y usar mascarilla en el transporte público.",
    "Los hospitales de la capital han ampliado el número de camas de cuidados intensivos para atender a los pacientes más graves.",
    "El plan de vacunación comenzará con el personal sanitario y las personas mayores de 80 años, según el calendario oficial.",
]  # fmt: skip
MX = ZoneInfo("America/Mexico_City")


def page(
    head: str = "", body_top: str = "", title: str = "Casos récord de covid | Diario Ejemplo"
) -> str:
    paragraphs = "".join(f"<p>{p}</p>" for p in PARAS)
    return (
        f"<!doctype html><html lang='es'><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        "<body><nav><a href='/'>Inicio</a> <a href='/salud'>Salud</a></nav>"
        "<div class='cookies'>Usamos cookies. Aceptar cookies</div>"
        f"<article><h1>Casos récord de covid</h1>{body_top}{paragraphs}</article>"
        "<aside><h3>Te puede interesar</h3><a href='/otra'>Otra noticia</a></aside>"
        "<footer>© Diario Ejemplo</footer></body></html>"
    )


def test_json_ld_graph_wins() -> None:
    ld = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "Diario Ejemplo"},
            {
                "@type": "NewsArticle",
                "headline": "Casos récord de covid",
                "datePublished": "2020-03-12T10:00:00-06:00",
                "dateModified": "2020-03-12T12:00:00-06:00",
                "author": [
                    {"@type": "Person", "name": "Ana Pérez"},
                    {"@type": "Organization", "name": "Diario Ejemplo"},
                ],
                "articleSection": "Salud",
                "publisher": {"@type": "Organization", "name": "Diario Ejemplo"},
                "image": {"@type": "ImageObject", "url": "https://diario.example/img.jpg"},
            },
        ],
    }
    html = page(f"<script type='application/ld+json'>{json.dumps(ld)}</script>")
    got = extract(html, "https://diario.example/2020/03/12/casos.html?utm_source=tw")
    assert got.title == "Casos récord de covid"
    assert got.authors == ["Ana Pérez"]
    assert got.published_at == datetime(2020, 3, 12, 16, tzinfo=UTC)
    assert got.modified_at == datetime(2020, 3, 12, 18, tzinfo=UTC)
    assert got.section == "Salud"
    assert got.image == "https://diario.example/img.jpg"
    assert got.url == "https://diario.example/2020/03/12/casos.html"
    assert got.is_article
    assert "1.200 nuevos casos" in got.text
    assert "cookies" not in got.text.lower()
    assert "Te puede interesar" not in got.text


def test_opengraph_only() -> None:
    head = (
        "<meta property='og:title' content='Casos récord de covid'>"
        "<meta property='og:type' content='article'>"
        "<meta property='article:published_time' content='2020-03-12T10:00:00Z'>"
        "<meta name='author' content='Por Juan López y María Ruiz'>"
        "<link rel='canonical' href='/2020/03/12/casos-record.html'>"
    )
    got = extract(page(head), "https://www.diario.example/amp/2020/03/12/casos-record.html")
    assert got.title == "Casos récord de covid"
    assert got.authors == ["Juan López", "María Ruiz"]
    assert got.published_at == datetime(2020, 3, 12, 10, tzinfo=UTC)
    assert got.url == "https://www.diario.example/2020/03/12/casos-record.html"


def test_no_metadata_spanish_visible_date_and_byline() -> None:
    top = "<p class='byline'>Por <strong>Carla Gómez</strong> | Ciudad de México | 12 de marzo de 2020</p>"
    got = extract(
        page(body_top=top, title="Casos récord de covid - Diario Ejemplo"),
        "https://diario.example/nota/123",
        tz=MX,
    )
    assert got.title == "Casos récord de covid"
    assert got.authors == ["Carla Gómez"]
    assert got.published_at == datetime(2020, 3, 12, tzinfo=MX)
    assert "Carla Gómez" not in got.text.splitlines()[0]


def test_relative_date_uses_fetch_time() -> None:
    top = "<div class='fecha'>Publicado hace 3 horas</div>"
    fetched = datetime(2021, 1, 5, 15, 0, tzinfo=UTC)
    got = extract(page(body_top=top), "https://diario.example/nota/123", fetched_at=fetched)
    assert got.published_at == fetched - timedelta(hours=3)


@pytest.mark.parametrize(
    "line", ["Actualizado hoy", "Última actualización: hace 2 horas", "Modificado el 12/03/2021"]
)
def test_an_update_line_is_not_a_publication_date(line: str) -> None:
    """A page whose only visible date is its last edit has no publication date: never the
    fetch day (an old article would look new)."""
    fetched = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
    top = f"<p class='fecha'>{line}</p>"
    got = extract(page(body_top=top), "https://diario.example/noticias/a", fetched_at=fetched)
    assert got.published_at is None
    assert (
        extract(page(), "https://diario.example/noticias/b", fetched_at=fetched).published_at
        is None
    )


def test_cp1252_without_or_with_wrong_charset() -> None:
    html = page(title="Vacunación: España recibe más dosis").replace("<meta charset='utf-8'>", "")
    raw = html.encode("cp1252")
    assert decode_html(raw, "text/html") == html
    assert decode_html(raw, "text/html; charset=utf-8") == html  # label lies: bytes are not UTF-8
    assert (
        decode_html(html.encode("utf-8"), "text/html; charset=iso-8859-1") == html
    )  # UTF-8 mislabelled
    got = extract(raw, "https://diario.example/nota/1")
    assert got.title == "Casos récord de covid"
    assert "informó" in got.text and "número de camas" in got.text


def test_markup_in_text_stays_text() -> None:
    evil = "<p>El texto dice &lt;script&gt;alert(1)&lt;/script&gt; y &lt;img src=x onerror=alert(1)&gt; literalmente, como ejemplo de código en una noticia sobre seguridad informática.</p><script>var tracking = 1;</script>"
    got = extract(page(body_top=evil), "https://diario.example/nota/1")
    assert "<script>alert(1)</script>" in got.text
    assert "var tracking" not in got.text


def test_listing_page_is_not_an_article() -> None:
    teasers = "".join(
        f"<li><a href='/nota/{i}'>Titular número {i} sobre la pandemia</a></li>" for i in range(20)
    )
    html = f"<html lang='es'><head><title>Salud | Diario Ejemplo</title></head><body><h1>Salud</h1><ul>{teasers}</ul></body></html>"
    got = extract(html, "https://diario.example/salud/")
    assert not got.is_article


@pytest.mark.parametrize("bad", [b"", b"   ", b"\n\t "])
def test_empty_input_is_an_error(bad: bytes) -> None:
    with pytest.raises(ExtractionError):
        extract(bad, "https://diario.example/x")


def test_cli_contract(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(page(), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "covidnews",
            "extract",
            str(path),
            "--url",
            "https://diario.example/2020/03/12/casos.html",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"url", "title", "text", "authors", "published_at", "language"} <= set(out)
    assert out["title"] == "Casos récord de covid"
    assert isinstance(out["authors"], list)
    assert out["language"] == "es"
    assert out["published_at"] == "2020-03-12T00:00:00+00:00"  # from the URL, no zone known → UTC
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "covidnews",
            "extract",
            str(tmp_path / "missing.html"),
            "--url",
            "https://d.example/",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 1 and "cannot read" in bad.stderr


def test_double_encoded_page_is_repaired() -> None:
    """A CMS that stored UTF-8 read as cp1252: the page itself says "PolicÃ­a"."""
    lead = "<p>La PolicÃ\xada detuvo a un sospechoso Â«peligrosoÂ» en la estaciÃ³n.</p>"
    got = extract(page(body_top=lead).encode("utf-8"), "https://diario.example/a")
    assert "La Policía detuvo a un sospechoso «peligroso» en la estación." in got.text
    assert got.title == "Casos récord de covid"
    # A correct page is left as it is, accents and quotes included.
    fine_lead = "<p>Año «récord» – ¿y ahora? Ã la carte.</p>"
    fine = extract(page(body_top=fine_lead).encode("utf-8"), "https://d.example/b")
    assert "Año «récord» – ¿y ahora? Ã la carte." in fine.text


def test_agency_credit_is_an_agency_not_an_author() -> None:
    html = page(
        head="<meta name='author' content='Laura Gómez'>",
        body_top="<p class='byline' itemprop='author'>Por E.P</p>",
    )
    got = extract(html, "https://diario.example/a")
    assert got.authors == ["Laura Gómez"]  # the agency byline falls through to the next source
    assert got.agencies == ["Europa Press"]
    only_agency = extract(page(body_top="<p class='firma'>Por EFE</p>"), "https://d.example/b")
    assert only_agency.authors == [] and only_agency.agencies == ["EFE"]


def test_publisher_as_author_falls_through_to_the_next_source() -> None:
    graph = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Casos récord de covid",
        "author": {"@type": "Person", "name": "Diario Ejemplo"},
        "publisher": {"@type": "Organization", "name": "Diario Ejemplo"},
    }
    html = page(
        head=f"<script type='application/ld+json'>{json.dumps(graph)}</script>"
        "<meta property='og:site_name' content='Diario Ejemplo'>",
        body_top="<div itemprop='author' itemscope><span itemprop='name'>Ana Ruiz</span>"
        "<time>12/03/2020 10:00</time> Madrid</div>",
    )
    got = extract(html, "https://diario.example/a")
    assert got.authors == ["Ana Ruiz"]  # microdata's name part, not the date or the city


def test_newsroom_credit_names_nobody_and_several_authors_are_split() -> None:
    staff = extract(page(head="<meta name='author' content='Redacción'>"), "https://d.example/a")
    assert staff.authors == []
    two = extract(
        page(
            body_top="<address class='autor'><a href='/autor/x'>S. Fernández / N. Val</a></address>"
        ),
        "https://d.example/b",
    )
    assert two.authors == ["S. Fernández", "N. Val"]


def test_a_date_written_in_utc_is_placed_on_the_outlets_clock() -> None:
    """The crawl's record keeps a page's own offset; a "Z" date gets the source country's."""
    from types import SimpleNamespace

    from crawler.pipelines.normalise import NormalisePipeline

    pipeline = NormalisePipeline(SimpleNamespace(spider=None))
    for meta, offset in (
        ("2022-05-04T02:41:00Z", -240),  # 22:41 on 3 May in La Paz
        ("2022-05-03T23:41:00-03:00", -180),  # the page's own offset wins
    ):
        got = extract(
            page(head=f"<meta property='article:published_time' content='{meta}'>"),
            "https://bo.example/nota",
        )
        item = {"page": got, "source_name": "Diario", "country": "BO", "fetched_urls": []}
        record = pipeline.process_item(item)["record"]
        assert record.published_at == datetime(2022, 5, 4, 2, 41, tzinfo=UTC)
        assert record.published_offset == offset


def test_each_date_says_where_it_was_read() -> None:
    from types import SimpleNamespace

    from crawler.pipelines.normalise import NormalisePipeline

    meta = "<meta property='article:published_time' content='2020-03-12T10:00:00-06:00'>"
    assert extract(page(head=meta), "https://d.example/a").published_from == "metadata"
    in_url = extract(page(), "https://d.example/2020/03/12/casos")
    assert in_url.published_from == "url" and in_url.published_at is not None
    nothing = extract(page(), "https://d.example/casos")
    assert nothing.published_at is None and nothing.published_from is None
    # No date on the page: the feed's date is used, and marked as the listing's.
    listed = datetime(2020, 3, 12, 16, 0, tzinfo=UTC)
    item = {"page": nothing, "source_name": "D", "country": "MX", "listed_published": listed}
    record = NormalisePipeline(SimpleNamespace(spider=None)).process_item(item)["record"]
    assert record.published_at == listed and record.extra["published_from"] == "listing"
    credited = extract(
        page(body_top="<p class='firma'>Por EFE</p>"), "https://d.example/2020/03/12/b"
    )
    item = {"page": credited, "source_name": "D", "country": "MX"}
    record = NormalisePipeline(SimpleNamespace(spider=None)).process_item(item)["record"]
    assert record.extra["agencies"] == ["EFE"] and record.authors == []


def test_a_sources_selectors_come_first_and_the_generic_chain_fills_the_rest() -> None:
    top = (
        "<div class='cabecera'><span class='firmante'>Lucía Prado</span>"
        "<span class='cuando' data-x='1'>jueves 12 mar. 2020 - 10:30 a.m.</span></div>"
    )
    html = page(head="<meta name='author' content='Otro Autor'>", body_top=top)
    plain = extract(html, "https://d.example/a", tz=MX)
    assert plain.authors == ["Otro Autor"]
    own = extract(
        html,
        "https://d.example/a",
        tz=MX,
        selectors={"authors": ".firmante", "published": ".cuando", "title": ".no-existe"},
    )
    assert own.authors == ["Lucía Prado"]
    assert own.published_at == datetime(2020, 3, 12, 10, 30, tzinfo=MX)
    assert own.published_from == "selector"
    assert own.title == plain.title == "Casos récord de covid"  # no match: the generic chain
