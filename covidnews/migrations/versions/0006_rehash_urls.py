"""Canonical URLs that keep their meaning: re-canonicalise stored URLs and re-hash their keys.

Until 0.1.0 ``canonical_url`` decoded and re-encoded paths, so ``/a/100%25-seguro`` became
``/a/100%-seguro`` and ``/a%2Fb`` became ``/a/b``. It now keeps such escapes and normalises the
rest as w3lib does. This revision applies the new function to every stored ``articles.url`` and
``crawl_state.url`` and re-computes ``url_hash``. What a URL lost before cannot be recovered from
the stored form; what matters is that old and new keys agree from now on.

Two articles whose URLs now have the same key are one page: the older row (lower id) is kept, the
other's references (``duplicate_of``, bot posts) move to it and it is deleted (its NLP results go
with it; the change sequence notes the deletion, so the indexes drop it). Two crawl-state rows
that collide keep the one fetched last.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 5_000


def _new_key(url: str) -> tuple[str, str]:
    from covidnews.urls import InvalidURL, canonical_url, url_hash

    try:
        canonical = canonical_url(url)
    except InvalidURL:
        canonical = url
    return canonical, url_hash(canonical)


def _articles(conn: sa.Connection) -> int:
    """Re-key every article; returns how many duplicates were merged into an older row."""
    articles = sa.table(
        "articles",
        sa.column("id", sa.Integer),
        sa.column("url", sa.Text),
        sa.column("url_hash", sa.String),
        sa.column("duplicate_of", sa.Integer),
    )
    posts = sa.table("bot_posts", sa.column("article_id", sa.Integer))
    changed: dict[int, tuple[str, str]] = {}  # id -> (new url, new hash)
    last = 0
    while True:
        rows = conn.execute(
            sa.select(articles.c.id, articles.c.url, articles.c.url_hash)
            .where(articles.c.id > last)
            .order_by(articles.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            break
        last = rows[-1][0]
        for article_id, url, old_hash in rows:
            new_url, new_hash = _new_key(url)
            if new_url != url or new_hash != old_hash:
                changed[article_id] = (new_url, new_hash)
    if not changed:
        return 0
    # Every row that ends up with one of the new keys (changed rows, and unchanged rows that
    # already hold one); the lowest id of each key is kept.
    holders: dict[str, list[int]] = {}
    for article_id, (_, new_hash) in changed.items():
        holders.setdefault(new_hash, []).append(article_id)
    wanted = sorted(holders)
    for start in range(0, len(wanted), CHUNK):
        for article_id, key in conn.execute(
            sa.select(articles.c.id, articles.c.url_hash).where(
                articles.c.url_hash.in_(wanted[start : start + CHUNK])
            )
        ):
            if article_id not in changed:
                holders[key].append(article_id)
    merged = 0
    for ids in holders.values():
        keeper, *losers = sorted(ids)
        for loser in losers:
            conn.execute(
                sa.update(articles)
                .where(articles.c.duplicate_of == loser)
                .values(duplicate_of=keeper)
            )
            conn.execute(
                sa.update(posts).where(posts.c.article_id == loser).values(article_id=keeper)
            )
            conn.execute(sa.delete(articles).where(articles.c.id == loser))
            changed.pop(loser, None)
            merged += 1
        # a keeper that had become a copy of a merged row is its own story again
        conn.execute(
            sa.update(articles)
            .where(articles.c.id == keeper, articles.c.duplicate_of == keeper)
            .values(duplicate_of=None)
        )
    # Two steps, so no row takes a key another still holds until it moves too.
    for article_id in changed:
        conn.execute(
            sa.update(articles).where(articles.c.id == article_id).values(url_hash=f"~{article_id}")
        )
    for article_id, (new_url, new_hash) in changed.items():
        conn.execute(
            sa.update(articles)
            .where(articles.c.id == article_id)
            .values(url=new_url, url_hash=new_hash)
        )
    return merged


def _crawl_state(conn: sa.Connection) -> None:
    """Re-key the crawl memory; of rows that collide, the one fetched last stays."""
    state = sa.table(
        "crawl_state",
        sa.column("url_hash", sa.String),
        sa.column("url", sa.Text),
        sa.column("fetched_at", sa.DateTime),
    )
    groups: dict[str, list[tuple[str, str, str, bool]]] = {}
    for old_hash, url, fetched in conn.execute(
        sa.select(state.c.url_hash, state.c.url, state.c.fetched_at)
    ):
        new_url, new_hash = _new_key(url)
        unchanged = new_hash == old_hash and new_url == url
        groups.setdefault(new_hash, []).append((old_hash, new_url, str(fetched or ""), unchanged))
    moves: list[tuple[str, str, str]] = []
    for new_hash, rows in groups.items():
        if len(rows) == 1 and rows[0][3]:
            continue
        rows.sort(key=lambda r: (r[2], r[3]), reverse=True)  # latest fetch first
        winner, *losers = rows
        for old_hash, *_ in losers:
            conn.execute(sa.delete(state).where(state.c.url_hash == old_hash))
        if not winner[3]:
            moves.append((winner[0], winner[1], new_hash))
    for old_hash, _, _ in moves:
        conn.execute(
            sa.update(state)
            .where(state.c.url_hash == old_hash)
            .values(url_hash=f"~{old_hash}"[:64])
        )
    for old_hash, new_url, new_hash in moves:
        conn.execute(
            sa.update(state)
            .where(state.c.url_hash == f"~{old_hash}"[:64])
            .values(url_hash=new_hash, url=new_url)
        )


def upgrade() -> None:
    conn = op.get_bind()
    _articles(conn)
    _crawl_state(conn)


def downgrade() -> None:
    # Keys stay as they are: the old function lost information, there is nothing to go back to.
    pass
