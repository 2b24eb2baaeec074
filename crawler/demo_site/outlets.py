"""The fictional outlets of the demo site: names, countries, URL shapes, feeds and sitemaps.

Shared by the content generator (``build_content.py``) and the server, so an article's path is
made by the same function whether it was generated offline or published with ``add_article``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Outlet:
    """One fictional outlet served under ``http://<slug>.localhost:<port>``."""

    slug: str
    name: str
    country: str
    tz: str  # IANA zone its dates are written in
    utc_offset: str  # fallback offset when the zone database is unavailable
    kind: str  # "outlet" | "agency" (registry kind)
    scope: str  # "national" | "regional" | "international"
    charset: str  # encoding of its HTML pages ("utf-8" or "cp1252")
    feed_kind: str | None  # "rss" | "atom" | "jsonfeed" | "rss-cp1252" | "rss-malformed"
    feed_path: str | None
    feed_limit: int  # newest N articles in the feed
    news_sitemap_path: str | None  # Google-News sitemap (all articles)
    sitemap_index_path: str | None  # sitemap index pointing to the news sitemap
    sitemap_path: str | None  # plain <urlset> sitemap with <lastmod> (all articles)
    disallow: tuple[str, ...]  # robots.txt Disallow lines for every user agent
    private_prefix: str | None  # disallowed prefix holding article-looking pages
    amp: bool  # articles have /amp/… variants
    page_size: int  # teasers per listing page
    article_patterns: tuple[str, ...]
    exclude_patterns: tuple[str, ...]
    metadata: str  # what the article pages carry, for documentation
    templates: str  # short description of the template


OUTLETS: dict[str, Outlet] = {
    o.slug: o
    for o in (
        Outlet(
            slug="elfaro",
            name="El Faro del Sur",
            country="AR",
            tz="America/Argentina/Buenos_Aires",
            utc_offset="-03:00",
            kind="outlet",
            scope="national",
            charset="utf-8",
            feed_kind="rss",
            feed_path="/rss.xml",
            feed_limit=10,
            news_sitemap_path="/sitemap-news.xml",
            sitemap_index_path="/sitemap_index.xml",
            sitemap_path=None,
            disallow=("/privado/", "/wp-admin/", "/buscar"),
            private_prefix="/privado",
            amp=True,
            page_size=8,
            article_patterns=(r"^/(?:[a-z]+/)?\d{4}/\d{2}/\d{2}/[a-z0-9-]+\.html$",),
            exclude_patterns=(r"^/amp/",),
            metadata="JSON-LD NewsArticle (authors, dates, image, section) + OpenGraph",
            templates="WordPress-like theme; relative links; RSS 2.0 with content:encoded",
        ),
        Outlet(
            slug="lamontana",
            name="Diario La Montaña",
            country="CO",
            tz="America/Bogota",
            utc_offset="-05:00",
            kind="outlet",
            scope="regional",
            charset="utf-8",
            feed_kind="atom",
            feed_path="/feeds/ultimas.atom",
            feed_limit=8,
            news_sitemap_path=None,
            sitemap_index_path=None,
            sitemap_path=None,
            disallow=("/admin/", "/user/"),
            private_prefix=None,
            amp=True,
            page_size=6,
            article_patterns=(r"^/noticias/[a-z0-9-]+-\d{5}$",),
            exclude_patterns=(),
            metadata="OpenGraph + article:published_time/modified_time/author meta only",
            templates="Drupal-like; absolute links; Atom links carry utm_* tracking parameters",
        ),
        Outlet(
            slug="delvalle",
            name="Noticias del Valle",
            country="MX",
            tz="America/Mexico_City",
            utc_offset="-06:00",
            kind="outlet",
            scope="regional",
            charset="utf-8",
            feed_kind="jsonfeed",
            feed_path="/feed.json",
            feed_limit=10,
            news_sitemap_path=None,
            sitemap_index_path=None,
            sitemap_path=None,
            disallow=("/api/",),
            private_prefix=None,
            amp=False,
            page_size=10,
            article_patterns=(r"^/nota/\d{6}/[a-z0-9-]+$",),
            exclude_patterns=(),
            metadata='<time datetime="…"> element and <meta name="author"> only',
            templates="custom CMS; protocol-relative links; JSON Feed 1.1",
        ),
        Outlet(
            slug="gaceta",
            name="La Gaceta Insular",
            country="DO",
            tz="America/Santo_Domingo",
            utc_offset="-04:00",
            kind="outlet",
            scope="national",
            charset="cp1252",
            feed_kind="rss-cp1252",
            feed_path="/index.php?format=feed&type=rss",
            feed_limit=6,
            news_sitemap_path=None,
            sitemap_index_path=None,
            sitemap_path=None,
            disallow=(),
            private_prefix=None,
            amp=False,
            page_size=5,
            article_patterns=(r"^/index\.php/[a-z]+/\d+-[a-z0-9-]+$",),
            exclude_patterns=(),
            metadata="none: date only as visible Spanish text; pages in windows-1252, "
            "no charset in Content-Type, <meta> claims iso-8859-1",
            templates="Joomla-like table layout; RSS 2.0 in windows-1252",
        ),
        Outlet(
            slug="cronica",
            name="Crónica Andina",
            country="PE",
            tz="America/Lima",
            utc_offset="-05:00",
            kind="outlet",
            scope="national",
            charset="utf-8",
            feed_kind=None,
            feed_path=None,
            feed_limit=0,
            news_sitemap_path=None,
            sitemap_index_path=None,
            sitemap_path=None,
            disallow=("/suscriptores/",),
            private_prefix="/suscriptores",
            amp=False,
            page_size=6,
            article_patterns=(r"^/[a-z-]+/[a-z0-9-]+-noticia/$",),
            exclude_patterns=(),
            metadata='JSON-LD @graph (author: one object, or a list), visible "Publicado hace …"',
            templates="React-like markup; absolute links; no feed, no sitemap",
        ),
        Outlet(
            slug="saludhoy",
            name="Salud Pública Hoy",
            country="ES",
            tz="Europe/Madrid",
            utc_offset="+01:00",
            kind="agency",
            scope="national",
            charset="utf-8",
            feed_kind="rss-malformed",
            feed_path="/rss/noticias.xml",
            feed_limit=100,
            news_sitemap_path=None,
            sitemap_index_path=None,
            sitemap_path="/sitemap.xml",
            disallow=("/intranet/",),
            private_prefix=None,
            amp=False,
            page_size=4,
            article_patterns=(r"^/salud/[a-z0-9-]+/$",),
            exclude_patterns=(),
            metadata="JSON-LD NewsArticle + Dublin Core meta",
            templates="government-portal layout; malformed RSS; plain sitemap with lastmod",
        ),
    )
}

# Section names of the generated content, and the slug each outlet uses for them.
SECTION_SLUGS: dict[str, str] = {
    "Salud": "salud",
    "Política": "politica",
    "Economía": "economia",
    "Sociedad": "sociedad",
    "Ciencia": "ciencia",
    "Educación": "educacion",
    "Mundo": "mundo",
    "Verificación": "verificacion",
    "Deportes": "deportes",
    "Espectáculos": "espectaculos",
    "Seguridad": "seguridad",
}


def slugify(text: str, max_len: int = 70) -> str:
    """ASCII, lower-case, hyphenated; cut at a word boundary near ``max_len``."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    words = re.sub(r"[^a-z0-9]+", " ", folded.lower()).split()
    out: list[str] = []
    for word in words:
        if out and len("-".join([*out, word])) > max_len:
            break
        out.append(word)
    return "-".join(out) or "nota"


def section_slug(section: str) -> str:
    return SECTION_SLUGS.get(section) or slugify(section)


def article_path(
    outlet: str, slug: str, published: datetime, number: int, section: str, disallowed: bool
) -> str:
    """The path of an article in ``outlet``'s URL scheme (each outlet has its own shape)."""
    if outlet == "elfaro":
        prefix = "/privado" if disallowed else ""
        return f"{prefix}/{published:%Y/%m/%d}/{slug}.html"
    if outlet == "lamontana":
        return f"/noticias/{slug}-{number:05d}"
    if outlet == "delvalle":
        return f"/nota/{number:06d}/{slug}"
    if outlet == "gaceta":
        return f"/index.php/{section_slug(section)}/{number}-{slug}"
    if outlet == "cronica":
        folder = "suscriptores" if disallowed else section_slug(section)
        return f"/{folder}/{slug}-noticia/"
    if outlet == "saludhoy":
        return f"/salud/{slug}/"
    raise KeyError(outlet)


def amp_path(outlet: str, path: str) -> str | None:
    """The AMP variant of an article path, for outlets that have one."""
    return f"/amp{path}" if OUTLETS[outlet].amp else None
