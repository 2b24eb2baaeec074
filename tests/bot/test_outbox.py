"""`covidnews bot outbox`: the review page an editor reads before turning on real posting."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import lxml.html
import pytest
from sqlalchemy import update

from bot.digest import run_digest
from bot.outbox import BadSince, parse_since
from bot.post import run_once
from bot.text import platform_of
from covidnews.schema import BotPost
from covidnews.settings import Settings
from covidnews.store import Store
from tests.bot.conftest import FakeClock, add_story
from tests.bot.fakes import Fake
from tests.bot.test_publish import PNG, _rows
from tests.conftest import run_cli

EVIL = "Vacunas <script>alert(1)</script> llegan"


def test_since_takes_durations_and_dates() -> None:
    now = datetime(2021, 3, 12, 12, tzinfo=UTC)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2021-03-01", now) == datetime(2021, 3, 1, tzinfo=UTC)
    with pytest.raises(BadSince, match="duration"):
        parse_since("last week", now)


def test_review_page_shows_what_each_channel_posted_or_would_post(
    store: Store,
    settings: Settings,
    fake: Fake,
    clock: FakeClock,
    cli_env: dict[str, str],
    tmp_path: Path,
) -> None:
    """Live Bluesky and X, dry-run Mastodon (no token), a digest thread, a failed post and a post
    older than the period: the page has a section per channel with each post's text as shown,
    its card, its length and status, replies under their root, nothing of the old post, and the
    crawled title as text, never markup."""
    fake.images["vacunas.png"] = ("image/png", PNG)
    mixed = settings.model_copy(update={"bot_mastodon_access_token": None})
    day = clock.now().date()
    add_story(
        store,
        title=EVIL,
        summary="Las 219,375 dosis de Pfizer se repartirán entre hospitales de nueve estados.",
        image_url=f"{fake.url}/media/vacunas.png",
        published=clock.now() - timedelta(minutes=30),
    )
    add_story(store, title="Reabren las escuelas de Lima", summary="Un resumen.", topic="education")
    run_once(store, mixed, rt=clock)
    run_digest(store, mixed, day, rt=clock)
    rows = _rows(store)
    with store.session() as s:  # one X post rejected, one post from long ago
        failed = next(r for r in rows if r.channel == "x" and r.kind == "story")
        s.execute(
            update(BotPost)
            .where(BotPost.id == failed.id)
            .values(status="failed", error="X: 403 <b>Forbidden</b>")
        )
        old = next(r for r in rows if r.channel == "mastodon" and r.kind == "story")
        s.execute(
            update(BotPost)
            .where(BotPost.id == old.id)
            .values(created_at=clock.now() - timedelta(days=10))
        )

    rows = _rows(store)
    out = tmp_path / "outbox.html"
    done = run_cli(
        "bot", "outbox", "--since", "7d", "--format", "html", "-o", str(out), env=cli_env
    )
    assert done.returncode == 0, done.stderr
    recent = [r for r in rows if r.id != old.id]
    assert f"{len(recent)} posts written to {out}" in done.stderr
    html = out.read_text("utf-8")
    assert "<script" not in html  # the crawled title is text
    doc = lxml.html.fromstring(html)
    sections = [s.get("id") for s in doc.xpath("//section")]
    assert sections == ["channel-x", "channel-mastodon", "channel-bluesky"]
    shown = {int(a.get("id").removeprefix("post-")): a for a in doc.xpath("//article")}
    assert set(shown) == {r.id for r in recent}  # the 10-day-old post is not in the period
    for row in recent:
        post = shown[row.id]
        assert post.get("data-status") == row.status
        assert post.xpath("string(.//span[contains(@class,'status')])") == row.status
        length = post.xpath("string(.//span[contains(@class,'length')])")
        platform = platform_of(row.channel)
        assert length == f"{platform.length(row.text)}/{platform.limit}"
        text = post.xpath("string(.//div[@class='text'])")
        if platform.name == "bluesky":  # as shown: the shortened link, with the full URL behind
            assert text == row.text
            link = post.xpath(".//div[@class='text']//a[@class='link']")
            if row.payload.get("link"):
                assert link[0].get("href") == row.payload["link"]
        else:
            assert text == row.text
    evil_x = next(r for r in recent if r.channel == "x" and r.text.startswith(EVIL))
    card = shown[evil_x.id].xpath(".//div[@class='card']")[0]
    assert card.xpath("string(.//div[@class='title'])") == EVIL
    assert card.xpath(".//img/@src") == [f"{fake.url}/media/vacunas.png"]
    bsky = next(r for r in recent if r.channel == "bluesky" and r.text.startswith(EVIL))
    assert "app.bsky.embed.external" in shown[bsky.id].xpath("string(.//div[@class='from'])")
    assert shown[bsky.id].xpath("string(.//a[starts-with(@href,'https://bsky.app/')]/@href)")
    assert shown[failed.id].xpath("string(.//div[@class='error'])") == "X: 403 <b>Forbidden</b>"
    # The digest: replies under their root, in order.
    root = next(r for r in recent if r.channel == "mastodon" and r.kind == "digest")
    replies = shown[root.id].getnext()
    assert replies.get("class") == "replies"
    items = [r.id for r in recent if r.channel == "mastodon" and r.kind == "digest_item"]
    assert [int(a.get("id")[5:]) for a in replies.xpath("./article")] == items
    counts = doc.xpath("//table[@id='counts']//tr[td]")
    assert {tr[0].text: tr.xpath("string(.)") for tr in counts}.keys() == {
        "x",
        "mastodon",
        "bluesky",
    }

    as_json = run_cli("bot", "outbox", "--since", "7d", "--format", "json", env=cli_env)
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [e["id"] for e in lines] == sorted((r.id for r in recent), reverse=True)
    assert next(e for e in lines if e["id"] == evil_x.id)["card"]["title"] == EVIL
    bad = run_cli("bot", "outbox", "--since", "last week", env=cli_env)
    assert bad.returncode == 2 and "--since" in bad.stderr and "7d" in bad.stderr


def test_an_empty_period_makes_a_page_that_says_so(
    cli_env: dict[str, str], tmp_path: Path, store: Store
) -> None:
    out = tmp_path / "empty.html"
    done = run_cli(
        "bot", "outbox", "--since", "7d", "--format", "html", "-o", str(out), env=cli_env
    )
    assert done.returncode == 0, done.stderr
    doc = lxml.html.fromstring(out.read_text("utf-8"))
    assert doc.xpath("string(//p[@id='empty'])").startswith("Nothing was posted")
    assert not doc.xpath("//article")
