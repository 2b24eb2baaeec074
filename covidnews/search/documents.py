"""What the keyword index holds of an article, read from the store; and keeping the index in step.

Only processed articles (state ``done``) are indexed: their Covid flag, topics and translations
are known. Indexed: the title and body in the article's language, and the title and body (its
summary when the text was not translated) of each translation in its language — which is what
makes keyword search cross-lingual. The summary is extractive (sentences of the body), so it
adds no words. The date is the publication time, else the time the article was fetched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from sqlalchemy import select

from covidnews.schema import Article, ArticleTopic, ProcessingState, Source, Translation
from covidnews.search.keyword import KeywordIndex, SearchDoc
from covidnews.store import Store

BATCH = 1000


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
                when = a.published_at or a.fetched_at
                docs.append(
                    SearchDoc(
                        article_id=a.id,
                        stamp=a.updated_at.timestamp(),
                        date=int(when.timestamp()) if when else None,
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


def _done_stamps(store: Store, article_ids: Sequence[int] | None = None) -> dict[int, float]:
    """Article id -> updated_at of processed articles (all, or these)."""
    out: dict[int, float] = {}
    chunks = [None] if article_ids is None else list(_chunks(sorted(article_ids), BATCH))
    for chunk in chunks:
        query = select(Article.id, Article.updated_at).where(
            Article.state == ProcessingState.done.value
        )
        if chunk is not None:
            query = query.where(Article.id.in_(chunk))
        with store.session() as s:
            out.update((int(i), u.timestamp()) for i, u in s.execute(query))
    return out


def sync_search(store: Store, directory: Path, article_ids: Iterable[int] | None = None) -> int:
    """Index these articles (or catch up with the whole store); returns documents written.

    Idempotent: an article whose stored version is already indexed is not written again, so a
    redelivered task or a restart changes nothing. Catching up also drops articles the store no
    longer has.
    """
    index = KeywordIndex(directory)
    if article_ids is None:
        indexed = index.stamps()
        stamps = _done_stamps(store)
        wanted = sorted(stamps)
        gone = sorted(set(indexed) - set(stamps) - _existing(store, set(indexed) - set(stamps)))
    else:
        # Work proportional to the batch, not to the index.
        ids = sorted({int(i) for i in article_ids})
        indexed = index.stamps(ids)
        stamps = _done_stamps(store, ids)
        wanted = sorted(stamps)
        gone = []
    todo = [i for i in wanted if indexed.get(i) != stamps[i]]
    written = 0
    for chunk in _chunks(todo, BATCH):
        docs = search_docs(store, chunk)
        # A story's first copy indexed before its copies is marked again as having copies
        # (collapse reads that mark), though the article itself did not change.
        roots = sorted({d.story_id for d in docs if d.story_id != d.article_id})
        stale = set(index.unshared(roots)) - {d.article_id for d in docs}
        index.write(docs + search_docs(store, sorted(stale)))
        written += len(docs)
    if gone:
        index.write([], delete=gone)
    return written


def _existing(store: Store, ids: set[int]) -> set[int]:
    """Which of these article ids the store still has (in any state)."""
    out: set[int] = set()
    for chunk in _chunks(sorted(ids), BATCH):
        with store.session() as s:
            out.update(s.scalars(select(Article.id).where(Article.id.in_(chunk))))
    return out


def rebuild_search(store: Store, directory: Path) -> int:
    """Rebuild the keyword index from the store (``covidnews reindex``)."""
    ids = sorted(_done_stamps(store))
    count = 0

    def batches() -> Iterator[list]:  # type: ignore[type-arg]
        nonlocal count
        for chunk in _chunks(ids, BATCH * 5):
            docs = search_docs(store, chunk)
            count += len(docs)
            yield docs

    KeywordIndex(directory).rebuild(batches())
    return count
