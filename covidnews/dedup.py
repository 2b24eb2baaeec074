"""Near-duplicate grouping: syndicated copies of one story (wire copy reprinted by many outlets).

Each outlet's copy stays its own article; copies point to the story's first article through
``articles.duplicate_of`` (the representative has it NULL). Two texts are copies when their SimHash
fingerprints (of the body text: outlets retitle wire copies) differ in at most :data:`MAX_BITS`
bits and they were published within :data:`WINDOW` of each other. On real news, edited copies
(new lead, trimmed ending) differ by ≤ 11 bits and unrelated articles by ≥ 24 (see
``tests/covidnews/test_fingerprint.py``); short texts are never grouped, their fingerprints being
too noisy.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from covidnews.fingerprint import hamming
from covidnews.schema import Article

MAX_BITS = 12
MIN_WORDS = 60
WINDOW = timedelta(days=4)


def find_story(
    session: Session,
    fingerprint: int,
    when: datetime,
    *,
    words: int,
    exclude_url_hash: str | None = None,
    before_id: int | None = None,
) -> int | None:
    """The id of the story this text is a copy of (its representative), or None.

    ``before_id``: only articles stored before this one count (the first copy is the story)."""
    if words < MIN_WORDS:
        return None
    lo, hi = when - WINDOW, when + WINDOW
    in_window = or_(
        Article.published_at.between(lo, hi),
        and_(Article.published_at.is_(None), Article.fetched_at.between(lo, hi)),
    )
    query = select(Article.id, Article.simhash, Article.duplicate_of).where(
        in_window, Article.simhash.is_not(None)
    )
    if exclude_url_hash:
        query = query.where(Article.url_hash != exclude_url_hash)
    if before_id is not None:
        query = query.where(Article.id < before_id)
    best: tuple[int, int] | None = None
    for article_id, other, parent in session.execute(query):
        if other is None:
            continue
        distance = hamming(fingerprint, other)
        if distance <= MAX_BITS:
            root = parent or article_id
            if best is None or (distance, root) < best:
                best = (distance, root)
    return best[1] if best else None


def group_copies(session: Session, article_ids: list[int]) -> int:
    """Point newly stored articles that are copies of an earlier one at its story (ingest does
    this after each batch, so copies within one batch are found too); returns how many.

    One query per batch fetches every fingerprint in the batch's time window; distances are
    computed with numpy, so bulk ingest stays linear in the window, not quadratic in queries.
    """
    new = session.execute(
        select(Article.id, Article.simhash, Article.published_at, Article.fetched_at, Article.text)
        .where(Article.id.in_(article_ids), Article.duplicate_of.is_(None))
        .order_by(Article.id)
    ).all()
    new = [r for r in new if r[1] is not None and len(r[4].split()) >= MIN_WORDS]
    if not new:
        return 0
    times = [r[2] or r[3] for r in new]
    lo, hi = min(times) - WINDOW, max(times) + WINDOW
    rows = session.execute(
        select(
            Article.id,
            Article.simhash,
            Article.duplicate_of,
            Article.published_at,
            Article.fetched_at,
        ).where(
            or_(
                Article.published_at.between(lo, hi),
                and_(Article.published_at.is_(None), Article.fetched_at.between(lo, hi)),
            ),
            Article.simhash.is_not(None),
        )
    ).all()
    ids = np.asarray([r[0] for r in rows], dtype=np.int64)
    sims = np.asarray([r[1] for r in rows], dtype=np.int64).view(np.uint64)
    roots = np.asarray([r[2] or r[0] for r in rows], dtype=np.int64)
    when = np.asarray([(r[3] or r[4]).timestamp() for r in rows], dtype=np.float64)
    index_of = {int(i): n for n, i in enumerate(ids.tolist())}
    window = WINDOW.total_seconds()
    grouped = 0
    for (article_id, fingerprint, *_), t in zip(new, times, strict=True):
        ok = (ids < article_id) & (np.abs(when - t.timestamp()) <= window)
        if not ok.any():
            continue
        distance = np.bitwise_count(sims[ok] ^ np.uint64((fingerprint or 0) & 0xFFFFFFFFFFFFFFFF))
        near = distance <= MAX_BITS
        if not near.any():
            continue
        best = min(zip(distance[near].tolist(), roots[ok][near].tolist(), strict=True))
        story = int(best[1])
        session.get_one(Article, article_id).duplicate_of = story
        if article_id in index_of:
            roots[index_of[article_id]] = story
        grouped += 1
    session.flush()
    return grouped
