"""Turning hits into what readers and researchers see: article rows from the store (a handful of
queries per page, whatever its size); highlighted snippets come from the engine
(:mod:`covidnews.search.snippets`), this module gives the plain excerpt of other results."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, func, literal, select

from covidnews.schema import Article, ArticleTopic, Source, StageRun, Translation
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
    #: false when a paywall or consent wall kept part of the text from the crawler
    text_complete: bool = True


def _statements(full: bool, head: int | None) -> tuple[Any, Any, Any]:
    """The three queries of :func:`load_articles`, built once per text mode (the article ids are
    an expanding parameter), so a page of results costs no statement construction."""
    key = (full, head)
    cached = _STATEMENTS.get(key)
    if cached is not None:
        return cached
    ids: Any = bindparam("ids", expanding=True)
    text_col: Any = (
        Article.text if full else func.substr(Article.text, 1, head) if head else literal("")
    )
    a_cols = [
        Article.id,
        Article.url,
        Article.title,
        text_col,
        Article.summary,
        Article.language,
        Article.country,
        Article.published_at,
        Article.modified_at,
        Article.fetched_at,
        Article.authors,
        Article.section,
        Article.image_url,
        Article.is_covid,
        Article.covid_score,
        Article.duplicate_of,
        Article.published_offset,
        Article.text_complete,
        Source.id,
        Source.slug,
        Source.name,
        Source.country,
        Source.language,
        Source.kind,
        Source.homepage,
    ]
    articles = (
        select(*a_cols).outerjoin(Source, Source.id == Article.source_id).where(Article.id.in_(ids))
    )
    topics = (
        select(ArticleTopic.article_id, ArticleTopic.topic, ArticleTopic.score)
        .where(ArticleTopic.article_id.in_(ids))
        .order_by(ArticleTopic.article_id, ArticleTopic.rank)
    )
    t_text: Any = Translation.text if full else literal(None)
    translations = select(
        Translation.article_id,
        Translation.language,
        Translation.title,
        Translation.summary,
        t_text,
        Translation.model,
    ).where(Translation.article_id.in_(ids))
    _STATEMENTS[key] = (articles, topics, translations)
    return articles, topics, translations


_STATEMENTS: dict[tuple[bool, int | None], tuple[Any, Any, Any]] = {}


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
    head = None if isinstance(with_text, bool) else int(with_text)
    articles, topic_rows, translation_rows = _statements(full, head)
    params = {"ids": wanted}
    # Core rows, not ORM objects: a page of results is three cheap queries.
    with store.engine.connect() as conn:
        for row in conn.execute(articles, params):
            (aid, url, title, text, summary, language, country, published, modified) = row[:9]
            (fetched, authors, section, image, is_covid, score, duplicate_of, offset) = row[9:17]
            complete = row[17]
            src = row[18:]
            source = SourceView(*src) if src[0] is not None else None
            out[aid] = ArticleView(
                id=aid,
                url=url,
                title=title,
                text=text or "",
                summary=summary,
                language=language,
                country=country or (source.country if source else None),
                published_at=local_time(published, offset),
                modified_at=modified,
                fetched_at=fetched,
                authors=list(authors or []),
                section=section,
                image_url=image,
                is_covid=is_covid,
                covid_score=score,
                story_id=duplicate_of or aid,
                source=source,
                text_complete=bool(complete) if complete is not None else True,
            )
        for article_id, topic, score in conn.execute(topic_rows, params):
            if article_id in out:
                out[article_id].topics.append((topic, float(score)))
        for article_id, lang, t_title, t_summary, t_text, model in conn.execute(
            translation_rows, params
        ):
            if article_id in out:
                out[article_id].translations[lang] = TranslationView(
                    lang, t_title, t_summary, t_text, model
                )
    return out


def local_time(value: datetime | None, offset: int | None) -> datetime | None:
    """The stored UTC instant on the outlet's clock (its offset in minutes), when known: the
    same instant, printed as the outlet printed it (the day a reader there saw)."""
    if value is None or offset is None:
        return value
    return value.astimezone(timezone(timedelta(minutes=offset)))


def excerpt(view: ArticleView, size: int = SNIPPET_CHARS) -> tuple[str, str | None]:
    """(HTML-escaped opening of the summary or text, its language): the snippet of a result no
    query word matched (browsing, semantic hits)."""
    text = view.summary or view.text or view.title
    end = min(len(text), size)
    if end < len(text):
        space = text.rfind(" ", 0, end)
        end = space if space > size // 2 else end
    return html.escape(text[:end]) + ("…" if end < len(text) else ""), view.language


# Sources and processing state, as the API and the archive show them ---------------------------


def _source_view(src: Source) -> SourceView:
    return SourceView(src.id, src.slug, src.name, src.country, src.language, src.kind, src.homepage)


def load_sources(store: Store) -> list[SourceView]:
    """Every source, by name (case-insensitive)."""
    with store.session() as s:
        return [
            _source_view(r) for r in s.scalars(select(Source).order_by(func.lower(Source.name)))
        ]


def source_by_slug(store: Store, slug: str) -> SourceView | None:
    with store.session() as s:
        src = s.scalars(select(Source).where(Source.slug == slug)).first()
        return _source_view(src) if src is not None else None


def source_slugs(store: Store) -> dict[int, str]:
    """Source id → slug."""
    with store.session() as s:
        return {int(i): str(slug) for i, slug in s.execute(select(Source.id, Source.slug))}


def source_ids_by_slug(store: Store, slugs: Iterable[str]) -> dict[str, int]:
    """Slug → id of those of ``slugs`` that exist."""
    wanted = list(slugs)
    if not wanted:
        return {}
    with store.session() as s:
        rows = s.execute(select(Source.slug, Source.id).where(Source.slug.in_(wanted)))
        return {str(slug): int(i) for slug, i in rows}


def stage_status(store: Store, article_id: int, stage: str) -> str | None:
    """One NLP stage's status for an article (``done``, ``failed``, ``deferred``…), if it ran."""
    with store.session() as s:
        return s.scalar(
            select(StageRun.status).where(
                StageRun.article_id == article_id, StageRun.stage == stage
            )
        )
