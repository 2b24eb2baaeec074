"""Titles and people: the site name stripped from a title, authors from JSON-LD, microdata,
meta tags and bylines, and the agencies credited."""

from __future__ import annotations

import re
from typing import Any

from covidnews.text import fold_words
from crawler.extract.page import (
    _AGENCIES,
    _AUTHOR_PREFIX,
    _AUTHOR_SPLIT,
    _BYLINE_CLASS,
    _BYLINE_TEXT,
    _NAME_WORD,
    _NOT_NAMES,
    _TITLE_SEPARATORS,
    _clean,
    _types,
)


def _strip_site_suffix(title: str, site_names: list[str]) -> str:
    """Drop segments naming the site: 'Titular | Sección | EL PAÍS' → 'Titular | Sección'."""
    names = {fold_words(n) for n in site_names if n} - {""}
    pieces = _TITLE_SEPARATORS.split(title)
    seps = _TITLE_SEPARATORS.findall(title)
    if len(pieces) == 1 or not names:
        return title

    def site_like(segment: str) -> bool:
        folded = fold_words(segment)
        return (
            bool(folded)
            and len(folded) < 40
            and any(folded == n or folded in n or n in folded for n in names)
        )

    while len(pieces) > 1 and site_like(pieces[-1]):
        pieces.pop()
        seps.pop()
    while len(pieces) > 1 and site_like(pieces[0]):
        pieces.pop(0)
        seps.pop(0)
    out = pieces[0]
    for sep, piece in zip(seps, pieces[1:], strict=True):
        out += sep + piece
    return out.strip()


def _choose_title(candidates: list[str], site_names: list[str]) -> str:
    """The headline most sources agree on; a candidate that others extend with a separator
    ('Titular » Sección » Sitio') counts those as votes for itself."""
    cleaned = [_strip_site_suffix(c, site_names) for c in candidates if c]
    cleaned = [c for c in cleaned if c]
    if not cleaned:
        return ""

    def votes(c: str) -> int:
        n = 0
        for other in cleaned:
            if fold_words(other) == fold_words(c) or (
                other.startswith(c) and _TITLE_SEPARATORS.match(other[len(c) :])
            ):
                n += 1
        return n

    return max(cleaned, key=lambda c: (votes(c), -cleaned.index(c)))


def _names_from(value: Any, publisher: str) -> list[str]:
    out: list[str] = []
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, dict):
            name = item.get("name")
            if isinstance(name, list):
                name = " ".join(str(n) for n in name)
            types = _types(item)
            if (
                types
                and "person" not in types
                and fold_words(str(name or "")) == fold_words(publisher)
            ):
                continue  # the publisher as "author" says nothing
            out.extend(_split_authors(_clean(name)))
        elif isinstance(item, str):
            if item.startswith(("http://", "https://")):
                continue
            out.extend(_split_authors(_clean(item)))
    return out


_AUTHOR_META = ("article:author", "author", "dc.creator", "parsely-author", "sailthru.author")


def _authors(
    doc: Any,
    meta: dict[str, list[str]],
    article: dict[str, Any],
    publisher: str,
    site_names: list[str],
    byline: list[str],
) -> list[str]:
    """Authors, from the first source that names someone other than the site itself: JSON-LD
    ``author`` → microdata ``itemprop=author`` (its ``name`` part) → author meta tags → the
    visible byline. A source naming only the publisher ("lainformacion" as a Person) falls
    through to the next instead of leaving the article without authors."""
    sites = {fold_words(n) for n in site_names if n}

    def usable(names: list[str]) -> list[str]:
        return list(
            dict.fromkeys(
                n for n in names if n and fold_words(n) not in sites and n.lower() not in _AGENCIES
            )
        )

    for names in (
        _names_from(article.get("author"), publisher) if article else [],
        _microdata_authors(doc),
        *(
            [
                n
                for value in meta.get(key, [])
                if not value.startswith(("http://", "https://"))
                for n in _split_authors(_clean(value))
            ]
            for key in _AUTHOR_META
        ),
        byline,
    ):
        found = usable(names)
        if found:
            return found
    return []


def _agencies(meta: dict[str, list[str]], article: dict[str, Any], byline: list[str]) -> list[str]:
    """Agencies named where authors are (JSON-LD author, author meta, microdata, bylines)."""
    texts = list(byline)
    texts += [
        str(a.get("name") if isinstance(a, dict) else a) for a in _as_list(article.get("author"))
    ]
    for key in (*_AUTHOR_META, "itemprop:author"):
        texts += meta.get(key, [])
    found = []
    for text in texts:
        for part in _split_authors(_clean(text)):
            agency = _AGENCIES.get(part.lower())
            if agency and agency not in found:
                found.append(agency)
    return found


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _microdata_authors(doc: Any) -> list[str]:
    """``itemprop="author"`` elements: their ``itemprop="name"`` part when they have one (the rest
    is often the date or the city), else their own text, split into names."""
    out: list[str] = []
    for el in doc.xpath('//*[@itemprop="author"][not(self::meta)]'):
        if _in_comments(el):
            continue
        parts = el.xpath('.//*[@itemprop="name"]')
        texts = [(p.get("content") or p.text_content()) for p in parts] or [
            el.get("content") or el.text_content()
        ]
        for text in texts:
            out += [n for n in _split_authors(_clean(text)) if _looks_like_name(n)]
    return out


def _split_authors(text: str) -> list[str]:
    text = _AUTHOR_PREFIX.sub("", text.strip())
    if not text:
        return []
    names = []
    for part in _AUTHOR_SPLIT.split(text):
        part = _AUTHOR_PREFIX.sub("", part.strip(" .-–—:·"))
        if part and not _NOT_NAMES.search(part) and len(part) <= 60:
            names.append(part)
    return names


_COMMENTS = re.compile(r"coment|comment|respuesta|disqus|reply|foro|opinion-lector", re.I)


def _in_comments(el: Any) -> bool:
    """Inside a reader-comments block (whose "Por Fulano" bylines are not the article's)."""
    for node in [el, *el.iterancestors()]:
        if _COMMENTS.search(f"{node.get('class', '')} {node.get('id', '')}"):
            return True
    return False


def _looks_like_name(text: str) -> bool:
    words = text.split()
    return 1 <= len(words) <= 6 and all(_NAME_WORD.match(w) for w in words)


def _byline(doc: Any) -> tuple[list[str], str]:
    """Authors and date text from byline elements (class/id/rel naming author/byline/firma)."""
    authors: list[str] = []
    date_text = ""
    nodes = doc.xpath('//*[@rel="author"]') + [
        el
        for el in doc.xpath("//body//*[@class or @id]")
        if _BYLINE_CLASS.search((el.get("class") or "") + " " + (el.get("id") or ""))
    ]
    nodes += [
        el
        for el in doc.xpath(
            "//body//*[self::span or self::p or self::div or self::td or self::small]"
        )
        if len(el.text_content()) < 100
        and _BYLINE_TEXT.match(" ".join((el.text_content() or "").split()))
    ]
    nodes = [el for el in nodes if not _in_comments(el)]
    for el in nodes[:16]:
        if el.tag in {"script", "style", "img", "meta", "link"}:
            continue
        text = " ".join(el.text_content().split())
        if not text or len(text) > 200:
            continue
        strong = [
            " ".join(s.text_content().split())
            for s in el.xpath(
                ".//strong|.//b|.//a[contains(@href,'autor') or contains(@href,'author')]"
            )
        ]
        candidates = [s for s in strong if _looks_like_name(s)] or [
            p for p in _split_authors(text) if _looks_like_name(p)
        ]
        for name in candidates:
            if name not in authors:
                authors.append(name)
        if not date_text and re.search(
            r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\bde\s+\w+\s+de\s+\d{4}", text
        ):
            date_text = text
        if authors:
            break
    return authors, date_text
