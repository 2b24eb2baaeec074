"""Fact-checks: schema.org ``ClaimReview`` records in the store, their verdicts normalised, and
what the API, the archive and the bot read of them.

A record is one claim reviewed on one page (a page may review several). Its rating is kept as
published (``verdict_text``) and normalised to one of :data:`VERDICTS` with the table in
``covidnews/data/verdicts.yaml``. Links to articles are made by :mod:`nlp_worker.factchecks`
(``appearance``: the fact-check names the article's URL; ``similar``: claim and article say the
same thing) and stored in ``factcheck_links``.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

import yaml
from sqlalchemy import delete, select

from covidnews.schema import (
    ArticleTopic,
    FactCheck,
    FactCheckAppearance,
    FactCheckLink,
    Source,
    utcnow,
)
from covidnews.store import Store
from covidnews.text import fold_words
from covidnews.urls import InvalidURL, canonical_url, url_hash

VERDICTS = ("false", "misleading", "mixed", "true", "unproven", "other")
#: verdicts a reader should be warned about (the bot posts these)
WARN = ("false", "misleading")


@functools.cache
def _phrases() -> list[tuple[str, str]]:
    """(folded phrase, verdict), longest phrase first."""
    text = resources.files("covidnews").joinpath("data/verdicts.yaml").read_text("utf-8")
    table: dict[str, list[str]] = yaml.safe_load(text)
    out = {fold_words(p): verdict for verdict, phrases in table.items() for p in phrases}
    unknown = set(out.values()) - set(VERDICTS)
    if unknown:
        raise ValueError(f"verdicts.yaml: unknown verdicts {sorted(unknown)}")
    return sorted(out.items(), key=lambda kv: -len(kv[0]))


def normalise_verdict(
    rating: str | None,
    value: float | None = None,
    best: float | None = None,
    worst: float | None = None,
) -> str:
    """The verdict of a published rating: its words (longest known phrase wins), else its
    position on the fact-checker's numeric scale (``ratingValue`` between ``worstRating`` and
    ``bestRating``), else ``other``."""
    folded = f" {fold_words(rating or '')} "
    if folded.strip():
        for phrase, verdict in _phrases():
            if f" {phrase} " in folded:
                return verdict
    if value is not None and best is not None and worst is not None and best != worst:
        share = (value - worst) / (best - worst)
        if 0.0 <= share <= 1.0:
            return (
                "false" if share < 0.2 else
                "misleading" if share < 0.45 else
                "mixed" if share < 0.7 else "true"
            )  # fmt: skip
    return "other"


def claim_hash(claim: str) -> str:
    return hashlib.sha256(fold_words(claim).encode("utf-8")).hexdigest()


@dataclass
class FactCheckRecord:
    """One ``ClaimReview`` as read from a page (crawler/extract/claimreview.py)."""

    url: str  # the fact-check page
    claim: str
    verdict_text: str
    verdict: str
    title: str = ""
    claimant: str | None = None
    appearances: list[str] = field(default_factory=list)  # where the claim appeared
    reviewed_at: datetime | None = None
    claim_date: datetime | None = None
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # JSON: author, rating numbers…


def _canonical(urls: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for url in urls:
        try:
            out.setdefault(canonical_url(url), None)
        except InvalidURL:
            continue
    return list(out)


def upsert_factchecks(
    store: Store, records: Sequence[FactCheckRecord], source_id: int | None
) -> list[int]:
    """Insert or update fact-checks by (page, claim); returns the ids that are new or changed
    (their links are computed again: ``linked_at`` is cleared)."""
    changed: list[int] = []
    with store.session() as s:
        for r in records:
            page = canonical_url(r.url)
            key = (url_hash(page), claim_hash(r.claim))
            appearances = _canonical(r.appearances)
            values = {
                "url": page,
                "source_id": source_id,
                "language": r.language,
                "title": r.title,
                "claim": r.claim,
                "claimant": r.claimant,
                "appearances": appearances,
                "verdict_text": r.verdict_text,
                "verdict": r.verdict,
                "reviewed_at": r.reviewed_at,
                "claim_date": r.claim_date,
                "extra": r.extra,
            }
            row = s.scalars(
                select(FactCheck).where(
                    FactCheck.url_hash == key[0], FactCheck.claim_hash == key[1]
                )
            ).first()
            if row is None:
                row = FactCheck(url_hash=key[0], claim_hash=key[1], **values)
                s.add(row)
                s.flush()
            elif any(getattr(row, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                row.linked_at = None
                s.execute(
                    delete(FactCheckAppearance).where(FactCheckAppearance.factcheck_id == row.id)
                )
                s.flush()
            else:
                continue
            for h in {url_hash(u) for u in appearances}:
                s.add(FactCheckAppearance(factcheck_id=row.id, url_hash=h))
            changed.append(row.id)
    return changed


# Similarity: how a claim and an article are scored (nlp_worker.factchecks links them) ---------

#: weight of the shared words (in the article or its translation into the claim's language)
#: next to the E5 cosine (claim as a query, article as a passage)
KEYWORD_WEIGHT = 0.2
#: a `similar` link needs at least this score; chosen on the tuning half of the labelled pairs
#: (bench/eval_factcheck_links.py, docs/quality.md "Fact-check links") for precision >= 0.9
SIMILAR_THRESHOLD = 0.98
#: a claim is compared with articles published this long before its review date …
WINDOW_BEFORE = timedelta(days=60)
#: … and this long after it (a story repeating a claim already checked)
WINDOW_AFTER = timedelta(days=30)


def keyword_overlap(claim_words: set[str], article_words: set[str]) -> float:
    """Share of the claim's words the article has too."""
    return len(claim_words & article_words) / len(claim_words) if claim_words else 0.0


def link_score(cosine: float, overlap: float) -> float:
    return float(cosine) + KEYWORD_WEIGHT * float(overlap)


# Reading: what the API, the archive and the bot show ----------------------------------------


@dataclass
class FactCheckView:
    id: int
    url: str
    claim: str
    claimant: str | None
    verdict: str
    verdict_text: str
    title: str
    language: str | None
    reviewed_at: datetime | None
    factchecker: str | None  # the fact-checker's name
    factchecker_slug: str | None
    appearances: list[str]
    reason: str | None = None  # for an article's fact-checks: appearance | similar
    score: float | None = None

    def as_json(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["reviewed_at"] = self.reviewed_at.isoformat() if self.reviewed_at else None
        if self.reason is None:
            del out["reason"], out["score"]
        return out


def _view(fc: FactCheck, source: Source | None, link: FactCheckLink | None = None) -> FactCheckView:
    return FactCheckView(
        id=fc.id,
        url=fc.url,
        claim=fc.claim,
        claimant=fc.claimant,
        verdict=fc.verdict,
        verdict_text=fc.verdict_text,
        title=fc.title,
        language=fc.language,
        reviewed_at=fc.reviewed_at,
        factchecker=source.name if source is not None else None,
        factchecker_slug=source.slug if source is not None else None,
        appearances=list(fc.appearances or []),
        reason=link.reason if link is not None else None,
        score=round(float(link.score), 4) if link is not None else None,
    )


def factchecks_of(store: Store, article_ids: Iterable[int]) -> dict[int, list[FactCheckView]]:
    """Article id → the fact-checks linked to it (exact appearances first, then by score)."""
    ids = sorted(set(article_ids))
    out: dict[int, list[FactCheckView]] = {}
    if not ids:
        return out
    with store.session() as s:
        rows = s.execute(
            select(FactCheckLink, FactCheck, Source)
            .join(FactCheck, FactCheck.id == FactCheckLink.factcheck_id)
            .outerjoin(Source, Source.id == FactCheck.source_id)
            .where(FactCheckLink.article_id.in_(ids))
        ).all()
    for link, fc, source in rows:
        out.setdefault(link.article_id, []).append(_view(fc, source, link))
    for views in out.values():
        views.sort(key=lambda v: (v.reason != "appearance", -(v.score or 0.0), v.id))
    return out


@dataclass
class FactCheckQuery:
    q: str | None = None  # words of the claim, title or claimant (all of them)
    verdicts: tuple[str, ...] = ()
    factcheckers: tuple[str, ...] = ()  # source slugs
    topic: str | None = None  # a topic of a linked article
    date_from: date | None = None
    date_to: date | None = None


def find_factchecks(
    store: Store, query: FactCheckQuery, limit: int = 20, before_id: int | None = None
) -> tuple[list[FactCheckView], int | None]:
    """Fact-checks matching ``query``, the latest collected first, ``limit`` at a time; the
    second value is the cursor of the next page (None at the end)."""
    stmt = (
        select(FactCheck, Source)
        .outerjoin(Source, Source.id == FactCheck.source_id)
        .order_by(FactCheck.id.desc())
    )
    if query.verdicts:
        stmt = stmt.where(FactCheck.verdict.in_(query.verdicts))
    if query.factcheckers:
        stmt = stmt.where(Source.slug.in_(query.factcheckers))
    if query.date_from is not None:
        start = datetime.combine(query.date_from, time.min, tzinfo=UTC)
        stmt = stmt.where(FactCheck.reviewed_at >= start)
    if query.date_to is not None:
        end = datetime.combine(query.date_to + timedelta(days=1), time.min, tzinfo=UTC)
        stmt = stmt.where(FactCheck.reviewed_at < end)
    if query.topic:
        linked = (
            select(FactCheckLink.factcheck_id)
            .join(ArticleTopic, ArticleTopic.article_id == FactCheckLink.article_id)
            .where(ArticleTopic.topic == query.topic)
        )
        stmt = stmt.where(FactCheck.id.in_(linked))
    if before_id is not None:
        stmt = stmt.where(FactCheck.id < before_id)
    words = fold_words(query.q or "").split()
    out: list[FactCheckView] = []
    with store.session() as s:
        # Word matching in Python over the filtered rows, a page at a time: fact-checks are
        # thousands, not millions; the keyword engine indexes articles.
        for fc, source in s.execute(stmt.execution_options(yield_per=500)):
            if words:
                text = f" {fold_words(' '.join([fc.claim, fc.title, fc.claimant or '']))} "
                if not all(f" {w}" in text for w in words):  # word prefixes
                    continue
            out.append(_view(fc, source))
            if len(out) > limit:
                break
    more = len(out) > limit
    out = out[:limit]
    return out, (out[-1].id if more and out else None)


def mark_linked(store: Store, ids: Iterable[int]) -> None:
    wanted = list(ids)
    if not wanted:
        return
    with store.session() as s:
        for fc in s.scalars(select(FactCheck).where(FactCheck.id.in_(wanted))):
            fc.linked_at = utcnow()
