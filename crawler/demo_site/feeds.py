"""Feeds (RSS 2.0, Atom, JSON Feed; one windows-1252, one malformed) and sitemaps."""

from __future__ import annotations

import json
from datetime import datetime
from xml.sax.saxutils import escape as xml_escape

from crawler.demo_site.common import Article, Ctx, e, parse_dt, rfc822
from crawler.demo_site.templates import THEMES


def x(text: object) -> str:
    """XML-escape text content and attribute values."""
    return xml_escape(str(text), {'"': "&quot;"})


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def feed_items(ctx: Ctx) -> list[Article]:
    return ctx.visible[: ctx.outlet.feed_limit]


def _html_body(article: Article) -> str:
    return "".join(f"<p>{e(p)}</p>" for p in article["paragraphs"])


def render_feed(ctx: Ctx, updated: datetime) -> tuple[bytes, str]:
    """The outlet's feed as (body, content type)."""
    kind = ctx.outlet.feed_kind
    items = feed_items(ctx)
    if kind == "rss":
        return _rss(ctx, items, updated).encode("utf-8"), "application/rss+xml; charset=utf-8"
    if kind == "atom":
        return _atom(ctx, items, updated).encode("utf-8"), "application/atom+xml; charset=utf-8"
    if kind == "jsonfeed":
        return _jsonfeed(ctx, items), "application/feed+json; charset=utf-8"
    if kind == "rss-cp1252":
        text = _rss_cp1252(ctx, items, updated)
        return text.encode("cp1252", "xmlcharrefreplace"), "application/rss+xml"
    if kind == "rss-malformed":
        return _rss_malformed(ctx, items, updated).encode("utf-8"), "text/xml; charset=utf-8"
    raise KeyError(kind)


def _rss(ctx: Ctx, items: list[Article], updated: datetime) -> str:
    entries = []
    for a in items:
        url = ctx.url(a["path"])
        creators = "".join(f"<dc:creator>{x(n)}</dc:creator>" for n in a["authors"])
        entries.append(
            f"<item><title>{x(a['title'])}</title><link>{x(url)}</link>"
            f'<guid isPermaLink="true">{x(url)}</guid>'
            f"<pubDate>{rfc822(parse_dt(a['published']))}</pubDate>{creators}"
            f"<category>{cdata(a['section'])}</category>"
            f"<description>{x(a['paragraphs'][0])}</description>"
            f"<content:encoded>{cdata(_html_body(a))}</content:encoded></item>"
        )
    body = "\n".join(entries)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
 xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>{x(ctx.outlet.name)}</title>
<atom:link href="{x(ctx.url(ctx.outlet.feed_path or ""))}" rel="self" type="application/rss+xml"/>
<link>{x(ctx.url("/"))}</link>
<description>Noticias de la Patagonia y el país</description>
<lastBuildDate>{rfc822(updated)}</lastBuildDate>
<language>es-AR</language>
<generator>https://wordpress.org/?v=5.6</generator>
{body}
</channel>
</rss>
"""


def _atom(ctx: Ctx, items: list[Article], updated: datetime) -> str:
    entries = []
    for a in items:
        url = ctx.url(a["path"]) + "?utm_source=rss&utm_medium=feed&utm_campaign=ultimas"
        authors = "".join(f"<author><name>{x(n)}</name></author>" for n in a["authors"])
        cats = "".join(f'<category term="{x(t)}"/>' for t in a["tags"])
        entries.append(
            f"<entry><id>tag:lamontana.localhost,2020:node/{a['number']}</id>"
            f'<title type="text">{x(a["title"])}</title>'
            f'<link rel="alternate" type="text/html" href="{x(url)}"/>'
            f"<published>{a['published']}</published><updated>{a['modified']}</updated>"
            f'{authors}{cats}<summary type="text">{x(a["paragraphs"][0])}</summary></entry>'
        )
    body = "\n".join(entries)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="es-CO">
<id>{x(ctx.url("/"))}</id>
<title>{x(ctx.outlet.name)} - Últimas noticias</title>
<updated>{updated.isoformat(timespec="seconds")}</updated>
<link rel="self" type="application/atom+xml" href="{x(ctx.url(ctx.outlet.feed_path or ""))}"/>
<link rel="alternate" type="text/html" href="{x(ctx.url("/"))}"/>
<generator>Drupal</generator>
{body}
</feed>
"""


def _jsonfeed(ctx: Ctx, items: list[Article]) -> bytes:
    theme = THEMES[ctx.outlet.slug]
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": ctx.outlet.name,
        "home_page_url": ctx.url("/"),
        "feed_url": ctx.url(ctx.outlet.feed_path or ""),
        "language": "es-MX",
        "items": [
            {
                "id": str(a["number"]),
                "url": ctx.url(a["path"]),
                "title": a["title"],
                "content_html": _html_body(a),
                "summary": a["paragraphs"][0][:300],
                "date_published": a["published"],
                "date_modified": a["modified"],
                "authors": [
                    {"name": n, "url": ctx.url(theme.author_path(n))} for n in a["authors"]
                ],
                "tags": a["tags"],
            }
            for a in items
        ],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _rss_cp1252(ctx: Ctx, items: list[Article], updated: datetime) -> str:
    entries = "\n".join(
        f"<item><title>{x(a['title'])}</title><link>{x(ctx.url(a['path']))}</link>"
        f'<guid isPermaLink="false">{a["number"]}@gaceta</guid>'
        f"<description>{x(a['paragraphs'][0][:300])}</description>"
        f"<author>{x(', '.join(a['authors']) or 'Redacción')}</author>"
        f"<category>{x(a['section'])}</category>"
        f"<pubDate>{rfc822(parse_dt(a['published']))}</pubDate></item>"
        for a in items
    )
    return f"""<?xml version="1.0" encoding="windows-1252"?>
<!-- generator="Joomla! 1.5 - Open Source Content Management" -->
<rss version="2.0">
<channel>
<title>La Gaceta Insular - Portada</title>
<description>Noticias de la República Dominicana</description>
<link>{x(ctx.url("/"))}</link>
<lastBuildDate>{rfc822(updated)}</lastBuildDate>
<language>es-do</language>
{entries}
</channel>
</rss>
"""


def _rss_malformed(ctx: Ctx, items: list[Article], updated: datetime) -> str:
    # Hand-rolled template: raw "&" in text nodes and an unclosed <br> -> not well-formed XML.
    entries = "\n".join(
        f"<item>\n<title>{x(a['title'])}</title>\n<link>{ctx.url(a['path'])}</link>\n"
        f"<category>Prevención & Control</category>\n"
        f"<description>{a['section']} & {', '.join(a['tags'])}: {x(a['paragraphs'][0][:200])}"
        f"</description>\n<pubDate>{rfc822(parse_dt(a['published']))}</pubDate>\n</item>"
        for a in items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
<channel>
<title>Salud Pública Hoy - Noticias & Avisos</title>
<link>{ctx.url("/")}</link>
<description>Boletín de noticias<br>de salud pública</description>
<language>es-es</language>
<lastBuildDate>{rfc822(updated)}</lastBuildDate>
{entries}
</channel>
</rss>
"""


# --- sitemaps ---------------------------------------------------------------------------------
def news_sitemap(ctx: Ctx) -> bytes:
    urls = "\n".join(
        f"<url><loc>{x(ctx.url(a['path']))}</loc>"
        f"<lastmod>{a['modified']}</lastmod>"
        "<news:news><news:publication>"
        f"<news:name>{x(ctx.outlet.name)}</news:name><news:language>es</news:language>"
        "</news:publication>"
        f"<news:publication_date>{a['published']}</news:publication_date>"
        f"<news:title>{x(a['title'])}</news:title><news:keywords>{x(', '.join(a['tags']))}"
        "</news:keywords></news:news>"
        f"<image:image><image:loc>{x(ctx.url(ctx.image_path(a)))}</image:loc></image:image>"
        "</url>"
        for a in ctx.visible
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
 xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
 xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
{urls}
</urlset>
""".encode()


def sections_sitemap(ctx: Ctx) -> bytes:
    theme = THEMES[ctx.outlet.slug]
    paths = ["/", *(theme.section_path(s) for s in ctx.sections())]
    urls = "\n".join(
        f"<url><loc>{x(ctx.url(p))}</loc><changefreq>hourly</changefreq></url>" for p in paths
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{urls}
</urlset>
""".encode()


def sitemap_index(ctx: Ctx, updated: datetime) -> bytes:
    news = ctx.url(ctx.outlet.news_sitemap_path or "")
    stamp = updated.isoformat(timespec="seconds")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<sitemap><loc>{x(news)}</loc><lastmod>{stamp}</lastmod></sitemap>
<sitemap><loc>{x(ctx.url("/sitemap-secciones.xml"))}</loc><lastmod>{stamp}</lastmod></sitemap>
</sitemapindex>
""".encode()


def plain_sitemap(ctx: Ctx) -> bytes:
    urls = [
        f"<url><loc>{x(ctx.url(a['path']))}</loc><lastmod>{a['modified']}</lastmod>"
        "<changefreq>monthly</changefreq><priority>0.8</priority></url>"
        for a in ctx.visible
    ]
    urls += [f"<url><loc>{x(ctx.url(p))}</loc></url>" for p in ("/", "/contacto/", "/aviso-legal/")]
    body = "\n".join(urls)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
{body}
</urlset>
""".encode()


def robots(ctx: Ctx) -> bytes:
    o = ctx.outlet
    lines = [f"# robots.txt de {o.name}", "User-agent: *"]
    lines += [f"Disallow: {p}" for p in o.disallow] or ["Disallow:"]
    if o.slug == "elfaro":
        lines.append("Allow: /wp-admin/admin-ajax.php")
    lines += ["", "User-agent: GPTBot", "Disallow: /", ""]
    for path in (o.sitemap_index_path, o.sitemap_path):
        if path:
            lines.append(f"Sitemap: {ctx.url(path)}")
    return ("\n".join(lines) + "\n").encode("utf-8")
