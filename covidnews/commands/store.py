"""``covidnews init``, ``stats``, ``backup`` and ``restore``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from covidnews.commands._common import EXIT_STORE, CommandError, load, open_store


@click.command()
def init() -> None:
    """Create the database (or upgrade it to this version's schema).

    Idempotent and safe to run from several processes at once. With no settings the database
    is SQLite in COVIDNEWS_DATA_DIR (./var); set COVIDNEWS_DATABASE_URL for PostgreSQL.
    """
    from covidnews.store import StoreError

    settings = load()
    store = open_store(settings, migrate=False)
    try:
        before = store.current_revision()
        after = store.migrate()
    except StoreError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    state = "already at" if before == after else f"migrated from {before or 'empty'} to"
    click.echo(f"{store.safe_url}: {state} schema revision {after}")


def _fmt_counts(counts: dict[str, int]) -> str:
    return " · ".join(f"{key} {value:,}" for key, value in counts.items()) or "-"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def stats(as_json: bool) -> None:
    """Show counts: articles, sources, processing states, languages, Covid classification.

    With --json, prints one object with at least the keys `articles`, `sources` and `states`
    (a count for every processing state: pending, processing, done, failed).
    """
    settings = load()
    store = open_store(settings)
    try:
        data: dict[str, Any] = store.stats()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, sort_keys=True))
        return
    published = data["published"]
    span = f"{published['first'][:10]} … {published['last'][:10]}" if published["first"] else "-"
    rows = [
        ("Database", data["database"]),
        ("Articles", f"{data['articles']:,} ({data['duplicates']:,} syndicated copies)"),
        ("Sources", f"{data['sources']:,}"),
        ("States", _fmt_counts(data["states"])),
        ("Languages", _fmt_counts(data["languages"])),
        ("Covid", _fmt_counts(data["covid"])),
        ("Published", span),
        (
            "NLP output",
            f"{data['translations']:,} translations · {data['topic_assignments']:,} topic "
            f"assignments · {data['embeddings']:,} embeddings",
        ),
    ]
    if data["translations_deferred"]:
        rows.append(
            (
                "Deferred",
                f"{data['translations_deferred']:,} translations wait for the translator "
                "(install it, then run `covidnews process`)",
            )
        )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


@click.command()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def backup(dest: Path) -> None:
    """Write a consistent backup of the store to DEST (a new file), while it runs.

    SQLite: the online backup API. PostgreSQL: pg_dump custom format (needs the PostgreSQL
    client). Restore with `covidnews restore DEST`. The search indexes are not in it: they are
    rebuilt from the store (see docs/operations.md, Backups).
    """
    from covidnews.backup import BackupError
    from covidnews.backup import backup as make_backup

    settings = load()
    store = open_store(settings)
    try:
        written = make_backup(store, dest)
        counts = store.stats()
    except BackupError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    size = written.stat().st_size
    click.echo(f"backup of {counts['articles']:,} articles written to {written} ({size:,} bytes)")


@click.command()
@click.argument("src", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask: the store's current content is replaced.")
@click.option(
    "--reindex/--no-reindex",
    default=True,
    show_default=True,
    help="Rebuild this machine's search indexes from the restored store afterwards.",
)
def restore(src: Path, yes: bool, reindex: bool) -> None:
    """Replace the whole store with the backup SRC (from `covidnews backup`), then rebuild this
    machine's indexes. Other nodes rebuild theirs: `covidnews reindex` on each (or restart them
    with an empty data directory)."""
    from covidnews.backup import BackupError
    from covidnews.backup import restore as restore_backup

    settings = load()
    store = open_store(settings, migrate=False)
    if not yes:
        click.confirm(f"Replace everything in {store.safe_url} with {src}?", abort=True, err=True)
    try:
        restore_backup(store, src)
        store.ensure_schema()  # a backup from an older version is brought up to this one
        counts = store.stats()
    except BackupError as exc:
        raise CommandError(str(exc), EXIT_STORE) from None
    finally:
        store.close()
    click.echo(f"restored {counts['articles']:,} articles from {src}")
    if reindex:
        from covidnews.follow import Follower

        store = open_store(settings)
        try:
            report = Follower.from_settings(settings, store, None).reset()
        finally:
            store.close()
        click.echo(f"indexes rebuilt: {report.written:,} documents, {report.vectors:,} vectors")
