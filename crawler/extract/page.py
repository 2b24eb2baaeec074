"""Reading a page: decoding bytes to text, parsing, JSON-LD objects, meta tags; the
extraction's patterns and lexicons, and what it returns (:class:`Extracted`)."""

from __future__ import annotations

import html as html_lib
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import lxml.html
from lxml import etree

if TYPE_CHECKING:
    from crawler.extract.walls import Wall

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
    #: a consent interstitial served instead of the article, or a paywall that cut its text
    #: (:mod:`crawler.extract.walls`); None when the page shows its article, or in doubt
    wall: Wall | None = None

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


def jsonld_documents(doc: Any) -> Iterator[Any]:
    """The parsed JSON of every JSON-LD script of the page; a broken script is skipped alone."""
    for script in doc.xpath('//script[contains(translate(@type,"LDJSON","ldjson"),"ld+json")]'):
        raw = (script.text or "").strip()
        if not raw:
            continue
        raw = re.sub(r"^\s*<!--|-->\s*$", "", raw)
        try:
            yield json.loads(raw, strict=False)
        except json.JSONDecodeError:
            try:  # common breakage: trailing commas
                yield json.loads(re.sub(r",\s*([}\]])", r"\1", raw), strict=False)
            except json.JSONDecodeError:
                continue


def _jsonld_objects(doc: Any) -> Iterator[dict[str, Any]]:
    for data in jsonld_documents(doc):
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
