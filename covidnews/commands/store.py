"""``covidnews init`` and ``covidnews stats``."""

from __future__ import annotations

import json
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
