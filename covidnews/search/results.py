"""Turning hits into what readers and researchers see: article rows from the store (a handful of
queries per page, whatever its size); highlighted snippets come from the engine
(:mod:`covidnews.search.snippets`), this module gives the plain excerpt of other results."""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.orm import defer

from covidnews.schema import Article, ArticleTopic, Source, Translation
from covidnews.search.snippets import SNIPPET_CHARS
from covidnews.store import Store


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
    store: Store, ids: Iterable[int], *, with_text: bool | int = True
) -> dict[int, ArticleView]:
    """Article views by id (ids not in the store are absent). ``with_text``: the full texts
    (True), none (False), or the first this many characters of the article's text (an int;
    translations without text)."""
    wanted = sorted({int(i) for i in ids})
    if not wanted:
        return {}
    out: dict[int, ArticleView] = {}
    full = with_text is True
    head = (
        func.substr(Article.text, 1, int(with_text))
        if not isinstance(with_text, bool)
        else literal("")
    )
    with store.session() as s:
        query = select(Article, Source, head).outerjoin(Source, Source.id == Article.source_id)
        if not full:
            query = query.options(defer(Article.text))
        rows = s.execute(query.where(Article.id.in_(wanted))).all()
        for a, src, start in rows:
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
                text=a.text if full else (start or ""),
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
        tq = select(Translation).where(Translation.article_id.in_(wanted))
        if not full:
            tq = tq.options(defer(Translation.text))
        for t in s.scalars(tq):
            if t.article_id in out:
                out[t.article_id].translations[t.language] = TranslationView(
                    t.language, t.title, t.summary, t.text if full else None, t.model
                )
    for article_id, view in out.items():
        view.topics = topics.get(article_id, [])
    return out


def excerpt(view: ArticleView, size: int = SNIPPET_CHARS) -> tuple[str, str | None]:
    """(HTML-escaped opening of the summary or text, its language): the snippet of a result no
    query word matched (browsing, semantic hits)."""
    text = view.summary or view.text or (view.title if not view.text else "")
    end = min(len(text), size)
    if end < len(text):
        space = text.rfind(" ", 0, end)
        end = space if space > size // 2 else end
    return html.escape(text[:end]) + ("…" if end < len(text) else ""), view.language
