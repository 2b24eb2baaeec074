"""RSS 2.0 and Atom feeds: the latest stories, per topic, source or country, and of any search
(``/feeds/buscar.rss?q=…&topic=…``: a saved search is a feed URL). Newest 50 stories, copies
collapsed. Items link to the archive's article page; titles and summaries are in the interface
language when a translation exists (``lang=en``), else the original."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.etree import ElementTree as ET

from flask import Response, abort, request, url_for
from flask_babel import gettext as _  # type: ignore[import-untyped]

from api.archive import bp, data
from api.archive.views import current_lang
from covidnews.search.engine import Filters, Query
from covidnews.search.results import ArticleView
from covidnews.taxonomy import topic

FEED_ITEMS = 50
ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
}
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
FORMATS = "<any(rss, atom):fmt>"


def _abs(endpoint: str, **values: Any) -> str:
    lang = current_lang()
    if lang != "es":
        values.setdefault("lang", lang)
    return url_for(endpoint, _external=True, **{k: v for k, v in values.items() if v})


def _texts(view: ArticleView) -> tuple[str, str]:
    """(title, summary) in the interface language when translated, else the original."""
    lang = current_lang()
    tr = view.translations.get(lang) if view.language != lang else None
    if tr is not None:
        return tr.title, tr.summary or view.summary or ""
    return view.title, view.summary or ""


def _xml(text: str) -> bytes:
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode("utf-8")


def _updated(view: ArticleView) -> datetime:
    return view.modified_at or view.published_at or view.fetched_at


def _rss(title: str, page_url: str, self_url: str, stories: list[data.Story]) -> bytes:
    ET.register_namespace("atom", ATOM_NS)
    rss = ET.Element("rss", {"version": "2.0"})
    ch = ET.SubElement(rss, "channel")
    ET.SubElement(ch, "title").text = title
    ET.SubElement(ch, "link").text = page_url
    ET.SubElement(ch, "description").text = _(
        "Noticias sobre la Covid-19 en español, agregadas por covidnews."
    )
    ET.SubElement(ch, "language").text = current_lang()
    ET.SubElement(
        ch, f"{{{ATOM_NS}}}link", {"href": self_url, "rel": "self", "type": "application/rss+xml"}
    )
    newest = max((_updated(s.view) for s in stories), default=EPOCH)
    ET.SubElement(ch, "lastBuildDate").text = format_datetime(newest.astimezone(UTC), usegmt=True)
    for s in stories:
        v = s.view
        item_title, summary = _texts(v)
        link = _abs("archive.article", article_id=v.id)
        item = ET.SubElement(ch, "item")
        ET.SubElement(item, "title").text = item_title
        ET.SubElement(item, "link").text = link
        ET.SubElement(item, "guid", {"isPermaLink": "true"}).text = link
        if v.published_at:
            ET.SubElement(item, "pubDate").text = format_datetime(
                v.published_at.astimezone(UTC), usegmt=True
            )
        if summary:  # RSS descriptions are HTML: the text is escaped once more
            ET.SubElement(item, "description").text = html.escape(summary, quote=False)
        for topic_id, _score in v.topics:
            ET.SubElement(item, "category", {"domain": "covidnews:topic"}).text = topic_id
        if v.source:
            ET.SubElement(item, "source", {"url": v.source.homepage or v.url}).text = v.source.name
    return _xml(ET.tostring(rss, encoding="unicode"))


def _atom(title: str, page_url: str, self_url: str, stories: list[data.Story]) -> bytes:
    def el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        e = ET.SubElement(parent, tag, attrs)
        if text is not None:
            e.text = text
        return e

    # Unprefixed names, the namespace declared on the root (ElementTree would prefix them).
    feed = ET.Element("feed", {"xmlns": ATOM_NS, "xml:lang": current_lang()})
    el(feed, "id", self_url)
    el(feed, "title", title)
    newest = max((_updated(s.view) for s in stories), default=EPOCH)
    el(feed, "updated", newest.astimezone(UTC).isoformat())
    el(feed, "link", href=self_url, rel="self", type=CONTENT_TYPES["atom"].split(";")[0])
    el(feed, "link", href=page_url, rel="alternate", type="text/html")
    el(feed, "generator", "covidnews")
    author = el(feed, "author")
    el(author, "name", "covidnews")
    for s in stories:
        v = s.view
        entry_title, summary = _texts(v)
        link = _abs("archive.article", article_id=v.id)
        entry = el(feed, "entry")
        el(entry, "id", link)
        el(entry, "title", entry_title)
        el(entry, "link", href=link, rel="alternate", type="text/html")
        el(entry, "link", href=v.url, rel="related")
        el(entry, "updated", _updated(v).astimezone(UTC).isoformat())
        if v.published_at:
            el(entry, "published", v.published_at.astimezone(UTC).isoformat())
        if v.source:
            el(el(entry, "author"), "name", v.source.name)
        for topic_id, _score in v.topics:
            el(entry, "category", term=topic_id, label=data.topic_name(topic_id))
        if summary:
            el(entry, "summary", summary, type="text")
    return _xml(ET.tostring(feed, encoding="unicode"))


def _feed(fmt: str, title: str, page_url: str, query: Query) -> Response:
    try:
        listing = data.listing(query, FEED_ITEMS, None)
    except data.BadQuery as exc:
        abort(400, description=str(exc))
    self_url = request.url
    full_title = f"{title} · covidnews"
    body = (_rss if fmt == "rss" else _atom)(full_title, page_url, self_url, listing.stories)
    return Response(body, content_type=CONTENT_TYPES[fmt])


@bp.get(f"/feeds/ultimas.{FORMATS}")
def feed_latest(fmt: str) -> Response:
    return _feed(fmt, _("Últimas noticias"), _abs("archive.home"), Query(sort="newest"))


@bp.get(f"/feeds/tema/<topic_id>.{FORMATS}")
def feed_topic(topic_id: str, fmt: str) -> Response:
    t = topic(topic_id)
    if t is None:
        abort(404)
    return _feed(
        fmt,
        t.name(current_lang()),
        _abs("archive.topic_page", topic_id=t.id),
        Query(filters=Filters(topics=(t.id,)), sort="newest"),
    )


@bp.get(f"/feeds/fuente/<slug>.{FORMATS}")
def feed_source(slug: str, fmt: str) -> Response:
    source = data.source_by_slug(slug)
    if source is None:
        abort(404)
    return _feed(
        fmt,
        source.name,
        _abs("archive.source_page", slug=slug),
        Query(filters=Filters(sources=(source.id,)), sort="newest"),
    )


@bp.get(f"/feeds/pais/<cc>.{FORMATS}")
def feed_country(cc: str, fmt: str) -> Response:
    if not data.known_country(cc):
        abort(404)
    return _feed(
        fmt,
        data.country_name(cc),
        _abs("archive.country_page", cc=cc.lower()),
        Query(filters=Filters(countries=(cc.upper(),)), sort="newest"),
    )


@bp.get(f"/feeds/buscar.{FORMATS}")
def feed_search(fmt: str) -> Response:
    """Newest first, whatever ``sort`` says: a feed is chronological."""
    params = data.parse_params(request.args)
    if params.errors:
        abort(400, description="; ".join(f"{k}: {v}" for k, v in params.errors.items()))
    params.values["sort"] = "newest"
    args = params.link_args()
    title = _("Búsqueda: %(q)s", q=params.values["q"]) if params.values["q"] else _("Búsqueda")
    return _feed(fmt, title, _abs("archive.search", **args), params.query)
