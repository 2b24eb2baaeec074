"""Fact-checks on a page: every schema.org ``ClaimReview`` in its JSON-LD or microdata.

JSON-LD is read script by script (a broken script loses only itself), microdata with extruct (in
the same shape as JSON-LD); this module only walks what they give. Real fact-checkers vary:
several reviews on one page (a round-up), the review nested in an ``@graph`` or inside an
``Article``'s ``hasPart``, the rating only in ``alternateName`` (or in ``name``, or only as numbers
on a scale), ``itemReviewed`` as a ``Claim`` (with ``appearance`` and ``firstAppearance``) or as a
``CreativeWork`` (its own ``url``), the claimant as a string, an object or a list. The same review
in both syntaxes counts once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, tzinfo
from typing import Any

from covidnews.factchecks import FactCheckRecord, claim_hash, normalise_verdict
from crawler.dates import parse_iso
from crawler.extract.page import (
    ExtractionError,
    _parse,
    _types,
    decode_html,
    jsonld_documents,
)

log = logging.getLogger(__name__)

#: schema.org objects are JSON: values of any JSON type
Obj = dict[str, Any]


def _walk(value: Any) -> Iterator[Obj]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _text(value: Any) -> str:
    """A schema.org text value: a string, or an object's ``name``/``text``; lists joined."""
    if isinstance(value, list):
        return " ".join(t for t in (_text(v) for v in value) if t)
    if isinstance(value, dict):
        return _text(value.get("name") or value.get("text") or value.get("headline"))
    return " ".join(str(value).split()) if value is not None else ""


def _number(value: Any) -> float | None:
    try:
        return float(str(value).replace(",", ".")) if value not in (None, "") else None
    except ValueError:
        return None


def _urls(value: Any) -> list[str]:
    out: list[str] = []
    for item in _items(value):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out += [
                u for u in _items(item.get("url")) + _items(item.get("@id")) if isinstance(u, str)
            ]
    return [u for u in out if u.startswith(("http://", "https://"))]


def _first_object(value: Any) -> Obj:
    """An object, or the first object of a list (some sites give lists of one)."""
    return next((v for v in _items(value) if isinstance(v, dict)), {})


def _record(review: Obj, url: str, page_title: str, tz: tzinfo) -> FactCheckRecord | None:
    item = _first_object(review.get("itemReviewed"))
    claim = _text(review.get("claimReviewed")) or _text(item.get("name") or item.get("text"))
    if not claim:
        return None
    rating = _first_object(review.get("reviewRating"))
    verdict_text = _text(rating.get("alternateName")) or _text(rating.get("name"))
    verdict = normalise_verdict(
        verdict_text,
        _number(rating.get("ratingValue")),
        _number(rating.get("bestRating")),
        _number(rating.get("worstRating")),
    )
    appearances = _urls(item.get("appearance")) + _urls(item.get("firstAppearance"))
    if "claim" not in _types(item):  # a CreativeWork reviewed: it is where the claim appeared
        appearances += _urls(item.get("url")) + _urls(item.get("sameAs"))
    first = item.get("firstAppearance") or next(iter(_items(item.get("appearance"))), None)
    claim_date = item.get("datePublished") or (
        first.get("datePublished") if isinstance(first, dict) else None
    )
    return FactCheckRecord(
        url=url,
        claim=claim,
        verdict_text=verdict_text or _text(rating.get("ratingValue")),
        verdict=verdict,
        title=_text(review.get("name") or review.get("headline")) or page_title,
        claimant=_text(item.get("author")) or None,
        appearances=list(dict.fromkeys(a for a in appearances if a != url)),
        # schema.org dates are ISO 8601; anything else ("ayer") is not read as a date
        reviewed_at=parse_iso(_text(review.get("datePublished")), tz),
        claim_date=parse_iso(_text(claim_date), tz),
        language=_text(review.get("inLanguage"))[:8].split("-")[0].lower() or None,
        extra={
            k: v
            for k, v in {
                "review_author": _text(review.get("author")),
                "rating_value": _number(rating.get("ratingValue")),
                "best_rating": _number(rating.get("bestRating")),
                "worst_rating": _number(rating.get("worstRating")),
            }.items()
            if v not in (None, "")
        },
    )


def claim_reviews(
    page: str | bytes,
    url: str,
    *,
    content_type: str | None = None,
    tz: tzinfo = UTC,
    title: str = "",
) -> list[FactCheckRecord]:
    """Every ClaimReview on the page (none: an ordinary article page). ``title``: the page's,
    for reviews without a name of their own."""
    import extruct

    html = decode_html(page, content_type) if isinstance(page, bytes) else page
    if "ClaimReview" not in html:
        return []  # the common case, without parsing the page twice
    try:
        doc = _parse(html)
    except ExtractionError as exc:
        log.warning("%s: unreadable page: %s", url, exc)
        return []
    # JSON-LD script by script (a broken one loses only itself), microdata through extruct.
    documents: list[Any] = list(jsonld_documents(doc))
    try:
        documents += extruct.extract(html, base_url=url, syntaxes=["microdata"], uniform=True)[
            "microdata"
        ]
    except Exception as exc:  # extruct raises on markup it cannot read
        log.warning("%s: unreadable microdata: %s", url, exc)
    out: dict[str, FactCheckRecord] = {}
    for document in documents:
        for obj in _walk(document):
            if "claimreview" not in _types(obj):
                continue
            record = _record(obj, url, title, tz)
            if record is not None:
                out.setdefault(claim_hash(record.claim), record)
    return list(out.values())
