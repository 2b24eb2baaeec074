"""Migrations and models agree; backend settings; timestamps. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, StatementError

from covidnews.schema import Article, Base, Source
from covidnews.store import Store, StoreError
from tests.conftest import ROOT


def test_migrations_match_models(store: Store) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_migrate_is_idempotent_and_reversible(store: Store) -> None:
    head = store.head_revision()
    assert store.current_revision() == head
    assert store.migrate() == head  # second run: nothing to do
    from alembic import command

    with store.engine.connect() as conn:
        command.downgrade(store._alembic_config(conn), "base")
        conn.commit()
    assert store.current_revision() is None
    store.ensure_schema()
    assert store.current_revision() == head


def test_unknown_revision_is_refused(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(StoreError, match="ffff_future"):
        store.ensure_schema()


def test_sqlite_runs_wal_with_foreign_keys(store: Store) -> None:
    with store.engine.connect() as conn:
        if store.dialect != "sqlite":
            assert conn.execute(text("SHOW TIMEZONE")).scalar() is not None
            return
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(_article(source_id=999_999))


def _article(**kw: object) -> Article:
    values: dict[str, object] = {
        "url": "https://example.com/a",
        "url_hash": "a" * 64,
        "text": "t",
        "content_hash": "c" * 64,
        "record_hash": "r" * 64,
    }
    values.update(kw)
    return Article(**values)


def test_timestamps_round_trip_as_aware_utc(store: Store) -> None:
    madrid = timezone(timedelta(hours=1))
    published = datetime(2020, 3, 12, 10, 30, tzinfo=madrid)
    with store.session() as s:
        s.add(_article(published_at=published))
    with store.session() as s:
        got = s.scalar(select(Article.published_at))
    assert got == published
    assert got is not None
    assert got.utcoffset() == timedelta(0)
    assert got.tzinfo is not None
    # Range filters compare in UTC on both backends.
    with store.session() as s:
        lo = datetime(2020, 3, 12, 9, 29, tzinfo=UTC)
        hi = datetime(2020, 3, 12, 9, 31, tzinfo=UTC)
        n = s.scalar(select(Article.id).where(Article.published_at > lo, Article.published_at < hi))
    assert n is not None


def test_naive_datetimes_are_refused(store: Store) -> None:
    with store.session() as s:
        s.add(_article(published_at=datetime(2020, 3, 12)))
        with pytest.raises(StatementError, match="naive"):
            s.flush()
        s.rollback()


def test_state_constraint(store: Store) -> None:
    with pytest.raises(IntegrityError), store.session() as s:
        s.add(_article(state="bogus"))


def test_unicode_round_trip(store: Store) -> None:
    name = "Diario Ñandú — “Salud” 🦠"
    with store.session() as s:
        s.add(Source(name=name, slug="nandu", domains=["ñandú.example"]))
    with store.session() as s:
        src = s.scalar(select(Source))
    assert src is not None
    assert src.name == name
    assert src.domains == ["ñandú.example"]


def test_concurrent_init_processes(db_url: str, tmp_path: object) -> None:
    """Two `covidnews init` at once (e.g. two containers starting): both succeed, one schema."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(COVIDNEWS_DATABASE_URL=db_url, COVIDNEWS_DATA_DIR=str(tmp_path))
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "covidnews", "init"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    s = Store(db_url)
    try:
        assert s.current_revision() == s.head_revision()
    finally:
        s.close()


def test_migration_0006_rekeys_urls_and_merges_the_duplicates_it_reveals(store: Store) -> None:
    """At 0005, two rows hold one page under two spellings (``ni%c3%b1o``/``niño``) and another
    has a key from the old function; after 0006 every key is the new function's, the page is one
    article (the older row), and what pointed at the merged row points at the kept one."""
    from typing import Any

    from alembic import command
    from sqlalchemy import func, insert

    from covidnews.schema import BotPost, CrawlState, Translation
    from covidnews.urls import canonical_url, url_hash

    with store.engine.connect() as conn:
        command.downgrade(store._alembic_config(conn), "0005")
        conn.commit()
    assert store.current_revision() == "0005"

    def row(s: Any, url: str, key: str, **kw: object) -> int:
        # Core, with the columns of revision 0005 only (the model has later ones)
        values = dict(url=url, url_hash=key, text="t", content_hash="c", record_hash="r", **kw)
        return int(s.execute(insert(Article.__table__).values(**values)).inserted_primary_key[0])

    with store.session() as s:
        keep = row(s, "https://x.es/ni%c3%b1o", "a" * 64)
        merged = row(s, "https://x.es/niño", "b" * 64)
        copy = row(s, "https://y.es/copia", url_hash("https://y.es/copia"), duplicate_of=merged)
        escaped = row(s, "https://x.es/a/100%25-seguro", "c" * 64)
        s.add(Translation(article_id=merged, language="en", title="t", text="t", model="m"))
        s.add(BotPost(channel="x", dedup_key="k", kind="story", article_id=merged, text="p"))
        when = datetime(2024, 1, 1, tzinfo=UTC)
        s.add(CrawlState(url_hash="d" * 64, url="https://x.es/feed?a=1&utm_source=z", kind="feed"))
        s.add(
            CrawlState(url_hash="e" * 64, url="https://x.es/feed?a=1", kind="feed", fetched_at=when)
        )
        ids = (keep, merged, copy, escaped)
    assert store.migrate() == store.head_revision()
    with store.session() as s:
        rows = {a.id: a for a in s.scalars(select(Article))}
        assert set(rows) == {ids[0], ids[2], ids[3]}  # the later spelling merged into the older
        assert rows[ids[0]].url == "https://x.es/ni%C3%B1o"
        assert rows[ids[3]].url == "https://x.es/a/100%25-seguro"  # the escape kept
        for a in rows.values():
            assert a.url_hash == url_hash(canonical_url(a.url))
        assert rows[ids[2]].duplicate_of == ids[0]
        assert s.scalar(select(BotPost.article_id)) == ids[0]
        assert s.scalar(select(func.count()).select_from(Translation)) == 0  # went with its row
        states = s.execute(select(CrawlState.url_hash, CrawlState.url, CrawlState.fetched_at)).all()
        assert len(states) == 1  # the two spellings of one feed: the one fetched last stays
        assert states[0][0] == url_hash("https://x.es/feed?a=1") and states[0][2] == when
        # The merged row's deletion is in the change sequence the indexes follow.
        noted = set(s.scalars(text("SELECT article_id FROM article_changes")))
        assert ids[1] in noted
