"""The search engine the API and the archive query.

- **keyword**: tantivy's BM25 over the keyword index (original text and its translations, so an
  English query finds a Spanish article through its English translation); every word or phrase
  is required, ``-`` excludes;
- **semantic**: the query's embedding against the article vectors (the same model as the
  index): up to ``max_semantic_hits`` nearest articles with cosine ≥ ``semantic_min_score``;
- **hybrid** (default): reciprocal-rank fusion, ``Σ 1 / (60 + rank)`` over the keyword ranking's
  first ``max_semantic_hits`` and the semantic hits (a rank window, as Elasticsearch's RRF); the
  keyword hits past the window follow in keyword order.

A query longer than a keyword query (a pasted paragraph or claim, up to 2,000 characters) is a
**passage**: embedded whole, its keyword side is its most informative terms (``more_like_this``).

Filters are tantivy queries on fast fields. Results are totally ordered — by score (or date for
``sort=newest``), then article id, descending — so a cursor is the last result's key: walking
every page yields each hit exactly once, at any depth. A page is cut from an exact prefix of the
ranking fetched from the top (tantivy's top-k collectors, ties at the boundary resolved), so
syndicated copies (same ``story``) collapse into the best-ranked copy, the others listed with it.
Totals and counts come from tantivy counts and aggregations, corrected for copies.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import tantivy

from covidnews.index import Snapshot, VectorIndex, load_faiss
from covidnews.search import snippets as snippet_mod
from covidnews.search.analysis import (
    ParsedQuery,
    QueryError,
    excluded_query,
    keyword_limit_error,
    parse_query,
    passage_query,
    passage_terms_query,
    text_query,
)
from covidnews.search.keyword import (
    NO_DATE,
    SCHEMA,
    KeywordReader,
    code,
    decode,
    fast_values,
    id_set,
)
from covidnews.taxonomy import topic_ids

if TYPE_CHECKING:
    from covidnews.settings import Settings

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

__all__ = ["CursorError", "Filters", "Hit", "Page", "Query", "QueryError", "SearchEngine"]


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
    text_query: Any = None
    addrs: dict[int, Any] = field(default_factory=dict)


@dataclass
class Parts:
    """What totals and counts read of a ranking: its keyword side when the hits are every hit of
    a keyword query (plus, for hybrid, the semantic hits); None when the ranking is known whole
    (semantic, passage)."""

    keyword: KeywordRanking | None = None
    semantic: Prefix | None = None


def _day_start(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _and(*parts: Any) -> Any:
    """Every one of these queries (None parts ignored; all documents if none is left)."""
    kept = [p for p in parts if p is not None]
    if not kept:
        return Q.all_query()
    if len(kept) == 1:
        return kept[0]
    return Q.boolean_query([(MUST, p) for p in kept])


def filter_query(f: Filters) -> Any:
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


@dataclass
class Docs:
    """Some documents' article ids, stories, dates and addresses, in matching order."""

    ids: np.ndarray
    stories: np.ndarray
    dates: np.ndarray
    addrs: list[Any]

    @classmethod
    def empty(cls) -> Docs:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, [])


class View:
    """One searcher of the keyword index (an immutable commit) with the lookups search needs."""

    def __init__(self, searcher: tantivy.Searcher | None, generation: int) -> None:
        self.searcher = searcher
        self.generation = generation

    @property
    def size(self) -> int:
        return int(self.searcher.num_docs) if self.searcher is not None else 0

    def count(self, query: Any) -> int:
        if self.searcher is None:
            return 0
        result: Any = self.searcher.search(query, 1, count=True)
        return int(result.count)

    def top(self, query: Any, limit: int, by_date: bool = False) -> tuple[np.ndarray, list[Any]]:
        """(keys, addresses) of the first ``limit`` hits by score, or by date."""
        keys, addrs, _ = self.top_count(query, limit, by_date, count=False)
        return keys, addrs

    def top_count(
        self, query: Any, limit: int, by_date: bool = False, count: bool = True
    ) -> tuple[np.ndarray, list[Any], int]:
        """(keys, addresses, number of hits) in one pass: the count comes with the top-k."""
        if self.searcher is None or limit <= 0:
            return np.zeros(0), [], 0
        result: Any = self.searcher.search(
            query, limit, count=count, order_by_field="date" if by_date else None
        )
        hits = result.hits
        keys = np.fromiter((h[0] for h in hits), dtype=np.float64, count=len(hits))
        return keys, [h[1] for h in hits], int(result.count) if count else len(hits)

    def docs(self, addrs: list[Any]) -> Docs:
        s = self.searcher
        if s is None or not addrs:
            return Docs.empty()
        return Docs(
            fast_values(s, "id", addrs, np.int64),
            fast_values(s, "story", addrs, np.int64),
            fast_values(s, "date", addrs, np.int64),
            addrs,
        )

    def matching(self, query: Any, among: np.ndarray | None = None, at_most: int = 256) -> Docs:
        """Every document matching ``query`` (only among these article ids, if given). One pass
        when there are no more than ``at_most`` (a known bound saves a second pass)."""
        if self.searcher is None:
            return Docs.empty()
        if among is not None:
            if not len(among):
                return Docs.empty()
            # No more hits than ids: one fetch, no count.
            return self.docs(self.top(_and(query, id_set(among.tolist())), len(among))[1])
        _, addrs, n = self.top_count(query, max(1, at_most))
        if n > len(addrs):
            addrs = self.top(query, n)[1]
        return self.docs(addrs)

    def ids_matching(
        self, query: Any, among: np.ndarray | None = None, field: str = "id"
    ) -> np.ndarray:
        """Article ids (or another u64 fast field) of every document matching ``query`` (only
        among these article ids, if given), unordered. Collected by the fast field, unscored:
        ~3× cheaper per hit than :meth:`matching` (no BM25, no address list, no column
        reads)."""
        if self.searcher is None:
            return np.zeros(0, np.int64)
        if among is not None:
            if not len(among):
                return np.zeros(0, np.int64)
            query, n = _and(query, id_set(among.tolist())), len(among)
        else:
            n = self.count(query)
        if not n:
            return np.zeros(0, np.int64)
        hits = self.searcher.search(query, n, count=False, order_by_field=field).hits
        return np.fromiter((h[0] for h in hits), dtype=np.int64, count=len(hits))

    def addresses(self, docs: Docs, idx: np.ndarray) -> list[Any]:
        """Addresses of these documents (``idx`` into ``docs``). Semantic hits come without
        one (they come from the vector rows) and are looked up by article id; an article the
        keyword index does not have (yet) gets ``None``."""
        out = [docs.addrs[i] for i in idx.tolist()]
        missing = [int(docs.ids[i]) for i, a in zip(idx.tolist(), out, strict=True) if a is None]
        if missing and self.searcher is not None:
            _, found = self.top(id_set(missing), len(set(missing)))
            by_id = dict(
                zip(fast_values(self.searcher, "id", found, np.int64).tolist(), found, strict=True)
            )
            out = [
                a if a is not None else by_id.get(int(docs.ids[i]))
                for i, a in zip(idx.tolist(), out, strict=True)
            ]
        return out

    def column(self, name: str, addrs: list[Any], dtype: Any = np.int64) -> np.ndarray:
        """A fast field of these documents (0 for a ``None`` address)."""
        present = [i for i, a in enumerate(addrs) if a is not None]
        if self.searcher is None or not present:
            return np.zeros(len(addrs), dtype=dtype)
        if len(present) == len(addrs):
            return fast_values(self.searcher, name, addrs, dtype)
        out = np.zeros(len(addrs), dtype=dtype)
        out[present] = fast_values(self.searcher, name, [addrs[i] for i in present], dtype)
        return out

    def aggregate(self, query: Any, agg: dict[str, Any]) -> dict[str, Any]:
        if self.searcher is None:
            return {}
        result: dict[str, Any] = self.searcher.aggregate(query, agg)
        return result

    def terms(self, query: Any, name: str) -> dict[int, int]:
        """Documents per value of a fast field."""
        out = self.aggregate(query, {"t": {"terms": {"field": name, "size": TERMS_SIZE}}})
        buckets = out.get("t", {}).get("buckets", [])
        return {int(b["key"]): int(b["doc_count"]) for b in buckets}


class _AllColumns:
    """Every row's field ``name`` (``columns["date"]``), from the snapshot's column cache."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def __getitem__(self, name: str) -> np.ndarray:
        return self.snap.column(name)


def _any_of(values: np.ndarray, wanted: Sequence[int]) -> np.ndarray:
    """``values`` equal to any of a few wanted values (one comparison each; ``np.isin`` sorts)."""
    out = np.zeros(len(values), dtype=bool)
    for w in wanted:
        out |= values == values.dtype.type(w)
    return out


class Columns:
    """The filter columns of the vector rows (one snapshot of the vector index, memory-mapped):
    the semantic side filters its nearest vectors with a few vector operations instead of a
    tantivy query per candidate set (tantivy's id-set queries cost ~6 µs per id)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.rows = snap.rows

    def mask(self, f: Filters, at: np.ndarray | None = None) -> np.ndarray:
        """Which rows (all, or these) are live and pass the filters (the meaning of
        :func:`filter_query`)."""
        r: Any = _AllColumns(self.snap) if at is None else self.rows[at]
        m = self.snap.live.copy() if at is None else self.snap.live[at]
        if f.covid is not None:
            m &= r["covid"] == (1 if f.covid else 0)
        if f.date_from is not None:
            m &= r["date"] >= _day_start(f.date_from)
        if f.date_to is not None:
            dates = r["date"]
            m &= (dates <= _day_start(f.date_to) + 86_399) & (dates != NO_DATE)
        if f.sources:
            m &= _any_of(r["source"], f.sources)
        if f.countries:
            m &= _any_of(r["country"], [code(c) for c in f.countries])
        if f.languages:
            m &= _any_of(r["language"], [code(c) for c in f.languages])
        if f.topics:
            names = topic_ids()
            bits = sum(1 << names.index(t) for t in f.topics if t in names)
            m &= (r["topics"] & bits) != 0
        return np.asarray(m, dtype=bool)

    def docs(self, rows: np.ndarray) -> Docs:
        r = self.rows[rows] if len(rows) else np.zeros(0, dtype=self.rows.dtype)
        return Docs(
            np.asarray(r["id"], np.int64),
            np.asarray(r["story"], np.int64),
            np.asarray(r["date"], np.int64),
            [None] * len(rows),
        )


# Rankings: exact prefixes, fetched from the top ---------------------------------------------


@dataclass
class Prefix:
    """The first hits of a ranking in order (key desc, id desc)."""

    keys: np.ndarray
    docs: Docs
    complete: bool  # every hit of the ranking is here

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def head(self, n: int) -> Prefix:
        d = self.docs
        return Prefix(
            self.keys[:n],
            Docs(d.ids[:n], d.stories[:n], d.dates[:n], d.addrs[:n]),
            self.complete and n >= len(self),
        )


def _ordered(keys: np.ndarray, docs: Docs, complete: bool) -> Prefix:
    order = np.lexsort((-docs.ids, -keys))
    return Prefix(
        keys[order],
        Docs(
            docs.ids[order],
            docs.stories[order],
            docs.dates[order],
            [docs.addrs[i] for i in order.tolist()],
        ),
        complete,
    )


class KeywordRanking:
    """Hits of a tantivy query by score (or date), fetched as an exact prefix on demand.

    Tantivy's top-k breaks ties by document address; our order breaks them by article id. So
    only hits whose key is above the lowest key fetched are certain; the ties at that key are
    fetched whole (by date) or the fetch grows (by score)."""

    def __init__(self, view: View, query: Any, by_date: bool, cap: int | None = None) -> None:
        self.view, self.query, self.by_date, self.cap = view, query, by_date, cap
        self._prefix: Prefix | None = None
        self._count: int | None = None

    def take(self, need: int) -> Prefix:
        if self.cap is not None:
            need = min(need, self.cap)
        p = self._prefix
        if p is not None and (p.complete or len(p) >= need):
            return p
        # At least 256: scoring every hit is the cost, returning 256 instead of 64 adds ~0.1 ms,
        # and a page's boundary often falls in a run of equal scores (copies of one text),
        # which would need a second pass.
        limit = max(need + need // 2 + 8, 256)
        while True:
            if self._count is None and limit > FIRST_FETCH_MAX:
                self._count = self.view.count(self.query)  # a big fetch: never past the hits
            if self._count is None:
                # The first fetch counts every hit too (one pass), which caps the next ones.
                keys, addrs, self._count = self.view.top_count(self.query, limit, self.by_date)
            else:
                limit = min(limit, self._count + 1)
                keys, addrs = self.view.top(self.query, limit, self.by_date)
            docs = self.view.docs(addrs)
            if self.by_date:
                docs.dates = keys.astype(np.int64)
            if len(addrs) < limit:
                p = _ordered(keys, docs, True)
                break
            boundary = keys.min()
            sure = np.flatnonzero(keys > boundary)
            if self.by_date:
                ties = _and(
                    self.query,
                    Q.range_query(
                        SCHEMA, "date", tantivy.FieldType.Integer, int(boundary), int(boundary)
                    ),
                )
                tied = self.view.matching(ties)
                keys = np.concatenate([keys[sure], tied.dates.astype(np.float64)])
                docs = Docs(
                    np.concatenate([docs.ids[sure], tied.ids]),
                    np.concatenate([docs.stories[sure], tied.stories]),
                    np.concatenate([docs.dates[sure], tied.dates]),
                    [addrs[i] for i in sure.tolist()] + tied.addrs,
                )
                if len(keys) >= need:
                    p = _ordered(keys, docs, False)
                    break
            elif len(sure) >= need:
                p = _ordered(
                    keys[sure],
                    Docs(
                        docs.ids[sure],
                        docs.stories[sure],
                        docs.dates[sure],
                        [addrs[i] for i in sure.tolist()],
                    ),
                    False,
                )
                break
            limit *= 4
        if self.cap is not None and len(p) >= self.cap:
            p = p.head(self.cap)
            p.complete = True
        self._prefix = p
        return p


class FixedRanking:
    """A ranking known whole (semantic hits)."""

    def __init__(self, prefix: Prefix) -> None:
        self.prefix = prefix

    def take(self, need: int) -> Prefix:
        return self.prefix


class HybridRanking:
    """Reciprocal-rank fusion of the keyword ranking's first ``window`` hits and the semantic
    hits; keyword hits past the window follow in keyword order (their fused score, one
    ranking's ``1 / (61 + rank)``, is below every fused score of the window)."""

    def __init__(self, keyword: KeywordRanking | None, semantic: Prefix, window: int) -> None:
        self.keyword, self.semantic, self.window = keyword, semantic, window
        self._fused: Prefix | None = None

    def fused(self) -> Prefix:
        if self._fused is not None:
            return self._fused
        kw = self.keyword.take(self.window).head(self.window) if self.keyword else None
        parts_ids, parts_keys = [], []
        # Keyword hits first: a document in both keeps its keyword-index address.
        frames = ([kw] if kw is not None else []) + [self.semantic]
        for p in frames:
            parts_ids.append(p.docs.ids)
            parts_keys.append(1.0 / (RRF_K + 1.0 + np.arange(len(p))))
        ids = np.concatenate(parts_ids) if parts_ids else np.zeros(0, np.int64)
        contrib = np.concatenate(parts_keys) if parts_keys else np.zeros(0)
        uniq, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        fused = np.bincount(inverse, weights=contrib, minlength=len(uniq))
        docs = _concat_docs([f.docs for f in frames])
        keep = first
        self._fused = _ordered(
            fused,
            Docs(
                docs.ids[keep],
                docs.stories[keep],
                docs.dates[keep],
                [docs.addrs[i] for i in keep.tolist()],
            ),
            kw is None or kw.complete,
        )
        return self._fused

    def take(self, need: int) -> Prefix:
        window = self.fused()
        if window.complete or len(window) >= need or self.keyword is None:
            return window
        sem_ids = self.semantic.docs.ids
        kw = self.keyword.take(self.window + (need - len(window)) + len(sem_ids))
        beyond = np.arange(self.window, len(kw))
        beyond = beyond[~np.isin(kw.docs.ids[beyond], sem_ids)]
        keys = 1.0 / (RRF_K + 1.0 + beyond.astype(np.float64))
        d = kw.docs
        more = Docs(d.ids[beyond], d.stories[beyond], d.dates[beyond], [d.addrs[i] for i in beyond])
        return Prefix(
            np.concatenate([window.keys, keys]), _concat_docs([window.docs, more]), kw.complete
        )


def _concat_docs(parts: list[Docs]) -> Docs:
    if not parts:
        return Docs.empty()
    return Docs(
        np.concatenate([p.ids for p in parts]),
        np.concatenate([p.stories for p in parts]),
        np.concatenate([p.dates for p in parts]),
        [a for p in parts for a in p.addrs],
    )


def _first_of_story(stories: np.ndarray) -> np.ndarray:
    """Indices of each story's first occurrence, in order."""
    if not len(stories):
        return np.zeros(0, dtype=np.int64)
    _, first = np.unique(stories, return_index=True)
    return np.sort(first)


# Vectors -----------------------------------------------------------------------------------


# The engine --------------------------------------------------------------------------------


class SearchEngine:
    def __init__(
        self,
        keyword_dir: Path,
        vector_index: VectorIndex | None = None,
        embed_query: Callable[[str], np.ndarray] | None = None,
        *,
        semantic_min_score: float = 0.8,
        max_semantic_hits: int = 1000,
    ) -> None:
        self.reader = KeywordReader(keyword_dir)
        self.vectors = vector_index
        self._embed_query = embed_query
        self.semantic_min_score = semantic_min_score
        self.max_semantic_hits = max_semantic_hits
        self._totals: OrderedDict[tuple[int, Any, str], int] = OrderedDict()
        self._totals_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, store: Any = None) -> SearchEngine:
        """The engine of a deployment: keyword index, vector index and query embedder of the
        configured model (loaded on the first semantic query)."""
        from covidnews.embed import get_embedder

        # One request, one core: FAISS's default of every core per query is 10-30× slower under
        # concurrent requests on a small machine (bench/bench_index.py); the same holds for the
        # BLAS threads of numpy's vector products. Request threads and worker processes are the
        # parallelism.
        load_faiss().omp_set_num_threads(1)
        try:
            from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

            threadpool_limits(1, user_api="blas")
        except ImportError:  # pragma: no cover - scikit-learn (nlp extra) brings it
            pass

        options: dict[str, Any] = {}
        if settings.embedding_model:
            options["model"] = settings.embedding_model
        try:
            # One thread per query encoding: request threads and workers are the parallelism
            # (several encoder threads per request compete with them on a small machine).
            embedder = get_embedder(settings.embedder, threads=1, **options)
        except TypeError:  # a backend without a thread setting
            embedder = get_embedder(settings.embedder, **options)

        @functools.lru_cache(maxsize=2048)
        def embed(q: str) -> np.ndarray:
            return np.asarray(embedder.encode([q], kind="query")[0], dtype=np.float32)

        return cls(
            settings.search_dir,
            VectorIndex(settings.index_dir, embedder.model_id, exact_max=settings.index_exact_max),
            embed,
            semantic_min_score=settings.search_semantic_min_score,
            max_semantic_hits=settings.search_semantic_max_hits,
        )

    def view(self) -> View:
        searcher = self.reader.searcher()
        return View(searcher, self.reader.generation)

    # Semantic ----------------------------------------------------------------------------

    def _snapshot(self) -> Snapshot | None:
        snap = self.vectors.snapshot() if self.vectors is not None else None
        return snap if snap is not None and snap.size else None

    def _semantic(
        self,
        view: View,
        qv: np.ndarray,
        filters: Filters,
        excluded: Any,
        k: int,
        min_score: float,
        not_story: int | None = None,
    ) -> Prefix:
        """The k nearest articles that the filters let through (minus the documents of
        ``excluded`` and of the story ``not_story``), with cosine ≥ min_score. First the
        nearest of the whole index, filtered; when the filters leave too few, again among the
        rows they allow: an exact product when those are few, else the IVF segments with a
        row selector."""
        empty = Prefix(np.zeros(0), Docs.empty(), True)
        snap = self._snapshot()
        if snap is None:
            return empty
        cols = Columns(snap)
        exclusions = excluded is not None and view.searcher is not None
        excluded_rows: list[np.ndarray] = []  # rows of every excluded article, once looked up

        def every_excluded() -> np.ndarray:
            """A mask of the rows whose article an exclusion matches (one unscored read)."""
            if not excluded_rows:
                gone = snap.positions(view.ids_matching(excluded))
                rows = np.zeros(snap.size, dtype=bool)
                rows[gone[gone >= 0]] = True
                excluded_rows.append(rows)
            return excluded_rows[0]

        def passes(rows: np.ndarray | None) -> np.ndarray:
            m = cols.mask(filters, rows)
            sel: Any = _AllColumns(snap) if rows is None else cols.rows[rows]
            if not_story is not None:
                m &= sel["story"] != not_story
            if exclusions:
                if rows is None:  # every row: the documents of the exclusions, all of them
                    m &= ~every_excluded()
                elif m.any():
                    # Few excluded documents: all of them (unscored, ~0.4 µs each); many: only
                    # these rows are looked up (an id-set query, ~6 µs per id).
                    n = int(m.sum())
                    if excluded_rows or view.count(excluded) <= EXCLUDED_ALL_PER_ID * n:
                        m &= ~every_excluded()[rows]
                    else:
                        ids = np.asarray(sel["id"][m], np.int64)
                        hit = view.ids_matching(excluded, among=ids)
                        m[np.flatnonzero(m)[np.isin(ids, hit)]] = False
            return m

        # Users exclude words related to what they search, so exclusions remove more of the
        # nearest rows than of the collection: fetch deeper before falling back to every row.
        want = min(2 * k if exclusions else k + k // 2, snap.size)
        rows, sims = snap.nearest(qv, want)
        keep = passes(rows)
        reached = len(sims) > 0 and float(sims[-1]) < min_score
        if keep.sum() >= k or reached or len(rows) < want:
            rows, sims = rows[keep], sims[keep]
        else:
            allowed = passes(None)
            candidates = np.flatnonzero(allowed)
            if len(candidates) <= EXACT_CANDIDATES or not snap.segments:
                rows, sims = candidates, snap.exact(qv, candidates)
            else:
                rows, sims = snap.nearest(qv, k, allowed)
        ok = sims >= min_score
        rows, sims = rows[ok], sims[ok]
        ids = np.asarray(cols.rows["id"][rows], np.int64) if len(rows) else np.zeros(0, np.int64)
        order = np.lexsort((-ids, -sims))[:k]
        return Prefix(sims[order], cols.docs(rows[order]), True)

    # Ranking -----------------------------------------------------------------------------

    def _rankings(self, query: Query, view: View) -> tuple[Any, ParsedQuery, Any, Parts]:
        """(ranking, parsed query, text query for snippets, parts for totals and counts)."""
        parsed = parse_query(query.q)
        if query.mode == "keyword" and parsed.is_passage:
            raise keyword_limit_error()
        fq = filter_query(query.filters)
        words = query.q.strip()
        passage = parsed.is_passage
        browse = not words or not parsed.required
        newest = query.sort == "newest" or browse
        tq = None if passage else text_query(parsed)
        # What snippets mark: differs from the ranking query only where a phrase is required.
        phrases = any(c.is_phrase for c in parsed.required)
        hq = text_query(parsed, highlight=True) if phrases and not passage else tq
        xq = excluded_query(parsed)
        if browse and (query.mode != "semantic" or not words):
            # No words: every article under the filters (and exclusions), newest first.
            browsing = KeywordRanking(view, _and(fq, tq), True)
            return browsing, parsed, None, Parts(browsing)
        if query.mode == "keyword":
            keyword_only = KeywordRanking(view, _and(tq, fq), newest)
            return keyword_only, parsed, hq, Parts(keyword_only)
        semantic = Prefix(np.zeros(0), Docs.empty(), True)
        if self._embed_query is not None and words:
            semantic = self._semantic(
                view,
                self._embed_query(words),
                query.filters,
                xq,
                self.max_semantic_hits,
                self.semantic_min_score,
            )
        if query.mode == "semantic":
            return _resorted(FixedRanking(semantic), newest), parsed, hq, Parts()
        window = self.max_semantic_hits
        if passage:
            pq = passage_query(words, min_doc_frequency=1 if view.size < 1000 else 2)
            try:
                view.count(pq)
            except BaseException as exc:  # tantivy's more_like_this panics (Rust) on deletes
                if type(exc).__name__ != "PanicException" or view.searcher is None:
                    raise
                pq = passage_terms_query(view.searcher, words)
            unexcluded = Q.boolean_query([(MUST, Q.all_query()), (MUST_NOT, xq)]) if xq else None
            capped = KeywordRanking(view, _and(pq, fq, unexcluded), False, cap=window)
            fused = HybridRanking(capped, semantic, window).take(2 * window + 1)
            return _resorted(FixedRanking(fused), newest), parsed, hq, Parts()
        if tq is None or not parsed.required:
            fused = HybridRanking(None, semantic, window).take(2 * window + 1)
            return _resorted(FixedRanking(fused), newest), parsed, hq, Parts()
        keyword = KeywordRanking(view, _and(tq, fq), False)
        hybrid = HybridRanking(keyword, semantic, window)
        return _resorted(hybrid, newest), parsed, hq, Parts(keyword, semantic)

    # Pages -------------------------------------------------------------------------------

    def encode_cursor(self, query: Query, key: float | int, article_id: int, n: int = 0) -> str:
        raw = json.dumps({"k": key, "i": article_id, "h": query.fingerprint(), "n": n})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode_cursor(self, query: Query, cursor: str) -> tuple[float, int, int]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            key, article_id, fingerprint = raw["k"], int(raw["i"]), raw["h"]
            hint = int(raw.get("n", 0))
            if not isinstance(key, int | float) or isinstance(key, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CursorError("the cursor is not one this API returned") from exc
        if fingerprint != query.fingerprint():
            raise CursorError("the cursor belongs to a different query; keep the parameters")
        return key, article_id, max(0, min(hint, 10_000_000))

    def _cut(
        self,
        ranking: Any,
        collapse: bool,
        count: int,
        after: tuple[float, int, int] | None,
    ) -> tuple[Prefix, np.ndarray, bool]:
        """(prefix, indices of the next ``count`` results after the cursor, more follow)."""
        need = count + 1 + (after[2] if after else 0)
        need += need // 2
        while True:
            p = ranking.take(need)
            idx = _first_of_story(p.docs.stories) if collapse else np.arange(len(p))
            if after is not None:
                key, last_id, _ = after
                k, i = p.keys[idx], p.docs.ids[idx]
                idx = idx[(k < key) | ((k == key) & (i < last_id))]
            if len(idx) > count or p.complete:
                return p, idx[:count], len(idx) > count
            need = max(need * 2, len(p) * 2)

    def search(self, query: Query, per_page: int = 20, cursor: str | None = None) -> Page:
        after = self.decode_cursor(query, cursor) if cursor else None
        view = self.view()
        ranking, parsed, tq, parts = self._rankings(query, view)
        p, idx, more = self._cut(ranking, query.collapse, per_page, after)
        hits = self._hits(view, p, idx, query.collapse)
        next_cursor = None
        if more and hits:
            last = int(idx[-1])
            key = p.keys[last].item()
            if isinstance(key, float) and key.is_integer() and query.sort == "newest":
                key = int(key)
            next_cursor = self.encode_cursor(query, key, int(p.docs.ids[last]), last + 1)
        total = self._total(query, view, ranking, parts)
        found = view.addresses(p.docs, idx)
        addrs = {int(p.docs.ids[i]): a for i, a in zip(idx.tolist(), found, strict=True)}
        return Page(hits, total, next_cursor, parsed, view, tq, addrs)

    def _hits(self, view: View, p: Prefix, idx: np.ndarray, collapse: bool) -> list[Hit]:
        members: dict[int, list[int]] = {}
        if collapse and len(idx):
            # Only stories marked shared have other copies to list.
            shared = view.column("shared", view.addresses(p.docs, idx)) == 1
            stories = np.unique(p.docs.stories[idx][shared])
        if collapse and len(idx) and len(stories):
            m = view.matching(id_set(stories.tolist(), "story"))
            for sid, aid in zip(m.stories.tolist(), m.ids.tolist(), strict=True):
                members.setdefault(sid, []).append(aid)
        out = []
        for i in idx.tolist():
            aid = int(p.docs.ids[i])
            story = int(p.docs.stories[i])
            copies = sorted(a for a in members.get(story, []) if a != aid)
            d = int(p.docs.dates[i])
            out.append(Hit(aid, float(p.keys[i]), None if d == NO_DATE else d, copies))
        return out

    def iter_hits(self, query: Query, chunk: int = 500) -> Iterator[list[Hit]]:
        """Every hit of a query in order, in chunks (for exports: one ranking, bounded pages)."""
        view = self.view()
        ranking, _, _, _ = self._rankings(query, view)
        p = ranking.take(1 << 62)
        idx = _first_of_story(p.docs.stories) if query.collapse else np.arange(len(p))
        for start in range(0, len(idx), chunk):
            yield self._hits(view, p, idx[start : start + chunk], query.collapse)

    def total(self, query: Query) -> int:
        """The number of results of a query (stories, when copies collapse)."""
        view = self.view()
        ranking, _, _, parts = self._rankings(query, view)
        return self._total(query, view, ranking, parts)

    # Totals ------------------------------------------------------------------------------

    def _total(self, query: Query, view: View, ranking: Any, parts: Parts) -> int:
        # The keyword commit and the vector index version both decide a total.
        snap = self._snapshot()
        vectors = snap.key if snap is not None else None
        key = (view.generation, vectors, query.fingerprint())
        with self._totals_lock:
            if key in self._totals:
                self._totals.move_to_end(key)
                return self._totals[key]
        if parts.keyword is None:
            p = ranking.take(1 << 30)
            total = len(_first_of_story(p.docs.stories)) if query.collapse else len(p)
        else:
            total = self._keyword_total(view, parts.keyword, query.collapse)
            if parts.semantic is not None and len(parts.semantic):
                total += len(
                    self._semantic_only(view, parts.keyword, parts.semantic, query.collapse)
                )
        with self._totals_lock:
            self._totals[key] = total
            while len(self._totals) > 4096:
                self._totals.popitem(last=False)
        return total

    def _keyword_total(self, view: View, keyword: KeywordRanking, collapse: bool) -> int:
        kq = keyword.query
        n = view.count(kq) if keyword._count is None else keyword._count
        if not collapse or not n:
            return n
        # Stories among the hits: every hit that is no copy is a story of its own; copies add
        # their story unless its first copy is a hit too. Both sets are read unscored by a fast
        # field (the copies' story ids, the hit first copies' ids).
        stories = view.ids_matching(_and(kq, COPIES), field="story")
        if not len(stories):
            return n
        distinct = np.unique(stories)
        firsts = view.ids_matching(_and(kq, FIRSTS_WITH_COPIES))
        return n - len(stories) + len(distinct) - int(np.isin(distinct, firsts).sum())

    def _semantic_only(
        self, view: View, keyword: KeywordRanking, sem: Prefix, collapse: bool
    ) -> np.ndarray:
        """Indices of the semantic hits (of a hybrid query) that add a result to the keyword
        hits: those no keyword hit is, or — collapsed — the first of each story no keyword hit
        belongs to. Membership is known for the keyword prefix already fetched; tantivy is asked
        only about the rest."""
        fetched = keyword._prefix
        known = fetched.docs.ids if fetched is not None else np.zeros(0, np.int64)
        complete = fetched is not None and fetched.complete

        def keyword_hits(ids: np.ndarray) -> np.ndarray:
            ids = np.unique(ids)
            hit = ids[np.isin(ids, known)]
            rest = ids[~np.isin(ids, known)]
            if len(rest) and not complete:
                hit = np.concatenate([hit, view.matching(keyword.query, among=rest).ids])
            return hit

        if not collapse:
            return np.flatnonzero(~np.isin(sem.docs.ids, keyword_hits(sem.docs.ids)))
        # A semantic hit's story is covered when any of its copies is a keyword hit.
        members = view.matching(id_set(np.unique(sem.docs.stories).tolist(), "story"))
        covered = members.stories[np.isin(members.ids, keyword_hits(members.ids))]
        fresh = np.flatnonzero(~np.isin(sem.docs.stories, covered))
        firsts: np.ndarray = fresh[_first_of_story(sem.docs.stories[fresh])]
        return firsts

    # Snippets ----------------------------------------------------------------------------

    def snippets(self, page: Page) -> dict[int, tuple[str, str | None]]:
        """Article id -> (HTML-escaped snippet with ``<mark>`` around matches, its language)
        for the page's hits, from the field where the query matched most."""
        if page.view is None or page.view.searcher is None or page.text_query is None:
            return {}
        return snippet_mod.snippets(page.view.searcher, page.text_query, page.addrs)

    # Lookups for the API and the archive -------------------------------------------------

    def is_indexed(self, article_id: int) -> bool:
        return self.view().count(id_set([article_id])) > 0

    def indexed_ids(self) -> np.ndarray:
        """Article id of every indexed document (repeats would show a duplicate)."""
        view = self.view()
        return view.matching(Q.all_query()).ids

    def story_members(self, story_id: int) -> list[int]:
        """Article ids of every indexed copy of a story (itself included)."""
        return sorted(self.view().matching(id_set([story_id], "story")).ids.tolist())

    def topic_masks(self, article_ids: list[int]) -> dict[int, int]:
        view = self.view()
        if not article_ids:
            return {}
        _, addrs = view.top(id_set(article_ids), len(set(article_ids)))
        ids = view.column("id", addrs).tolist()
        masks = view.column("topic_mask", addrs, np.uint64).tolist()
        return dict(zip(ids, (int(m) for m in masks), strict=True))

    def source_counts(self) -> dict[int, int]:
        """Indexed articles per source id (every article, Covid or not)."""
        return self.view().terms(Q.all_query(), "source")

    def topic_counts(self) -> dict[str, int]:
        """Indexed Covid articles per topic id."""
        counts = self.view().terms(Q.term_query(SCHEMA, "covid", 1), "topics")
        return {t: counts.get(n, 0) for n, t in enumerate(topic_ids())}

    def countries(self) -> list[str]:
        """Countries with Covid articles, most articles first."""
        counts = self.view().terms(Q.term_query(SCHEMA, "covid", 1), "country")
        pairs = sorted(((n, c) for c, n in counts.items() if c), reverse=True)
        return [c for _n, code_ in pairs if (c := decode(code_))]

    def date_span(self) -> tuple[int, int] | None:
        """(first, last) dates (epoch seconds) of the indexed articles."""
        dated = Q.range_query(SCHEMA, "date", tantivy.FieldType.Integer, NO_DATE + 1, None)
        stats = self.view().aggregate(dated, {"s": {"stats": {"field": "date"}}}).get("s", {})
        if not stats.get("count"):
            return None
        return int(stats["min"]), int(stats["max"])

    def similar(self, article_id: int, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """The k articles nearest to this one (other copies of its story excluded)."""
        snap = self._snapshot()
        if snap is None:
            return []
        row = int(snap.positions(np.asarray([article_id]))[0])
        if row < 0:
            return []
        story = int(snap.rows["story"][row])
        qv = np.asarray(snap.vectors[row], dtype=np.float32)
        p = self._semantic(self.view(), qv, filters or Filters(covid=None), None, k, -np.inf, story)
        return [
            Hit(int(a), float(s), None if int(d) == NO_DATE else int(d))
            for a, s, d in zip(p.docs.ids, p.keys, p.docs.dates, strict=True)
        ]

    # Counts ------------------------------------------------------------------------------

    def counts(
        self, query: Query, interval: Interval = "day", by: GroupBy | None = None
    ) -> list[dict[str, Any]]:
        """Number of hits per period (and per topic/source/country/language), oldest first.
        Articles without a date are not counted. A story counts once: on its first copy when
        that is a hit, else on its best-ranked hit."""
        view = self.view()
        ranking, _, _, parts = self._rankings(query, view)
        field_name = {"topic": "topics", None: None}.get(by, by)
        cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (day, key, count)
        if parts.keyword is None:
            p = ranking.take(1 << 30)
            idx = _first_of_story(p.docs.stories) if query.collapse else np.arange(len(p))
            cells.append(_cells_of(view, view.addresses(p.docs, idx), by))
        else:
            kq = parts.keyword.query
            dated = Q.range_query(SCHEMA, "date", tantivy.FieldType.Integer, NO_DATE + 1, None)
            base = _and(kq, dated)
            if query.collapse:
                base = _and(base, NOT_COPIES)
            cells.append(_aggregate_cells(view, base, field_name))
            if query.collapse:
                cells.append(self._copy_cells(view, kq, ranking, by))
            sem = parts.semantic
            if sem is not None and len(sem):
                idx = self._semantic_only(view, parts.keyword, sem, query.collapse)
                cells.append(_cells_of(view, view.addresses(sem.docs, idx), by))
        return _periods(cells, interval, by)

    def _copy_cells(self, view: View, kq: Any, ranking: Any, by: GroupBy | None) -> Any:
        """Cells of stories that are hits only through copies (their first copy is no hit), each
        counted at its best-ranked copy."""
        shared_q = _and(kq, SHARED)
        n = view.count(shared_q)
        keys, addrs = view.top(shared_q, n, getattr(ranking, "by_date", True))
        d = view.docs(addrs)
        copy = d.stories != d.ids
        alone = copy & ~np.isin(d.stories, d.ids[~copy])
        if not alone.any():
            return _no_cells()
        pick = np.flatnonzero(alone)
        order = pick[np.lexsort((-d.ids[pick], -keys[pick], d.stories[pick]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = d.stories[order][1:] != d.stories[order][:-1]
        return _cells_of(view, [addrs[i] for i in order[first].tolist()], by)


def _resorted(ranking: Any, newest: bool) -> Any:
    """A semantic or hybrid ranking re-ordered newest first for ``sort=newest``."""
    if not newest:
        return ranking
    p = ranking.take(1 << 30)
    keys = p.docs.dates.astype(np.float64)
    return FixedRanking(_ordered(keys, p.docs, True))


# Count cells -------------------------------------------------------------------------------


def _no_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    z = np.zeros(0, dtype=np.int64)
    return z, z, z


def _aggregate_cells(
    view: View, query: Any, field_name: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, key, count) cells of the matching documents, aggregated by tantivy."""
    agg: dict[str, Any] = {"histogram": {"field": "date", "interval": 86_400, "min_doc_count": 1}}
    if field_name:
        agg["aggs"] = {"k": {"terms": {"field": field_name, "size": TERMS_SIZE}}}
    out = view.aggregate(query, {"d": agg})
    days, keys, counts = [], [], []
    for b in out.get("d", {}).get("buckets", []):
        day = int(b["key"] // 86_400)
        if field_name:
            for kb in b["k"]["buckets"]:
                days.append(day)
                keys.append(int(kb["key"]))
                counts.append(int(kb["doc_count"]))
        else:
            days.append(day)
            keys.append(0)
            counts.append(int(b["doc_count"]))
    return (
        np.asarray(days, dtype=np.int64),
        np.asarray(keys, dtype=np.int64),
        np.asarray(counts, dtype=np.int64),
    )


def _cells_of(
    view: View, addrs: list[Any], by: GroupBy | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day, key, 1) cells of these documents (undated ones left out)."""
    addrs = [a for a in addrs if a is not None]
    if not addrs:
        return _no_cells()
    dates = view.column("date", addrs)
    dated = dates != NO_DATE
    days = dates // 86_400
    if by == "topic":
        masks = view.column("topic_mask", addrs, np.uint64)
        d_parts, k_parts = [], []
        for bit in range(len(topic_ids())):
            has = (((masks >> np.uint64(bit)) & np.uint64(1)) == 1) & dated
            d_parts.append(days[has])
            k_parts.append(np.full(int(has.sum()), bit, dtype=np.int64))
        day_arr, key_arr = np.concatenate(d_parts), np.concatenate(k_parts)
    elif by is not None:
        key_arr = view.column(by, addrs)[dated]
        day_arr = days[dated]
    else:
        day_arr = days[dated]
        key_arr = np.zeros(len(day_arr), dtype=np.int64)
    return day_arr, key_arr, np.ones(len(day_arr), dtype=np.int64)


def _periods(
    cells: list[tuple[np.ndarray, np.ndarray, np.ndarray]], interval: Interval, by: GroupBy | None
) -> list[dict[str, Any]]:
    days = np.concatenate([c[0] for c in cells]) if cells else np.zeros(0, np.int64)
    keys = np.concatenate([c[1] for c in cells]) if cells else np.zeros(0, np.int64)
    counts = np.concatenate([c[2] for c in cells]) if cells else np.zeros(0, np.int64)
    if not len(days):
        return []
    first_day = int(days.min())
    n_days = int(days.max()) - first_day + 1
    uniq_keys, key_index = np.unique(keys, return_inverse=True)
    width = len(uniq_keys)
    per_day = np.bincount(
        (days - first_day) * width + key_index, weights=counts, minlength=n_days * width
    ).reshape(n_days, width)
    calendar = np.arange(first_day, first_day + n_days).astype("datetime64[D]")
    if interval == "week":
        offset = ((np.arange(first_day, first_day + n_days) + 3) % 7).astype("timedelta64[D]")
        period_of_day = calendar - offset
    elif interval == "month":
        period_of_day = calendar.astype("datetime64[M]").astype("datetime64[D]")
    elif interval == "year":
        period_of_day = calendar.astype("datetime64[Y]").astype("datetime64[D]")
    else:
        period_of_day = calendar
    periods, period_index = np.unique(period_of_day, return_inverse=True)
    table = np.zeros((len(periods), width), dtype=np.int64)
    np.add.at(table, period_index, per_day.astype(np.int64))
    names = topic_ids()
    out = []
    for p_i, k_i in zip(*np.nonzero(table), strict=True):
        row: dict[str, Any] = {"period": str(periods[p_i]), "count": int(table[p_i, k_i])}
        if by is not None:
            raw = int(uniq_keys[k_i])
            if by == "topic":
                row["key"] = names[raw]
            elif by == "source":
                row["key"] = None if raw < 0 else raw
            else:
                row["key"] = decode(raw)
        out.append(row)
    return out
