"""Linking fact-checks and articles, incrementally as either side arrives.

- **appearance**: the fact-check names the article's URL as where the claim appeared (canonical
  URL hashes match exactly; score 1).
- **similar**: the claim and the article say the same thing: E5 cosine of the claim (as a query)
  and the article (its stored passage vector), plus the share of the claim's words found in the
  article or in its stored translation into the claim's language, so a Spanish claim finds an
  English article and the reverse (:func:`covidnews.factchecks.link_score`, threshold
  ``SIMILAR_THRESHOLD`` chosen on labelled pairs: bench/eval_factcheck_links.py). Only articles
  published within ``WINDOW_BEFORE``/``WINDOW_AFTER`` of the review are compared.

A new fact-check (``linked_at`` empty) is embedded and compared with the articles of its window;
a newly processed article is compared with the fact-checks of its window. Both run after each
NLP batch (:func:`link_batch`), so whichever side comes second makes the link.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from covidnews.embed import document_text
from covidnews.factchecks import (
    SIMILAR_THRESHOLD,
    WINDOW_AFTER,
    WINDOW_BEFORE,
    keyword_overlap,
    link_score,
    mark_linked,
)
from covidnews.interfaces import Embedder
from covidnews.schema import (
    Article,
    Embedding,
    FactCheck,
    FactCheckAppearance,
    FactCheckLink,
    ProcessingState,
    Translation,
    utcnow,
)
from covidnews.store import Store
from covidnews.text import content_words

log = logging.getLogger(__name__)
BATCH = 64
DONE = ProcessingState.done.value


def _when(fc: FactCheck) -> datetime:
    return fc.reviewed_at or fc.claim_date or fc.created_at


def _vector(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.float32)


def _embed_claims(store: Store, embedder: Embedder, ids: Sequence[int]) -> None:
    with store.session() as s:
        rows = list(
            s.scalars(
                select(FactCheck).where(
                    FactCheck.id.in_(ids),
                    (FactCheck.embedding.is_(None)) | (FactCheck.model != embedder.model_id),
                )
            )
        )
        if not rows:
            return
        vectors = np.asarray(embedder.encode([r.claim for r in rows], kind="query"), np.float32)
        for row, vector in zip(rows, vectors, strict=True):
            row.embedding = vector.tobytes()
            row.model = embedder.model_id


def _existing(s: Session, pairs: set[tuple[int, int]]) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    fcs = {f for f, _ in pairs}
    rows = s.execute(
        select(FactCheckLink.factcheck_id, FactCheckLink.article_id).where(
            FactCheckLink.factcheck_id.in_(fcs)
        )
    ).all()
    return {(int(f), int(a)) for f, a in rows} & pairs


def _add_links(s: Session, store: Store, scores: dict[tuple[int, int], float], reason: str) -> None:
    """Insert links; one another worker made meanwhile is left as it is (no error)."""
    if scores:
        rows = [
            {
                "factcheck_id": f,
                "article_id": a,
                "reason": reason,
                "score": score,
                "created_at": utcnow(),
            }
            for (f, a), score in sorted(scores.items())
        ]
        s.execute(store.insert(FactCheckLink.__table__).values(rows).on_conflict_do_nothing())


def _appearance_links(store: Store, fc_ids: Sequence[int], article_ids: Sequence[int]) -> int:
    """Exact links: fact-checks ``fc_ids`` to any article, and any fact-check to ``article_ids``."""
    with store.session() as s:
        stmt = select(FactCheckAppearance.factcheck_id, Article.id).join(
            Article, Article.url_hash == FactCheckAppearance.url_hash
        )
        found: set[tuple[int, int]] = set()
        if fc_ids:
            found |= {
                (int(f), int(a))
                for f, a in s.execute(stmt.where(FactCheckAppearance.factcheck_id.in_(fc_ids)))
            }
        if article_ids:
            rows = s.execute(stmt.where(Article.id.in_(article_ids)))
            found |= {(int(f), int(a)) for f, a in rows}
        new = found - _existing(s, found)
        _add_links(s, store, dict.fromkeys(new, 1.0), "appearance")
        return len(new)


def _article_words(s: Session, ids: list[int], language: str) -> dict[int, list[set[str]]]:
    """Article id → the content words of its text and of its stored translation into
    ``language`` (when it has one): what a claim in ``language`` is compared with."""
    out: dict[int, list[set[str]]] = {i: [] for i in ids}
    own = select(Article.id, Article.title, Article.text).where(Article.id.in_(ids))
    translated = select(Translation.article_id, Translation.title, Translation.text).where(
        Translation.article_id.in_(ids), Translation.language == language
    )
    for query in (own, translated):
        for aid, title, text in s.execute(query):
            out[int(aid)].append(content_words(document_text(title, text or "")))
    return out


def _score_pairs(
    store: Store,
    embedder: Embedder,
    fc_ids: Sequence[int] | None,
    article_ids: Sequence[int] | None,
) -> int:
    """`similar` links between the given fact-checks and the articles of their windows, or the
    given articles and the fact-checks of theirs."""
    made = 0
    with store.session() as s:
        published = func.coalesce(Article.published_at, Article.fetched_at)
        reviewed = func.coalesce(FactCheck.reviewed_at, FactCheck.claim_date, FactCheck.created_at)
        fcq = select(FactCheck).where(
            FactCheck.embedding.is_not(None), FactCheck.model == embedder.model_id
        )
        if fc_ids is not None:
            fcq = fcq.where(FactCheck.id.in_(fc_ids))
        if article_ids is not None:
            if not article_ids:
                return 0
            span = select(func.min(published), func.max(published))
            first, last = s.execute(span.where(Article.id.in_(article_ids))).one()
            if first is None:
                return 0
            fcq = fcq.where(reviewed >= first - WINDOW_AFTER, reviewed <= last + WINDOW_BEFORE)
        for fc in s.scalars(fcq):
            when = _when(fc)
            aq = (
                select(Article.id, Embedding.vector)
                .join(Embedding, Embedding.article_id == Article.id)
                .where(
                    Embedding.model == embedder.model_id,
                    Article.state == DONE,
                    published >= when - WINDOW_BEFORE,
                    published <= when + WINDOW_AFTER,
                )
            )
            if article_ids is not None:
                aq = aq.where(Article.id.in_(article_ids))
            rows = s.execute(aq).all()
            if not rows:
                continue
            cosines = np.stack([_vector(r[1]) for r in rows]) @ _vector(fc.embedding or b"")
            # Only articles whose cosine could reach the threshold with every claim word shared
            # have their words read.
            close = {
                int(r[0]): float(c)
                for r, c in zip(rows, cosines, strict=True)
                if link_score(float(c), 1.0) >= SIMILAR_THRESHOLD
            }
            if not close:
                continue
            claim_words = content_words(fc.claim)
            words = _article_words(s, sorted(close), fc.language or "es")
            found: dict[tuple[int, int], float] = {}
            for aid, cosine in close.items():
                overlap = max((keyword_overlap(claim_words, w) for w in words[aid]), default=0.0)
                score = link_score(cosine, overlap)
                if score >= SIMILAR_THRESHOLD:
                    found[(fc.id, aid)] = score
            for f, a in sorted(set(found) - _existing(s, set(found))):
                s.add(
                    FactCheckLink(
                        factcheck_id=f, article_id=a, reason="similar", score=found[(f, a)]
                    )
                )
                made += 1
    return made


def link_pending(store: Store, embedder: Embedder, limit: int = 1000) -> int:
    """Fact-checks not linked yet: embed their claims, link them; returns the links made."""
    with store.session() as s:
        ids = list(
            s.scalars(
                select(FactCheck.id)
                .where(FactCheck.linked_at.is_(None))
                .order_by(FactCheck.id)
                .limit(limit)
            )
        )
    made = 0
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        _embed_claims(store, embedder, chunk)
        made += _appearance_links(store, chunk, [])
        made += _score_pairs(store, embedder, chunk, None)
        mark_linked(store, chunk)
    if ids:
        log.info("linked %d fact-checks to articles: %d links", len(ids), made)
    return made


def link_articles(store: Store, embedder: Embedder, article_ids: Sequence[int]) -> int:
    """Newly processed articles against the fact-checks already linked (the pending ones are
    :func:`link_pending`'s)."""
    ids = [int(i) for i in article_ids]
    if not ids:
        return 0
    return _appearance_links(store, [], ids) + _score_pairs(store, embedder, None, ids)


def link_batch(store: Store, embedder: Embedder, done: Sequence[int]) -> int:
    """After an NLP batch: the new articles, then any fact-check still waiting. Never fails the
    batch: linking is redone for pending fact-checks on the next one."""
    try:
        return link_articles(store, embedder, done) + link_pending(store, embedder)
    except Exception:
        log.exception("fact-check linking failed; it is tried again after the next batch")
        return 0
