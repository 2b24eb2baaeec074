"""``covidnews apikey create | list | revoke``: keys for the search API."""

from __future__ import annotations

import json

import click

from covidnews.commands._common import EXIT_INPUT, EXIT_SETTINGS, CommandError, load, open_store


@click.group()
def apikey() -> None:
    """Manage API keys (anonymous use of the API is limited per address; a key raises it).

    Only a key's sha256 is stored: the key itself is printed once, by `create`.
    """


@apikey.command()
@click.argument("name")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=1),
    default=None,
    help="Requests per minute for this key (default: COVIDNEWS_API_RATE_LIMIT_KEY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with the key).")
def create(name: str, rate_limit: int | None, as_json: bool) -> None:
    """Create a key for NAME (who or what uses it) and print it (shown only this once)."""
    from api.keys import as_dict, create_key

    if not name.strip():
        raise CommandError("the key's NAME may not be empty", EXIT_SETTINGS)
    settings = load()
    store = open_store(settings)
    try:
        key, row = create_key(store, name, rate_limit)
    finally:
        store.close()
    limit = rate_limit or settings.api_rate_limit_key
    if as_json:
        click.echo(json.dumps({**as_dict(row), "key": key}, ensure_ascii=False))
        return
    click.echo(key)
    click.echo(
        f"API key {row.id} ({row.prefix}…) for {row.name!r}: {limit} requests/minute. "
        "Store it now: it is not shown again.",
        err=True,
    )


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def list_(as_json: bool) -> None:
    """List keys (id, prefix, name, limit, status, last use). Keys themselves are never shown."""
    from api.keys import as_dict, list_keys

    settings = load()
    store = open_store(settings)
    try:
        rows = [as_dict(row) for row in list_keys(store)]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        click.echo("No API keys. Create one with: covidnews apikey create NAME", err=True)
        return
    default = f"{settings.api_rate_limit_key} (default)"
    table = [
        (
            str(r["id"]),
            r["prefix"] + "…",
            r["name"],
            str(r["rate_limit"]) if r["rate_limit"] else default,
            r["status"],
            (r["created_at"] or "-")[:19],
            (r["last_used_at"] or "never")[:19],
        )
        for r in rows
    ]
    header = ("ID", "PREFIX", "NAME", "PER MINUTE", "STATUS", "CREATED", "LAST USED")
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo(line.rstrip())


@apikey.command()
@click.argument("id_or_prefix")
def revoke(id_or_prefix: str) -> None:
    """Revoke a key, given its id or prefix (as `list` shows it). Idempotent.

    Exit status 1 when no key (or more than one) matches.
    """
    from api.keys import KeyLookupError, revoke_key

    settings = load()
    store = open_store(settings)
    try:
        row, changed = revoke_key(store, id_or_prefix)
    except KeyLookupError as exc:
        raise CommandError(str(exc), EXIT_INPUT) from None
    finally:
        store.close()
    state = "revoked" if changed else "was already revoked"
    click.echo(f"API key {row.id} ({row.prefix}…, {row.name!r}) {state}")
