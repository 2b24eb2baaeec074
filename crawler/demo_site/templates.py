"""One HTML theme per fictional outlet: different CMS-like markup, metadata and link styles.

Every theme renders the same kinds of pages (home and other listings, article, AMP article,
static page, 404) with its own navigation, cookie banner, ad slots, related links, reader
comments and footer, as real sites do. Everything that comes from data is escaped.

Long on purpose (~1,000 lines): five themes of markup are test data written as code, one theme
after another; splitting them would scatter what is meant to be read side by side.
"""

from __future__ import annotations

from datetime import datetime

from crawler.demo_site import realweb
from crawler.demo_site.common import (
    DANGEROUS_LINKS,
    Article,
    Ctx,
    ampm,
    comments_for,
    e,
    jsonld,
    long_date,
    parse_dt,
    relative_es,
    stable_int,
)
from crawler.demo_site.outlets import section_slug, slugify

# Pages on the fault outlet that only exist (and are only linked) when a fault is enabled.
FAULT_LINKS = {
    "redirect-loop": [
        ("/especial/bucle/", "Especial: cronología completa de la pandemia"),
        ("/especial/ida/", "Especial: mapa de contagios"),
    ],
    "oversized": [
        ("/especial/hemeroteca-completa.html", "Hemeroteca completa 2020"),
        ("/especial/hemeroteca-continua.html", "Hemeroteca: todas las ediciones"),
        ("/especial/galeria-imagenes.html", "Galería: un año de pandemia en imágenes"),
    ],
}

STATIC_PAGES = {
    "contacto": (
        "Contacto",
        "Escríbanos a la redacción a través del formulario. Respondemos de lunes a viernes.",
    ),
    "aviso-legal": (
        "Aviso legal",
        "Este sitio es ficticio: forma parte del entorno de pruebas de covidnews.",
    ),
    "quienes-somos": (
        "Quiénes somos",
        "Medio ficticio de demostración. Los textos proceden de corpus con licencia CC BY 4.0.",
    ),
}


class Theme:
    """Base theme: subclasses override markup; routing helpers are shared."""

    title_format = "{title} | {site}"
    section_prefix = "/seccion/"
    tag_prefix = "/etiqueta/"
    author_prefix = "/autor/"
    trailing_slash = True
    static_prefix = "/"

    # --- URLs --------------------------------------------------------------------------------
    def href(self, ctx: Ctx, path: str) -> str:
        """How this outlet writes internal links (relative, absolute, protocol-relative)."""
        return path

    def _p(self, prefix: str, slug: str) -> str:
        return prefix + slug + ("/" if self.trailing_slash else "")

    def section_path(self, section: str) -> str:
        return self._p(self.section_prefix, section_slug(section))

    def tag_path(self, tag: str) -> str:
        return self._p(self.tag_prefix, slugify(tag))

    def author_path(self, name: str) -> str:
        return self._p(self.author_prefix, slugify(name))

    def static_path(self, key: str) -> str:
        return self._p(self.static_prefix, key)

    def route(self, path: str) -> tuple[str, str] | None:
        """(kind, slug) of a listing or static page at ``path``, if it is one."""
        for key in STATIC_PAGES:
            if path == self.static_path(key):
                return ("static", key)
        for kind, prefix in (
            ("section", self.section_prefix),
            ("tag", self.tag_prefix),
            ("author", self.author_prefix),
        ):
            if path.startswith(prefix):
                rest = path[len(prefix) :]
                if self.trailing_slash:
                    if not rest.endswith("/"):
                        continue
                    rest = rest[:-1]
                if rest and "/" not in rest:
                    return (kind, rest)
        return None

    def title(self, ctx: Ctx, title: str) -> str:
        return self.title_format.format(title=title, site=ctx.outlet.name)

    # --- pieces ------------------------------------------------------------------------------
    def byline_names(self, ctx: Ctx, article: Article, cls: str = "author") -> str:
        names = article["authors"]
        if not names:
            return "Redacción"
        links = [
            f'<a class="{cls}" href="{e(self.href(ctx, self.author_path(n)))}">{e(n)}</a>'
            for n in names
        ]
        return " y ".join(links)

    def paragraphs(self, article: Article, cls: str = "") -> list[str]:
        attr = f' class="{cls}"' if cls else ""
        return [f"<p{attr}>{e(p)}</p>" for p in article["paragraphs"]]

    def fault_box(self, ctx: Ctx) -> str:
        links = [
            (path, label)
            for fault, items in FAULT_LINKS.items()
            if fault in ctx.faults
            for path, label in items
        ]
        if ctx.outlet.slug != "elfaro" or not links:
            return ""
        items = "".join(f'<li><a href="{e(p)}">{e(label)}</a></li>' for p, label in links)
        return f'<section class="especiales"><h2>Especiales</h2><ul>{items}</ul></section>'

    def pager(self, ctx: Ctx, path: str, page: int, pages: int) -> str:
        parts = []
        if page > 1:
            prev = path if page == 2 else f"{path}?page={page - 1}"
            parts.append(f'<a rel="prev" href="{e(self.href(ctx, prev))}">« Anterior</a>')
        if page < pages:
            nxt = f"{path}?page={page + 1}"
            parts.append(f'<a rel="next" href="{e(self.href(ctx, nxt))}">Siguiente »</a>')
        return " ".join(parts)

    # --- pages (overridden) ------------------------------------------------------------------
    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        raise NotImplementedError

    def teaser(self, ctx: Ctx, article: Article) -> str:
        raise NotImplementedError

    def listing(
        self,
        ctx: Ctx,
        heading: str,
        items: list[Article],
        path: str,
        page: int,
        pages: int,
        home: bool = False,
    ) -> str:
        teasers = "\n".join(self.teaser(ctx, a) for a in items)
        extra = self.home_extra(ctx) if home else ""
        main = (
            f'<h1 class="listing-title">{e(heading)}</h1>\n<div class="listing">{teasers}</div>\n'
            f'<nav class="pagination">{self.pager(ctx, path, page, pages)}</nav>\n{extra}'
        )
        title = ctx.outlet.name if home and page == 1 else self.title(ctx, heading)
        return self.document(ctx, title, main, kind="home" if home else "listing")

    def home_extra(self, ctx: Ctx) -> str:
        return self.fault_box(ctx)

    def article(self, ctx: Ctx, article: Article) -> str:
        raise NotImplementedError

    def amp(self, ctx: Ctx, article: Article) -> str:
        canonical = ctx.url(article["path"])
        body = "\n".join(self.paragraphs(article))
        head = "\n".join(
            line
            for line in self.article_head(ctx, article).split("\n")
            if 'rel="canonical"' not in line and 'rel="amphtml"' not in line
        )
        return (
            '<!doctype html>\n<html ⚡ lang="es">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{e(self.title(ctx, article['title']))}</title>\n"
            f'<link rel="canonical" href="{e(canonical)}">\n'
            '<meta name="viewport" content="width=device-width,minimum-scale=1">\n'
            "<style amp-boilerplate>body{visibility:hidden}</style>\n"
            '<script async src="https://cdn.ampproject.org/v0.js"></script>\n'
            f'{head}\n</head>\n<body>\n<header class="amp-header">{e(ctx.outlet.name)}</header>\n'
            f'<article class="amp-article"><h1>{e(article["title"])}</h1>\n'
            f'<p class="amp-byline">{self.byline_names(ctx, article)}</p>\n{body}\n</article>\n'
            f'<footer class="amp-footer"><a href="{e(canonical)}">Ver versión completa</a>'
            "</footer>\n</body>\n</html>\n"
        )

    def article_head(self, ctx: Ctx, article: Article) -> str:
        return ""

    def static(self, ctx: Ctx, key: str) -> str:
        heading, text = STATIC_PAGES[key]
        main = f'<div class="static-page"><h1>{e(heading)}</h1><p>{e(text)}</p></div>'
        return self.document(ctx, self.title(ctx, heading), main)

    def not_found(self, ctx: Ctx) -> str:
        main = '<div class="error-404"><h1>Página no encontrada</h1><p>Error 404.</p></div>'
        return self.document(ctx, self.title(ctx, "Página no encontrada"), main, kind="error")


# ---------------------------------------------------------------------------------------------
class ElFaro(Theme):
    """WordPress-like theme; relative links; JSON-LD + OpenGraph."""

    title_format = "{title} | {site}"

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        nav = "".join(
            f'<li class="menu-item"><a href="{e(self.section_path(s))}">{e(s)}</a></li>'
            for s in ctx.sections()
        )
        bad = "".join(f'<li><a href="{e(u)}">Herramientas {i + 1}</a></li>' for i, u in
                      enumerate(DANGEROUS_LINKS))  # fmt: skip
        return f"""<!DOCTYPE html>
<html lang="es-AR" class="no-js">
<head>
<meta charset="UTF-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)}</title>
<meta name="generator" content="WordPress 5.6">
<link rel="alternate" type="application/rss+xml" title="{e(ctx.outlet.name)} &raquo; Feed"
 href="/rss.xml">
<link rel="stylesheet" id="faro-style-css" href="/wp-content/themes/faro/style.css" media="all">
{head}
</head>
<body class="{e(kind)} wp-theme-faro">
<div id="page" class="site">
<a class="skip-link screen-reader-text" href="#content">Saltar al contenido</a>
<header id="masthead" class="site-header">
 <p class="site-title"><a href="/" rel="home">{e(ctx.outlet.name)}</a></p>
 <p class="site-description">Noticias de la Patagonia y el país</p>
 <nav id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu">
 <li class="menu-item"><a href="/">Inicio</a></li>{nav}</ul></nav>
</header>
<div class="faro-ad ad-leaderboard" data-slot="top">Publicidad</div>
<div id="content" class="site-content"><main id="main" class="site-main">
{main}
</main>
<aside id="secondary" class="widget-area"><section class="widget widget_recent_entries">
<h2 class="widget-title">Lo más leído</h2><ul>{
            "".join(
                f'<li><a href="{e(a["path"])}">{e(a["title"])}</a></li>' for a in ctx.visible[:5]
            )
        }</ul>
</section><div class="faro-ad ad-sidebar" data-slot="side">Publicidad</div></aside>
</div>
<footer id="colophon" class="site-footer">
 <nav class="footer-menu"><ul><li><a href="/contacto/">Contacto</a></li>
 <li><a href="/aviso-legal/">Aviso legal</a></li><li><a href="/quienes-somos/">Quiénes somos</a>
 </li>{bad}</ul></nav>
 <div class="site-info">© {ctx.now.year} {e(ctx.outlet.name)} — Bahía Blanca, Argentina</div>
</footer>
</div>
<div id="cookie-law-info-bar" class="cli-bar"><span>Utilizamos cookies para mejorar su
experiencia. <a role="button" class="cli_action_button" href="#">ACEPTAR</a></span></div>
</body>
</html>
"""

    def teaser(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        return (
            f'<article class="post type-post format-standard"><header class="entry-header">'
            f'<h2 class="entry-title"><a href="{e(article["path"])}" rel="bookmark">'
            f"{e(article['title'])}</a></h2></header>"
            f'<div class="entry-summary"><p>{e(article["paragraphs"][0][:220])}…</p></div>'
            f'<span class="posted-on">{e(long_date(published))}</span></article>'
        )

    def home_extra(self, ctx: Ctx) -> str:
        private = "".join(
            f'<li><a href="{e(a["path"])}">{e(a["title"])}</a></li>' for a in ctx.private
        )
        box = (
            f'<section class="zona-exclusiva"><h2>Zona exclusiva</h2><ul>{private}</ul></section>'
            if private
            else ""
        )
        return box + self.fault_box(ctx)

    def article_head(self, ctx: Ctx, article: Article) -> str:
        url = ctx.url(article["path"])
        authors = [
            {"@type": "Organization" if n.startswith("Agencia") else "Person", "name": n}
            | ({"url": ctx.url(self.author_path(n))} if not n.startswith("Agencia") else {})
            for n in article["authors"]
        ]
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "mainEntityOfPage": {"@type": "WebPage", "@id": url},
            "headline": article["title"],
            "datePublished": article["published"],
            "dateModified": article["modified"],
            "author": authors,
            "image": [ctx.url(ctx.image_path(article))],
            "articleSection": article["section"],
            "keywords": ", ".join(article["tags"]),
            "inLanguage": "es-AR",
            "publisher": {
                "@type": "Organization",
                "name": ctx.outlet.name,
                "logo": {"@type": "ImageObject", "url": ctx.url("/logo.png")},
            },
        }
        if article.get("paywalled"):  # the `real-web` fault
            data.update(realweb.paywall_jsonld(article))
        return "\n".join(
            [
                f'<link rel="canonical" href="{e(url)}">',
                f'<meta property="og:site_name" content="{e(ctx.outlet.name)}">',
                '<meta property="og:type" content="article">',
                f'<meta property="og:title" content="{e(article["title"])}">',
                f'<meta property="og:url" content="{e(url)}">',
                f'<meta property="og:image" content="{e(ctx.url(ctx.image_path(article)))}">',
                jsonld(data),
            ]
        )

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        modified = parse_dt(article["modified"])
        paragraphs = self.paragraphs(article)
        related = ctx.related(article)
        if related and len(paragraphs) > 2:
            paragraphs.insert(
                2,
                f'<p class="lee-tambien"><strong>Lee también:</strong> <a href="'
                f'{e(related[0]["path"])}">{e(related[0]["title"])}</a></p>',
            )
        if len(paragraphs) > 4:
            paragraphs.insert(
                4, '<div class="faro-ad ad-inarticle" data-slot="mid">Publicidad</div>'
            )
        updated = (
            f' <span class="updated">Actualizado: {e(long_date(modified))}</span>'
            if modified != published
            else ""
        )
        tags = ", ".join(
            f'<a href="{e(self.tag_path(t))}" rel="tag">{e(t)}</a>' for t in article["tags"]
        )
        rel = "".join(
            f'<li class="jp-relatedposts-post"><a href="{e(a["path"])}">{e(a["title"])}</a></li>'
            for a in related
        )
        comments = "".join(
            f'<li class="comment"><article class="comment-body"><footer class="comment-meta">'
            f'<b class="fn">{e(n)}</b> <span class="says">dice:</span></footer>'
            f'<div class="comment-content"><p>{e(t)}</p></div></article></li>'
            for n, t, _ in comments_for(article)
        )
        amp = f'<link rel="amphtml" href="{e(article["amp_path"])}">' if article["amp_path"] else ""
        main = f"""<article id="post-{e(article["id"])}" class="post type-post status-publish">
<header class="entry-header">
<span class="cat-links"><a href="{e(self.section_path(article["section"]))}" rel="category tag">
{e(article["section"])}</a></span>
<h1 class="entry-title">{e(article["title"])}</h1>
<div class="entry-meta"><span class="byline">Por <span class="author vcard">
{self.byline_names(ctx, article, "url fn n")}</span></span> |
<span class="posted-on">{e(long_date(published))} - {published:%H:%M}</span>{updated}</div>
</header>
<figure class="post-thumbnail"><img src="{e(ctx.image_path(article))}" alt=""></figure>
<div class="entry-content">
{chr(10).join(paragraphs)}
</div>
{realweb.PAYWALL_BOX if article.get("paywalled") else ""}
<footer class="entry-footer"><span class="tags-links">Etiquetas: {tags}</span></footer>
</article>
<div class="share-buttons"><a href="#">Compartir en Facebook</a> <a href="#">Twitter</a></div>
<aside id="jp-relatedposts" class="jp-relatedposts"><h3>Relacionado</h3><ul>{rel}</ul></aside>
<div id="comments" class="comments-area"><h2 class="comments-title">Comentarios</h2>
<ol class="comment-list">{comments}</ol>
<div id="respond" class="comment-respond"><h3>Deja una respuesta</h3>
<form class="comment-form"><textarea name="comment"></textarea></form></div></div>"""
        head = amp + "\n" + self.article_head(ctx, article)
        return self.document(ctx, self.title(ctx, article["title"]), main, head, "single")


# ---------------------------------------------------------------------------------------------
class LaMontana(Theme):
    """Drupal-like theme; absolute links; OpenGraph + article:* meta only."""

    title_format = "{title} - {site}"
    section_prefix = "/secciones/"
    tag_prefix = "/temas/"
    author_prefix = "/autores/"
    trailing_slash = False

    def href(self, ctx: Ctx, path: str) -> str:
        return ctx.url(path)

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        h = self.href
        nav = "".join(
            f'<li class="menu-item"><a href="{e(h(ctx, self.section_path(s)))}" '
            f'class="menu__link">{e(s)}</a></li>'
            for s in ctx.sections()
        )
        return f"""<!DOCTYPE html>
<html lang="es" dir="ltr" prefix="og: https://ogp.me/ns#">
<head>
<meta charset="utf-8" />
<meta name="Generator" content="Drupal 9 (https://www.drupal.org)" />
<meta name="MobileOptimized" content="width" />
<title>{e(title)}</title>
<link rel="alternate" type="application/atom+xml" href="{e(h(ctx, "/feeds/ultimas.atom"))}" />
{head}
</head>
<body class="path-{e(kind)} page-node-type-article">
<div class="dialog-off-canvas-main-canvas" data-off-canvas-main-canvas>
<div class="layout-container">
<header role="banner" class="region region-header">
 <div class="site-branding"><a href="{e(h(ctx, "/"))}" class="site-branding__logo">
 <span class="site-branding__name">{e(ctx.outlet.name)}</span></a>
 <div class="site-branding__slogan">Periodismo desde las montañas de Antioquia</div></div>
 <nav role="navigation" class="menu--main"><ul class="menu">{nav}</ul></nav>
</header>
<div id="block-publicidad-superior" class="block block-dfp">Publicidad</div>
<main role="main"><div class="layout-content">
{main}
</div></main>
<footer role="contentinfo" class="region region-footer">
 <div class="block-enlaces-interes"><h2>Enlaces de interés</h2><ul>
 <li><a href="{e(DANGEROUS_LINKS[0])}">Servicios internos</a></li>
 <li><a href="{e(DANGEROUS_LINKS[1])}">Mapa interactivo (externo)</a></li></ul></div>
 <ul class="menu menu--footer"><li><a href="{e(h(ctx, "/contacto"))}">Contáctenos</a></li>
 <li><a href="{e(h(ctx, "/aviso-legal"))}">Términos y condiciones</a></li></ul>
 <p>Diario La Montaña © {ctx.now.year}. Medellín, Colombia.</p>
</footer>
</div></div>
<div id="sliding-popup" class="eu-cookie-compliance-banner"><div class="popup-content">
<p>Este sitio usa cookies. Al continuar navegando acepta nuestra política.</p>
<button type="button" class="agree-button">Acepto</button></div></div>
</body>
</html>
"""

    def teaser(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        return (
            f'<div class="views-row"><article class="node node--view-mode-teaser">'
            f'<h2 class="node__title"><a href="{e(self.href(ctx, article["path"]))}">'
            f"{e(article['title'])}</a></h2>"
            f'<div class="field--name-created">{e(_co_date(published))}</div></article></div>'
        )

    def article_head(self, ctx: Ctx, article: Article) -> str:
        url = ctx.url(article["path"])
        lines = [
            f'<link rel="canonical" href="{e(url)}" />',
            f'<meta name="description" content="{e(article["paragraphs"][0][:200])}" />',
            f'<meta property="og:site_name" content="{e(ctx.outlet.name)}" />',
            '<meta property="og:type" content="article" />',
            f'<meta property="og:url" content="{e(url)}" />',
            f'<meta property="og:title" content="{e(article["title"])}" />',
            f'<meta property="og:image" content="{e(ctx.url(ctx.image_path(article)))}" />',
            f'<meta property="article:section" content="{e(article["section"])}" />',
            f'<meta property="article:published_time" content="{e(article["published"])}" />',
            f'<meta property="article:modified_time" content="{e(article["modified"])}" />',
        ]
        lines += [f'<meta property="article:tag" content="{e(t)}" />' for t in article["tags"]]
        lines += [
            f'<meta property="article:author" content="{e(n)}" />' for n in article["authors"]
        ]
        if article["amp_path"]:
            lines.append(f'<link rel="amphtml" href="{e(ctx.url(article["amp_path"]))}" />')
        return "\n".join(lines)

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        paragraphs = self.paragraphs(article)
        if len(paragraphs) > 3:
            paragraphs.insert(3, '<div class="block-dfp dfp-tag-wrapper">Publicidad</div>')
        related = "".join(
            f'<li><a href="{e(self.href(ctx, a["path"]))}">{e(a["title"])}</a></li>'
            for a in ctx.related(article, 4)
        )
        tags = "".join(
            f'<li class="field__item"><a href="{e(self.href(ctx, self.tag_path(t)))}">{e(t)}</a>'
            "</li>"
            for t in article["tags"]
        )
        comments = "".join(
            f'<article class="comment js-comment"><div class="comment__meta">'
            f'<span class="comment__author">{e(n)}</span></div>'
            f'<div class="comment__content"><p>{e(t)}</p></div></article>'
            for n, t, _ in comments_for(article)
        )
        main = f"""<article role="article" class="node node--type-article node--view-mode-full">
<div class="field field--name-field-seccion"><a href="{
            e(self.href(ctx, self.section_path(article["section"])))
        }">{e(article["section"])}</a></div>
<h1 class="page-title"><span class="field field--name-title">{e(article["title"])}</span></h1>
<div class="node__meta"><span class="field--name-uid">Por {self.byline_names(ctx, article)}</span>
 | <span class="field--name-created">{e(_co_date(published))}</span></div>
<div class="field--name-field-imagen"><img src="{e(ctx.image_path(article))}" alt="Imagen" /></div>
<div class="clearfix text-formatted field field--name-body field__item">
{chr(10).join(paragraphs)}
</div>
<div class="field field--name-field-tags"><div class="field__label">Temas</div>
<ul class="field__items">{tags}</ul></div>
</article>
<section class="block-noticias-relacionadas"><h2>Noticias relacionadas</h2><ul>{related}</ul>
</section>
<section class="comment-section"><h2 class="comments__title">Comentarios</h2>{comments}</section>"""
        return self.document(
            ctx, self.title(ctx, article["title"]), main, self.article_head(ctx, article), "node"
        )


def _co_date(moment: datetime) -> str:
    """``Noviembre 09, 2020 - 09:16 p. m.`` (Colombian CMS style)."""
    from covidnews.text import MONTHS_ES

    month = MONTHS_ES[moment.month - 1].capitalize()
    return f"{month} {moment.day:02d}, {moment.year} - {ampm(moment)}"


# ---------------------------------------------------------------------------------------------
class DelValle(Theme):
    """Custom CMS; protocol-relative links; only a <time datetime> element and meta author."""

    title_format = "{title} — {site}"
    section_prefix = "/seccion/"
    tag_prefix = "/tag/"
    author_prefix = "/autor/"
    trailing_slash = False

    def href(self, ctx: Ctx, path: str) -> str:
        return f"//{ctx.host}{path}"

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        h = self.href
        nav = " ".join(
            f'<a class="menu-link" href="{e(h(ctx, self.section_path(s)))}">{e(s)}</a>'
            for s in ctx.sections()
        )
        return f"""<!doctype html>
<html lang="es-MX">
<head>
<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<title>{e(title)}</title>
{head}
<link rel="alternate" type="application/feed+json" href="{e(h(ctx, "/feed.json"))}">
</head>
<body class="dv-{e(kind)}">
<div class="aviso-cookies" id="avisoCookies">Al navegar en este sitio aceptas el uso de cookies.
<a href="{e(h(ctx, "/aviso-de-privacidad"))}">Aviso de privacidad</a>
<button onclick="cerrarAviso()">Entendido</button></div>
<div class="top-bar"><span class="fecha-hoy">{e(long_date(ctx.now, weekday=True))}</span></div>
<header class="cabecera"><a class="logo" href="{e(h(ctx, "/"))}">NOTICIAS DEL VALLE</a>
<div class="banner-pub" id="div-gpt-ad-1600000000000-0">Publicidad</div></header>
<nav class="menu-principal"><a class="menu-link" href="{e(h(ctx, "/"))}">Portada</a> {nav}</nav>
<div class="contenedor">
{main}
</div>
<footer class="pie"><div class="pie-links"><a href="{e(h(ctx, "/contacto"))}">Contacto</a> ·
<a href="{e(h(ctx, "/aviso-de-privacidad"))}">Aviso de privacidad</a> ·
<a href="{e(h(ctx, "/quienes-somos"))}">Directorio</a></div>
<p class="pie-copy">Noticias del Valle, Toluca, Estado de México. Todos los derechos reservados.</p>
</footer>
</body>
</html>
"""

    def route(self, path: str) -> tuple[str, str] | None:
        if path == "/aviso-de-privacidad":
            return ("static", "aviso-legal")
        return super().route(path)

    def static_path(self, key: str) -> str:
        return "/aviso-de-privacidad" if key == "aviso-legal" else f"/{key}"

    def teaser(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        return (
            f'<div class="nota-lista"><a class="nota-lista-titulo" '
            f'href="{e(self.href(ctx, article["path"]))}">{e(article["title"])}</a>'
            f'<span class="nota-lista-fecha">{published:%d/%m/%Y}</span></div>'
        )

    def article_head(self, ctx: Ctx, article: Article) -> str:
        names = ", ".join(article["authors"]) or "Redacción"
        return (
            f'<meta name="author" content="{e(names)}">\n'
            f'<meta name="description" content="{e(article["paragraphs"][0][:160])}">\n'
            f'<link rel="canonical" href="{e(ctx.url(article["path"]))}">'
        )

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        paragraphs = self.paragraphs(article, "nota-parrafo")
        if len(paragraphs) > 2:
            paragraphs.insert(2, '<div class="banner-pub banner-nota">Publicidad</div>')
        related = "".join(
            f'<li><a href="{e(self.href(ctx, a["path"]))}">{e(a["title"])}</a></li>'
            for a in ctx.related(article)
        )
        tags = " ".join(
            f'<a class="nota-tag" href="{e(self.href(ctx, self.tag_path(t)))}">#{e(t)}</a>'
            for t in article["tags"]
        )
        comments = "".join(
            f'<div class="comentario"><strong class="comentario-autor">{e(n)}</strong>'
            f'<p class="comentario-texto">{e(t)}</p></div>'
            for n, t, _ in comments_for(article)
        )
        main = f"""<div class="wrapper-nota">
<div class="nota-seccion">{e(article["section"])}</div>
<h1 class="nota-titulo">{e(article["title"])}</h1>
<div class="nota-datos"><div class="nota-autor">Por {self.byline_names(ctx, article)}</div>
<time class="nota-fecha" datetime="{e(article["published"])}">{published:%d/%m/%Y %H:%M}</time>
</div>
<div class="nota-cuerpo">
{chr(10).join(paragraphs)}
</div>
<div class="nota-tags">{tags}</div>
<div class="nota-relacionadas"><h3>También te puede interesar</h3><ul>{related}</ul></div>
<section class="comentarios"><h3>Comentarios</h3>{comments}</section>
</div>"""
        return self.document(
            ctx, self.title(ctx, article["title"]), main, self.article_head(ctx, article), "nota"
        )


# ---------------------------------------------------------------------------------------------
class Gaceta(Theme):
    """Joomla-1.5-like table layout; no metadata at all; served as windows-1252."""

    title_format = "{title} - {site}"
    section_prefix = "/index.php/"
    tag_prefix = "/index.php/etiquetas/"
    author_prefix = "/index.php/autores/"
    trailing_slash = False
    static_prefix = "/index.php/"

    def route(self, path: str) -> tuple[str, str] | None:
        for key in STATIC_PAGES:
            if path == self.static_path(key):
                return ("static", key)
        for kind, prefix in (("tag", self.tag_prefix), ("author", self.author_prefix)):
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                return (kind, path[len(prefix) :])
        rest = path.removeprefix(self.section_prefix)
        if rest != path and rest and "/" not in rest:
            return ("section", rest)
        return None

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        menu = "".join(
            f'<tr align="left"><td><a href="{e(self.section_path(s))}" class="mainlevel">'
            f"{e(s)}</a></td></tr>"
            for s in ctx.sections()
        )
        return f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
 "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="es-es" lang="es-es">
<head>
<meta http-equiv="content-type" content="text/html; charset=iso-8859-1" />
<meta name="generator" content="Joomla! 1.5 - Open Source Content Management" />
<title>{e(title)}</title>
<link href="/index.php?format=feed&amp;type=rss" rel="alternate" type="application/rss+xml"
 title="RSS 2.0" />
{head}
</head>
<body id="page_bg" class="{e(kind)}">
<div id="cookieNotice" style="position:fixed;bottom:0">Este sitio web utiliza cookies propias
y de terceros. <a href="#" onclick="return false;">Cerrar</a></div>
<table width="950" align="center" cellpadding="0" cellspacing="0" id="contenedor">
<tr><td colspan="3" id="cabecera"><a href="/"><img src="/images/logo_gaceta.gif"
 alt="La Gaceta Insular" border="0" /></a>
<div class="moduletable_banner">Espacio publicitario</div></td></tr>
<tr>
<td valign="top" width="180" id="izquierda"><div class="moduletable_menu">
<h3>Menú principal</h3><table width="100%" border="0" cellpadding="0" cellspacing="1">
<tr align="left"><td><a href="/" class="mainlevel">Portada</a></td></tr>{menu}</table></div></td>
<td valign="top" id="centro">
{main}
</td>
<td valign="top" width="180" id="derecha"><div class="moduletable">
<h3>Publicidad</h3><div class="bannergroup">Anúnciese aquí</div></div></td>
</tr>
<tr><td colspan="3" id="pie"><div align="center">La Gaceta Insular &copy; Santo Domingo,
República Dominicana. <a href="/index.php/contacto">Contáctenos</a> |
<a href="/index.php/aviso-legal">Aviso legal</a></div></td></tr>
</table>
</body>
</html>
"""

    def teaser(self, ctx: Ctx, article: Article) -> str:
        return (
            f'<table class="contentpaneopen"><tr><td class="contentheading" width="100%">'
            f'<a href="{e(article["path"])}" class="contentpagetitle">{e(article["title"])}</a>'
            f"</td></tr><tr><td>{e(article['paragraphs'][0][:180])}…</td></tr></table>"
            '<span class="article_separator">&nbsp;</span>'
        )

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        names = ", ".join(article["authors"]) or "Redacción"
        body = "\n".join(self.paragraphs(article))
        related = "".join(
            f'<li><a href="{e(a["path"])}">{e(a["title"])}</a></li>' for a in ctx.related(article)
        )
        comments = "".join(
            f'<div class="comment-box"><span class="comment-author">{e(n)}</span>'
            f'<div class="comment-body">{e(t)}</div></div>'
            for n, t, _ in comments_for(article)
        )
        when = long_date(published, weekday=True)
        main = f"""<table class="contentpaneopen">
<tr><td class="contentheading" width="100%">{e(article["title"])}</td>
<td align="right" width="100%" class="buttonheading"><a href="#" title="Imprimir">
<img src="/images/M_images/printButton.png" alt="Imprimir" /></a></td></tr></table>
<table class="contentpaneopen">
<tr><td valign="top"><span class="small">Escrito por {e(names)}</span>&nbsp;&nbsp;</td></tr>
<tr><td valign="top" class="createdate">Publicado: {e(when)} {published:%H:%M}</td></tr>
<tr><td valign="top">
{body}
</td></tr>
</table>
<span class="article_separator">&nbsp;</span>
<div class="moduletable"><h3>Artículos relacionados</h3><ul class="relateditems">{related}</ul>
</div>
<div id="jc"><h4>Comentarios</h4><div id="comments-list">{comments}</div></div>"""
        return self.document(ctx, self.title(ctx, article["title"]), main, "", "article")


# ---------------------------------------------------------------------------------------------
class Cronica(Theme):
    """Next.js-like markup with hashed class names; JSON-LD @graph; relative visible date."""

    title_format = "{title} | {site}"
    section_prefix = "/"
    tag_prefix = "/noticias-sobre/"
    author_prefix = "/autor/"

    def href(self, ctx: Ctx, path: str) -> str:
        return ctx.url(path)

    def route(self, path: str) -> tuple[str, str] | None:
        found = super().route(path)
        if found and found[0] == "section" and found[1] in {"noticias-sobre", "autor"}:
            return None
        return found

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        h = self.href
        nav = "".join(
            f'<li class="Nav_item__p0q1"><a href="{e(h(ctx, self.section_path(s)))}">{e(s)}</a>'
            "</li>"
            for s in ctx.sections()
        )
        return f"""<!DOCTYPE html><html lang="es"><head><meta charSet="utf-8"/>
<meta name="viewport" content="width=device-width"/><title>{e(title)}</title>
{head}
<meta name="next-head-count" content="12"/></head>
<body><div id="__next" data-page="{e(kind)}">
<div class="Consent_modal__9fK2a" role="dialog"><p>Usamos cookies propias y de terceros.</p>
<button class="Consent_accept__Zz81x">Aceptar todas</button></div>
<header class="Header_header__x1QpA"><a class="Header_logo__3Fk0e" href="{e(h(ctx, "/"))}">
Crónica<span>Andina</span></a><nav class="Nav_nav__7hY2c"><ul>{nav}</ul></nav></header>
<div class="Ads_top__0aB1c" data-ad-unit="/cronica/top">Publicidad</div>
<main class="Layout_main__kP2sW">
{main}
</main>
<footer class="Footer_footer__Q8d1m"><ul><li><a href="{e(h(ctx, "/contacto/"))}">Contacto</a>
</li><li><a href="{e(h(ctx, "/aviso-legal/"))}">Términos de uso</a></li></ul>
<p>© Crónica Andina. Lima, Perú. Prohibida su reproducción total o parcial.</p></footer>
</div>
<script id="__NEXT_DATA__" type="application/json">{{"buildId":"k8Zb3","page":"{e(kind)}"}}</script>
</body></html>
"""

    def teaser(self, ctx: Ctx, article: Article) -> str:
        return (
            f'<div class="StoryCard_card__Hj2kL"><h2 class="StoryCard_title__u7Gx0">'
            f'<a href="{e(self.href(ctx, article["path"]))}">{e(article["title"])}</a></h2>'
            f'<span class="StoryCard_section__b2Xy">{e(article["section"])}</span></div>'
        )

    def home_extra(self, ctx: Ctx) -> str:
        items = "".join(
            f'<li><a href="{e(self.href(ctx, a["path"]))}">{e(a["title"])}</a></li>'
            for a in ctx.private
        )
        if not items:
            return ""
        return f'<section class="Premium_box__2Rr9s"><h2>Para suscriptores</h2><ul>{items}</ul>' + (
            "</section>"
        )

    def article_head(self, ctx: Ctx, article: Article) -> str:
        url = ctx.url(article["path"])
        persons = [
            {"@type": "Organization" if n.startswith("Servicio") else "Person", "name": n}
            for n in article["authors"]
        ]
        author: object = persons[0] if len(persons) == 1 else persons
        graph = [
            {"@type": "WebSite", "@id": ctx.url("/#website"), "name": ctx.outlet.name},
            {
                "@type": "BreadcrumbList",
                "itemListElement": [
                    {"@type": "ListItem", "position": 1, "name": "Inicio", "item": ctx.url("/")},
                    {
                        "@type": "ListItem",
                        "position": 2,
                        "name": article["section"],
                        "item": ctx.url(self.section_path(article["section"])),
                    },
                ],
            },
            {
                "@type": "NewsArticle",
                "@id": url + "#article",
                "headline": article["title"],
                "datePublished": article["published"],
                "dateModified": article["modified"],
                "image": {"@type": "ImageObject", "url": ctx.url(ctx.image_path(article))},
                "articleSection": article["section"],
                "isAccessibleForFree": not article["disallowed"],
                "publisher": {"@id": ctx.url("/#website")},
            }
            | ({"author": author} if persons else {}),
        ]
        return f'<link rel="canonical" href="{e(url)}"/>\n' + jsonld(
            {"@context": "https://schema.org", "@graph": graph}
        )

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        first, *rest = self.paragraphs(article, "story-contents__font-paragraph")
        summary = article["paragraphs"][0]
        body = rest if len(article["paragraphs"]) > 2 else [first, *rest]
        if len(body) > 3:
            body.insert(3, '<div class="Ads_inline__8Hh3d" data-ad-unit="/cronica/mid"></div>')
        related = "".join(
            f'<a class="Related_item__c4Tn" href="{e(self.href(ctx, a["path"]))}">'
            f"{e(a['title'])}</a>"
            for a in ctx.related(article)
        )
        comments = "".join(
            f'<div class="Comments_item__7Ytq"><span class="Comments_user__1q9">{e(n)}</span>'
            f'<p class="Comments_text__m3Pd">{e(t)}</p></div>'
            for n, t, _ in comments_for(article)
        )
        standfirst = (
            f'<h2 class="sht__summary">{e(summary)}</h2>' if len(article["paragraphs"]) > 2 else ""
        )
        main = f"""<article class="story-contents">
<div class="sht"><a class="sht__section" href="{
            e(self.href(ctx, self.section_path(article["section"])))
        }">{e(article["section"])}</a>
<h1 class="sht__title">{e(article["title"])}</h1>
{standfirst}</div>
<div class="byline"><span class="byline__by">Por</span> {
            self.byline_names(ctx, article, "byline__author")
        }</div>
<div class="s-date">Publicado {e(relative_es(ctx.now, published))}</div>
<div class="story-contents__content">
{chr(10).join(body)}
</div>
</article>
<section class="Related_box__aa21"><h3>Te puede interesar</h3>{related}</section>
<section class="Comments_box__Lm8x"><h3>Comentarios ({len(comments_for(article))})</h3>
{comments}</section>"""
        return self.document(
            ctx, self.title(ctx, article["title"]), main, self.article_head(ctx, article), "story"
        )


# ---------------------------------------------------------------------------------------------
class SaludHoy(Theme):
    """Public-health portal layout; JSON-LD + Dublin Core; breadcrumb; 'opiniones' block."""

    title_format = "{title} · {site}"
    section_prefix = "/temas/"
    tag_prefix = "/etiquetas/"
    author_prefix = "/autoria/"

    def document(self, ctx: Ctx, title: str, main: str, head: str = "", kind: str = "page") -> str:
        nav = "".join(
            f'<li><a href="{e(self.section_path(s))}">{e(s)}</a></li>' for s in ctx.sections()
        )
        return f"""<!DOCTYPE html>
<html lang="es-ES">
<head>
<meta charset="utf-8">
<title>{e(title)}</title>
<meta name="DC.publisher" content="{e(ctx.outlet.name)}">
<meta name="DC.language" content="es">
{head}
<link rel="alternate" type="application/rss+xml" href="/rss/noticias.xml" title="Noticias">
</head>
<body class="portal portal-{e(kind)}">
<div id="cookies-aviso" class="aviso-cookies-portal"><p>Este portal utiliza únicamente cookies
técnicas. <a href="/aviso-legal/">Más información</a></p></div>
<div class="barra-gobierno">Portal de información sanitaria</div>
<header class="portal-cabecera"><a href="/" class="portal-logo">{e(ctx.outlet.name)}</a>
<form class="buscador" action="/buscar"><input name="q"></form></header>
<nav class="portal-menu"><ul><li><a href="/">Inicio</a></li>{nav}</ul></nav>
<div class="portal-contenido">
{main}
</div>
<footer class="portal-pie"><ul><li><a href="/aviso-legal/">Aviso legal</a></li>
<li><a href="/contacto/">Contacto</a></li><li><a href="/quienes-somos/">Accesibilidad</a></li></ul>
<p>Salud Pública Hoy · Madrid</p></footer>
</body>
</html>
"""

    def teaser(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        return (
            f'<li class="resultado"><a class="resultado-titulo" href="{e(article["path"])}">'
            f'{e(article["title"])}</a> <span class="resultado-fecha">'
            f"{published:%d/%m/%Y}</span></li>"
        )

    def listing(
        self,
        ctx: Ctx,
        heading: str,
        items: list[Article],
        path: str,
        page: int,
        pages: int,
        home: bool = False,
    ) -> str:
        teasers = "\n".join(self.teaser(ctx, a) for a in items)
        main = (
            f'<h1 class="titulo-pagina">{e(heading)}</h1>\n<ul class="listado">{teasers}</ul>\n'
            f'<div class="paginacion">{self.pager(ctx, path, page, pages)}</div>'
        )
        title = ctx.outlet.name if home and page == 1 else self.title(ctx, heading)
        return self.document(ctx, title, main, kind="home" if home else "listado")

    def article_head(self, ctx: Ctx, article: Article) -> str:
        url = ctx.url(article["path"])
        data = {
            "@context": "https://schema.org",
            "@type": "NewsArticle",
            "headline": article["title"],
            "url": url,
            "datePublished": article["published"],
            "dateModified": article["modified"],
            "author": [
                {"@type": "Organization" if n.startswith("Servicio") else "Person", "name": n}
                for n in article["authors"]
            ],
            "publisher": {"@type": "GovernmentOrganization", "name": ctx.outlet.name},
            "articleSection": article["section"],
            "image": ctx.url(ctx.image_path(article)),
        }
        return "\n".join(
            [
                f'<link rel="canonical" href="{e(url)}">',
                f'<meta name="DC.title" content="{e(article["title"])}">',
                f'<meta name="DC.date.issued" content="{e(article["published"][:10])}">',
                f'<meta name="DC.creator" content="{e("; ".join(article["authors"]))}">',
                f'<meta property="og:title" content="{e(article["title"])}">',
                jsonld(data),
            ]
        )

    def article(self, ctx: Ctx, article: Article) -> str:
        published = parse_dt(article["published"])
        body = "\n".join(self.paragraphs(article))
        names = self.byline_names(ctx, article)
        tags = "".join(
            f'<li><a href="{e(self.tag_path(t))}">{e(t)}</a></li>' for t in article["tags"]
        )
        related = "".join(
            f'<li><a href="{e(a["path"])}">{e(a["title"])}</a></li>' for a in ctx.related(article)
        )
        comments = "".join(
            f'<blockquote class="opinion"><p>{e(t)}</p><cite>{e(n)}</cite></blockquote>'
            for n, t, _ in comments_for(article)
        )
        digest = stable_int(article["path"]) % 900 + 100
        main = f"""<ol class="migas"><li><a href="/">Inicio</a></li><li><a href="{
            e(self.section_path(article["section"]))
        }">{e(article["section"])}</a></li>
<li>Noticia</li></ol>
<h1 class="titulo-comunicado">{e(article["title"])}</h1>
<dl class="ficha"><dt>Fecha de publicación</dt><dd>{published:%d/%m/%Y}</dd>
<dt>Autoría</dt><dd>{names}</dd><dt>Referencia</dt><dd>SPH-{digest}</dd></dl>
<div class="cuerpo-texto">
{body}
</div>
<div class="etiquetas"><h2>Etiquetas</h2><ul>{tags}</ul></div>
<div class="documentos-relacionados"><h2>Contenidos relacionados</h2><ul>{related}</ul></div>
<section class="opiniones"><h2>Opiniones de la ciudadanía</h2>{comments}</section>
<div class="valoracion">¿Le ha resultado útil esta información? <a href="#">Sí</a>
<a href="#">No</a></div>"""
        return self.document(
            ctx, self.title(ctx, article["title"]), main, self.article_head(ctx, article), "noticia"
        )


THEMES: dict[str, Theme] = {
    "elfaro": ElFaro(),
    "lamontana": LaMontana(),
    "delvalle": DelValle(),
    "gaceta": Gaceta(),
    "cronica": Cronica(),
    "saludhoy": SaludHoy(),
}
