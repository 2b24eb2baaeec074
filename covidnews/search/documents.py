"""What the keyword index holds of an article, read from the store (written by the node's
follower, :mod:`covidnews.follow`).

Only processed articles (state ``done``) are indexed: their Covid flag, topics and translations
are known. Indexed: the title and body in the article's language, and the title and body (its
summary when the text was not translated) of each translation in its language — which is what
makes keyword search cross-lingual. The summary is extractive (sentences of the body), so it
adds no words. The date is the publication time on the outlet's clock (:func:`index_date`), else
the time the article was fetched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from sqlalchemy import select

from covidnews.schema import Article, ArticleTopic, ProcessingState, Source, Translation
from covidnews.search.keyword import SearchDoc
from covidnews.store import Store

BATCH = 1000


def index_date(
    published: datetime | None, offset: int | None, fetched: datetime | None
) -> int | None:
    """The indexes' date of an article: the outlet's clock read as if it were UTC (epoch seconds
    of the UTC instant plus its offset), so date filters and day counts are by the day the
    outlet's readers saw — a Bolivian article of 3 May 22:41 (-04:00) is in 3 May, not in 4 May
    as its UTC instant is. Without a publication date, the fetch time (UTC)."""
    if published is not None:
        return int(published.timestamp()) + 60 * (offset or 0)
    return int(fetched.timestamp()) if fetched is not None else None


def _chunks(ids: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def search_docs(store: Store, article_ids: Iterable[int]) -> list[SearchDoc]:
    """Search documents of these articles (those processed; others are left out)."""
    ids = sorted({int(i) for i in article_ids})
    docs: list[SearchDoc] = []
    for chunk in _chunks(ids, BATCH):
        with store.session() as s:
            rows = s.execute(
                select(Article, Source.country)
                .outerjoin(Source, Source.id == Article.source_id)
                .where(Article.id.in_(chunk), Article.state == ProcessingState.done.value)
                .order_by(Article.id)
            ).all()
            found = [a.id for a, _ in rows]
            translations: dict[int, list[Translation]] = defaultdict(list)
            for t in s.scalars(
                select(Translation)
                .where(Translation.article_id.in_(found))
                .order_by(Translation.language)
            ):
                translations[t.article_id].append(t)
            topics: dict[int, list[str]] = defaultdict(list)
            for article_id, topic in s.execute(
                select(ArticleTopic.article_id, ArticleTopic.topic)
                .where(ArticleTopic.article_id.in_(found))
                .order_by(ArticleTopic.article_id, ArticleTopic.rank)
            ):
                topics[article_id].append(topic)
            has_copies = set(
                s.scalars(
                    select(Article.duplicate_of).where(Article.duplicate_of.in_(found)).distinct()
                )
            )
            for a, source_country in rows:
                texts: list[tuple[str, str, str | None]] = [(a.title, a.text, a.language)]
                texts += [
                    (t.title, t.text or t.summary or "", t.language) for t in translations[a.id]
                ]
                docs.append(
                    SearchDoc(
                        article_id=a.id,
                        stamp=a.updated_at.timestamp(),
                        date=index_date(a.published_at, a.published_offset, a.fetched_at),
                        source_id=a.source_id,
                        country=a.country or source_country,
                        language=a.language,
                        topics=tuple(topics[a.id]),
                        is_covid=a.is_covid,
                        story_id=a.duplicate_of or a.id,
                        has_copies=a.id in has_copies,
                        texts=texts,
                    )
                )
    return docs
