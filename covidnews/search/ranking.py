"""Rankings the engine pages through: keyword (tantivy top-k prefixes, ties resolved), fixed
(semantic, or re-sorted) and hybrid (reciprocal-rank fusion), over the documents' fast-field
columns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import tantivy

from covidnews.index import Snapshot
from covidnews.search.keyword import (
    NO_DATE,
    SCHEMA,
    code,
    fast_values,
    id_set,
)
from covidnews.search.query import FIRST_FETCH_MAX, RRF_K, TERMS_SIZE, Filters, Q, _and, _day_start
from covidnews.taxonomy import topic_ids

if TYPE_CHECKING:
    pass


@dataclass
class Docs:
    """Some documents' article ids, stories, dates and addresses, in matching order."""

    ids: np.ndarray
    stories: np.ndarray
    dates: np.ndarray
    addrs: Sequence[tantivy.DocAddress | None]  # None: rows of a fixed ranking (no lookup)

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

    def count(self, query: tantivy.Query) -> int:
        if self.searcher is None:
            return 0
        result: Any = self.searcher.search(query, 1, count=True)  # stub lacks .count
        return int(result.count)

    def top(
        self, query: tantivy.Query, limit: int, by_date: bool = False
    ) -> tuple[np.ndarray, list[tantivy.DocAddress]]:
        """(keys, addresses) of the first ``limit`` hits by score, or by date."""
        keys, addrs, _ = self.top_count(query, limit, by_date, count=False)
        return keys, addrs

    def top_count(
        self, query: tantivy.Query, limit: int, by_date: bool = False, count: bool = True
    ) -> tuple[np.ndarray, list[tantivy.DocAddress], int]:
        """(keys, addresses, number of hits) in one pass: the count comes with the top-k."""
        if self.searcher is None or limit <= 0:
            return np.zeros(0), [], 0
        result: Any = self.searcher.search(  # the stub lacks SearchResult.count
            query, limit, count=count, order_by_field="date" if by_date else None
        )
        hits = result.hits
        keys = np.fromiter((h[0] for h in hits), dtype=np.float64, count=len(hits))
        return keys, [h[1] for h in hits], int(result.count) if count else len(hits)

    def docs(self, addrs: list[tantivy.DocAddress]) -> Docs:
        s = self.searcher
        if s is None or not addrs:
            return Docs.empty()
        return Docs(
            fast_values(s, "id", addrs, np.int64),
            fast_values(s, "story", addrs, np.int64),
            fast_values(s, "date", addrs, np.int64),
            addrs,
        )

    def matching(
        self, query: tantivy.Query, among: np.ndarray | None = None, at_most: int = 256
    ) -> Docs:
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
        self, query: tantivy.Query, among: np.ndarray | None = None, field: str = "id"
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

    def addresses(self, docs: Docs, idx: np.ndarray) -> list[tantivy.DocAddress | None]:
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

    def column(
        self, name: str, addrs: Sequence[tantivy.DocAddress | None], dtype: npt.DTypeLike = np.int64
    ) -> np.ndarray:
        """A fast field of these documents (0 for a ``None`` address)."""
        present = [i for i, a in enumerate(addrs) if a is not None]
        known = [a for a in addrs if a is not None]
        if self.searcher is None or not present:
            return np.zeros(len(addrs), dtype=dtype)
        if len(present) == len(addrs):
            return fast_values(self.searcher, name, known, dtype)
        out = np.zeros(len(addrs), dtype=dtype)
        out[present] = fast_values(self.searcher, name, known, dtype)
        return out

    def aggregate(self, query: tantivy.Query, agg: dict[str, Any]) -> dict[str, Any]:  # JSON
        if self.searcher is None:
            return {}
        result: dict[str, Any] = self.searcher.aggregate(query, agg)
        return result

    def terms(self, query: tantivy.Query, name: str) -> dict[int, int]:
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

    def __init__(
        self, view: View, query: tantivy.Query, by_date: bool, cap: int | None = None
    ) -> None:
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
                    [*(addrs[i] for i in sure.tolist()), *tied.addrs],
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
        more = Docs(
            d.ids[beyond], d.stories[beyond], d.dates[beyond], [d.addrs[i] for i in beyond.tolist()]
        )
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


def _resorted(ranking: Any, newest: bool) -> Any:
    """A semantic or hybrid ranking re-ordered newest first for ``sort=newest``."""
    if not newest:
        return ranking
    p = ranking.take(1 << 30)
    keys = p.docs.dates.astype(np.float64)
    return FixedRanking(_ordered(keys, p.docs, True))
