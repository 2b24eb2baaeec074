"""Turning hits into what readers and researchers see: article rows from the store (a handful of
queries per page, whatever its size) and highlighted, HTML-escaped snippets."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from covidnews.schema import Article, ArticleTopic, Source, Translation
from covidnews.search.analysis import highlight_spans
from covidnews.store import Store

SNIPPET_CHARS = 240


@dataclass
class SourceView:
    id: int
    slug: str
    name: str
    country: str | None
    language: str | None
    kind: str
    homepage: str | None


@dataclass
class TranslationView:
    language: str
    title: str
    summary: str | None
    text: str | None
    model: str


@dataclass
class ArticleView:
    id: int
    url: str
    title: str
    text: str
    summary: str | None
    language: str | None
    country: str | None
    published_at: datetime | None
    modified_at: datetime | None
    fetched_at: datetime
    authors: list[str]
    section: str | None
    image_url: str | None
    is_covid: bool | None
    covid_score: float | None
    story_id: int
    source: SourceView | None
    topics: list[tuple[str, float]] = field(default_factory=list)
    translations: dict[str, TranslationView] = field(default_factory=dict)


def load_articles(
    store: Store, ids: Iterable[int], *, with_text: bool = True
) -> dict[int, ArticleView]:
    """Article views by id (ids not in the store are absent)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    out: dict[int, ArticleView] = {}
    with store.session() as s:
        rows = s.execute(
            select(Article, Source)
            .outerjoin(Source, Source.id == Article.source_id)
            .where(Article.id.in_(wanted))
        ).all()
        for a, src in rows:
            source = (
                SourceView(
                    src.id, src.slug, src.name, src.country, src.language, src.kind, src.homepage
                )
                if src is not None
                else None
            )
            out[a.id] = ArticleView(
                id=a.id,
                url=a.url,
                title=a.title,
                text=a.text if with_text else "",
                summary=a.summary,
                language=a.language,
                country=a.country or (source.country if source else None),
                published_at=a.published_at,
                modified_at=a.modified_at,
                fetched_at=a.fetched_at,
                authors=list(a.authors or []),
                section=a.section,
                image_url=a.image_url,
                is_covid=a.is_covid,
                covid_score=a.covid_score,
                story_id=a.duplicate_of or a.id,
                source=source,
            )
        topics: dict[int, list[tuple[str, float]]] = defaultdict(list)
        for article_id, topic, score in s.execute(
            select(ArticleTopic.article_id, ArticleTopic.topic, ArticleTopic.score)
            .where(ArticleTopic.article_id.in_(wanted))
            .order_by(ArticleTopic.article_id, ArticleTopic.rank)
        ):
            topics[article_id].append((topic, float(score)))
        for t in s.scalars(select(Translation).where(Translation.article_id.in_(wanted))):
            if t.article_id in out:
                out[t.article_id].translations[t.language] = TranslationView(
                    t.language, t.title, t.summary, t.text if with_text else None, t.model
                )
    for article_id, view in out.items():
        view.topics = topics.get(article_id, [])
    return out


def _window(text: str, spans: list[tuple[int, int]], size: int) -> str:
    """An HTML-escaped excerpt of about ``size`` characters around the first match, with every
    match inside it wrapped in ``<mark>``."""
    first = spans[0][0] if spans else 0
    start = max(0, first - size // 3)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(text), start + size)
    if end < len(text):
        space = text.rfind(" ", start, end)
        if space > (spans[0][1] if spans else start):
            end = space
    parts = ["…" if start else ""]
    cursor = start
    for s, e in spans:
        if s < start or e > end:
            continue
        parts += [html.escape(text[cursor:s]), "<mark>", html.escape(text[s:e]), "</mark>"]
        cursor = e
    parts.append(html.escape(text[cursor:end]))
    parts.append("…" if end < len(text) else "")
    return "".join(parts)


def snippet(
    view: ArticleView, words: frozenset[str], size: int = SNIPPET_CHARS
) -> tuple[str, str | None]:
    """(HTML-escaped snippet with ``<mark>`` around matched words, its language).

    The original text is preferred; when the words only occur in a translation (a query in
    another language), the snippet comes from the translation."""
    candidates: list[tuple[str, str | None]] = [
        (view.title, view.language),
        (view.summary or "", view.language),
        (view.text, view.language),
    ]
    for t in view.translations.values():
        candidates += [
            (t.title, t.language),
            (t.summary or "", t.language),
            (t.text or "", t.language),
        ]
    if words:
        # Body text first (a snippet that repeats the title says little), then the others.
        order = [2, 1, 0, *list(range(3, len(candidates)))]
        for i in order:
            text, language = candidates[i]
            spans = list(highlight_spans(text, words)) if text else []
            if spans:
                return _window(text, spans, size), language
    text = view.summary or view.text
    return _window(text, [], size), view.language
