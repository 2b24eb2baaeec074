"""The daily digest: one thread per channel.

The root post names the day and its top topics ("Covid-19, 12 de marzo de 2021: las 5 historias
principales del día 🧵 / Temas: Vacunas · Casos y cifras"); the day's top stories (ranked like
single posts, published that day on the outlet's clock) follow as replies, each its headline,
outlet and link, each replying to the previous one (Bluesky: root + parent refs). Keys:
``digest:<date>`` for the root and ``digest:<date>:<story id>`` for the items, so a digest is
made once per channel and day, and a digest interrupted (rate limit, outage) resumes where it
stopped when run again.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.post import (
    DONE,
    DUPLICATE,
    ChannelReport,
    ChannelStopped,
    RunReport,
    Runtime,
    _send,
    day_cap,
    publishers_for,
    reconcile,
    record,
    retry_pending,
)
from bot.publishers import Publisher
from bot.select import Story, load_stories, posts_since, rank
from bot.text import composed_for, language_of, platform_of
from covidnews.schema import BotPost
from covidnews.store import Store
from covidnews.taxonomy import topic
from covidnews.text import MONTHS_ES

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def day_label(day: date, language: str) -> str:
    if language == "en":
        return f"{MONTHS_EN[day.month - 1]} {day.day}, {day.year}"
    return f"{day.day} de {MONTHS_ES[day.month - 1]} de {day.year}"


#: topics named in a digest's root post
ROOT_TOPICS = 3


def top_topics(stories: list[Story], limit: int = ROOT_TOPICS) -> list[str]:
    """The digest's most frequent top topics (ties: the higher-ranked story's first)."""
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    for n, story in enumerate(stories):
        if story.topic:
            counts[story.topic] += 1
            first.setdefault(story.topic, n)
    return sorted(counts, key=lambda t: (-counts[t], first[t]))[:limit]


def root_text(day: date, n: int, language: str, topic_ids: list[str] | None = None) -> str:
    """The root post: the day, how many stories, and what they are about::

    Covid-19, 12 de marzo de 2021: las 5 historias principales del día 🧵
    Temas: Vacunas · Casos y cifras · Medidas de salud pública
    """
    names = [t.name(language) for t in map(topic, topic_ids or []) if t is not None]
    if language == "en":
        stories = "top story" if n == 1 else f"{n} top stories"
        head = f"Covid-19, {day_label(day, 'en')}: the day's {stories} 🧵"
        return head + (f"\nTopics: {' · '.join(names)}" if names else "")
    historias = "la historia principal" if n == 1 else f"las {n} historias principales"
    head = f"Covid-19, {day_label(day, 'es')}: {historias} del día 🧵"
    return head + (f"\nTemas: {' · '.join(names)}" if names else "")


def _thread_rows(store: Store, channel: str, day: date) -> list[BotPost]:
    key = f"digest:{day.isoformat()}"
    with store.session() as s:
        rows = list(
            s.scalars(
                select(BotPost)
                .where(
                    BotPost.channel == channel,
                    (BotPost.dedup_key == key) | BotPost.dedup_key.like(key + ":%"),
                )
                .order_by(BotPost.id)
            )
        )
        s.expunge_all()
    return rows


def digest_channel(
    store: Store,
    settings: Settings,
    channel: str,
    publisher: Publisher | None,
    day: date,
    rt: Runtime,
) -> ChannelReport:
    report = ChannelReport(channel, dry_run=publisher is None)
    language = language_of(channel)
    now = rt.now()
    report.unknown += reconcile(store, channel, now, timedelta(seconds=settings.bot_grace_seconds))
    key = f"digest:{day.isoformat()}"
    try:
        retry_pending(
            store, settings, channel, publisher, rt, report, kinds=("digest", "digest_item")
        )
        rows = _thread_rows(store, channel, day)
        root = next((r for r in rows if r.dedup_key == key), None)
        if root is not None and root.status not in DONE:
            log.warning("%s: digest %s root is %s; not continuing", channel, day, root.status)
            return report
        items_done = [r for r in rows if r.kind == "digest_item"]
        if any(r.status not in DONE for r in items_done):
            log.warning("%s: digest %s has an item not online; not continuing", channel, day)
            return report
        budget = day_cap(settings, channel) - posts_since(store, channel, now - timedelta(hours=24))
        size = settings.bot_digest_size
        wanted = min(size - len(items_done), budget - (0 if root else 1))
        if wanted <= 0:
            return report
        start = datetime.combine(day, time(0), tzinfo=UTC)
        stories = load_stories(store, day=(start, start + timedelta(days=1)))
        have = {r.dedup_key for r in rows}
        stories = [
            s
            for s in stories
            if f"{key}:{s.id}" not in have and composed_for(s, channel, digest=True) is not None
        ]
        top = rank(stories, limit=wanted)
        if not top:
            return report
        total = len(items_done) + len(top)
        if root is None:
            text = root_text(day, total, language, top_topics(top))
            root_id = record(
                store,
                channel=channel,
                dedup_key=key,
                kind="digest",
                text=text,
                language=language,
                created_at=rt.now(),
                payload={"length": platform_of(channel).length(text)},
            )
            if root_id is None:  # another run is making it
                return report
            _send(store, settings, root_id, publisher, rt, report)
            if root_id not in report.posted:
                return report
        else:
            root_id = root.id
        online = [r for r in items_done if r.remote_id]
        parent_id = online[-1].id if online else root_id
        for n, story in enumerate(top, start=len(items_done) + 1):
            composed = composed_for(story, channel, prefix=f"{n}/{total} ", digest=True)
            if composed is None:
                continue
            payload = composed.as_payload()
            payload["thread_root"] = root_id
            post_id = record(
                store,
                channel=channel,
                dedup_key=f"{key}:{story.id}",
                kind="digest_item",
                text=composed.text,
                language=language,
                created_at=rt.now(),
                article_id=story.article.id,
                reply_to_id=parent_id,
                payload=payload,
            )
            if post_id is None:
                break
            status = _send(store, settings, post_id, publisher, rt, report)
            if status not in DONE:
                break
            if status != DUPLICATE:  # a duplicate has no remote id to reply to
                parent_id = post_id
    except ChannelStopped as exc:
        report.stopped = str(exc)
        log.warning("%s: stopping the digest for this run: %s", channel, exc)
    return report


def run_digest(
    store: Store,
    settings: Settings,
    day: date | None = None,
    *,
    publishers: dict[str, Publisher | None] | None = None,
    rt: Runtime | None = None,
) -> RunReport:
    """The digest thread of ``day`` (default: today, UTC) on every configured channel."""
    rt = rt or Runtime()
    day = day or rt.now().astimezone(UTC).date()
    report = RunReport()
    for channel, publisher in publishers_for(settings, publishers).items():
        report.channels[channel] = digest_channel(store, settings, channel, publisher, day, rt)
    return report
