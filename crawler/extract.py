"""Article extraction: body text, title, authors, dates and other metadata from one HTML page.

Body text comes from trafilatura, or from the publisher's own JSON-LD ``articleBody`` when that is
complete; metadata from JSON-LD (``NewsArticle`` and friends), OpenGraph, meta tags, bylines and
``<time>`` elements, with Spanish dates ("12 de marzo de 2020", "hace 3 horas") read relative to
the fetch time. Each field takes the most trustworthy source that has it.

Contract of ``covidnews extract`` (researchers and evaluation rely on it): a JSON object with at
least ``url``, ``title``, ``text``, ``authors`` (list), ``published_at`` (ISO 8601 or null) and
``language``.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import urljoin, urlsplit

import lxml.html
from lxml import etree

from covidnews.text import fold_words
from covidnews.urls import InvalidURL, canonical_url, host_of
from crawler.dates import date_from_url, parse_date, parse_iso

ARTICLE_TYPES = {
    "newsarticle", "article", "reportagenewsarticle", "analysisnewsarticle", "blogposting",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "liveblogposting",
    "medicalscholarlyarticle", "report", "scholarlyarticle", "socialmediaposting", "webpage",
}  # fmt: skip
_TITLE_SEPARATORS = re.compile(r"\s+(?:\||-|–|—|::|»|·)\s+")
_BYLINE_CLASS = re.compile(
    r"(?:^|[\s_-])(?:author|autor|autora|byline|firma|signature|firmas)", re.I
)
_BYLINE_TEXT = re.compile(r"^(?:por|escrito por|by|texto de)\s*:?\s+[A-ZÁÉÍÓÚÑ]", re.I)
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|;|\||/|\s+y\s+|\s+and\s+|\s+e\s+)\s*")
_AUTHOR_PREFIX = re.compile(r"^(?:por|by|de|texto|textos|redacta|escrito por)\s*:?\s+", re.I)
_NAME_WORD = re.compile(r"^[A-ZÁÉÍÓÚÑÜ][\w'’.-]*$|^(?:de|del|la|las|los|y|da|dos|van|von|di)$")
_UPDATE_LINE = re.compile(
    r"actualiza|[uú]ltima (?:modificaci|edici)|modificad[oa]|editad[oa]|updated|last modified", re.I
)
# A bare "Redacción" (newsroom) credit names nobody, like the publisher given as the author.
_NOT_NAMES = re.compile(
    r"\d|@|https?:|www\.|actualizad|publicad|hace\s|minutos|horas|redacci[oó]n\s*$", re.I
)
#: news agencies credited in bylines ("Por E.P", "EFE", "Agencias"): the article's source
#: agency (``Extracted.agencies``), not a person; an agency-only byline leaves the authors to the
#: next source of names
_AGENCIES = {
    "efe": "EFE", "agencia efe": "EFE", "afp": "AFP", "agence france-presse": "AFP",
    "europa press": "Europa Press", "ep": "Europa Press", "e.p": "Europa Press",
    "e.p.": "Europa Press", "reuters": "Reuters", "ap": "AP", "associated press": "AP",
    "ansa": "ANSA", "dpa": "dpa", "xinhua": "Xinhua", "notimex": "Notimex", "télam": "Télam",
    "telam": "Télam", "prensa latina": "Prensa Latina", "sputnik": "Sputnik",
    "agencias": "Agencias", "ips": "IPS", "colprensa": "Colprensa", "andina": "Andina",
    "ansa latina": "ANSA",
}  # fmt: skip
# Lines that are site furniture, not article text (subscription walls, comment rules, sharing).
_BOILERPLATE = re.compile(
    r"(?:tu suscripci[oó]n|suscr[ií]bete|hazte suscriptor|inicia sesi[oó]n para|ya eres suscriptor"
    r"|contenido de los comentarios|opini[oó]n de los usuarios|reserva el derecho de eliminar"
    r"|no est[aá] permitido verter|normas de (?:participaci[oó]n|la comunidad)"
    r"|^comentar(?:ios)?$|^\d+\s+comentarios?$|^compartir(?: en)?\b|^s[ií]guenos\b"
    r"|^(?:lee|leer) (?:tambi[eé]n|m[aá]s)\b|^te puede interesar|^m[aá]s informaci[oó]n:?$"
    r"|^noticias relacionadas|^publicidad$|^flecha$|aceptar cookies|pol[ií]tica de cookies"
    r"|^recibe (?:nuestra|el) newsletter|^ap[uú]ntate a (?:la|nuestra) newsletter"
    r"|this content is for subscribers|^sign up for|^advertisement$)",
    re.I,
)
_STOPWORDS = {
    lang: set(words.split())
    for lang, words in {
        "es": "el la de que y en los del las por para con una se su al",
        "en": "the of and to in is that for with on was as by are",
        "pt": "o os da do das dos que em para com uma não são ao",
        "fr": "le les des du et est que pour dans une sur au pas",
        "ca": "els les del amb per que una és dels als ha seu",
    }.items()
}


class ExtractionError(ValueError):
    """The input is not an HTML page an article can be read from."""


@dataclass
class Extracted:
    """What one page says about its article."""

    url: str
    title: str = ""
    text: str = ""
    authors: list[str] = field(default_factory=list)
    published_at: datetime | None = None
    modified_at: datetime | None = None
    language: str | None = None
    section: str | None = None
    image: str | None = None
    description: str | None = None
    site_name: str | None = None
    is_article: bool = False  # the page declares itself an article or has an article body
    #: news agencies credited in the byline or author fields (EFE, Europa Press…): the wire
    #: source, kept apart from the authors
    agencies: list[str] = field(default_factory=list)
    #: where the publication date was read: ``metadata`` (JSON-LD, meta tags, ``<time pubdate>``),
    #: ``byline``, ``time`` (visible ``<time>``), ``url`` (a date in the path: the day only,
    #: an estimate), ``text`` (a dated line of the page); None when the page gives none — no date
    #: is ever made up from the fetch time
    published_from: str | None = None

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("published_at", "modified_at"):
            value = out[key]
            out[key] = value.isoformat() if value else None
        return out


# Decoding -----------------------------------------------------------------------------------


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Bytes to text: HTTP charset, BOM, ``<meta charset>``, then detection.

    A declared charset that does not decode cleanly (a cp1252 page labelled UTF-8, or unlabelled)
    falls back to what does; ISO-8859-1 labels are read as windows-1252, as browsers do.
    """
    from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding

    candidates: list[str] = []
    if body.startswith(b"\xef\xbb\xbf"):
        candidates.append("utf-8-sig")
    # Valid UTF-8 with non-ASCII text is UTF-8 whatever the label says: cp1252 text almost
    # never decodes as UTF-8, while UTF-8 pages labelled ISO-8859-1 are common.
    candidates.append("utf-8")
    for declared in (http_content_type_encoding(content_type), html_body_declared_encoding(body)):
        if declared:
            candidates.append(declared)
    candidates += ["utf-8", "cp1252"]
    for name in candidates:
        name = {"iso8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252"}.get(name, name)
        try:
            text = body.decode(name)
        except (LookupError, UnicodeDecodeError):
            continue
        if name.startswith("utf") or "\ufffd" not in text:
            return _unmojibake(text)
    return _unmojibake(body.decode("utf-8", errors="replace"))


#: UTF-8 read as cp1252/latin-1, the usual mojibake of Spanish pages ("PolicÃ­a", "Â«"): a cheap
#: test before asking ftfy
_MOJIBAKE = re.compile("[ÃÂ][\u0080-\u00bf\u2018-\u203a\u0152\u0153\u0160\u0161\u0178]")


def _unmojibake(text: str) -> str:
    """Repair text that was double-encoded before it reached us (a CMS storing UTF-8 read as
    cp1252 — the page itself carries ``PolicÃ­a``): ftfy's ``fix_encoding`` when a sample looks
    broken. Correct pages are left alone (no marker, or ftfy finds nothing bad)."""
    if len(_MOJIBAKE.findall(text, 0, 200_000)) < 3:
        return text
    import ftfy

    return str(ftfy.fix_encoding(text))


def _parse(html: str) -> Any:
    html = re.sub(r"^\s*<\?xml[^>]*\?>", "", html)
    if not html.strip():
        raise ExtractionError("empty document")
    try:
        parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
        doc = lxml.html.document_fromstring(html.encode("utf-8", "surrogatepass"), parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise ExtractionError(f"not an HTML document: {exc}") from None
    if doc is None:
        raise ExtractionError("not an HTML document")
    return doc


# Metadata sources -----------------------------------------------------------------------------


def _clean(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    value = html_lib.unescape(value)
    if "<" in value and ">" in value:
        value = re.sub(r"<[^>]+>", " ", value)
    return " ".join(value.split())


def _jsonld_objects(doc: Any) -> Iterator[dict[str, Any]]:
    for script in doc.xpath('//script[contains(translate(@type,"LDJSON","ldjson"),"ld+json")]'):
        raw = (script.text or "").strip()
        if not raw:
            continue
        raw = re.sub(r"^\s*<!--|-->\s*$", "", raw)
        try:
            data = json.loads(raw, strict=False)
        except json.JSONDecodeError:
            try:  # common breakage: trailing commas
                data = json.loads(re.sub(r",\s*([}\]])", r"\1", raw), strict=False)
            except json.JSONDecodeError:
                continue
        stack = [data]
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack.extend(reversed(item))
            elif isinstance(item, dict):
                yield item
                for key in ("@graph", "mainEntity", "itemListElement"):
                    if isinstance(item.get(key), list | dict):
                        stack.append(item[key])


def _types(obj: dict[str, Any]) -> set[str]:
    value = obj.get("@type")
    values = value if isinstance(value, list) else [value]
    return {str(v).lower().rsplit("/", 1)[-1] for v in values if v}


def _pick_article(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON-LD object that describes the article (news types first, then the richest)."""
    scored = []
    for obj in objects:
        types = _types(obj)
        if not types & ARTICLE_TYPES:
            continue
        score = (2 if types & (ARTICLE_TYPES - {"webpage", "report"}) else 0) + sum(
            1 for k in ("headline", "datePublished", "author", "articleBody") if obj.get(k)
        )
        scored.append((score, obj))
    if not scored:
        return {}
    return max(scored, key=lambda pair: pair[0])[1]


def _meta(doc: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for el in doc.xpath("//meta[@content]"):
        key = (el.get("property") or el.get("name") or el.get("itemprop") or "").strip().lower()
        if key:
            found.setdefault(key, []).append(el.get("content", ""))
    for el in doc.xpath("//*[@itemprop][not(self::meta)]"):
        key = "itemprop:" + el.get("itemprop", "").strip().lower()
        value = el.get("datetime") or el.get("content") or el.text_content()
        found.setdefault(key, []).append(value or "")
    return found


def _first(meta: dict[str, list[str]], *keys: str) -> str:
    for key in keys:
        for value in meta.get(key, []):
            cleaned = _clean(value)
            if cleaned:
                return cleaned
    return ""


# Fields -------------------------------------------------------------------------------------


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


def _guess_language(text: str) -> str | None:
    words = re.findall(r"\w+", text.lower()[:5000])
    if len(words) < 5:
        return None
    scores = {lang: sum(1 for w in words if w in stops) for lang, stops in _STOPWORDS.items()}
    lang, best = max(scores.items(), key=lambda kv: kv[1])
    return lang if best >= 3 else None


def _language(
    doc: Any, meta: dict[str, list[str]], article: dict[str, Any], text: str
) -> str | None:
    for raw in (
        doc.get("lang"),
        doc.get("xml:lang"),
        _first(meta, "language", "content-language", "dc.language"),
        article.get("inLanguage") if isinstance(article.get("inLanguage"), str) else None,
        _first(meta, "og:locale"),
    ):
        match = re.match(r"^\s*([a-zA-Z]{2})(?:[-_]|$)", raw or "")
        if match:
            return match.group(1).lower()
    return _guess_language(text)


# Body ---------------------------------------------------------------------------------------


def _body_text(html: str, url: str, article: dict[str, Any], doc: Any = None) -> str:
    import trafilatura

    extracted = (
        trafilatura.extract(
            doc if doc is not None else html,  # our parsed tree: no second parse
            url=url or None,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            deduplicate=False,
        )
        or ""
    )
    if len(extracted) < 250:
        recall = trafilatura.extract(
            html, url=url or None, favor_recall=True, include_comments=False, include_tables=False
        )
        extracted = recall if recall and len(recall) > len(extracted) else extracted
    if len(extracted) < 250:
        dense = _densest_paragraphs(html)
        extracted = dense if len(dense) > len(extracted) else extracted
    declared = article.get("articleBody")
    if isinstance(declared, str):
        declared = html_lib.unescape(declared)
        if "<" in declared and re.search(r"</?(?:p|div|br|span|a)\b", declared):
            declared = re.sub(r"<br\s*/?>|</p>", "\n", declared)
            declared = re.sub(r"<[^>]+>", "", declared)
        declared = "\n".join(" ".join(line.split()) for line in declared.splitlines()).strip()
        # The publisher's own body wins when complete: not a teaser, not cut with an ellipsis.
        if (
            len(declared) >= 400
            and len(declared) >= 0.7 * len(extracted)
            and not declared.rstrip().endswith(("...", "…"))
        ):
            return declared
    return extracted


def _densest_paragraphs(html: str) -> str:
    """Last resort for layouts extractors miss (old table-based CMSs): the element whose direct
    ``<p>`` children hold the most text, outside page furniture."""
    doc = _parse(html)
    for bad in doc.xpath("//script|//style|//noscript|//form|//nav|//footer|//header|//aside"):
        bad.drop_tree()
    best, best_len = None, 0
    for parent in {p.getparent() for p in doc.xpath("//p") if p.getparent() is not None}:
        if _in_chrome(parent):
            continue
        total = sum(len(p.text_content().strip()) for p in parent.findall("p"))
        if total > best_len:
            best, best_len = parent, total
    if best is None:
        return ""
    paras = [" ".join(p.text_content().split()) for p in best.findall("p")]
    return "\n".join(p for p in paras if p)


def _clean_body(text: str, title: str, byline_authors: list[str]) -> str:
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    folded_title = fold_words(title)
    # Leading furniture: the headline and the byline. (A line equal to the meta description
    # stays: sites often fill the description with the first paragraph.)
    while lines:
        head = fold_words(lines[0])
        if (head and head == folded_title) or (
            len(lines[0]) < 120 and byline_authors and any(a in lines[0] for a in byline_authors)
        ):
            lines.pop(0)
        else:
            break
    return "\n".join(line for line in lines if not _BOILERPLATE.search(line))


# Entry point ---------------------------------------------------------------------------------


@dataclass
class _Page:
    """What every field function reads: the parsed page and its metadata."""

    doc: Any
    meta: dict[str, list[str]]
    objects: list[dict[str, Any]]
    article: dict[str, Any]  # the JSON-LD article object ({} when none)
    url: str
    tz: tzinfo
    now: datetime
    publisher: str = ""
    site_name: str = ""
    site_names: list[str] = field(default_factory=list)


def extract(
    page: str | bytes,
    url: str,
    *,
    content_type: str | None = None,
    fetched_at: datetime | None = None,
    tz: tzinfo = UTC,
    selectors: Mapping[str, str] | None = None,
) -> Extracted:
    """Read the article in ``page`` (HTML text or bytes) fetched from ``url``.

    ``tz`` is the zone for dates written without one (the source's); ``fetched_at`` anchors
    relative dates ("hace 3 horas"). ``selectors`` (a source's own, from the registry: CSS for
    ``title``, ``authors``, ``published``, ``body``) are tried before the generic chain of each
    field, which still answers when a selector finds nothing. One function per field below, each
    with its fallback chain. Raises :class:`ExtractionError`.
    """
    html = decode_html(page, content_type) if isinstance(page, bytes) else page
    doc = _parse(html)
    objects = list(_jsonld_objects(doc))
    p = _Page(
        doc, _meta(doc), objects, _pick_article(objects), url, tz, fetched_at or datetime.now(UTC)
    )
    _site(p)
    own = _selected(doc, selectors or {})
    canonical, base = _canonical(p)
    title = own.get("title") or _title(p)
    byline_authors, byline_date = _byline(doc)
    authors = _split_authors(own["authors"]) if own.get("authors") else []
    authors = authors or _authors(doc, p.meta, p.article, p.publisher, p.site_names, byline_authors)
    published, published_from = None, None
    if own.get("published"):
        published, published_from = parse_date(own["published"], tz=tz, now=p.now), "selector"
    if published is None:
        published, published_from = _published(p, byline_date, canonical or url)
    image = _image(p)
    # The tree is handed to trafilatura last: it prunes it in place.
    body = _clean_body(own.get("body") or _body_text(html, url, p.article, doc), title, authors)
    return Extracted(
        url=canonical or url,
        title=title,
        text=body,
        authors=authors,
        published_at=published,
        modified_at=_modified(p),
        language=_language(doc, p.meta, p.article, body),
        section=_section(p) or None,
        image=urljoin(base, image) if image and base else (image or None),
        description=_description(p) or None,
        site_name=p.site_name or None,
        is_article=_is_article(p, body),
        agencies=_agencies(p.meta, p.article, byline_authors),
        published_from=published_from,
    )


# Fields: one function each, its sources in the order they are trusted ----------------------


def _selected(doc: Any, selectors: Mapping[str, str]) -> dict[str, str]:
    """A source's own CSS selectors: the text each finds (``published``: a ``datetime`` or
    ``content`` attribute first; ``body``: one line per element)."""
    found: dict[str, str] = {}
    for name, css in selectors.items():
        try:
            elements = doc.cssselect(css)
        except Exception:  # an invalid selector was refused by the registry; never fail a page
            continue
        elements = [el for el in elements if not _in_comments(el)]
        if not elements:
            continue
        if name == "body":
            lines = [" ".join(el.text_content().split()) for el in elements]
            found[name] = "\n".join(line for line in lines if line)
        elif name == "published":
            el = elements[0]
            found[name] = el.get("datetime") or el.get("content") or el.text_content()
        elif name == "authors":
            found[name] = ", ".join(" ".join(el.text_content().split()) for el in elements)
        else:
            found[name] = " ".join(elements[0].text_content().split())
    return {k: v for k, v in found.items() if v.strip()}


def _site(p: _Page) -> None:
    """The publisher's and the site's names (never an author, never part of a title)."""
    publisher = p.article.get("publisher")
    p.publisher = _clean(publisher.get("name")) if isinstance(publisher, dict) else ""
    p.site_name = _first(p.meta, "og:site_name", "application-name", "twitter:site") or p.publisher
    host = host_of(p.url) if p.url else ""
    p.site_names = [p.site_name, p.publisher, host, host.split(".")[0] if host else ""]
    p.site_names += [
        _clean(o.get("name"))
        for o in p.objects
        if _types(o) & {"organization", "newsmediaorganization", "website"}
    ]


def _canonical(p: _Page) -> tuple[str, str]:
    """(canonical URL, base for relative links): the page's own claim (``<link
    rel=canonical>``, ``og:url``) when it stays on the same site, else the fetched URL."""
    base = p.url or _first(p.meta, "og:url")
    canonical = p.url
    for href in p.doc.xpath('//link[@rel="canonical"]/@href') + p.meta.get("og:url", []):
        candidate = urljoin(base, href.strip()) if base else href.strip()
        if candidate and (not p.url or _same_site(candidate, p.url)):
            canonical = candidate
            break
    try:
        return (canonical_url(canonical) if canonical else ""), base
    except InvalidURL:
        return p.url, base


def _title(p: _Page) -> str:
    """JSON-LD headline, OpenGraph, Twitter card, ``<h1>``, ``<title>``, meta title — the one
    most of them agree on, without the site's name."""
    h1 = [" ".join(h.text_content().split()) for h in p.doc.xpath("//h1")][:1]
    title_tag = [" ".join(t.text_content().split()) for t in p.doc.xpath("//title")][:1]
    return _choose_title(
        [
            _clean(p.article.get("headline")),
            _first(p.meta, "og:title"),
            _first(p.meta, "twitter:title"),
            *h1,
            *title_tag,
            _first(p.meta, "title", "dc.title"),
        ],
        p.site_names,
    )


def _description(p: _Page) -> str:
    return _clean(p.article.get("description")) or _first(
        p.meta, "og:description", "description", "twitter:description"
    )


_PUBLISHED_META = (
    "article:published_time", "og:published_time", "itemprop:datepublished", "datepublished",
    "pubdate", "publishdate", "publish-date", "dc.date.issued", "dc.date", "date",
    "sailthru.date", "parsely-pub-date", "cxenseparse:recs:publishtime",
)  # fmt: skip
_MODIFIED_META = (
    "article:modified_time", "og:updated_time", "itemprop:datemodified", "datemodified",
    "last-modified", "dc.date.modified",
)  # fmt: skip


def _published(p: _Page, byline_date: str, url: str) -> tuple[datetime | None, str | None]:
    """(publication date, where it was read): JSON-LD and meta tags (ISO only) → the byline's
    date → visible ``<time>`` → a date in the URL (the day only) → a dated line of the page
    that is not an update line. None when the page gives no date: never the fetch time."""
    values = [
        p.article.get("datePublished"),
        p.article.get("dateCreated"),
        *(p.meta.get(k, [None])[0] for k in _PUBLISHED_META),
        *p.doc.xpath("//time[@pubdate]/@datetime"),
    ]
    found = _date(values, p.tz, p.now, iso_only=True)
    if found is not None:
        return found, "metadata"
    if byline_date:
        found = parse_date(byline_date, tz=p.tz, now=p.now)
        if found is not None:
            return found, "byline"
    found = _date(_time_values(p.doc), p.tz, p.now)
    if found is not None:
        return found, "time"
    found = date_from_url(url, p.tz)
    if found is not None:
        return found, "url"
    visible = p.doc.xpath(
        "//article//time|//*[contains(@class,'fecha') or contains(@class,'date')"
        " or contains(@class,'publicado')]"
    )
    texts = [" ".join(el.text_content().split()) for el in visible if not _in_chrome(el)]
    # An update line ("Actualizado hoy", "Última actualización: hace 2 horas") dates the last
    # edit, not the publication: read as a publication date it turns an old article into one
    # published the day it was fetched. No date beats an invented one.
    texts = [t for t in texts if len(t) < 120 and not _UPDATE_LINE.search(t)]
    found = _date(texts[:8], p.tz, p.now)
    return (found, "text") if found is not None else (None, None)


def _modified(p: _Page) -> datetime | None:
    values = [p.article.get("dateModified"), *(p.meta.get(k, [None])[0] for k in _MODIFIED_META)]
    return _date(values, p.tz, p.now, iso_only=True)


def _section(p: _Page) -> str:
    section = p.article.get("articleSection")
    if isinstance(section, list):
        section = section[0] if section else ""
    return _clean(section) or _first(p.meta, "article:section")


def _image(p: _Page) -> str:
    image = _first(p.meta, "og:image", "twitter:image")
    if image:
        return image
    img = p.article.get("image")
    if isinstance(img, list) and img:
        img = img[0]
    if isinstance(img, dict):
        img = img.get("url")
    return img if isinstance(img, str) else ""


def _is_article(p: _Page, body: str) -> bool:
    """The page declares itself an article, or (without metadata) has prose: lines of running
    text, not teaser lists."""
    if p.article and _types(p.article) & (ARTICLE_TYPES - {"webpage"}):
        return True
    prose = sum(len(line) for line in body.splitlines() if len(line) >= 80)
    return _first(p.meta, "og:type") == "article" or prose >= 500


def _date(
    values: list[Any], tz: tzinfo, now: datetime, *, iso_only: bool = False
) -> datetime | None:
    for value in values:
        if not isinstance(value, str) or not value.strip():
            continue
        parsed = parse_iso(value, tz) if iso_only else parse_date(value, tz=tz, now=now)
        if parsed is None and iso_only:
            parsed = parse_date(value, tz=tz, now=now)
        if parsed is not None and 1990 <= parsed.year <= now.year + 1:
            return parsed
    return None


_CHROME = {"header", "nav", "footer", "aside"}


def _in_chrome(el: Any) -> bool:
    """Inside page furniture (header, nav, footer, aside, or a 'today's date' widget)?"""
    for node in el.iterancestors():
        label = f"{node.get('class', '')} {node.get('id', '')}".lower()
        if node.tag in _CHROME or any(
            w in label for w in ("header", "cabecera", "footer", "hoy", "today")
        ):
            return True
    label = f"{el.get('class', '')} {el.get('id', '')}".lower()
    return "hoy" in label or "today" in label


def _time_values(doc: Any) -> list[str]:
    """``<time datetime>`` values, the article's own first, page furniture never."""
    times = [t for t in doc.xpath("//time[@datetime]") if not _in_chrome(t)]
    inside = [t for t in times if any(a.tag == "article" for a in t.iterancestors())]
    return [t.get("datetime") for t in inside + [t for t in times if t not in inside]]


def _same_site(a: str, b: str) -> bool:
    ha, hb = host_of(a), host_of(b)
    if not ha or not hb:
        return False
    base_a = ".".join(ha.split(".")[-2:])
    base_b = ".".join(hb.split(".")[-2:])
    return ha == hb or base_a == base_b or urlsplit(a).netloc == urlsplit(b).netloc
