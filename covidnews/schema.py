"""Store tables (SQLAlchemy 2.0 typed models).

The same models run on SQLite and PostgreSQL; Alembic migrations in ``covidnews/migrations``
create them (a test checks that the migrations and these models agree on both databases).
Timestamps are stored in UTC and always come back timezone-aware.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact); JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetime stored as UTC on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite has no time zones, so values are converted to UTC
    before storing and marked UTC when read. Naive datetimes are refused: every timestamp in the
    system must say which zone it is in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: attach a time zone")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ProcessingState(enum.StrEnum):
    """Where an article is in the NLP pipeline."""

    pending = "pending"  # stored, waiting for the NLP stages (new or changed content)
    processing = "processing"  # claimed by a worker
    done = "done"  # every stage ran
    failed = "failed"  # kept failing; error in Article.state_error, never blocks the queue


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: Json,
        list[str]: Json,
    }


class Source(Base):
    """A news outlet or public-health agency."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="outlet")  # outlet | agency
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2
    language: Mapped[str | None] = mapped_column(String(8))  # ISO 639-1
    homepage: Mapped[str | None] = mapped_column(Text)
    domains: Mapped[list[str]] = mapped_column(default=list)
    feeds: Mapped[list[str]] = mapped_column(default=list)
    sitemaps: Mapped[list[str]] = mapped_column(default=list)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Article(Base):
    """One outlet's copy of one story, identified by its canonical URL."""

    __tablename__ = "articles"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'processing', 'done', 'failed')", name="state_valid"),
        Index("ix_articles_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # canonical URL
    # sha256 of the canonical URL: unique key that fits any index, whatever the URL's length.
    url_hash: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(255), index=True)
    origin: Mapped[str] = mapped_column(String(16), default="ingest")  # ingest | crawl
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    country: Mapped[str | None] = mapped_column(String(2))  # overrides the source's
    language: Mapped[str | None] = mapped_column(String(8), index=True)
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(default=list)
    section: Mapped[str | None] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    # the UTC offset (minutes) the outlet dated it in: its own day and clock, while the stored
    # UTC instant stays the ordering key (the page's offset, else the source country's zone)
    published_offset: Mapped[int | None] = mapped_column(SmallInteger)
    modified_at: Mapped[datetime | None]
    fetched_at: Mapped[datetime] = mapped_column(default=utcnow)
    # sha256 of normalised title + text: a change re-queues the article for NLP.
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    # sha256 of every stored field: equal means a re-ingest is a no-op.
    record_hash: Mapped[str] = mapped_column(String(64))
    # 64-bit SimHash of the text (signed), for near-duplicate (syndicated copy) detection.
    simhash: Mapped[int | None] = mapped_column(BigInteger, index=True)
    duplicate_of: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    state: Mapped[str] = mapped_column(String(16), default=ProcessingState.pending.value)
    state_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The lease (nlp_worker.leases): who holds a `processing` article and until when; for a
    # `pending` one handed over again by the sweep, when the sweep may hand it over once more.
    lease_owner: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[datetime | None] = mapped_column()
    covid_score: Mapped[float | None] = mapped_column(Float)
    is_covid: Mapped[bool | None] = mapped_column(Boolean, index=True)
    summary: Mapped[str | None] = mapped_column(Text)
    # False when a paywall or a consent wall kept the full text from the crawler: what could be
    # had is stored (extra.wall says which wall and why), flagged
    text_complete: Mapped[bool] = mapped_column(Boolean, server_default=true())
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Translation(Base):
    """An article's title, summary and text in another language."""

    __tablename__ = "translations"
    __table_args__ = (
        UniqueConstraint("article_id", "language", name="uq_translations_article_lang"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    language: Mapped[str] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(Text, default="")
    summary: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArticleTopic(Base):
    """A taxonomy topic assigned to an article, with its score (rank 1 = most important)."""

    __tablename__ = "article_topics"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    score: Mapped[float] = mapped_column(Float)
    rank: Mapped[int] = mapped_column(SmallInteger)
    model: Mapped[str] = mapped_column(String(200))


class Embedding(Base):
    """An article vector (float32 bytes). The store is the source of truth; the index a cache."""

    __tablename__ = "embeddings"

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    dims: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ArticleChange(Base):
    """The store's change sequence: one row each time an article became searchable (state
    ``done``), changed while searchable or was deleted — written by database triggers (see
    migration 0005), so no code path can forget it. Each node's indexes follow it
    (:mod:`covidnews.follow`). ``xid`` is the PostgreSQL transaction that wrote the row (the
    follower's watermark: sequence numbers become visible at commit, out of order); SQLite has
    one writer at a time, so there ``seq`` order is commit order."""

    __tablename__ = "article_changes"
    __table_args__ = (
        Index("ix_article_changes_xid_seq", "xid", "seq"),
        {"sqlite_autoincrement": True},
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True)
    article_id: Mapped[int] = mapped_column(BigInteger)
    xid: Mapped[int | None] = mapped_column(BigInteger)
    changed_at: Mapped[datetime] = mapped_column()


class BotPost(Base):
    """A post recorded before it is sent (so a crash never double-posts a story)."""

    __tablename__ = "bot_posts"
    __table_args__ = (
        UniqueConstraint("channel", "dedup_key", name="uq_bot_posts_channel_key"),
        Index("ix_bot_posts_channel_created", "channel", "created_at"),
        Index("ix_bot_posts_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))  # e.g. x, mastodon, bluesky, x-en
    dedup_key: Mapped[str] = mapped_column(String(200))  # story id, or digest date
    kind: Mapped[str] = mapped_column(String(16))  # story | digest | digest_item
    article_id: Mapped[int | None] = mapped_column(
        ForeignKey("articles.id", ondelete="SET NULL"), index=True
    )
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("bot_posts.id", ondelete="SET NULL"))
    language: Mapped[str] = mapped_column(String(8), default="es")
    text: Mapped[str] = mapped_column(Text)
    # recorded → sent | dry_run | duplicate | retry | failed | unknown (see bot/post.py)
    status: Mapped[str] = mapped_column(String(16), default="recorded")
    remote_id: Mapped[str | None] = mapped_column(String(200))
    # What the platform needs besides the text (Bluesky facets, the link) and what it returned
    # (Bluesky record cid, for reply refs).
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # send attempts (over all runs)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SourceEndpoint(Base):
    """A feed or sitemap a source is read from: configured in the registry or discovered (robots.txt
    ``Sitemap:`` lines, sitemap indexes, ``<link rel=alternate>`` feeds on its pages), with how
    and when it was found and whether it still works (``crawler/endpoints.py``). The per-URL fetch
    history is in ``crawl_state.extra.history``."""

    __tablename__ = "source_endpoints"
    __table_args__ = (
        UniqueConstraint("source_id", "url_hash", name="uq_source_endpoints_url"),
        CheckConstraint("kind IN ('feed', 'sitemap')", name="kind_valid"),
        CheckConstraint("state IN ('active', 'demoted')", name="state_valid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(Text)
    url_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # feed | sitemap
    news: Mapped[bool] = mapped_column(Boolean, default=False)  # a Google News sitemap
    # registry | robots (a Sitemap: line) | sitemap_index | homepage | page (a start page's
    # <link rel=alternate>)
    origin: Mapped[str] = mapped_column(String(24))
    found_via: Mapped[str | None] = mapped_column(Text)  # the robots.txt, index or page
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | demoted
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed reads
    reason: Mapped[str | None] = mapped_column(Text)  # the last failure, or why it was demoted
    found_at: Mapped[datetime] = mapped_column(default=utcnow)
    checked_at: Mapped[datetime | None]  # last read (good or bad)
    ok_at: Mapped[datetime | None]  # last good read
    new_items_at: Mapped[datetime | None]  # last read that announced a page not seen before
    demoted_at: Mapped[datetime | None]


class CrawlState(Base):
    """Per-URL crawl memory: conditional-GET validators and last outcome of feeds/sitemaps."""

    __tablename__ = "crawl_state"

    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))  # feed | sitemap | page
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), index=True
    )
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    fetched_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class StageRun(Base):
    """What an NLP stage last did for an article, with the model and input it used.

    A stage re-runs only when its input (``input_hash``) or its model (``model``) changed.
    """

    __tablename__ = "stage_runs"
    __table_args__ = (Index("ix_stage_runs_stage_status", "stage", "status"),)

    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    model: Mapped[str] = mapped_column(String(200))
    input_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # done | skipped | deferred | failed
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ApiKey(Base):
    """A key for the researchers' API. Only its sha256 is stored; the key is shown once."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # first characters, for display
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the key
    rate_limit: Mapped[int | None] = mapped_column(Integer)  # requests/minute; None: the default
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class FactCheck(Base):
    """One claim reviewed by a fact-checker (schema.org ``ClaimReview``); a page may hold several.

    ``verdict`` is the rating normalised (:mod:`covidnews.factchecks`); ``verdict_text`` is the
    rating as published. ``embedding``: the claim's vector (query side), set when it is linked.
    """

    __tablename__ = "factchecks"
    __table_args__ = (
        UniqueConstraint("url_hash", "claim_hash", name="uq_factchecks_review"),
        CheckConstraint(
            "verdict IN ('false', 'misleading', 'mixed', 'true', 'unproven', 'other')",
            name="verdict_valid",
        ),
        Index("ix_factchecks_reviewed_at", "reviewed_at"),
        Index("ix_factchecks_linked_at", "linked_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    url: Mapped[str] = mapped_column(Text)  # the fact-check page (canonical)
    url_hash: Mapped[str] = mapped_column(String(64), index=True)
    claim_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the folded claim
    source_id: Mapped[int | None] = mapped_column(
        ForeignKey("sources.id", ondelete="SET NULL"), index=True
    )
    language: Mapped[str | None] = mapped_column(String(8))
    title: Mapped[str] = mapped_column(Text, default="")
    claim: Mapped[str] = mapped_column(Text)
    claimant: Mapped[str | None] = mapped_column(Text)
    appearances: Mapped[list[str]] = mapped_column(default=list)  # canonical URLs
    verdict_text: Mapped[str] = mapped_column(Text, default="")
    verdict: Mapped[str] = mapped_column(String(16), default="other")
    reviewed_at: Mapped[datetime | None]
    claim_date: Mapped[datetime | None]
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32, normalised
    model: Mapped[str | None] = mapped_column(String(200))
    linked_at: Mapped[datetime | None]  # None: links to articles not computed yet
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FactCheckAppearance(Base):
    """Where a reviewed claim appeared (by canonical URL hash), for exact links to articles."""

    __tablename__ = "factcheck_appearances"

    factcheck_id: Mapped[int] = mapped_column(
        ForeignKey("factchecks.id", ondelete="CASCADE"), primary_key=True
    )
    url_hash: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class FactCheckLink(Base):
    """An article and a fact-check about the same statement, and why: ``appearance`` (the
    fact-check names the article's URL) or ``similar`` (claim and article match, ``score``)."""

    __tablename__ = "factcheck_links"
    __table_args__ = (CheckConstraint("reason IN ('appearance', 'similar')", name="reason_valid"),)

    factcheck_id: Mapped[int] = mapped_column(
        ForeignKey("factchecks.id", ondelete="CASCADE"), primary_key=True
    )
    article_id: Mapped[int] = mapped_column(
        ForeignKey("articles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    reason: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float, default=1.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
