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
