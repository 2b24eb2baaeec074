"""Idempotent, transactional writes. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from covidnews.ingest import parse_record
from covidnews.schema import Article, ProcessingState, Source
from covidnews.store import Store, slugify


def rec(url: str, text: str = "Texto de la noticia sobre la pandemia.", **kw: Any) -> Any:
    return parse_record({"url": url, "text": text, **kw})


def count(store: Store, model: Any = Article) -> int:
    with store.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_insert_then_same_again_is_a_no_op(store: Store) -> None:
    records = [rec(f"https://diario.example/n/{i}", title=f"Título {i}") for i in range(25)]
    first = store.upsert_articles(records)
    assert len(first.inserted) == 25
    assert len(set(first.inserted)) == 25
    with store.session() as s:
        stamps = dict(s.execute(select(Article.id, Article.updated_at)).all())
    again = store.upsert_articles(records)
    assert again.inserted == []
    assert again.updated == []
    assert again.unchanged == 25
    assert count(store) == 25
    with store.session() as s:
        assert dict(s.execute(select(Article.id, Article.updated_at)).all()) == stamps


def test_changed_text_updates_and_requeues(store: Store) -> None:
    (article_id,) = store.upsert_articles(
        [rec("https://diario.example/a", "Versión uno.")]
    ).inserted
    with store.session() as s:
        s.execute(update(Article).values(state=ProcessingState.done.value, covid_score=0.9))
    result = store.upsert_articles([rec("https://diario.example/a", "Versión dos, corregida.")])
    assert result.updated == [article_id]
    with store.session() as s:
        a = s.get(Article, article_id)
        assert a is not None
        assert a.text == "Versión dos, corregida."
        assert a.state == ProcessingState.pending.value
    assert count(store) == 1


def test_metadata_change_updates_but_keeps_nlp_state(store: Store) -> None:
    (article_id,) = store.upsert_articles([rec("https://diario.example/a")]).inserted
    with store.session() as s:
        s.execute(update(Article).values(state=ProcessingState.done.value))
    result = store.upsert_articles(
        [rec("https://diario.example/a", authors=["Ana Pérez"], published_at="2020-03-12")]
    )
    assert result.updated == [article_id]
    with store.session() as s:
        a = s.get(Article, article_id)
        assert a is not None
        assert a.state == ProcessingState.done.value  # same text: no need to re-run NLP
        assert a.authors == ["Ana Pérez"]
        assert a.published_at == datetime(2020, 3, 12, tzinfo=UTC)


def test_url_variants_are_one_article(store: Store) -> None:
    store.upsert_articles([rec("https://www.diario.example/a?utm_source=x")])
    store.upsert_articles([rec("http://m.diario.example/a#c"), rec("https://diario.example/a")])
    assert count(store) == 1


def test_last_record_for_a_url_wins_within_a_batch(store: Store) -> None:
    result = store.upsert_articles(
        [rec("https://diario.example/a", "uno"), rec("https://diario.example/a", "dos")]
    )
    assert len(result.inserted) == 1
    assert result.unchanged == 1
    with store.session() as s:
        assert s.scalar(select(Article.text)) == "dos"


def test_sources_matched_by_name_and_domain(store: Store) -> None:
    store.upsert_articles(
        [
            rec("https://elpais.com/a", source="El País", country="ES"),
            rec("https://elpais.com/b", source="el pais"),
            rec("https://www.elpais.com/c"),  # no name: matched by domain
            rec("https://elpais.com/d", source="  EL PAÍS "),
            rec("https://noticias.elpais.com/e"),  # subdomain of a known source
            rec("https://www.eltiempo.com/f"),  # unknown domain: a source named after it
        ]
    )
    with store.session() as s:
        sources = {src.slug: src for src in s.scalars(select(Source))}
        by_url = dict(s.execute(select(Article.url, Article.source_id)).all())
    assert set(sources) == {"el-pais", "eltiempo-com"}
    assert sources["el-pais"].country == "ES"
    assert sources["el-pais"].domains == ["elpais.com"]
    assert {by_url[u] for u in by_url if "elpais" in u} == {sources["el-pais"].id}
    assert sources["eltiempo-com"].name == "eltiempo.com"


def test_failed_transaction_stores_nothing(store: Store) -> None:
    good = rec("https://diario.example/ok")
    bad = rec("https://diario.example/bad")
    bad.published_at = datetime(2020, 1, 1)  # naive: refused by the column type
    with pytest.raises(Exception, match="naive"):
        store.upsert_articles([good, bad])
    assert count(store) == 0
    assert count(store, Source) == 0
    # The store stays usable and the same batch, fixed, goes in.
    bad.published_at = datetime(2020, 1, 1, tzinfo=UTC)
    assert len(store.upsert_articles([good, bad]).inserted) == 2


def test_concurrent_writers_never_duplicate(store: Store) -> None:
    """Several processes ingesting overlapping data: one row per URL, every URL stored."""
    records = [rec(f"https://diario{i % 7}.example/n/{i}") for i in range(300)]
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        writer = Store(store.url)
        try:
            for start in range(offset, 300, 50):
                writer.upsert_articles(records[start : start + 50])
            writer.upsert_articles(records)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            writer.close()

    threads = [threading.Thread(target=work, args=(i * 10,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert count(store) == 300
    assert count(store, Source) == 7


def test_stats_counts_every_state(store: Store) -> None:
    store.upsert_articles([rec(f"https://diario.example/{i}", language="es") for i in range(4)])
    with store.session() as s:
        s.execute(update(Article).where(Article.id <= 1).values(state="failed"))
    stats = store.stats()
    assert stats["articles"] == 4
    assert stats["sources"] == 1
    assert stats["states"] == {"pending": 3, "processing": 0, "done": 0, "failed": 1}
    assert stats["languages"] == {"es": 4}


@pytest.mark.parametrize(
    ("name", "slug"),
    [("El País", "el-pais"), ("  CNN en Español ", "cnn-en-espanol"), ("¡!", "source")],
)
def test_slugify(name: str, slug: str) -> None:
    assert slugify(name) == slug
