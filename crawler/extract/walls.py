"""Walls in front of an article's text: a consent interstitial served instead of the article, or a
paywall that cut it. :func:`find_wall` is pure (no I/O, no clock); :func:`crawler.extract.extract`
calls it and puts the answer in ``Extracted.wall``. The crawler keeps what could be had of a
paywalled article (``text_complete: false``) and never stores a consent banner as an article.

Every rule errs towards ``None``: a wall is reported only when a signal fires and nothing says
the text is whole. Most real pages carry a consent manager and subscription furniture next to
their full text, and several Spanish outlets declare articles "not free" while shipping the whole
text (a metered or client-side paywall): neither is a wall.

**Consent** (there is no article in the page at all), tried first:

- *consent-manager markup and no article text*: a known consent manager is in the markup (ids,
  classes, script or iframe sources, inline loaders: Didomi, OneTrust, Quantcast ``qc-cmp2``,
  Sourcepoint ``sp_message``, Funding Choices ``fc-consent``, Cookiebot, Usercentrics, TrustArc,
  Complianz, or a generic ``cmp``/``consent-banner``/``cookie-consent`` container), the page
  shows a banner's worth of consent text (at least :data:`CONSENT_MIN_BANNER_WORDS` words in
  consent blocks), and the extracted text holds fewer than :data:`CONSENT_MAX_ARTICLE_WORDS`
  words outside consent lines. A consent-manager script alone, with no banner text, is an
  app-shell page, not known to be a wall: None.
- *page text dominated by consent vocabulary* (no consent manager needed): the same absence of
  article text, consent blocks making at least :data:`CONSENT_MIN_SHARE` of the page's visible
  words, with at least :data:`CONSENT_MIN_TERMS` distinct consent terms.

  A block (or a line of the extracted text) is a consent block when it names two distinct consent
  terms (cookies, consentimiento/consent, socios/partners, privacidad/privacy, aceptar/accept,
  rechazar/reject, configurar/configuración, preferencias, proveedores/vendors, interés legítimo,
  datos personales, RGPD/GDPR), or one in at most :data:`CONSENT_BUTTON_WORDS` words (a button
  or a footer link: "Aceptar", "Política de cookies").

**Paywall** (the article exists; its text was cut), in this order:

- *declared*: schema.org ``isAccessibleForFree`` false (``false``, ``"False"``, ``"false"``) on
  the JSON-LD article, or on a ``WebPageElement`` of its ``hasPart`` (Google's paywalled-content
  markup; the element's ``cssSelector`` is named in the reason), or the ``article:content_tier``
  meta tag ``locked``;
- *truncated*: the extracted text has under :data:`TRUNCATED_SHARE` of the article's declared
  JSON-LD ``wordCount``, when that count is at least :data:`MIN_DECLARED_WORDS`;
- *markers*: paywall markup (:data:`PAYWALL_TOKENS`, class or id tokens such as ``paywall``,
  ``c-paywall``, ``article-locked``, ``premium-content``, ``content-locked``) or a wall message
  in the visible text outside header, nav, footer and aside (:data:`WALL_PHRASES`, about *this*
  content or reading on: "Este contenido es exclusivo para suscriptores", "El resto del artículo
  es solo para suscriptores", "Suscríbete para seguir leyendo", "subscribe to continue
  reading"; not an offer or a label such as "todo el contenido exclusivo para suscriptores", nor
  a feature: "Esta funcionalidad es sólo para suscriptores" is on ABC's free pages, nor a
  scoop: "Esta entrevista es exclusiva"), *and* a text under :data:`MARKER_MAX_TEXT_WORDS`
  words, *and* the page does not declare the article free (``isAccessibleForFree`` true,
  ``article:content_tier`` free). A marker element whose own text is part of the extracted text
  wraps the article (ABC wraps free paragraphs in ``span.paywall``): not a wall. "Suscríbete"
  boxes and subscription offers are not markers.

Every paywall signal gives way to evidence that the whole text was delivered anyway: the text
reaches :data:`COMPLETE_SHARE` of a JSON-LD ``articleBody`` of at least
:data:`MIN_BODY_EVIDENCE_WORDS` words not cut with an ellipsis (the publisher's own full body: the
extractor prefers it), or the ``hasPart`` section (``cssSelector``) is in the HTML with at least
:data:`MIN_SECTION_WORDS` words and the text is at least that long. (Four of the 28 real pages of
the evaluation set, El País, eldiario.es and two La Vanguardia ``locked`` pages, declare
``isAccessibleForFree: false`` and ship their full text, in the HTML and the ``articleBody``.)
Markers also give way to a text that reaches :data:`COMPLETE_SHARE` of the declared
``wordCount``; a declaration does not (a CMS may count the words it serves, the teaser).

The markup is read from the parsed tree before the body extractor prunes it
(:func:`read_markup`); :func:`find_wall` takes that reading, or a tree, or HTML text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from lxml import etree

from covidnews.text import fold_latin as fold  # regex-based: the fast variant
from crawler.extract.page import _parse

__all__ = ["Wall", "WallMarkup", "find_wall", "read_markup"]


@dataclass(frozen=True)
class Wall:
    """What stands in front of the article's text, and which signal said so."""

    kind: Literal["consent", "paywall"]
    #: short and human-readable: "isAccessibleForFree: false", "text 120 of 850 declared words",
    #: "consent manager markup (didomi) and no article text"
    reason: str


# Thresholds ---------------------------------------------------------------------------------

#: a consent interstitial: fewer article words than this in the extracted text (consent lines
#: not counted)
CONSENT_MAX_ARTICLE_WORDS = 50
#: ... and at least this many words of consent blocks in the page (a banner, not footer links)
CONSENT_MIN_BANNER_WORDS = 20
#: without consent-manager markup: consent blocks make at least this share of the visible words
CONSENT_MIN_SHARE = 0.4
#: ... naming at least this many distinct consent terms
CONSENT_MIN_TERMS = 3
#: a block this short with one consent term is a consent button or link
CONSENT_BUTTON_WORDS = 6
#: a declared ``wordCount`` below this is not trusted to say anything is missing
MIN_DECLARED_WORDS = 150
#: text under this share of the declared ``wordCount``: truncated
TRUNCATED_SHARE = 0.6
#: text reaching this share of a full ``articleBody`` (or, against markers, of ``wordCount``)
COMPLETE_SHARE = 0.9
#: a JSON-LD ``articleBody`` this long (not a teaser) counts as the publisher's full body
MIN_BODY_EVIDENCE_WORDS = 300
#: a ``hasPart`` paywalled section with this many words in the HTML was delivered
MIN_SECTION_WORDS = 100
#: paywall markers count only when the text is shorter than this (a teaser)
MARKER_MAX_TEXT_WORDS = 250


# Vocabularies and markers -------------------------------------------------------------------

#: consent vocabulary, on folded text (lower case, no accents): concept → pattern
CONSENT_TERMS: dict[str, re.Pattern[str]] = {
    name: re.compile(rf"\b(?:{pattern})\b")
    for name, pattern in {
        "cookies": r"cookies?",
        "consent": r"consentimientos?|consiento|consientes?|consent(?:s|ing)?",
        "partners": r"socios|partners",
        "privacy": r"privacidad|privacy",
        "accept": r"aceptar|acepto|accept(?:ar)?|accept all",
        "reject": r"rechazar|rechazo|reject(?: all)?",
        "settings": r"configurar|configuracion|personalizar|preferencias|preferences",
        "vendors": r"proveedores|vendors",
        "legitimate interest": r"interes legitimo|legitimate interest",
        "personal data": r"datos personales|personal data",
        "gdpr": r"rgpd|gdpr",
    }.items()
}

#: consent managers, by name: what gives each away in lower-cased ids, classes, script and
#: iframe sources and inline scripts (plain substrings)
CONSENT_MANAGERS: dict[str, tuple[str, ...]] = {
    "didomi": ("didomi", "privacy-center.org"),
    "onetrust": ("onetrust", "optanon", "cookielaw.org", "cookiepro.com"),
    "quantcast": ("qc-cmp2", "quantcast.mgr.consensu", "cmp.quantcast.com"),
    "sourcepoint": ("sp_message", "sourcepoint", "sp-prod.net", "window._sp_"),
    "funding choices": ("fc-consent", "fc-dialog-container", "fundingchoicesmessages"),
    "cookiebot": ("cookiebot",),
    "usercentrics": ("usercentrics",),
    "trustarc": ("trustarc", "truste_"),
    "complianz": ("cmplz",),
}
#: a generic consent container: one whole class or id token ("cmp-container", "consent-banner");
#: sites also use a ``cmp`` prefix for their own components ("cmp-footer"), so tokens must match
#: whole
GENERIC_CMP = re.compile(
    r"cmp|cmpbox|cmpwrapper|cmp[-_](?:app(?:_gdpr)?|container|banner|modal|popup|dialog|wrapper"
    r"|layer|root|ui)|consent[-_]?(?:banner|modal|popup|dialog|wall|layer|overlay|notice|root)"
    r"|cookie[-_]?consent|gdpr[-_]?(?:banner|consent|modal)"
)

#: class or id tokens (whole, lower case) of paywall markup: the wall's container or message, or
#: the locked article. Not "premium" or "subscription" alone: free pages use them for their
#: subscription offers and premium labels.
PAYWALL_TOKENS = frozenset(
    {
        "paywall", "c-paywall", "paywall-container", "paywall-wrapper", "article-paywall",
        "article-locked", "article--locked", "premium-content", "content-locked",
        "content--locked", "locked-content", "contenido-bloqueado", "contenido-exclusivo",
        "solo-suscriptores", "subscribers-only", "subscriber-only",
    }
)  # fmt: skip

#: wall messages, on folded visible text, Spanish and English: they speak of *this* content or
#: of reading on ("Este contenido es exclusivo para suscriptores", "Suscríbete para seguir
#: leyendo"). An offer or a label ("acceso a todo el contenido exclusivo para suscriptores",
#: "Solo para suscriptores" on a teaser) or a feature ("Esta funcionalidad es sólo para
#: suscriptores": ABC's save and comment buttons on its free pages) is not a wall.
WALL_PHRASES = re.compile(
    r"\b(?:este|esta|estos|estas|el resto de(?:l| este| esta)?|resto del) "
    r"(?:contenido|articulo|noticia|reportaje|informacion|texto|analisis|entrevista|pieza)s? "
    r"(?:\w+ ){0,2}(?:de pago|(?:solo|exclusiv[oa]s?|reservad[oa]s?|disponibles?) "
    r"(?:solo |unicamente |exclusivamente )?(?:para|a) (?:nuestr[oa]s |l[oa]s )?"
    r"(?:suscriptor(?:es|as)|abonad[oa]s|soci[oa]s|miembros|usuarios registrados|registrad[oa]s))"
    r"\b|\beste contenido es exclusivo\b"
    r"|\b(?:seguir|continuar|sigue|continua|segui) leyendo\b.{0,60}"
    r"\b(?:suscri|registr|hazte socio|abona|premium|inicia sesion)"
    r"|\b(?:suscri\w*|registrate|hazte socio|inicia sesion|abonate)\b.{0,60}"
    r"\b(?:seguir|continuar) leyendo\b"
    r"|\b(?:subscribe|sign in|log in|register)\b.{0,40}\bto (?:continue|keep) reading\b"
    r"|\bthis (?:content|article|story) is (?:only |exclusively )?(?:available )?(?:for|to) "
    r"(?:paying )?subscribers\b"
)

# the consent terms in one pattern, each a named group; a cheap test before it (most blocks of a
# page name none)
_TERM_STEMS = (
    "cooki", "consen", "consien", "socio", "partner", "privac", "acept", "accept", "rechaz",
    "reject", "configur", "personaliz", "preferen", "proveedor", "vendor", "legitim",
    "personal", "rgpd", "gdpr",
)  # fmt: skip
_TERM_NAMES = {f"t{i}": name for i, name in enumerate(CONSENT_TERMS)}
_TERMS = re.compile(
    "|".join(f"(?P<t{i}>{p.pattern})" for i, p in enumerate(CONSENT_TERMS.values()))
)
_WORD = re.compile(r"\w+")
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "iframe", "object", "select"})
_CHROME = frozenset({"header", "nav", "footer", "aside"})  # not where walls are
_BLOCK = frozenset(
    {
        "p", "div", "section", "article", "main", "aside", "header", "footer", "nav", "li", "ul",
        "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "td", "th",
        "br", "button", "form", "dialog", "figure", "figcaption", "blockquote", "pre", "label",
    }
)  # fmt: skip


# Reading the markup -------------------------------------------------------------------------


@dataclass(frozen=True)
class WallMarkup:
    """What the page's markup says about walls: read from the parsed tree before the body
    extractor prunes it (:func:`read_markup`)."""

    consent_managers: tuple[str, ...] = ()  # names (:data:`CONSENT_MANAGERS`, "cmp")
    visible_words: int = 0
    consent_words: int = 0  # visible words in consent blocks
    consent_terms: frozenset[str] = frozenset()  # distinct consent concepts of the visible text
    #: (marker, text of the marked element or block): class/id tokens and wall phrases
    paywall_markers: tuple[tuple[str, str], ...] = ()
    section_words: int = 0  # words of the ``hasPart`` paywalled sections present in the HTML


def read_markup(doc: Any, jsonld_article: Mapping[str, Any] | None = None) -> WallMarkup:
    """What the parsed page (an lxml tree, unpruned) says about walls: consent managers, the
    consent vocabulary of its visible text, paywall markers and ``hasPart`` sections."""
    ids_classes = doc.xpath("//@id|//@class")
    sources = doc.xpath("//script/@src|//iframe/@src|//script[not(@src)]/text()")
    everything = "\n".join([*ids_classes, *sources]).lower()
    managers = [
        name
        for name, needles in CONSENT_MANAGERS.items()
        if any(needle in everything for needle in needles)
    ]
    tokens = set(" ".join(ids_classes).lower().split())
    if any(GENERIC_CMP.fullmatch(token) for token in tokens):
        managers.append("cmp")
    markers = _marked(doc, tokens & PAYWALL_TOKENS)
    root = doc.find("body")
    blocks = _blocks(doc if root is None else root)
    visible = consent = 0
    terms: set[str] = set()
    for text, in_chrome in blocks:
        folded = fold(text)
        words = len(_WORD.findall(text))
        visible += words
        found = _consent_terms(folded)
        terms |= found
        if _is_consent(found, words):
            consent += words
        match = None if in_chrome else WALL_PHRASES.search(folded)
        if match:
            markers.append((f"text '{match.group(0)[:60]}'", text))
    return WallMarkup(
        consent_managers=tuple(managers),
        visible_words=visible,
        consent_words=consent,
        consent_terms=frozenset(terms),
        paywall_markers=tuple(markers),
        section_words=_section_words(doc, jsonld_article or {}),
    )


def _marked(doc: Any, found: set[str]) -> list[tuple[str, str]]:
    """(marker, text) of the elements with a paywall class or id token, outside scripts."""
    if not found:
        return []
    out = []
    for el in doc.xpath("//body//*[@class or @id]"):
        hits = sorted(found & set(f"{el.get('id') or ''} {el.get('class') or ''}".lower().split()))
        if hits and not any(a.tag in _SKIP for a in (el, *el.iterancestors())):
            out.append((f"class {hits[0]}", _text_of(el)))
    return out


def _blocks(root: Any) -> list[tuple[str, bool]]:
    """The visible text, block by block: (text, inside header/nav/footer/aside)."""
    blocks: list[tuple[str, bool]] = []
    pending: list[str] = []
    skip = chrome = 0

    def flush() -> None:
        text = " ".join(" ".join(pending).split())
        if text:
            blocks.append((text, chrome > 0))
        pending.clear()

    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else ""
        if event == "start":
            if tag in _SKIP:
                skip += 1
            elif not skip and tag:
                if tag in _BLOCK:
                    flush()
                if tag in _CHROME:
                    chrome += 1
                if el.text:
                    pending.append(el.text)
            continue
        if tag in _SKIP:
            skip -= 1
        elif skip:
            continue
        elif tag:
            if tag in _BLOCK:
                flush()
            if tag in _CHROME:
                chrome -= 1
        if not skip and el.tail:
            pending.append(el.tail)
    flush()
    return blocks


def _text_of(el: Any) -> str:
    return " ".join(el.text_content().split())


def _section_words(doc: Any, article: Mapping[str, Any]) -> int:
    """Words of the paywalled sections named by the article's ``hasPart`` ``cssSelector``s that
    are present in the page (outermost matches only)."""
    matched: list[Any] = []
    for part in _locked_parts(article):
        selectors = part.get("cssSelector")
        for selector in selectors if isinstance(selectors, list) else [selectors]:
            if not isinstance(selector, str) or not selector.strip():
                continue
            try:
                matched += doc.cssselect(selector)
            except Exception:  # an invalid selector says nothing
                continue
    outer = {id(el) for el in matched}
    total = 0
    for el in matched:
        if any(id(a) in outer for a in el.iterancestors()):
            continue
        outer.discard(id(el))  # the same element matched twice counts once
        total += len(_WORD.findall(el.text_content()))
    return total


# The decision -------------------------------------------------------------------------------


def find_wall(
    page: WallMarkup | Any,
    extracted_text: str,
    *,
    jsonld_article: Mapping[str, Any],
    meta: Mapping[str, list[str]],
) -> Wall | None:
    """The wall in front of the article's text, or None (no wall, or in doubt).

    ``page``: what :func:`read_markup` read (from inside :func:`crawler.extract.extract`), an
    unpruned lxml tree, or the HTML text. ``extracted_text``: the article text the extractor got;
    ``jsonld_article``: the JSON-LD article object ({} when none); ``meta``: meta name/property →
    values (``crawler.extract.page._meta``).
    """
    if isinstance(page, str):
        page = _parse(page)
    markup = page if isinstance(page, WallMarkup) else read_markup(page, jsonld_article)
    return _consent(markup, extracted_text) or _paywall(
        markup, extracted_text, jsonld_article, meta
    )


def _consent(markup: WallMarkup, text: str) -> Wall | None:
    article_words = sum(
        words
        for line in text.splitlines()
        if (words := len(_WORD.findall(line)))
        and not _is_consent(_consent_terms(fold(line)), words)
    )
    if article_words >= CONSENT_MAX_ARTICLE_WORDS or markup.consent_words < (
        CONSENT_MIN_BANNER_WORDS
    ):
        return None
    what = "no article text" if not article_words else f"{article_words} words of article text"
    if markup.consent_managers:
        names = ", ".join(markup.consent_managers)
        return Wall("consent", f"consent manager markup ({names}) and {what}")
    if (
        markup.consent_words >= CONSENT_MIN_SHARE * markup.visible_words
        and len(markup.consent_terms) >= CONSENT_MIN_TERMS
    ):
        share = f"{markup.consent_words} of {markup.visible_words} words"
        return Wall("consent", f"page text is consent vocabulary ({share}) and {what}")
    return None


def _paywall(
    markup: WallMarkup, text: str, article: Mapping[str, Any], meta: Mapping[str, list[str]]
) -> Wall | None:
    words = len(_WORD.findall(text))
    if _delivered(words, article, markup):
        return None
    if _is_false(article.get("isAccessibleForFree")):
        return Wall("paywall", "isAccessibleForFree: false")
    part = next(iter(_locked_parts(article)), None)
    if part is not None:
        selector = part.get("cssSelector")
        where = f" ({selector})" if isinstance(selector, str) and selector.strip() else ""
        return Wall("paywall", f"hasPart isAccessibleForFree: false{where}")
    tiers = [v.strip().lower() for v in meta.get("article:content_tier", [])]
    if "locked" in tiers:
        return Wall("paywall", "article:content_tier: locked")
    declared = _word_count(article)
    if declared >= MIN_DECLARED_WORDS and words < TRUNCATED_SHARE * declared:
        return Wall("paywall", f"text {words} of {declared} declared words")
    declared_free = _is_true(article.get("isAccessibleForFree")) or "free" in tiers
    reached = declared >= MIN_DECLARED_WORDS and words >= COMPLETE_SHARE * declared
    if declared_free or reached or words >= MARKER_MAX_TEXT_WORDS:
        return None
    folded_text = " ".join(fold(text).split())
    for marker, marked in markup.paywall_markers:
        if marker.startswith("class ") and _wraps_text(marked, folded_text):
            continue  # the marked element holds the article's own text: a wrapper, not a wall
        return Wall("paywall", f"paywall marker ({marker}) and text of {words} words")
    return None


# Helpers ------------------------------------------------------------------------------------


def _consent_terms(folded: str) -> set[str]:
    if not any(stem in folded for stem in _TERM_STEMS):
        return set()
    return {_TERM_NAMES[m.lastgroup or ""] for m in _TERMS.finditer(folded)}


def _is_consent(terms: set[str], words: int) -> bool:
    return len(terms) >= 2 or (len(terms) == 1 and words <= CONSENT_BUTTON_WORDS)


def _is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _locked_parts(article: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The article's ``hasPart`` elements declared not free."""
    parts = article.get("hasPart")
    for part in parts if isinstance(parts, list) else [parts]:
        if isinstance(part, Mapping) and _is_false(part.get("isAccessibleForFree")):
            yield part


def _word_count(article: Mapping[str, Any]) -> int:
    value = article.get("wordCount")
    if isinstance(value, bool):
        return 0
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        digits = re.sub(r"[\s.,]", "", value)
        return int(digits) if digits.isdigit() else 0
    return 0


def _delivered(words: int, article: Mapping[str, Any], markup: WallMarkup) -> bool:
    """Evidence that the whole text was delivered and extracted, whatever the page declares."""
    body = article.get("articleBody")
    if isinstance(body, str):
        body = re.sub(r"<[^>]+>", " ", body).strip()
        body_words = len(_WORD.findall(body))
        if (
            body_words >= MIN_BODY_EVIDENCE_WORDS
            and not body.endswith(("...", "…"))
            and words >= COMPLETE_SHARE * body_words
        ):
            return True
    return markup.section_words >= MIN_SECTION_WORDS and words >= markup.section_words


def _wraps_text(marked: str, folded_text: str) -> bool:
    """The marked element's text is (the start of) part of the extracted text."""
    folded = " ".join(fold(marked).split())
    if len(_WORD.findall(folded)) < 8 or WALL_PHRASES.search(folded):
        return False
    return folded[:80] in folded_text
