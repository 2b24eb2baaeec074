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

Split by job: :mod:`~covidnews.search.query` (filters, query, hits, pages, the filter query),
:mod:`~covidnews.search.ranking` (keyword, fixed and hybrid rankings over fast-field columns),
:mod:`~covidnews.search.counts` (``stats`` cells); this module is the engine that runs them, and
re-exports the request/response types.
"""

from __future__ import annotations

import base64
import functools
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from covidnews.search.counts import _aggregate_cells, _cells_of, _no_cells, _periods
from covidnews.search.keyword import (
    NO_DATE,
    SCHEMA,
    KeywordReader,
    decode,
    id_set,
)
from covidnews.search.query import (
    COPIES,
    EXACT_CANDIDATES,
    EXCLUDED_ALL_PER_ID,
    FIRSTS_WITH_COPIES,
    MUST,
    MUST_NOT,
    NOT_COPIES,
    SHARED,
    CursorError,
    Filters,
    GroupBy,
    Hit,
    Interval,
    Mode,
    Page,
    Parts,
    Q,
    Query,
    Sort,
    _and,
    filter_query,
)
from covidnews.search.ranking import (
    Columns,
    Docs,
    FixedRanking,
    HybridRanking,
    KeywordRanking,
    Prefix,
    View,
    _AllColumns,
    _first_of_story,
    _resorted,
)
from covidnews.taxonomy import topic_ids

if TYPE_CHECKING:
    from covidnews.settings import Settings
    from covidnews.store import Store


__all__ = [
    "CursorError",
    "Filters",
    "GroupBy",
    "Hit",
    "Interval",
    "Mode",
    "Page",
    "Query",
    "QueryError",
    "SearchEngine",
    "Sort",
]


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
    def from_settings(cls, settings: Settings, store: Store | None = None) -> SearchEngine:
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
