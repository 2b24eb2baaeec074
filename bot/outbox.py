"""The outbox for review: what each channel posted or would post, as text, JSON or a page.

``covidnews bot outbox --since 7d --format html -o outbox.html`` writes one self-contained page
(no script, no external style) an editor reads before turning on real posting: per channel, each
post as the platform shows it (the text with its links and hashtags, Bluesky's shortened links
from the facets), its link card, its length under the platform's own counting rule, its status
(``dry_run``, ``sent``, ``unknown``…) and error, digest replies under their root. Everything in
it is escaped text (titles come from crawled pages); images are the articles' own ``og:image``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select

from bot.text import PLATFORMS, platform_of
from covidnews.schema import BotPost
from covidnews.store import Store

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_URL = re.compile(r"https?://[^\s<>\"']+")
_TAG = re.compile(r"(?<![\w#])#\w+")
#: the most rows a review page or listing holds
MAX_ROWS = 10_000


class BadSince(ValueError):
    pass


def parse_since(value: str, now: datetime) -> datetime:
    """``7d``, ``24h``, ``90m``, ``2w`` before ``now``, or a date/time (``2021-03-12``,
    ``2021-03-12T08:00:00+00:00``; UTC when it names no offset)."""
    m = _DURATION.match(value)
    if m:
        return now - timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadSince(
            f"--since {value!r}: give a duration (30m, 24h, 7d, 2w) or a date (2021-03-12)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass
class OutboxPost:
    id: int
    channel: str
    kind: str
    status: str
    text: str
    language: str
    created_at: datetime | None
    sent_at: datetime | None
    remote_id: str | None
    error: str | None
    attempts: int
    reply_to_id: int | None
    dedup_key: str
    article_id: int | None
    payload: dict[str, Any]
    replies: list[OutboxPost] = field(default_factory=list)

    @property
    def platform(self) -> str:
        return platform_of(self.channel).name

    @property
    def length(self) -> int:
        return int(platform_of(self.channel).length(self.text))

    @property
    def limit(self) -> int:
        return platform_of(self.channel).limit

    @property
    def card(self) -> dict[str, Any] | None:
        card = self.payload.get("card")
        return card if isinstance(card, dict) else None

    @property
    def remote_url(self) -> str | None:
        """Where the post can be seen, when its id says (X and Bluesky)."""
        rid = self.remote_id or ""
        if self.status not in ("sent", "duplicate") or not rid:
            return None
        if self.platform == "x" and rid.isdigit():
            return f"https://x.com/i/web/status/{rid}"
        m = re.match(r"^at://([^/]+)/app\.bsky\.feed\.post/([^/]+)$", rid)
        if self.platform == "bluesky" and m:
            return f"https://bsky.app/profile/{m.group(1)}/post/{m.group(2)}"
        return None

    def rendered(self) -> Markup:
        """The text as the platform shows it: Bluesky from its facets (the shortened link
        carries the full URL), X and Mastodon with their URLs and hashtags linked."""
        if self.platform == "bluesky" and self.payload.get("facets"):
            return _from_facets(self.text, self.payload["facets"])
        return _linkify(self.text)


def _link(href: str, shown: str, cls: str) -> Markup:
    return Markup('<a class="{}" href="{}" rel="noopener noreferrer nofollow">{}</a>').format(
        cls, href, shown
    )


def _linkify(text: str) -> Markup:
    out = Markup()
    pos = 0
    spans = sorted(
        [(m.start(), m.end(), "url") for m in _URL.finditer(text)]
        + [(m.start(), m.end(), "tag") for m in _TAG.finditer(text)]
    )
    for start, end, kind in spans:
        if start < pos:
            continue
        out += escape(text[pos:start])
        piece = text[start:end]
        if kind == "url" and re.match(r"https?://", piece):
            out += _link(piece, piece, "link")
        else:
            out += Markup('<span class="tag">{}</span>').format(piece)
        pos = end
    return out + escape(text[pos:])


def _from_facets(text: str, facets: list[dict[str, Any]]) -> Markup:
    raw = text.encode("utf-8")
    out = Markup()
    pos = 0
    for facet in sorted(facets, key=lambda f: int(f["index"]["byteStart"])):
        start, end = int(facet["index"]["byteStart"]), int(facet["index"]["byteEnd"])
        if start < pos or end > len(raw):
            continue
        out += escape(raw[pos:start].decode("utf-8", "replace"))
        piece = raw[start:end].decode("utf-8", "replace")
        feature = facet["features"][0] if facet.get("features") else {}
        uri = str(feature.get("uri") or "")
        if str(feature.get("$type", "")).endswith("#link") and re.match(r"https?://", uri):
            out += _link(uri, piece, "link")
        else:
            out += Markup('<span class="tag">{}</span>').format(piece)
        pos = end
    return out + escape(raw[pos:].decode("utf-8", "replace"))


def load_outbox(
    store: Store,
    *,
    since: datetime | None = None,
    channel: str | None = None,
    status: str | None = None,
    limit: int = MAX_ROWS,
) -> list[OutboxPost]:
    """Posts recorded since ``since`` (newest first), at most ``limit``."""
    with store.session() as s:
        q = select(BotPost).order_by(BotPost.id.desc()).limit(limit)
        if since is not None:
            q = q.where(BotPost.created_at >= since)
        if channel:
            q = q.where(BotPost.channel == channel)
        if status:
            q = q.where(BotPost.status == status)
        return [
            OutboxPost(
                id=r.id,
                channel=r.channel,
                kind=r.kind,
                status=r.status,
                text=r.text,
                language=r.language,
                created_at=r.created_at,
                sent_at=r.sent_at,
                remote_id=r.remote_id,
                error=r.error,
                attempts=r.attempts,
                reply_to_id=r.reply_to_id,
                dedup_key=r.dedup_key,
                article_id=r.article_id,
                payload=dict(r.payload or {}),
            )
            for r in s.scalars(q)
        ]


def threads(posts: list[OutboxPost]) -> dict[str, list[OutboxPost]]:
    """Per channel (in the configured order of platforms), oldest first, replies under the post
    they answer when it is on the page."""
    by_id = {p.id: p for p in posts}
    out: dict[str, list[OutboxPost]] = {}
    for post in sorted(posts, key=lambda p: p.id):
        parent = by_id.get(post.reply_to_id) if post.reply_to_id else None
        if parent is not None:
            root = parent
            while root.reply_to_id and root.reply_to_id in by_id:
                root = by_id[root.reply_to_id]
            root.replies.append(post)
        else:
            out.setdefault(post.channel, []).append(post)
    order = list(PLATFORMS)
    return dict(sorted(out.items(), key=lambda kv: (order.index(platform_of(kv[0]).name), kv[0])))


def render_html(posts: list[OutboxPost], *, since: datetime | None, generated_at: datetime) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("bot", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    counts: dict[str, Counter[str]] = {}
    for p in posts:
        counts.setdefault(p.channel, Counter())[p.status] += 1
    statuses = sorted({p.status for p in posts})
    return env.get_template("outbox.html").render(
        channels=threads(posts),
        counts=counts,
        statuses=statuses,
        total=len(posts),
        since=since,
        generated_at=generated_at,
        platforms=PLATFORMS,
    )
