"""Backups of the store, and restoring one (``covidnews backup`` / ``covidnews restore``).

SQLite: the online backup API (``sqlite3.Connection.backup``): a consistent copy while other
processes read and write. PostgreSQL: ``pg_dump --format=custom`` and ``pg_restore --clean
--if-exists --single-transaction`` (the client binaries of the server's major version). The search
indexes are caches of the store: after a restore a node rebuilds them (``restore`` does it for the
local data directory unless told not to).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from covidnews.store import Store


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says why."""


def _sqlite_path(store: Store) -> Path:
    database = make_url(str(store.engine.url)).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(database)


def _libpq_url(store: Store) -> str:
    """The store's URL as pg_dump/pg_restore take it (no SQLAlchemy driver suffix)."""
    url = make_url(str(store.engine.url)).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        import glob

        candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
        if not candidates:
            raise BackupError(
                f"{name} is not installed: install the PostgreSQL client "
                "(Debian/Ubuntu: apt-get install postgresql-client)"
            )
        found = candidates[-1]
    return found


def _run(args: list[str]) -> None:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {proc.stderr.strip()[-2000:]}")


def _sqlite_copy(source: sqlite3.Connection, target_path: Path) -> None:
    """SQLite's online backup API: ``source`` (closed afterwards) into the file ``target_path``."""
    target = sqlite3.connect(target_path)
    try:
        with target:
            source.backup(target)
    finally:
        target.close()
        source.close()


def backup(store: Store, dest: Path) -> Path:
    """Write a consistent backup of the store to ``dest`` (a file); returns it."""
    dest = dest.expanduser()
    if dest.exists():
        raise BackupError(f"{dest} exists: choose a new file (a backup never overwrites)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if store.dialect == "sqlite":
        _sqlite_copy(sqlite3.connect(_sqlite_path(store)), dest)
    elif store.dialect == "postgresql":
        _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(dest),
              _libpq_url(store)])  # fmt: skip
    else:  # pragma: no cover - the store supports only these two
        raise BackupError(f"no backup for {store.dialect}")
    return dest


def restore(store: Store, src: Path) -> None:
    """Replace the store's whole content with the backup ``src`` (made by :func:`backup` from a
    store of the same kind)."""
    src = src.expanduser()
    if not src.is_file():
        raise BackupError(f"no backup file at {src}")
    if store.dialect == "sqlite":
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        try:
            source.execute("SELECT count(*) FROM alembic_version").fetchone()
        except sqlite3.DatabaseError as exc:
            source.close()
            raise BackupError(f"{src} is not a covidnews SQLite backup: {exc}") from None
        store.engine.dispose()  # no pooled connection keeps the old file open
        _sqlite_copy(source, _sqlite_path(store))
    elif store.dialect == "postgresql":
        with src.open("rb") as head:
            magic = head.read(5)
        if magic != b"PGDMP":
            raise BackupError(f"{src} is not a pg_dump custom-format backup")
        store.engine.dispose()
        _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner",
              "--single-transaction", "--dbname", _libpq_url(store), str(src)])  # fmt: skip
    else:  # pragma: no cover
        raise BackupError(f"no restore for {store.dialect}")
