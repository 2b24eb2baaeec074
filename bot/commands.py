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
@click.option(
    "--since",
    default=None,
    metavar="WHEN",
    help="Only posts recorded since: a duration (30m, 24h, 7d, 2w) or a date (2021-03-12).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many posts, newest first [default: 50; with --since, all of them].",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="text: a listing; json: one object per line; html: a review page of what each "
    "channel posted or would post (text as shown, link card, length, status).",
)
@click.option("--json", "as_json", is_flag=True, help="The same as --format json.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, allow_dash=True),
    default="-",
    show_default=True,
    help="Write here instead of standard output.",
)
def outbox(
    channel: str | None,
    status: str | None,
    since: str | None,
    limit: int | None,
    fmt: str,
    as_json: bool,
    output: str,
) -> None:
    """The posts (dry-run and live) with their status, newest first; with --format html, a page
    for an editor to review the account's voice before turning on real posting:

        covidnews bot outbox --since 7d --format html -o outbox.html
    """
    from datetime import UTC, datetime

    from bot.outbox import MAX_ROWS, BadSince, load_outbox, parse_since, render_html
    from bot.post import as_dict

    fmt = "json" if as_json else fmt
    now = datetime.now(UTC)
    try:
        start = parse_since(since, now) if since else None
    except BadSince as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    settings = load()
    store = open_store(settings)
    try:
        posts = load_outbox(
            store,
            since=start,
            channel=channel,
            status=status,
            limit=limit or (MAX_ROWS if start else 50),
        )
    finally:
        store.close()
    with click.open_file(output, "w", encoding="utf-8") as out:
        if fmt == "html":
            out.write(render_html(posts, since=start, generated_at=now))
        elif fmt == "json":
            for p in posts:
                out.write(json.dumps(as_dict(p), ensure_ascii=False) + "\n")
        elif posts:
            for p in posts:
                head = f"#{p.id} {p.channel} {p.kind} {p.status} {p.dedup_key}"
                if p.reply_to_id:
                    head += f" ↳ #{p.reply_to_id}"
                if p.error:
                    head += f" ({p.error})"
                out.write(head + "\n")
                for line in p.text.splitlines():
                    out.write("    " + line + "\n")
    if not posts and fmt == "text":
        click.echo("The outbox is empty. Post with: covidnews bot run-once", err=True)
    if output != "-":
        click.echo(f"{len(posts)} posts written to {output}", err=True)
