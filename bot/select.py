"""Which stories to post: candidates from the store, ranked, capped.

A story is an article and its syndicated copies (``articles.duplicate_of`` points copies at the
first stored article; the story id is that article's id). Only processed (``state='done'``)
Covid (``is_covid``) articles count. A story is posted at most once per channel, ever: the
``(channel, 'story:<id>')`` unique key of ``bot_posts``.

Ranking (greedy, one pick at a time)::

    score = (1 + ln outlets) × source weight × 0.5^(age / 24 h) × 0.5^(times its top topic was
            already posted on the channel in the last 24 h or picked earlier in this run)

Age is measured from the newest candidate (not the clock), so an old corpus ranks the same way
as a live one. Ties: newer first, then higher story id.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from covidnews.factchecks import WARN, FactCheckView, factchecks_of
from covidnews.schema import Article, ArticleTopic, BotPost, Source
from covidnews.search.results import ArticleView, load_articles
from covidnews.store import Store

HALF_LIFE_HOURS = 24.0
TOPIC_PENALTY = 0.5
MAX_CANDIDATES = 2000


@dataclass
class Story:
    id: int  # the story id (first stored article)
    article: ArticleView  # the article posted (the first processed Covid copy)
    outlets: list[str] = field(default_factory=list)  # outlet names, the article's first
    n_outlets: int = 1
    when: datetime | None = None  # published (or stored) time of the article
    weight: float = 1.0  # the highest source weight among the outlets
    score: float = 0.0
    members: list[int] = field(default_factory=list)  # the ids of the story's copies

    @property
    def topic(self) -> str | None:
        return self.article.topics[0][0] if self.article.topics else None

    @property
    def dedup_key(self) -> str:
        return f"story:{self.id}"


def _story_col() -> object:
    return func.coalesce(Article.duplicate_of, Article.id)


OFFSET_SLACK = timedelta(hours=14)


def load_stories(
    store: Store,
    *,
    stored_since: datetime | None = None,
    day: tuple[datetime, datetime] | None = None,
) -> list[Story]:
    """Stories with a processed Covid article stored since ``stored_since`` or published
    (stored, when the date is unknown) within ``day`` = [start, end), read on the outlet's
    clock (a Bolivian story of 3 May 22:41 -04:00 is in 3 May's digest, not 4 May's)."""
    story = func.coalesce(Article.duplicate_of, Article.id)
    covid = (Article.state == "done", Article.is_covid.is_(True))
    with store.session() as s:
        q = select(story).where(*covid).distinct()
        if stored_since is not None:
            q = q.where(Article.created_at >= stored_since)
        if day is not None:
            when = func.coalesce(Article.published_at, Article.created_at)
            # UTC offsets span -12 h to +14 h: the outlet's day is within this wider window,
            # and is checked exactly below
            q = q.where(when >= day[0] - OFFSET_SLACK, when < day[1] + OFFSET_SLACK)
        story_ids = sorted({int(i) for i in s.scalars(q.limit(MAX_CANDIDATES))})
        if not story_ids:
            return []
        rows = s.execute(
            select(story, Article.id, Article.source_id)
            .where(*covid, story.in_(story_ids))
            .order_by(Article.id)
        ).all()
        sources = {src.id: src for src in s.scalars(select(Source))}
    members: dict[int, list[tuple[int, int | None]]] = {}
    for story_id, article_id, source_id in rows:
        members.setdefault(int(story_id), []).append((int(article_id), source_id))
    views = load_articles(store, [m[0][0] for m in members.values()], with_text=False)
    out: list[Story] = []
    for story_id, arts in members.items():
        view = views.get(arts[0][0])
        if view is None:
            continue
        names: list[str] = []
        outlet_keys: set[object] = set()
        weight = 0.0
        for article_id, source_id in arts:
            outlet_keys.add(source_id if source_id is not None else -article_id)
            src = sources.get(source_id) if source_id is not None else None
            if src is not None:
                weight = max(weight, float(src.weight or 1.0))
                if src.name not in names:
                    names.append(src.name)
        out.append(
            Story(
                id=story_id,
                article=view,
                outlets=names,
                n_outlets=len(outlet_keys),
                when=view.published_at or view.fetched_at,
                weight=weight or 1.0,
                members=[article_id for article_id, _ in arts],
            )
        )
    if day is not None:  # the story's day on its outlet's clock (``when`` is already on it)
        start, end = (d.astimezone(UTC).replace(tzinfo=None) for d in day)
        out = [s for s in out if s.when and start <= s.when.replace(tzinfo=None) < end]
    return out


def posted_keys(store: Store, channel: str, keys: Iterable[str]) -> set[str]:
    wanted = list(keys)
    if not wanted:
        return set()
    with store.session() as s:
        return set(
            s.scalars(
                select(BotPost.dedup_key).where(
                    BotPost.channel == channel, BotPost.dedup_key.in_(wanted)
                )
            )
        )


COUNTED = ("recorded", "sent", "dry_run", "unknown", "retry")


def posts_since(store: Store, channel: str, since: datetime) -> int:
    """Posts recorded on ``channel`` since ``since`` (what the platform's daily limit sees;
    duplicates and failures are not counted)."""
    with store.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(BotPost)
                .where(
                    BotPost.channel == channel,
                    BotPost.created_at >= since,
                    BotPost.status.in_(COUNTED),
                )
            )
            or 0
        )


def recent_topics(store: Store, channel: str, since: datetime) -> Counter[str]:
    """Top topics of the stories posted on ``channel`` since ``since``."""
    with store.session() as s:
        rows = s.scalars(
            select(ArticleTopic.topic)
            .join(BotPost, BotPost.article_id == ArticleTopic.article_id)
            .where(
                BotPost.channel == channel,
                BotPost.created_at >= since,
                BotPost.kind == "story",
                ArticleTopic.rank == 1,
            )
        )
        return Counter(rows)


def rank(
    stories: list[Story], *, topics_seen: Counter[str] | None = None, limit: int | None = None
) -> list[Story]:
    """Greedy ranking with a penalty for topics already posted or picked (see module doc)."""
    if not stories:
        return []
    seen: Counter[str] = Counter(topics_seen or {})
    times = [s.when for s in stories if s.when is not None]
    newest = max(times) if times else None
    for s in stories:
        age = (newest - s.when) / timedelta(hours=1) if newest and s.when else 0.0
        s.score = (1 + math.log(max(1, s.n_outlets))) * s.weight * 0.5 ** (age / HALF_LIFE_HOURS)
    left = list(stories)
    out: list[Story] = []
    while left and (limit is None or len(out) < limit):

        def key(s: Story) -> tuple[float, float, int]:
            penalty = TOPIC_PENALTY ** seen[s.topic] if s.topic else 1.0
            ts = s.when.timestamp() if s.when else 0.0
            return (s.score * penalty, ts, s.id)

        best = max(left, key=key)
        left.remove(best)
        out.append(best)
        if best.topic:
            seen[best.topic] += 1
    return out


def select_stories(
    store: Store,
    channel: str,
    candidates: Sequence[Story],
    *,
    now: datetime,
    limit: int,
    usable: Callable[[Story], bool] = lambda _s: True,
) -> list[Story]:
    """The next stories to post on ``channel`` among ``candidates`` (the new stories,
    :func:`load_stories`): never posted there, usable (e.g. a text exists in the channel's
    language), ranked, at most ``limit``."""
    if limit <= 0:
        return []
    done = posted_keys(store, channel, [s.dedup_key for s in candidates])
    fresh = [s for s in candidates if s.dedup_key not in done and usable(s)]
    seen = recent_topics(store, channel, now - timedelta(hours=24))
    return rank(fresh, topics_seen=seen, limit=limit)


def verdict_key(factcheck_id: int) -> str:
    return f"verdict:{factcheck_id}"


def select_verdicts(
    store: Store,
    channel: str,
    candidates: Sequence[Story],
    *,
    min_outlets: int,
    limit: int,
) -> list[tuple[Story, FactCheckView]]:
    """Widely shared stories among ``candidates`` (at least ``min_outlets`` outlets) with a
    ``false``/``misleading`` fact-check linked to one of their copies and not posted on
    ``channel`` yet: (story, fact-check), the most shared first, one post per fact-check."""
    if limit <= 0:
        return []
    stories = [s for s in candidates if s.n_outlets >= min_outlets]
    checked = factchecks_of(store, [m for s in stories for m in s.members])
    pairs = [
        (s, fc)
        for s in stories
        for m in s.members
        for fc in checked.get(m, [])
        if fc.verdict in WARN
    ]
    done = posted_keys(store, channel, [verdict_key(fc.id) for _, fc in pairs])
    out: list[tuple[Story, FactCheckView]] = []
    seen: set[int] = set()
    for story, fc in sorted(pairs, key=lambda p: (-p[0].n_outlets, -p[0].id, p[1].id)):
        if verdict_key(fc.id) in done or fc.id in seen:
            continue
        seen.add(fc.id)
        out.append((story, fc))
    return out[:limit]
