"""The search engine the API and the archive query.

- **keyword**: BM25 over the keyword index (original text and its translations, so an English
  query finds a Spanish article through its English translation); every word or phrase is
  required, ``-`` excludes;
- **semantic**: the query's embedding against the article vectors (the same model as the
  index): up to ``max_semantic_hits`` nearest articles with cosine ≥ ``semantic_min_score``. Exact
  (a matrix product over the candidates) when filters leave few candidates or the index is
  small; the HNSW graph with an id selector otherwise;
- **hybrid** (default): reciprocal-rank fusion, ``Σ 1 / (60 + rank)`` over the two rankings.

Filters work on per-document arrays held in memory, so every combination costs a few vector
operations. Results are totally ordered — by score (or date for ``sort=newest``), then article
id, descending — so a cursor is simply the last result's key: walking every page yields each
hit exactly once, at any depth. Syndicated copies (same ``story``) collapse into the best-ranked
copy, the others listed with it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from covidnews.index import VectorIndex, _faiss
from covidnews.search.analysis import ParsedQuery, parse_query
from covidnews.search.keyword import NO_DATE, KeywordReader, Snapshot, code, decode, topic_mask
from covidnews.taxonomy import topic_ids

Mode = Literal["keyword", "semantic", "hybrid"]
Sort = Literal["relevance", "newest"]
Interval = Literal["day", "week", "month", "year"]
GroupBy = Literal["topic", "source", "country", "language"]
RRF_K = 60
EXACT_CANDIDATES = 5_000  # up to this many candidates, semantic search is an exact product


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


@dataclass
class Ranking:
    """Every hit of a query, not yet ordered: positions and their sort keys."""

    snapshot: Snapshot
    positions: np.ndarray
    keys: np.ndarray  # float64 (score) or int64 (date)
    ids: np.ndarray
    parsed: ParsedQuery

    def __len__(self) -> int:
        return int(self.positions.shape[0])


def _day_start(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


class VectorSide:
    """The article vectors of the current FAISS index, aligned with keyword-index positions."""

    def __init__(self, index: VectorIndex) -> None:
        self.index = index
        self._lock = threading.Lock()
        self._key: tuple[int, int] | None = None
        self._rows: np.ndarray = np.zeros(0, dtype=np.int64)
        self._matrix: np.ndarray = np.zeros((0, 1), dtype=np.float32)
        self._faiss: Any = None
        self.exact = True  # a flat index (exact search) rather than an HNSW graph

    def state(self, snap: Snapshot) -> tuple[Any, np.ndarray, np.ndarray]:
        """(faiss index, row of each snapshot position or -1, vectors by row)."""
        faiss_index = self.index._refresh()
        key = (snap.version, id(faiss_index))
        if key != self._key:
            with self._lock:
                if key != self._key:
                    rows = np.full(snap.size, -1, dtype=np.int64)
                    matrix = np.zeros((0, 1), dtype=np.float32)
                    if faiss_index is not None and faiss_index.ntotal:
                        faiss = _faiss()
                        ids = faiss.vector_to_array(faiss_index.id_map).astype(np.int64)
                        inner = faiss.downcast_index(faiss_index.index)
                        flat = faiss.downcast_index(getattr(inner, "storage", inner))
                        self.exact = not hasattr(inner, "hnsw")
                        n, d = int(flat.ntotal), int(flat.d)
                        raw = faiss.rev_swig_ptr(flat.get_xb(), n * d)
                        matrix = np.asarray(raw, dtype=np.float32).reshape(n, d)
                        pos = snap.positions_of(ids)
                        ok = pos >= 0
                        rows[pos[ok]] = np.flatnonzero(ok)
                    self._faiss, self._rows, self._matrix = faiss_index, rows, matrix
                    self._key = key
        return self._faiss, self._rows, self._matrix


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
        self.vectors = VectorSide(vector_index) if vector_index is not None else None
        self._embed_query = embed_query
        self.semantic_min_score = semantic_min_score
        self.max_semantic_hits = max_semantic_hits

    @classmethod
    def from_settings(cls, settings: Any, store: Any = None) -> SearchEngine:
        """The engine of a deployment: keyword index, vector index and query embedder of the
        configured model (loaded on the first semantic query)."""
        from nlp_worker.backends.embed import get_embedder

        # One request, one core: FAISS's default of every core per query is 10-30× slower under
        # concurrent requests on a small machine (bench/bench_index.py).
        _faiss().omp_set_num_threads(1)

        options: dict[str, Any] = {}
        if settings.embedding_model:
            options["model"] = settings.embedding_model
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

    def snapshot(self) -> Snapshot:
        return self.reader.snapshot()

    # Filters ---------------------------------------------------------------------------------

    def filter_mask(self, snap: Snapshot, f: Filters) -> np.ndarray:
        d = snap.docs
        mask = snap.live.copy()
        if f.covid is not None:
            mask &= d["covid"] == (1 if f.covid else 0)
        if f.date_from is not None:
            mask &= d["date"] >= _day_start(f.date_from)
        if f.date_to is not None:
            mask &= (d["date"] < _day_start(f.date_to) + 86_400) & (d["date"] != NO_DATE)
        if f.sources:
            mask &= np.isin(d["source"], np.asarray(f.sources, dtype=np.int32))
        if f.countries:
            mask &= np.isin(d["country"], np.asarray([code(c) for c in f.countries], np.uint32))
        if f.languages:
            mask &= np.isin(d["language"], np.asarray([code(c) for c in f.languages], np.uint32))
        if f.topics:
            mask &= (d["topics"] & np.uint32(topic_mask(f.topics))) != 0
        return mask

    # Scoring ---------------------------------------------------------------------------------

    def _keyword(
        self, snap: Snapshot, parsed: ParsedQuery, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, BM25 scores) of documents matching every required clause."""
        mask = mask.copy()
        scores = np.zeros(snap.size, dtype=np.float64)
        for clause in parsed.required:
            pos, tf = snap.match(clause)
            matched = np.zeros(snap.size, dtype=bool)
            matched[pos] = True
            mask &= matched
            scores[pos] += snap.bm25(pos, tf)
        for clause in parsed.excluded:
            pos, _ = snap.match(clause)
            mask[pos] = False
        hits = np.flatnonzero(mask)
        return hits, scores[hits]

    def _semantic(self, snap: Snapshot, q: str, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine) of the nearest documents at or above the minimum score."""
        empty = np.zeros(0, dtype=np.int64), np.zeros(0)
        if self.vectors is None or self._embed_query is None or not q.strip():
            return empty
        faiss_index, _, matrix = self.vectors.state(snap)
        if faiss_index is None or not matrix.shape[0]:
            return empty
        k = self.max_semantic_hits
        pos, scores = self._nearest(snap, self._embed_query(q), mask, k)
        keep = scores >= self.semantic_min_score
        pos, scores = pos[keep], scores[keep]
        if len(pos) > k:
            ids = snap.docs["ids"][pos]
            top = np.lexsort((-ids, -scores))[:k]
            pos, scores = pos[top], scores[top]
        return pos, scores

    def _nearest(
        self, snap: Snapshot, qv: np.ndarray, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(positions, cosine) of candidates (``mask``, with a vector) near ``qv``: all of them
        when exact search is cheap, else at least the k nearest through the HNSW graph."""
        assert self.vectors is not None
        faiss_index, rows, matrix = self.vectors.state(snap)
        mask = mask & (rows >= 0)
        candidates = np.flatnonzero(mask)
        if len(candidates) <= EXACT_CANDIDATES:
            return candidates, (matrix[rows[candidates]] @ qv).astype(np.float64)
        if self.vectors.exact:
            return candidates, (matrix @ qv)[rows[candidates]].astype(np.float64)
        return self._knn(snap, faiss_index, qv, mask, k)

    def _knn(
        self, snap: Snapshot, faiss_index: Any, qv: np.ndarray, mask: np.ndarray, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        query = qv.reshape(1, -1).astype(np.float32)
        want = min(k + k // 2, faiss_index.ntotal)
        scores, ids = faiss_index.search(query, want)
        pos = snap.positions_of(ids[0][ids[0] >= 0])
        sims = scores[0][ids[0] >= 0].astype(np.float64)
        ok = (pos >= 0) & mask[np.maximum(pos, 0)]
        if ok.sum() >= k or (len(sims) and sims[-1] < self.semantic_min_score):
            return pos[ok], sims[ok]
        # Selective filters: search again among the candidates only.
        allowed = snap.docs["ids"][np.flatnonzero(mask)]
        params = faiss.SearchParametersHNSW(
            sel=faiss.IDSelectorBatch(allowed), efSearch=max(k, 128)
        )
        scores, ids = faiss_index.search(query, min(k, len(allowed)), params=params)
        got = ids[0] >= 0
        pos = snap.positions_of(ids[0][got])
        return pos, scores[0][got].astype(np.float64)

    def rank(self, query: Query) -> Ranking:
        """Every hit of a query with its sort key (unordered)."""
        parsed = parse_query(query.q)
        snap = self.snapshot()
        mask = self.filter_mask(snap, query.filters)
        ids_all = snap.docs["ids"]
        if parsed.is_empty and (query.mode != "semantic" or not query.q.strip()):
            # No words: every article under the filters (browsing), scored equally.
            pos = np.flatnonzero(mask)
            scores = np.zeros(len(pos))
        elif query.mode == "keyword":
            pos, scores = self._keyword(snap, parsed, mask)
        elif query.mode == "semantic":
            pos, scores = self._semantic(snap, query.q, mask)
        else:
            kpos, kscores = (
                self._keyword(snap, parsed, mask)
                if not parsed.is_empty
                else (np.zeros(0, np.int64), np.zeros(0))
            )
            spos, sscores = self._semantic(snap, query.q, mask)
            if parsed.excluded and len(spos):
                # Exclusions hold in every mode.
                kept = np.ones(snap.size, dtype=bool)
                for clause in parsed.excluded:
                    kept[snap.match(clause)[0]] = False
                spos, sscores = spos[kept[spos]], sscores[kept[spos]]
            fused = np.zeros(snap.size, dtype=np.float64)
            for p, s in ((kpos, kscores), (spos, sscores)):
                if len(p):
                    order = np.lexsort((-ids_all[p], -s))
                    fused[p[order]] += 1.0 / (RRF_K + 1.0 + np.arange(len(p)))
            hit = np.zeros(snap.size, dtype=bool)
            hit[kpos] = True
            hit[spos] = True
            pos = np.flatnonzero(hit)
            scores = fused[pos]
        keys: np.ndarray = scores
        if query.sort == "newest" or (parsed.is_empty and not query.q.strip()):
            # Browsing (no words) is always newest first.
            keys = snap.docs["date"][pos]
        return Ranking(snap, pos, keys, ids_all[pos], parsed)

    # Ordering, collapse, cursor ------------------------------------------------------------

    def _collapse(self, r: Ranking) -> tuple[np.ndarray, np.ndarray]:
        """Indices (into the ranking) of each story's best hit; and the story of every hit."""
        stories = r.snapshot.docs["story"][r.positions]
        # Only hits whose story has other copies need grouping; the rest stand alone.
        grouped = np.flatnonzero(r.snapshot.shared[r.positions])
        alone = np.flatnonzero(~r.snapshot.shared[r.positions])
        if not len(grouped):
            return alone, stories
        order = grouped[np.lexsort((-r.ids[grouped], -r.keys[grouped], stories[grouped]))]
        first = np.ones(len(order), dtype=bool)
        first[1:] = stories[order][1:] != stories[order][:-1]
        return np.concatenate([alone, order[first]]), stories

    def _after(self, r: Ranking, idx: np.ndarray, cursor: tuple[float, int] | None) -> np.ndarray:
        if cursor is None:
            return idx
        key, last_id = cursor
        k, i = r.keys[idx], r.ids[idx]
        kept: np.ndarray = idx[(k < key) | ((k == key) & (i < last_id))]
        return kept

    @staticmethod
    def _top(r: Ranking, idx: np.ndarray, n: int) -> np.ndarray:
        """The first n of these ranking indices in order (key desc, id desc)."""
        if len(idx) > n * 4:
            kth = np.partition(r.keys[idx], len(idx) - n)[len(idx) - n]
            idx = idx[r.keys[idx] >= kth]
        order = np.lexsort((-r.ids[idx], -r.keys[idx]))
        return idx[order[:n]]

    def encode_cursor(self, query: Query, key: float | int, article_id: int) -> str:
        raw = json.dumps({"k": key, "i": article_id, "h": query.fingerprint()})
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    def decode_cursor(self, query: Query, cursor: str) -> tuple[float, int]:
        try:
            raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            key, article_id, fingerprint = raw["k"], int(raw["i"]), raw["h"]
            if not isinstance(key, int | float):
                raise TypeError
        except (ValueError, KeyError, TypeError) as exc:
            raise CursorError("the cursor is not one this API returned") from exc
        if fingerprint != query.fingerprint():
            raise CursorError("the cursor belongs to a different query; keep the parameters")
        return key, article_id

    def search(self, query: Query, per_page: int = 20, cursor: str | None = None) -> Page:
        after = self.decode_cursor(query, cursor) if cursor else None
        r = self.rank(query)
        if query.collapse and len(r):
            idx, stories = self._collapse(r)
        else:
            idx, stories = np.arange(len(r)), None
        total = len(idx)
        page = self._top(r, self._after(r, idx, after), per_page + 1)
        more = len(page) > per_page
        page = page[:per_page]
        hits = [self._hit(r, i, stories) for i in page.tolist()]
        next_cursor = None
        if more and hits:
            last = int(page[-1])
            key = r.keys[last].item()
            next_cursor = self.encode_cursor(query, key, int(r.ids[last]))
        return Page(hits, total, next_cursor, r.parsed)

    def _hit(self, r: Ranking, i: int, stories: np.ndarray | None) -> Hit:
        snap = r.snapshot
        pos = int(r.positions[i])
        article_id = int(r.ids[i])
        copies: list[int] = []
        if stories is not None:
            members = snap.story_members(int(stories[i]))
            if len(members) > 1:
                copies = sorted(int(a) for a in snap.docs["ids"][members] if int(a) != article_id)
        date_value = int(snap.docs["date"][pos])
        score = float(r.keys[i]) if r.keys.dtype.kind == "f" else 0.0
        return Hit(article_id, score, None if date_value == NO_DATE else date_value, copies)

    def iter_hits(self, query: Query, chunk: int = 500) -> Iterator[list[Hit]]:
        """Every hit of a query in order, in chunks (for exports: one ranking, bounded pages)."""
        r = self.rank(query)
        if query.collapse and len(r):
            idx, stories = self._collapse(r)
        else:
            idx, stories = np.arange(len(r)), None
        order = idx[np.lexsort((-r.ids[idx], -r.keys[idx]))]
        for start in range(0, len(order), chunk):
            yield [self._hit(r, int(i), stories) for i in order[start : start + chunk]]

    # Similar articles and counts -------------------------------------------------------------

    def source_counts(self) -> dict[int, int]:
        """Indexed articles per source id (every article, Covid or not)."""
        snap = self.snapshot()
        ids, counts = np.unique(snap.docs["source"][snap.live], return_counts=True)
        return dict(zip(ids.tolist(), counts.tolist(), strict=True))

    def topic_counts(self) -> dict[str, int]:
        """Indexed Covid articles per topic id."""
        snap = self.snapshot()
        bits = snap.docs["topics"][snap.live & (snap.docs["covid"] == 1)]
        return {t: int(((bits >> n) & 1).sum()) for n, t in enumerate(topic_ids())}

    def similar(self, article_id: int, k: int = 10, filters: Filters | None = None) -> list[Hit]:
        """The k articles nearest to this one (other copies of its story excluded)."""
        snap = self.snapshot()
        pos = int(snap.positions_of([article_id])[0])
        if pos < 0 or self.vectors is None:
            return []
        _, rows, matrix = self.vectors.state(snap)
        if rows[pos] < 0:
            return []
        mask = self.filter_mask(snap, filters or Filters(covid=None))
        mask[snap.story_members(int(snap.docs["story"][pos]))] = False
        mask[pos] = False
        cpos, sims = self._nearest(snap, matrix[rows[pos]], mask, k)
        ids = snap.docs["ids"][cpos]
        top = np.lexsort((-ids, -sims))[:k]
        return [
            Hit(int(ids[i]), float(sims[i]), int(snap.docs["date"][cpos[i]])) for i in top.tolist()
        ]

    def counts(
        self, query: Query, interval: Interval = "day", by: GroupBy | None = None
    ) -> list[dict[str, Any]]:
        """Number of hits per period (and per topic/source/country/language), oldest first.
        Articles without a date are not counted."""
        r = self.rank(query)
        idx = self._collapse(r)[0] if query.collapse and len(r) else np.arange(len(r))
        pos = r.positions[idx]
        d = r.snapshot.docs
        dates = d["date"][pos]
        known = dates != NO_DATE
        pos, dates = pos[known], dates[known]
        if not len(dates):
            return []
        # Counting is bincount over (day, key) cells: no sorting of the hits. Calendar periods
        # are computed for the distinct days only.
        days = dates // 86_400
        first_day = int(days.min())
        n_days = int(days.max()) - first_day + 1
        day_index = days - first_day
        names = topic_ids()
        if by == "topic":
            masks = d["topics"][pos]
            key_values: list[Any] = list(names)
            parts_d, parts_k = [], []
            for bit in range(len(names)):
                has = ((masks >> np.uint32(bit)) & np.uint32(1)) == 1
                parts_d.append(day_index[has])
                parts_k.append(np.full(int(has.sum()), bit, dtype=np.int64))
            day_index = np.concatenate(parts_d)
            key_index = np.concatenate(parts_k)
        elif by is not None:
            raw = d[by][pos].astype(np.int64)
            uniq_keys, key_index = np.unique(raw, return_inverse=True)
            if by == "source":
                key_values = [None if k < 0 else int(k) for k in uniq_keys.tolist()]
            else:
                key_values = [decode(k) for k in uniq_keys.tolist()]
        else:
            key_values = [None]
            key_index = np.zeros(len(day_index), dtype=np.int64)
        width = len(key_values)
        cells = np.bincount(day_index * width + key_index, minlength=n_days * width)
        per_day = cells.reshape(n_days, width)
        calendar_days = np.arange(first_day, first_day + n_days).astype("datetime64[D]")
        if interval == "week":
            period_of_day = calendar_days - (
                (np.arange(first_day, first_day + n_days) + 3) % 7
            ).astype("timedelta64[D]")
        elif interval == "month":
            period_of_day = calendar_days.astype("datetime64[M]").astype("datetime64[D]")
        elif interval == "year":
            period_of_day = calendar_days.astype("datetime64[Y]").astype("datetime64[D]")
        else:
            period_of_day = calendar_days
        periods, period_index = np.unique(period_of_day, return_inverse=True)
        table = np.zeros((len(periods), width), dtype=np.int64)
        np.add.at(table, period_index, per_day)
        out = []
        for p_i, k_i in zip(*np.nonzero(table), strict=True):
            row: dict[str, Any] = {"period": str(periods[p_i]), "count": int(table[p_i, k_i])}
            if by is not None:
                row["key"] = key_values[k_i]
            out.append(row)
        return out
