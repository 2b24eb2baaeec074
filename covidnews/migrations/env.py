"""Alembic environment: runs on the connection covidnews hands it (see ``Store.migrate``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from covidnews.schema import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things: recreate tables in batch mode
        compare_type=True,
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Developer use through the alembic CLI: covidnews settings give the URL.
    from covidnews.settings import get_settings

    engine = create_engine(get_settings().db_url)
    with engine.connect() as conn:
        _configure(conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `covidnews init`")
run_migrations_online()
