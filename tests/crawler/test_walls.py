"""Walls in front of article text (crawler/extract/walls.py): consent interstitials and paywalls,
on hand-made pages through ``extract()``, and no false alarm on the 28 real pages of
../shared/data/extraction."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from crawler.extract import Wall, extract, find_wall
from crawler.extract.page import _jsonld_objects, _parse, _pick_article, decode_html
from crawler.extract.walls import read_markup

URL = "https://diario.example/salud/2020/03/12/vacunas.html"

PARAS = [
    "El Ministerio de Salud informó este jueves de 1.200 nuevos casos de coronavirus en el país, la cifra más alta desde el inicio de la pandemia, y de otros 35 fallecidos en las últimas horas.",
    "Las autoridades sanitarias pidieron a la población mantener la distancia social y usar mascarilla en el transporte público, en los comercios y en cualquier espacio cerrado compartido.",
    "Los hospitales de la capital han ampliado el número de camas de cuidados intensivos para atender a los pacientes más graves, y han suspendido las operaciones que no son urgentes.",
    "El plan de vacunación comenzará con el personal sanitario y las personas mayores de 80 años, según el calendario oficial presentado por el Gobierno ante el Congreso de los Diputados.",
    "La ministra explicó que las primeras dosis llegarán a finales de mes y que las comunidades autónomas recibirán los viales en proporción a su población y a su número de residencias.",
    "Los epidemiólogos consultados advierten de que la curva no empezará a bajar hasta dentro de dos semanas, y recomiendan reducir los encuentros sociales durante las fiestas.",
    "En las farmacias se han agotado los test de antígenos en varias provincias, y las asociaciones de consumidores han denunciado subidas de precio de hasta el cuarenta por ciento.",
    "El Gobierno estudia además ampliar las ayudas a los sectores más afectados por las restricciones, en particular la hostelería, el comercio minorista y el turismo rural.",
]  # fmt: skip

DIDOMI_BANNER = """
<div id="didomi-host"><div class="didomi-popup-container"><div id="didomi-notice"
 class="didomi-popup-notice" role="dialog">
<h2>Valoramos tu privacidad</h2>
<p>Nosotros y nuestros socios almacenamos o accedemos a información en un dispositivo, tales como
cookies, y procesamos datos personales, tales como identificadores únicos e información estándar
enviada por un dispositivo, para anuncios y contenido personalizados, medición de anuncios y del
contenido e información sobre el público, así como para desarrollar y mejorar productos.</p>
<p>Con su permiso, nosotros y nuestros socios podemos utilizar datos de localización geográfica
precisa e identificación mediante las características de dispositivos. Puede hacer clic para
otorgar su consentimiento, rechazar el tratamiento o configurar sus preferencias.</p>
<button id="didomi-notice-agree-button">Aceptar y cerrar</button>
<button id="didomi-notice-disagree-button">Rechazar</button>
<button id="didomi-notice-learn-more-button">Configurar</button>
</div></div></div>"""
DIDOMI_SCRIPTS = (
    "<script>window.didomiConfig = {app: {apiKey: 'x'}};</script>"
    "<script src='https://sdk.privacy-center.org/loader.js' async></script>"
)
FOOTER = (
    "<footer><a href='/aviso-legal'>Aviso legal</a> <a href='/privacidad'>Política de "
    "privacidad</a> <a href='/cookies'>Política de cookies</a> © Diario Ejemplo</footer>"
)


def ld(**fields: Any) -> str:
    article = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": "Comienza la vacunación contra la covid",
        "datePublished": "2020-03-12T10:00:00+01:00",
        "author": {"@type": "Person", "name": "Ana Pérez"},
        **fields,
    }
    return f"<script type='application/ld+json'>{json.dumps(article)}</script>"


def page(body: str, *, head: str = "", paras: list[str] | None = None, after: str = "") -> str:
    """An article page: ``body`` before the article, ``paras`` in it, ``after`` after its text."""
    text = "".join(f"<p>{p}</p>" for p in (PARAS if paras is None else paras))
    return (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'>"
        f"<title>Comienza la vacunación contra la covid | Diario Ejemplo</title>{head}</head>"
        "<body><header><a href='/'>Diario Ejemplo</a><nav><a href='/salud'>Salud</a>"
        "<a href='/suscripciones'>Suscríbete</a></nav></header>"
        f"{body}<main><article><h1>Comienza la vacunación contra la covid</h1>"
        f"<p class='firma'>Por Ana Pérez</p>{text}{after}</article></main>{FOOTER}</body></html>"
    )


def words(text: str) -> int:
    return len(text.split())


# Consent ------------------------------------------------------------------------------------


def test_consent_interstitial_with_a_consent_manager_is_a_consent_wall() -> None:
    interstitial = (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'><title>Diario Ejemplo</title>"
        f"{DIDOMI_SCRIPTS}</head><body><header><a href='/'>Diario Ejemplo</a></header>"
        f"{DIDOMI_BANNER}{FOOTER}</body></html>"
    )
    got = extract(interstitial, URL)
    assert got.wall == Wall("consent", "consent manager markup (didomi) and no article text")
    assert got.as_json()["wall"] == {"kind": "consent", "reason": got.wall.reason}
    # the function alone, on the HTML text
    alone = find_wall(interstitial, "", jsonld_article={}, meta={})
    assert alone is not None and alone.kind == "consent"


def test_consent_interstitial_without_a_known_manager_is_read_from_its_vocabulary() -> None:
    banner = (
        DIDOMI_BANNER.replace("didomi-", "aviso-")
        .replace('id="didomi-host"', 'id="aviso"')
        .replace("Valoramos tu privacidad", "Antes de continuar")
    )
    interstitial = (
        "<!doctype html><html lang='es'><head><meta charset='utf-8'><title>Diario Ejemplo</title>"
        f"</head><body>{banner}{FOOTER}</body></html>"
    )
    got = extract(interstitial, URL)
    assert got.wall is not None and got.wall.kind == "consent"
    assert got.wall.reason.startswith("page text is consent vocabulary (")
    assert got.wall.reason.endswith(") and no article text")


def test_an_article_with_a_consent_banner_and_its_full_text_is_not_a_wall() -> None:
    html = page(DIDOMI_BANNER, head=DIDOMI_SCRIPTS + ld())
    got = extract(html, URL)
    assert words(got.text) > 200
    assert got.wall is None


def test_a_consent_manager_script_alone_with_no_text_is_not_called_a_wall() -> None:
    # an app shell (text rendered by JavaScript) that loads a consent manager: in doubt, None
    shell = (
        "<!doctype html><html lang='es'><head><title>Diario Ejemplo</title>"
        f"{DIDOMI_SCRIPTS}</head><body><div id='app'></div>{FOOTER}</body></html>"
    )
    assert find_wall(shell, "", jsonld_article={}, meta={}) is None


def test_an_article_about_cookies_is_not_a_consent_wall() -> None:
    about = [
        "La Agencia Española de Protección de Datos ha multado a tres periódicos por no pedir el consentimiento de sus lectores antes de instalar cookies de publicidad en sus dispositivos.",
        "Según la resolución, los banners de cookies deben permitir rechazar con la misma facilidad con la que se permite aceptar, y configurar las preferencias no puede costar más clics.",
        *PARAS[:4],
    ]
    got = extract(page(DIDOMI_BANNER, head=DIDOMI_SCRIPTS + ld(), paras=about), URL)
    assert got.wall is None


# Paywalls -----------------------------------------------------------------------------------

WALL_BOX = (
    "<div class='c-paywall'><p>Este contenido es exclusivo para suscriptores.</p>"
    "<a href='/suscripciones'>Suscríbete por 1 € el primer mes</a></div>"
)


@pytest.mark.parametrize("declared", [False, "False", "false"])
def test_is_accessible_for_free_false_with_a_cut_text_is_a_paywall(declared: object) -> None:
    html = page("", head=ld(isAccessibleForFree=declared), paras=PARAS[:2], after=WALL_BOX)
    got = extract(html, URL)
    assert got.wall == Wall("paywall", "isAccessibleForFree: false")
    assert got.text  # what could be had is still read
    assert got.is_article


def test_has_part_form_is_a_paywall() -> None:
    part = {"@type": "WebPageElement", "isAccessibleForFree": "False", "cssSelector": ".paywall"}
    html = page("", head=ld(hasPart=[part]), paras=PARAS[:2], after="<div class='paywall'></div>")
    assert extract(html, URL).wall == Wall(
        "paywall", "hasPart isAccessibleForFree: false (.paywall)"
    )


def test_has_part_section_delivered_in_the_html_is_not_a_wall() -> None:
    # Google's markup on a client-side paywall: the locked section is in the page, whole
    part = {"@type": "WebPageElement", "isAccessibleForFree": False, "cssSelector": ".paywall"}
    locked = "".join(f"<p>{p}</p>" for p in PARAS[2:])
    html = page(
        "",
        head=ld(isAccessibleForFree=False, hasPart=part),
        paras=PARAS[:2],
        after=f"<div class='paywall'>{locked}</div>",
    )
    assert extract(html, URL).wall is None


def test_declared_not_free_with_the_full_article_body_is_not_a_wall() -> None:
    # La Vanguardia, El País, eldiario.es: "not free", and the whole text in JSON-LD and HTML
    body = "\n".join(PARAS * 2)
    html = page(
        "",
        head=ld(isAccessibleForFree=False, articleBody=body)
        + "<meta property='article:content_tier' content='locked'>",
        paras=PARAS * 2,
    )
    got = extract(html, URL)
    assert words(got.text) >= 300
    assert got.wall is None


def test_content_tier_locked_with_a_cut_text_is_a_paywall() -> None:
    html = page(
        "",
        head=ld() + "<meta property='article:content_tier' content='locked'>",
        paras=PARAS[:2],
    )
    assert extract(html, URL).wall == Wall("paywall", "article:content_tier: locked")


def test_text_far_below_the_declared_word_count_is_a_paywall() -> None:
    html = page("", head=ld(wordCount=900), paras=PARAS[:3])
    got = extract(html, URL)
    n = len(re.findall(r"\w+", got.text))
    assert 80 <= n <= 120
    assert got.wall == Wall("paywall", f"text {n} of 900 declared words")
    # the declared count as a string, too
    assert extract(page("", head=ld(wordCount="900"), paras=PARAS[:3]), URL).wall == got.wall


def test_declared_word_counts_that_are_reached_or_tiny_say_nothing() -> None:
    assert extract(page("", head=ld(wordCount=260)), URL).wall is None  # reached
    assert extract(page("", head=ld(wordCount=100), paras=PARAS[:1]), URL).wall is None  # tiny


def test_a_reached_word_count_clears_markers_but_not_a_declaration() -> None:
    n = len(re.findall(r"\w+", extract(page("", paras=PARAS[:6]), URL).text))
    assert 150 <= n < 250  # trusted as a count, short enough for markers
    assert extract(page("", head=ld(), paras=PARAS[:6], after=WALL_BOX), URL).wall is not None
    marked = page("", head=ld(wordCount=n), paras=PARAS[:6], after=WALL_BOX)
    assert extract(marked, URL).wall is None
    # a CMS may count the words it serves (the teaser): the declaration still says "cut"
    declared = page(
        "", head=ld(wordCount=n, isAccessibleForFree=False), paras=PARAS[:6], after=WALL_BOX
    )
    assert extract(declared, URL).wall == Wall("paywall", "isAccessibleForFree: false")


def test_paywall_markers_and_a_short_text_are_a_paywall() -> None:
    got = extract(page("", head=ld(), paras=PARAS[:3], after=WALL_BOX), URL)
    assert got.wall is not None and got.wall.kind == "paywall"
    assert got.wall.reason.startswith("paywall marker (")
    # a wall message alone, no known class
    message = "<div class='aviso'><p>Suscríbete para seguir leyendo sin límites.</p></div>"
    alone = extract(page("", head=ld(), paras=PARAS[:2], after=message), URL)
    assert alone.wall is not None and alone.wall.kind == "paywall"
    assert "seguir leyendo" in alone.wall.reason


SUBSCRIBE_BOX = (
    "<div class='suscripcion'><h3>Suscríbete</h3><p>Hazte suscriptor y apoya el periodismo "
    "independiente: acceso ilimitado a todo el contenido exclusivo para suscriptores.</p>"
    "<a href='/suscripciones'>Suscríbete por 1 €</a></div>"
    "<aside><h3>Solo para suscriptores</h3><a href='/otra'>La letra pequeña de las vacunas</a>"
    "</aside>"
)


def test_a_free_article_with_a_subscribe_box_and_full_text_is_not_a_wall() -> None:
    got = extract(page("", head=ld(), after=SUBSCRIBE_BOX), URL)
    assert words(got.text) > 200
    assert got.wall is None
    # nor a short one: an offer and a label are not wall messages
    short = extract(page("", head=ld(), paras=PARAS[:3], after=SUBSCRIBE_BOX), URL)
    assert words(short.text) < 150
    assert short.wall is None


def test_markers_give_way_to_a_declared_free_article_or_a_wrapper_of_its_own_text() -> None:
    short = PARAS[:3]
    free = page("", head=ld(isAccessibleForFree=True), paras=short, after=WALL_BOX)
    assert extract(free, URL).wall is None
    # ABC wraps the article's own paragraphs in span.paywall: a wrapper, not a wall
    wrapped = "<span class='paywall'>" + "".join(f"<p>{p}</p>" for p in PARAS[3:5]) + "</span>"
    assert extract(page("", head=ld(), paras=short, after=wrapped), URL).wall is None


def test_feature_messages_are_not_wall_messages() -> None:
    # ABC's save-for-later and comment buttons on its free pages
    note = "<div><p>Esta funcionalidad es sólo para suscriptores</p></div>"
    assert extract(page(note, head=ld(), paras=PARAS[:3]), URL).wall is None


def test_no_signal_no_wall() -> None:
    got = extract(page("", paras=PARAS[:2]), URL)
    assert got.wall is None
    assert got.as_json()["wall"] is None


# Real pages ---------------------------------------------------------------------------------

#: Real pages whose JSON-LD article declares ``isAccessibleForFree: false`` while the page ships
#: the whole text (in the HTML and in the JSON-LD ``articleBody``; the extracted text matches the
#: expected body): a client-side or metered paywall, not a cut text, so no wall. La Vanguardia's
#: two also carry ``article:content_tier: locked``.
DECLARED_NOT_FREE_BUT_WHOLE = {
    "fundus/ElDiario_2025_05_29",
    "fundus/ElPais_2024_10_15",
    "fundus_history/LaVanguardia_2024_10_15",
    "fundus_history/LaVanguardia_2024_12_17",
}


@pytest.fixture(scope="module")
def real_pages(shared_data: object) -> list[dict[str, Any]]:
    from bench.eval_extraction import pages

    out = pages()
    assert len(out) == 28
    for p in out:
        p["got"] = extract(p["html"], p["url"])
        doc = _parse(decode_html(p["html"]))
        p["article"] = _pick_article(list(_jsonld_objects(doc)))
        p["markup"] = read_markup(doc, p["article"])
    return out


@pytest.mark.slow
def test_no_real_page_is_a_wall(real_pages: list[dict[str, Any]]) -> None:
    # None is a consent wall, though half carry a consent manager (Didomi on nine), and none is
    # cut: every text matches its expected body (test_extract_quality).
    walls = {p["id"]: p["got"].wall for p in real_pages if p["got"].wall is not None}
    assert walls == {}
    managers = [p["markup"].consent_managers for p in real_pages]
    assert sum(1 for m in managers if m) >= 14
    assert sum(1 for m in managers if "didomi" in m) >= 9


@pytest.mark.slow
def test_real_pages_declared_not_free_ship_their_whole_text(
    real_pages: list[dict[str, Any]],
) -> None:
    declared = {
        p["id"]
        for p in real_pages
        if str(p["article"].get("isAccessibleForFree")).lower() == "false"
    }
    assert declared == DECLARED_NOT_FREE_BUT_WHOLE
    for p in real_pages:
        if p["id"] in declared:
            body = p["article"]["articleBody"]
            assert words(p["got"].text) >= 0.9 * words(body) >= 500, p["id"]
            # without the publisher's full body as evidence the declaration alone would say
            # "paywall": the evidence, not a blind spot, is what keeps these pages clear
            bare = {k: v for k, v in p["article"].items() if k != "articleBody"}
            teaser = " ".join(p["got"].text.split()[:100])
            wall = find_wall(decode_html(p["html"]), teaser, jsonld_article=bare, meta={})
            assert wall == Wall("paywall", "isAccessibleForFree: false"), p["id"]
