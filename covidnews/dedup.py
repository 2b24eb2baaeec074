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
) -> int | None:
    """The id of the story this text is a copy of (its representative), or None."""
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
