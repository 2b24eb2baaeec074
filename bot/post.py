"""Recording and sending posts, reliably, and one run of the bot over every channel.

Reliability policy (docs/architecture.md, "Bot"):

1. **Record, then send.** A post is inserted into ``bot_posts`` with status ``recorded`` in its
   own committed transaction BEFORE it is sent; the unique ``(channel, dedup_key)`` makes a story
   postable once per channel, ever, whatever runs in parallel. After the platform answers it
   becomes ``sent`` (with the remote id), ``duplicate`` (the platform already has it: done),
   ``retry`` (the platform said no for now: 429 or 5xx), ``failed`` (a permanent 4xx, or
   ``COVIDNEWS_BOT_MAX_ATTEMPTS`` retries) or ``unknown``.
2. **At most once, and then settled.** A row still ``recorded`` after
   ``COVIDNEWS_BOT_GRACE_SECONDS`` means a run died between recording and hearing back: the post
   may or may not be online. It is marked ``unknown``, logged and reported (exit status 1 of
   ``covidnews bot run-once``). The same goes for answers that leave it open (a read timeout, a
   connection dropped after sending, an unexpected error). Every run then settles ``unknown``
   posts by looking on the account (:func:`settle_unknown`): found → ``sent``; not found after
   ``COVIDNEWS_BOT_SETTLE_SECONDS`` → sent again, once. Bluesky posts carry a record key derived
   from the row, so on Bluesky even a repeated send cannot make a second record; a 5xx there is
   checked by reading that record before it is retried. Only errors where the platform said it
   did not post (429, 5xx on X and Mastodon, connection refused) are retried at once.
3. **429**: the platform's reset time is honoured. Up to ``COVIDNEWS_BOT_MAX_WAIT_SECONDS``
   (60 s) away we wait and send again; later, the post is left as ``retry`` and the channel stops
   for this run (the next run sends it first).
4. **5xx / connection refused**: retried with exponential back-off
   (``COVIDNEWS_BOT_RETRY_BACKOFF_SECONDS`` × 2ⁿ, ``COVIDNEWS_BOT_RETRY_ATTEMPTS`` tries); if it
   keeps failing, ``retry`` and the channel stops for this run.
5. **Dry-run** (no credentials or ``COVIDNEWS_BOT_DRY_RUN``): the same rows with status
   ``dry_run``, plus a line in ``DATA_DIR/bot/outbox.jsonl`` and the log.
"""

from __future__ import annotations

import json
import logging
import time as _time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.publishers import (
    Ambiguous,
    Duplicate,
    Outgoing,
    Publisher,
    PublishError,
    RateLimited,
    Rejected,
    RemoteRef,
    Transient,
    make_publisher,
    record_key,
)
from bot.select import load_stories, posts_since, select_stories, select_verdicts, verdict_key
from bot.text import (
    Card,
    Composed,
    composed_for,
    language_of,
    platform_of,
    verdict_composed,
)
from covidnews.schema import BotPost
from covidnews.store import Store

if TYPE_CHECKING:
    from bot.outbox import OutboxPost
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

# Statuses of bot_posts rows.
RECORDED, SENT, DRY_RUN, DUPLICATE, RETRY, FAILED, UNKNOWN = (
    "recorded",
    "sent",
    "dry_run",
    "duplicate",
    "retry",
    "failed",
    "unknown",
)
DONE = (SENT, DRY_RUN, DUPLICATE)


@dataclass
class Runtime:
    """Clock and sleep, injectable (tests never really wait)."""

    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    time: Callable[[], float] = field(default=_time.time)
    sleep: Callable[[float], None] = field(default=_time.sleep)


class ChannelStopped(Exception):
    """Stop posting on this channel for this run (long rate limit, platform failing)."""


def outbox_path(settings: Settings) -> Path:
    return settings.data_dir / "bot" / "outbox.jsonl"


def day_cap(settings: Settings, channel: str) -> int:
    return int(getattr(settings, f"bot_per_day_cap_{platform_of(channel).name}"))


# Recording -------------------------------------------------------------------------------------


def record(
    store: Store,
    *,
    channel: str,
    dedup_key: str,
    kind: str,
    text: str,
    language: str,
    created_at: datetime,
    article_id: int | None = None,
    reply_to_id: int | None = None,
    payload: dict[str, Any] | None = None,  # JSON, kept with the row
) -> int | None:
    """Insert a ``recorded`` row in its own transaction; None when the key is already there."""
    try:
        with store.session() as s:
            row = BotPost(
                channel=channel,
                dedup_key=dedup_key,
                kind=kind,
                article_id=article_id,
                reply_to_id=reply_to_id,
                language=language,
                text=text,
                status=RECORDED,
                payload=payload or {},
                attempts=0,
                created_at=created_at,
            )
            s.add(row)
            s.flush()
            return int(row.id)
    except IntegrityError:
        return None


def _update(store: Store, post_id: int, **values: Any) -> None:
    with store.session() as s:
        s.execute(update(BotPost).where(BotPost.id == post_id).values(**values))


def reconcile(store: Store, channel: str, now: datetime, grace: timedelta) -> list[int]:
    """Mark ``recorded`` rows older than the grace period ``unknown`` (never resent)."""
    with store.session() as s:
        ids = list(
            s.scalars(
                select(BotPost.id).where(
                    BotPost.channel == channel,
                    BotPost.status == RECORDED,
                    BotPost.created_at < now - grace,
                )
            )
        )
        if ids:
            s.execute(
                update(BotPost)
                .where(BotPost.id.in_(ids), BotPost.status == RECORDED)
                .values(
                    status=UNKNOWN,
                    error="recorded but never confirmed sent (the run died?): "
                    "check the account; not resent automatically",
                )
            )
    for post_id in ids:
        log.warning(
            "%s: post %s was recorded but never confirmed: marked unknown, check by hand",
            channel,
            post_id,
        )
    return ids


#: unknown posts older than this are no longer looked up (the platforms' timelines are finite)
SETTLE_WINDOW = timedelta(days=7)


def settle_unknown(
    store: Store,
    settings: Settings,
    channel: str,
    publisher: Publisher | None,
    rt: Runtime,
    report: ChannelReport,
) -> None:
    """Decide the channel's ``unknown`` posts by looking on the account (rule 2 above):

    - found (Bluesky: the record with the post's own key; X/Mastodon: the account's recent posts
      with the same text) → ``sent``, with the remote id;
    - not found ``COVIDNEWS_BOT_SETTLE_SECONDS`` after it was recorded → ``retry``: sent again,
      **once** (``payload.settle = "resent"``); if that send is unknown too, it stays ``unknown``
      for a human, and is still marked ``sent`` if a later lookup finds it;
    - not found yet → left for the next run (timelines can lag behind a post).

    The platform unreachable: nothing changes, the next run asks again."""
    if publisher is None:
        return
    now = rt.now()
    with store.session() as s:
        rows = list(
            s.scalars(
                select(BotPost)
                .where(
                    BotPost.channel == channel,
                    BotPost.status == UNKNOWN,
                    BotPost.created_at >= now - SETTLE_WINDOW,
                )
                .order_by(BotPost.id)
            )
        )
        s.expunge_all()
    for row in rows:
        payload = dict(row.payload or {})
        try:
            found = publisher.find(_outgoing(row), since=row.created_at - timedelta(minutes=1))
        except PublishError as exc:
            log.warning("%s: cannot look for unknown posts now: %s", channel, exc)
            return
        if found is not None:
            if found.cid:
                payload["cid"] = found.cid
            payload["settle"] = "found"
            _update(
                store, row.id, status=SENT, remote_id=found.id, payload=payload, sent_at=now,
                error=None,
            )  # fmt: skip
            report.settled.append(row.id)
            log.info(
                "%s: unknown post %s found on the account as %s: sent", channel, row.id, found.id
            )
        elif payload.get("settle") != "resent" and now - row.created_at >= timedelta(
            seconds=settings.bot_settle_seconds
        ):
            payload["settle"] = "resent"
            _update(
                store, row.id, status=RETRY, payload=payload,
                error="not on the account after the settle period: sent again, once",
            )  # fmt: skip
            log.warning(
                "%s: unknown post %s not on the account: sending it again, once", channel, row.id
            )


def as_dict(row: BotPost | OutboxPost) -> dict[str, Any]:
    """A post as JSON (the outbox file, ``covidnews bot outbox --format json``)."""
    return {
        "id": row.id,
        "channel": row.channel,
        "kind": row.kind,
        "dedup_key": row.dedup_key,
        "status": row.status,
        "article_id": row.article_id,
        "reply_to_id": row.reply_to_id,
        "language": row.language,
        "text": row.text,
        "remote_id": row.remote_id,
        "error": row.error,
        "attempts": row.attempts,
        "link": (row.payload or {}).get("link"),
        "length": (row.payload or {}).get("length"),
        "card": (row.payload or {}).get("card"),
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
    }


def _write_outbox(path: Path, row: BotPost) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = as_dict(row)
    entry["facets"] = (row.payload or {}).get("facets", [])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry, ensure_ascii=False) + "\n")


# Sending ---------------------------------------------------------------------------------------


def _outgoing(row: BotPost, root: BotPost | None = None, parent: BotPost | None = None) -> Outgoing:
    """What a publisher gets for a post row: the same idempotency and record keys on every try
    (and for the settle lookup), facets, reply refs."""
    return Outgoing(
        text=row.text,
        language=row.language,
        idempotency_key=f"covidnews-{row.channel}-{row.id}",
        facets=list((row.payload or {}).get("facets", [])),
        reply_root=_ref(root),
        reply_parent=_ref(parent),
        record_key=record_key(row.id, row.created_at),
        card=_card((row.payload or {}).get("card")),
    )


def _card(value: Any) -> Card | None:
    if not isinstance(value, dict) or not value.get("uri") or not value.get("title"):
        return None
    return Card(
        uri=str(value["uri"]),
        title=str(value["title"]),
        description=str(value.get("description") or ""),
        image=str(value["image"]) if value.get("image") else None,
    )


def _ref(row: BotPost | None) -> RemoteRef | None:
    if row is None or not row.remote_id:
        return None
    return RemoteRef(row.remote_id, (row.payload or {}).get("cid"))


def deliver(
    store: Store,
    settings: Settings,
    post_id: int,
    publisher: Publisher | None,
    rt: Runtime,
) -> str:
    """Send a recorded (or ``retry``) post; returns its new status.

    Raises :class:`ChannelStopped` when the channel should not be used again in this run."""
    with store.session() as s:
        row = s.get(BotPost, post_id)
        assert row is not None
        parent = s.get(BotPost, row.reply_to_id) if row.reply_to_id else None
        root_id = (row.payload or {}).get("thread_root")
        root = s.get(BotPost, root_id) if root_id else parent
        s.expunge_all()
    if publisher is None:
        fake_id = f"dry-run:{post_id}"
        _update(store, post_id, status=DRY_RUN, remote_id=fake_id, sent_at=rt.now(), error=None)
        row.status, row.remote_id = DRY_RUN, fake_id
        _write_outbox(outbox_path(settings), row)
        log.info("%s [dry-run] %s: %s", row.channel, row.dedup_key, row.text.replace("\n", " ⏎ "))
        return DRY_RUN
    if row.reply_to_id is not None and _ref(parent) is None:
        _update(store, post_id, status=RETRY, error="the post it replies to is not online yet")
        return RETRY
    outgoing = _outgoing(row, root, parent)
    attempts = row.attempts
    tries = 0
    waited = False
    while True:
        attempts += 1
        try:
            remote = publisher.send(outgoing)
        except Duplicate as exc:
            _update(store, post_id, status=DUPLICATE, error=str(exc)[:2000], attempts=attempts)
            log.info("%s: %s already on the platform (duplicate): done", row.channel, post_id)
            return DUPLICATE
        except RateLimited as exc:
            wait = exc.reset_at - rt.time() if exc.reset_at is not None else None
            if not waited and wait is not None and wait <= settings.bot_max_wait_seconds:
                waited = True
                log.info("%s: rate limited, waiting %.1f s for the reset", row.channel, wait)
                rt.sleep(max(0.0, wait) + 0.5)
                attempts -= 1  # the platform refused before doing anything
                continue
            _update(store, post_id, status=RETRY, error=str(exc)[:2000], attempts=attempts - 1)
            raise ChannelStopped(f"rate limited until {exc.reset_at}: {exc}") from exc
        except Transient as exc:
            tries += 1
            if tries < settings.bot_retry_attempts:
                delay = settings.bot_retry_backoff_seconds * 2 ** (tries - 1)
                log.info("%s: %s; retrying in %.1f s", row.channel, exc, delay)
                rt.sleep(delay)
                continue
            status = FAILED if attempts >= settings.bot_max_attempts else RETRY
            _update(store, post_id, status=status, error=str(exc)[:2000], attempts=attempts)
            raise ChannelStopped(f"platform failing: {exc}") from exc
        except Rejected as exc:
            _update(store, post_id, status=FAILED, error=str(exc)[:2000], attempts=attempts)
            log.error("%s: post %s rejected: %s", row.channel, post_id, exc)
            return FAILED
        except Ambiguous as exc:
            _update(store, post_id, status=UNKNOWN, error=str(exc)[:2000], attempts=attempts)
            log.warning("%s: post %s may or may not be online: %s", row.channel, post_id, exc)
            return UNKNOWN
        except Exception as exc:  # an unexpected answer: it may have been posted
            log.exception("%s: post %s: unexpected error", row.channel, post_id)
            _update(store, post_id, status=UNKNOWN, error=repr(exc)[:2000], attempts=attempts)
            return UNKNOWN
        payload = dict(row.payload or {})
        if remote.cid:
            payload["cid"] = remote.cid
        _update(
            store,
            post_id,
            status=SENT,
            remote_id=remote.id,
            payload=payload,
            sent_at=rt.now(),
            error=None,
            attempts=attempts,
        )
        log.info("%s: sent %s as %s", row.channel, row.dedup_key, remote.id)
        return SENT


# One run ---------------------------------------------------------------------------------------


@dataclass
class ChannelReport:
    channel: str
    dry_run: bool
    posted: list[int] = field(default_factory=list)  # bot_posts ids sent or dry-run
    duplicates: list[int] = field(default_factory=list)
    retry: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)  # newly found: answer lost or run died
    settled: list[int] = field(default_factory=list)  # unknown, then found on the account
    stopped: str | None = None

    @property
    def needs_attention(self) -> bool:
        return bool(self.failed or self.unknown)

    def add(self, post_id: int, status: str) -> None:
        target = {
            SENT: self.posted,
            DRY_RUN: self.posted,
            DUPLICATE: self.duplicates,
            RETRY: self.retry,
            FAILED: self.failed,
            UNKNOWN: self.unknown,
        }.get(status)
        if target is not None:
            target.append(post_id)


@dataclass
class RunReport:
    channels: dict[str, ChannelReport] = field(default_factory=dict)

    @property
    def needs_attention(self) -> bool:
        return any(c.needs_attention for c in self.channels.values())

    def as_dict(self) -> dict[str, Any]:
        return {name: asdict(c) for name, c in self.channels.items()}


def publishers_for(
    settings: Settings, overrides: dict[str, Publisher | None] | None = None
) -> dict[str, Publisher | None]:
    out: dict[str, Publisher | None] = {}
    for channel in settings.bot_channels:
        if overrides is not None and channel in overrides:
            out[channel] = overrides[channel]
        else:
            out[channel] = make_publisher(channel, settings)
    return out


def _send(
    store: Store,
    settings: Settings,
    post_id: int,
    publisher: Publisher | None,
    rt: Runtime,
    report: ChannelReport,
) -> str:
    try:
        status = deliver(store, settings, post_id, publisher, rt)
    except ChannelStopped:
        report.retry.append(post_id)
        raise
    report.add(post_id, status)
    return status


def retry_pending(
    store: Store,
    settings: Settings,
    channel: str,
    publisher: Publisher | None,
    rt: Runtime,
    report: ChannelReport,
    *,
    kinds: tuple[str, ...],
) -> None:
    """Send the channel's ``retry`` posts again (oldest first)."""
    with store.session() as s:
        ids = list(
            s.scalars(
                select(BotPost.id)
                .where(BotPost.channel == channel, BotPost.status == RETRY, BotPost.kind.in_(kinds))
                .order_by(BotPost.id)
            )
        )
    for post_id in ids:
        _send(store, settings, post_id, publisher, rt, report)


def run_channel(
    store: Store,
    settings: Settings,
    channel: str,
    publisher: Publisher | None,
    rt: Runtime,
) -> ChannelReport:
    report = ChannelReport(channel, dry_run=publisher is None)
    now = rt.now()
    report.unknown += reconcile(store, channel, now, timedelta(seconds=settings.bot_grace_seconds))
    settle_unknown(store, settings, channel, publisher, rt, report)
    try:
        retry_pending(store, settings, channel, publisher, rt, report, kinds=("story",))
        used_today = posts_since(store, channel, now - timedelta(hours=24))
        budget = min(
            settings.bot_per_run_cap - len(report.posted), day_cap(settings, channel) - used_today
        )

        def post(key: str, kind: str, composed: Composed, article_id: int) -> None:
            post_id = record(
                store,
                channel=channel,
                dedup_key=key,
                kind=kind,
                text=composed.text,
                language=language_of(channel),
                created_at=rt.now(),
                article_id=article_id,
                payload=composed.as_payload(),
            )
            if post_id is not None:  # None: another run took it meanwhile
                _send(store, settings, post_id, publisher, rt, report)

        # A false or misleading verdict on a widely shared story comes first: it is the post
        # that corrects what many readers saw.
        since = now - timedelta(hours=settings.bot_lookback_hours)
        new = load_stories(store, stored_since=since) if budget > 0 else []
        verdicts = select_verdicts(
            store, channel, new, min_outlets=settings.bot_verdict_min_outlets, limit=budget
        )
        for story, fc in verdicts:
            composed = verdict_composed(fc, channel)
            if composed is not None:
                post(verdict_key(fc.id), "verdict", composed, story.article.id)
        stories = select_stories(
            store,
            channel,
            new,
            now=now,
            limit=budget - len(verdicts),
            usable=lambda s: composed_for(s, channel) is not None,
        )
        for story in stories:
            composed = composed_for(story, channel)
            assert composed is not None
            post(story.dedup_key, "story", composed, story.article.id)
    except ChannelStopped as exc:
        report.stopped = str(exc)
        log.warning("%s: stopping for this run: %s", channel, exc)
    return report


def run_once(
    store: Store,
    settings: Settings,
    *,
    publishers: dict[str, Publisher | None] | None = None,
    rt: Runtime | None = None,
) -> RunReport:
    """One bot run: for each configured channel, post the best new stories (see the policy)."""
    rt = rt or Runtime()
    report = RunReport()
    for channel, publisher in publishers_for(settings, publishers).items():
        report.channels[channel] = run_channel(store, settings, channel, publisher, rt)
    return report
