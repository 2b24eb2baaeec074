"""``covidnews bot run-once | digest | outbox``.

Exit status: 0 done; 1 ran, but a post needs a human (``unknown``: recorded but never confirmed,
or ``failed``: rejected by the platform); 2 usage or settings error; 3 store unusable.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING

import click

from covidnews.commands._common import EXIT_INPUT, CommandError, load, open_store

if TYPE_CHECKING:
    from bot.post import RunReport


@click.group()
def bot() -> None:
    """Post story summaries to X, Mastodon and Bluesky (dry-run without credentials).

    Channels: COVIDNEWS_BOT_CHANNELS (x,mastodon,bluesky; NAME-en for English). A channel
    without credentials writes to the outbox (DATA_DIR/bot/outbox.jsonl and `bot outbox`).
    """


def _summary(report: RunReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False))
    else:
        for name, c in report.channels.items():
            mode = "dry-run" if c.dry_run else "live"
            line = (
                f"{name} ({mode}): {len(c.posted)} posted, {len(c.duplicates)} duplicate, "
                f"{len(c.retry)} to retry, {len(c.failed)} failed, {len(c.unknown)} unknown"
            )
            if c.stopped:
                line += f"; stopped: {c.stopped}"
            click.echo(line)
    for name, c in report.channels.items():
        for post_id in c.unknown:
            click.echo(
                f"{name}: post {post_id} was recorded but never confirmed sent: check the "
                "account by hand (not resent automatically)",
                err=True,
            )
        for post_id in c.failed:
            click.echo(f"{name}: post {post_id} failed (see `covidnews bot outbox`)", err=True)
    if report.needs_attention:
        raise CommandError("some posts need attention", EXIT_INPUT)


@bot.command("run-once")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def run_once(as_json: bool) -> None:
    """Post the best new stories on every channel (caps per run and per day apply)."""
    from bot.post import run_once as run

    settings = load()
    store = open_store(settings)
    try:
        report = run(store, settings)
    finally:
        store.close()
    _summary(report, as_json)


@bot.command()
@click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The day (UTC, YYYY-MM-DD) to summarise; default today.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON.")
def digest(day: object, as_json: bool) -> None:
    """Post the daily digest thread (root + the day's top stories as chained replies)."""
    from datetime import datetime

    from bot.digest import run_digest

    settings = load()
    store = open_store(settings)
    when: date | None = day.date() if isinstance(day, datetime) else None
    try:
        report = run_digest(store, settings, when)
    finally:
        store.close()
    _summary(report, as_json)


@bot.command()
@click.option("--channel", default=None, help="Only this channel.")
@click.option("--status", default=None, help="Only this status (dry_run, sent, unknown, …).")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def outbox(channel: str | None, status: str | None, limit: int, as_json: bool) -> None:
    """The latest posts (dry-run and live) with their status, newest first."""
    from sqlalchemy import select

    from bot.post import as_dict
    from covidnews.schema import BotPost

    settings = load()
    store = open_store(settings)
    try:
        with store.session() as s:
            q = select(BotPost).order_by(BotPost.id.desc()).limit(limit)
            if channel:
                q = q.where(BotPost.channel == channel)
            if status:
                q = q.where(BotPost.status == status)
            rows = [as_dict(r) for r in s.scalars(q)]
    finally:
        store.close()
    if as_json:
        for r in rows:
            click.echo(json.dumps(r, ensure_ascii=False))
        return
    if not rows:
        click.echo("The outbox is empty. Post with: covidnews bot run-once", err=True)
        return
    for r in rows:
        head = f"#{r['id']} {r['channel']} {r['kind']} {r['status']} {r['dedup_key']}"
        if r["reply_to_id"]:
            head += f" ↳ #{r['reply_to_id']}"
        if r["error"]:
            head += f" ({r['error']})"
        click.echo(head)
        for line in r["text"].splitlines():
            click.echo("    " + line)
