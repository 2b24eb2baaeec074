"""How each source is doing: freshness, volume, failing endpoints, walls (``covidnews sources
health``, the ``covidnews_source_*`` metrics of ``/metrics`` and the archive's about page).

Read from the store only (no network): ``articles`` (what was stored when), ``source_endpoints``
(each feed and sitemap, its failure streak and state, see ``crawler/endpoints.py``).

A source is **silent** when it published at least :data:`SILENT_MIN_30D` articles in the last
30 days but none in the last :data:`SILENT_DAYS` days: an outlet that has gone quiet for us while
it probably has not (an alert rule reads the same numbers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from covidnews.schema import Article, Source, SourceEndpoint, utcnow
from covidnews.store import Store

SILENT_DAYS = 3
SILENT_MIN_30D = 10


@dataclass
class EndpointHealth:
    url: str
    kind: str
    news: bool
    origin: str
    state: str
    failures: int
    reason: str | None
    ok_at: datetime | None
    new_items_at: datetime | None


@dataclass
class SourceHealth:
    slug: str
    name: str
    kind: str
    last_article_at: datetime | None  # newest article stored
    last_ok_at: datetime | None  # newest good read of any endpoint
    articles_7d: int
    articles_30d: int
    walled_30d: int  # stored with text_complete = false
    error_streak: int  # the longest failure streak among the endpoints in use
    endpoints: list[EndpointHealth] = field(default_factory=list)

    @property
    def per_day_7d(self) -> float:
        return round(self.articles_7d / 7, 2)

    @property
    def per_day_30d(self) -> float:
        return round(self.articles_30d / 30, 2)

    @property
    def in_use(self) -> list[EndpointHealth]:
        return [e for e in self.endpoints if e.state == "active"]

    @property
    def demoted(self) -> list[EndpointHealth]:
        return [e for e in self.endpoints if e.state == "demoted"]

    def silent(self, now: datetime) -> bool:
        quiet = self.last_article_at is None or now - self.last_article_at >= timedelta(
            days=SILENT_DAYS
        )
        return quiet and self.articles_30d >= SILENT_MIN_30D

    def status(self, now: datetime) -> str:
        """ok | silent | failing (an endpoint in use keeps failing) | no-endpoints | idle."""
        if self.silent(now):
            return "silent"
        if self.error_streak > 0:
            return "failing"
        if not self.in_use:
            return "no-endpoints"
        return "ok" if self.articles_30d else "idle"

    def as_json(self, now: datetime) -> dict[str, Any]:
        out = asdict(self)
        for key in ("last_article_at", "last_ok_at"):
            value = getattr(self, key)
            out[key] = value.isoformat() if value else None
        out["endpoints"] = [
            {
                **asdict(e),
                "ok_at": e.ok_at.isoformat() if e.ok_at else None,
                "new_items_at": e.new_items_at.isoformat() if e.new_items_at else None,
            }
            for e in self.endpoints
        ]
        out["per_day_7d"], out["per_day_30d"] = self.per_day_7d, self.per_day_30d
        out["status"] = self.status(now)
        return out


def source_health(store: Store, now: datetime | None = None) -> list[SourceHealth]:
    """Every source, in name order."""
    now = now or utcnow()
    week, month = now - timedelta(days=7), now - timedelta(days=30)
    with store.session() as s:
        sources = list(s.scalars(select(Source).order_by(Source.name)))
        last = dict(
            s.execute(
                select(Article.source_id, func.max(Article.created_at)).group_by(Article.source_id)
            ).all()
        )

        def counts(since: datetime, *where: Any) -> dict[int, int]:
            rows = s.execute(
                select(Article.source_id, func.count())
                .where(Article.created_at >= since, *where)
                .group_by(Article.source_id)
            ).all()
            return {int(k): int(v) for k, v in rows if k is not None}

        n7, n30 = counts(week), counts(month)
        walled = counts(month, Article.text_complete.is_(False))
        endpoints: dict[int, list[EndpointHealth]] = {}
        for e in s.scalars(select(SourceEndpoint).order_by(SourceEndpoint.id)):
            endpoints.setdefault(e.source_id, []).append(
                EndpointHealth(
                    url=e.url,
                    kind=e.kind,
                    news=e.news,
                    origin=e.origin,
                    state=e.state,
                    failures=e.failures,
                    reason=e.reason,
                    ok_at=e.ok_at,
                    new_items_at=e.new_items_at,
                )
            )
    out = []
    for src in sources:
        mine = endpoints.get(src.id, [])
        oks = [e.ok_at for e in mine if e.ok_at]
        out.append(
            SourceHealth(
                slug=src.slug,
                name=src.name,
                kind=src.kind,
                last_article_at=last.get(src.id),
                last_ok_at=max(oks) if oks else None,
                articles_7d=n7.get(src.id, 0),
                articles_30d=n30.get(src.id, 0),
                walled_30d=walled.get(src.id, 0),
                error_streak=max((e.failures for e in mine if e.state == "active"), default=0),
                endpoints=mine,
            )
        )
    return out
