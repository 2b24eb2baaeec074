"""What a search asks for and what it returns: filters, the query, hits, pages, cursors, and
the tantivy filter query built from :class:`Filters`; the engine's shared constants."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Literal

import tantivy

from covidnews.search.analysis import (
    ParsedQuery,
)
from covidnews.search.keyword import (
    NO_DATE,
    SCHEMA,
    code,
)
from covidnews.taxonomy import topic_ids

if TYPE_CHECKING:
    from covidnews.search.ranking import KeywordRanking, Prefix, View

Mode = Literal["keyword", "semantic", "hybrid"]
Sort = Literal["relevance", "newest"]
Interval = Literal["day", "week", "month", "year"]
GroupBy = Literal["topic", "source", "country", "language"]
RRF_K = 60
FIRST_FETCH_MAX = 10_000  # a first fetch larger than this counts the hits first
EXACT_CANDIDATES = 5_000  # up to this many candidates, semantic search is an exact product
#: Excluded documents per candidate below which a semantic query reads every excluded article id
#: rather than asking about its candidates only. Per document ~0.4 µs against ~6 µs per asked id
#: (measured at 1M) puts the break-even at 15; but when the candidates that survive are too few,
#: every excluded id is read anyway (the second pass), so the bound is set above it.
EXCLUDED_ALL_PER_ID = 30
TERMS_SIZE = 65_000
Q = tantivy.Query
SHARED = Q.term_query(SCHEMA, "shared", 1)
COPIES = Q.term_query(SCHEMA, "copy", 1)
NOT_COPIES = Q.term_query(SCHEMA, "copy", 0)
#: First copies that other articles point to (their story has copies).
FIRSTS_WITH_COPIES = Q.boolean_query(
    [(tantivy.Occur.Must, SHARED), (tantivy.Occur.Must, NOT_COPIES)]
)
MUST, SHOULD, MUST_NOT = tantivy.Occur.Must, tantivy.Occur.Should, tantivy.Occur.MustNot


class CursorError(ValueError):
    """The cursor is malformed or belongs to another query."""


@dataclass(frozen=True)
class Filters:
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # inclusive
    sources: tuple[int, ...] = ()  # source ids (any of)
    countries: tuple[str, ...] = ()  # ISO 3166-1 alpha-2 (any of)
    languages: tuple[str, ...] = ()  # ISO 639-1 (any of)
    topics: tuple[str, ...] = ()  # taxonomy ids (any of)
    covid: bool | None = True  # None: Covid and non-Covid


@dataclass(frozen=True)
class Query:
    q: str = ""
    mode: Mode = "hybrid"
    filters: Filters = field(default_factory=Filters)
    sort: Sort = "relevance"
    collapse: bool = True

    def fingerprint(self) -> str:
        raw = json.dumps(
            [self.q, self.mode, repr(self.filters), self.sort, self.collapse], sort_keys=True
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class Hit:
    article_id: int
    score: float
    date: int | None  # epoch seconds
    copies: list[int] = field(default_factory=list)  # other articles of the same story


@dataclass
class Page:
    hits: list[Hit]
    total: int
    next_cursor: str | None
    parsed: ParsedQuery
    #: For snippets: the searcher the page came from, the text query and hit addresses.
    view: View | None = None
    text_query: tantivy.Query | None = None
    addrs: dict[int, tantivy.DocAddress | None] = field(default_factory=dict)


@dataclass
class Parts:
    """What totals and counts read of a ranking: its keyword side when the hits are every hit of
    a keyword query (plus, for hybrid, the semantic hits); None when the ranking is known whole
    (semantic, passage)."""

    keyword: KeywordRanking | None = None
    semantic: Prefix | None = None


def _day_start(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _and(*parts: tantivy.Query | None) -> tantivy.Query:
    """Every one of these queries (None parts ignored; all documents if none is left)."""
    kept = [p for p in parts if p is not None]
    if not kept:
        return Q.all_query()
    if len(kept) == 1:
        return kept[0]
    return Q.boolean_query([(MUST, p) for p in kept])


def filter_query(f: Filters) -> tantivy.Query | None:
    """The filters as one tantivy query that does not score (None: no filter)."""
    parts = []
    if f.covid is not None:
        parts.append(Q.term_query(SCHEMA, "covid", 1 if f.covid else 0))
    if f.date_from is not None or f.date_to is not None:
        lower = _day_start(f.date_from) if f.date_from is not None else NO_DATE + 1
        upper = _day_start(f.date_to) + 86_399 if f.date_to is not None else None
        parts.append(Q.range_query(SCHEMA, "date", tantivy.FieldType.Integer, lower, upper))
    if f.sources:
        parts.append(Q.term_set_query(SCHEMA, "source", [int(s) for s in f.sources]))
    if f.countries:
        parts.append(Q.term_set_query(SCHEMA, "country", [code(c) for c in f.countries]))
    if f.languages:
        parts.append(Q.term_set_query(SCHEMA, "language", [code(c) for c in f.languages]))
    if f.topics:
        names = topic_ids()
        wanted = [names.index(t) for t in f.topics if t in names]
        parts.append(Q.term_set_query(SCHEMA, "topics", wanted) if wanted else Q.empty_query())
    if not parts:
        return None
    return Q.const_score_query(_and(*parts), 0.0)


# The index as one request sees it ----------------------------------------------------------
