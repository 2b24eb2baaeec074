"""Which links are articles, which are listings worth following, which are neither.

Used by the link-following spider on sites without feeds. A source's ``article_patterns``
(regexes on the path) decide when given; otherwise generic news-URL shapes do: a date in the path,
a long hyphenated slug, a numeric story id. Tag, author, search, login, media and paging URLs
are never articles.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from crawler.registry import SourceEntry

_NOT_ARTICLE = re.compile(
    r"/(?:tag|tags|etiqueta|etiquetas|tema|temas|topic|topics|autor|autores|author|authors|"
    r"firma|firmas|seccion|secciones|section|category|categoria|categorias|page|pagina|buscar|"
    r"busqueda|search|login|registro|suscripcion|suscribete|newsletter|newsletters|rss|feed|"
    r"feeds|contacto|aviso-legal|privacidad|cookies|terminos|staff|quienes-somos|about|"
    r"video|videos|galeria|galerias|fotos|fotogaleria|podcast|podcasts|horoscopo|clima|"
    r"wp-admin|wp-login|cdn-cgi)(?:/|$)",
    re.I,
)
_MEDIA = re.compile(
    r"\.(?:jpe?g|png|gif|webp|svg|ico|pdf|zip|gz|mp3|mp4|m4a|avi|mov|css|js|json|xml|rss|woff2?)$",
    re.I,
)
_DATE_PATH = re.compile(
    r"/(?:19|20)\d{2}[/-]?(?:0[1-9]|1[0-2])[/-]?(?:0[1-9]|[12]\d|3[01])?(?:/|-|$)"
)
_ID_SLUG = re.compile(
    r"[a-z0-9]+(?:-[a-z0-9]+){2,}[-_/]?(?:n?\d{4,})|(?:\d{5,})[-_/][a-z0-9]+-[a-z0-9]+"
)
_LONG_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+){3,}")


def is_media(url: str) -> bool:
    return bool(_MEDIA.search(urlsplit(url).path))


def is_excluded(url: str, entry: SourceEntry) -> bool:
    path = urlsplit(url).path or "/"
    return any(re.search(p, path) for p in entry.exclude_patterns)


def looks_like_article(url: str, entry: SourceEntry) -> bool:
    """Is this (canonical, in-domain) URL probably one article page?"""
    parts = urlsplit(url)
    path = parts.path or "/"
    if is_media(url) or is_excluded(url, entry):
        return False
    if entry.article_patterns:
        return any(re.search(p, path) for p in entry.article_patterns)
    if path in {"", "/"} or _NOT_ARTICLE.search(path) or re.search(r"[?&]page=", parts.query):
        return False
    last = path.rstrip("/").rsplit("/", 1)[-1].lower()
    last = re.sub(r"\.(?:s?html?|php|aspx?)$", "", last)
    if _DATE_PATH.search(path) and len(last) > 3:
        return True
    return bool(_ID_SLUG.search(last) or _LONG_SLUG.fullmatch(last))


def worth_following(url: str, entry: SourceEntry) -> bool:
    """A listing (home, section, paginated index) the link spider may read for more links."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if is_media(url) or is_excluded(url, entry):
        return False
    if re.search(
        r"/(?:autor|autores|author|authors|tag|tags|etiqueta|buscar|search|login)(?:/|$)",
        path,
        re.I,
    ):
        return False
    return not looks_like_article(url, entry)
