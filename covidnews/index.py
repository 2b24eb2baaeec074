"""The vector index of one node: article vectors on FAISS, growing in place.

The store keeps every vector (``embeddings``, the source of truth); this is a cache of one
embedding model's vectors, in ``COVIDNEWS_DATA_DIR/index/<model>/``, written by the node's
follower (:mod:`covidnews.follow`) and read by every API worker of the node.

Layout of a generation (``g<N>/``; ``covidnews reindex`` starts a new one):

- ``vectors.f16``: every vector ever added, float16, append-only (row *r* = bytes
  ``r·d·2 …``). Searches re-rank their candidates with these (cosine within ~1e-3 of float32);
- ``rows.bin``: one fixed-size record per vector row (``ROW``: article id, stamp and the columns
  semantic filters read — date, source, country, language, topics, story, Covid flag),
  append-only;
- ``dead.bin``: rows superseded (an article changed) or deleted, append-only int64;
- ``trained-<v>.ivf`` and ``seg-<v>.ivf``: once the collection outgrows exact search, an IVF
  quantizer with 4-bit product-quantizer codes laid out for FAISS's SIMD *fast scan*
  (``IndexIVFPQFastScan``, d/2 sub-quantizers of 4 bits: 96 bytes per 384-d vector) trained on
  a sample of the vectors, and *segments*: IVF indexes of that quantizer over row ranges,
  ids = rows. The codes only choose candidates (1.5× as many as asked, at least 1,024 more);
  every candidate is re-ranked with its float16 vector. Segment files are immutable; each
  process reads their codes (FAISS copies fast-scan lists into memory: 96 B per vector), while
  the vectors and records — 88 % of the bytes — are memory-mapped and shared by the node's
  workers. (Generations trained before PQ codes keep their 8-bit scalar codes,
  ``IndexIVFScalarQuantizer``, mapped zero-copy, until retrained.)
- ``manifest.json`` (one level up): what is committed — row, dead and segment counts. Readers
  read only up to its lengths; the writer appends, fsyncs, then replaces the manifest
  atomically, so a reader never sees half a batch and a killed writer's tail is cut off on the
  next open.

Adding a batch appends the batch (cost of the batch, not of the index). Rows past the last
segment (the *delta*, at most ``delta_max``) are searched exactly; when the delta is full it
becomes a segment, and when there are more than ``MAX_SEGMENTS`` the smallest are merged
(dead rows dropped) — each row is rewritten O(log n) times, as in Lucene's tiered merges. The
quantizer is trained when the live rows exceed ``exact_max`` and again when they have grown
``RETRAIN_GROWTH``-fold since (then every segment is rebuilt with it).

One module (~700 lines) on purpose: the on-disk format above, its writer and its reader change
together, and every reader and writer of a generation must agree on it byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from covidnews.files import atomic_write, file_lock
from covidnews.schema import Embedding
from covidnews.store import Store

ROW = np.dtype(
    [
        ("id", "<i8"),
        ("stamp", "<f8"),
        ("date", "<i8"),
        ("source", "<i8"),
        ("country", "<u8"),
        ("language", "<u8"),
        ("topics", "<u8"),
        ("story", "<i8"),
        ("covid", "<i8"),
    ]
)
#: Narrow in-memory types of the record fields that semantic filters read (``Snapshot.column``).
COLUMNS: dict[str, Any] = {
    "date": np.int64,
    "source": np.int32,
    "country": np.uint32,
    "language": np.uint32,
    "topics": np.uint32,
    "covid": np.int8,
    "story": np.int64,
}
MAX_SEGMENTS = 8
MERGE_AT_ONCE = 4
RETRAIN_GROWTH = 4  # news drifts (new waves, new words): retrain as the archive grows
DEFAULT_DELTA_MAX = 20_000
#: Candidates fetched from the codes — this many per result wanted, and at least this many more
#: than wanted — then re-ranked exactly with the float16 vectors: 4-bit PQ codes cannot order
#: near-duplicates (a cluster of syndicated copies), 8-bit scalar codes (older ones) can.
RERANK: dict[str, tuple[float, int]] = {"pq4fs": (1.5, 1024), "sq8": (1.5, 10)}


def load_faiss() -> Any:  # the faiss module (its stub types only part of the SWIG API)
    import faiss

    return faiss


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:120] or "model"


def nlist_for(live: int) -> int:
    """IVF lists for a collection of this size: ~√n (a power of two), 64…65,536."""
    return int(min(65_536, max(64, 2 ** round(math.log2(max(1.0, math.sqrt(live)))))))


def nprobe_for(nlist: int) -> int:
    """Lists visited per query: an eighth (at least 32). E5 query vectors ("query: …") find
    their nearest passages spread over many lists: on real E5 vectors a sixteenth of the lists
    gave recall@10 0.86-0.88, an eighth 0.97-0.98 (bench/bench_index.py, docs/benchmarks.md)."""
    return int(min(nlist, max(32, nlist // 8)))


def pq_subquantizers(dims: int) -> int:
    """Sub-quantizers of the PQ codes: one per 2 dimensions (the largest divisor of ``dims``
    not above d/2, so every sub-vector has the same length). On real E5 vectors one per 4
    dimensions lost a tenth of the true top 10 behind the candidates' cut (recall@10 0.87 with
    every list probed, 0.99 with one per 2; docs/architecture.md)."""
    m = max(1, dims // 2)
    while dims % m:
        m -= 1
    return m


@dataclass
class Segment:
    file: str
    count: int


@dataclass
class Manifest:
    model: str
    dims: int
    generation: int = 1
    version: int = 0
    rows: int = 0  # committed vector rows
    dead: int = 0  # committed entries of dead.bin
    covered: int = 0  # rows below this are in a segment (or were dead when it was built)
    trained: str | None = None
    trained_at: int = 0  # live rows when the quantizer was trained
    nlist: int = 0
    segments: list[Segment] = field(default_factory=list)
    codes: str = "sq8"  # of the trained quantizer: "pq4fs" since PQ fast scan, "sq8" before

    @property
    def kind(self) -> str:
        return f"ivf-{self.codes}" if self.trained else "exact"

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            raw["segments"] = [Segment(**s) for s in raw.get("segments", [])]
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None


def last_of_each(ids: np.ndarray) -> np.ndarray:
    """Positions of the last occurrence of each id, in order."""
    _, last = np.unique(np.asarray(ids)[::-1], return_index=True)
    return np.sort(len(ids) - 1 - last)


def _memmap(path: Path, dtype: Any, count: int, dims: int | None = None) -> np.ndarray:
    shape: tuple[int, ...] = (count, dims) if dims is not None else (count,)
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=shape)


class Snapshot:
    """One committed version of the index, for reading (shared by a process's threads)."""

    segments: list[Any]
    delta: np.ndarray
    delta_start: int
    _base_key: int
    _base_ids: np.ndarray
    _base_rows: np.ndarray
    _base_columns: dict[str, np.ndarray]

    def __init__(
        self, directory: Path, m: Manifest, previous: Snapshot | None = None, nprobe: int = 0
    ) -> None:
        faiss = load_faiss()
        self.manifest = m
        self.version = m.version
        self.key = (m.generation, m.version)
        gen = directory / f"g{m.generation}"
        n, d = m.rows, m.dims
        self.size = n
        self.vectors = _memmap(gen / "vectors.f16", np.float16, n, d)
        self.rows = _memmap(gen / "rows.bin", ROW, n)
        dead_rows = _memmap(gen / "dead.bin", np.int64, m.dead)
        self.live = np.ones(n, dtype=bool)
        self.live[np.asarray(dead_rows)] = False
        same_gen = (
            previous is not None
            and previous.manifest.generation == m.generation
            and previous.manifest.dims == m.dims
        )
        reuse: dict[str, Any] = {}
        if same_gen and previous is not None:
            files = [s.file for s in previous.manifest.segments]
            reuse = dict(zip(files, previous.segments, strict=True))
        # 8-bit codes: mapped zero-copy where FAISS can (the arrays point into the mapped file;
        # 1.7× faster than its older on-disk-lists mapping), shared by the node's processes.
        # Fast-scan codes are block-interleaved lists that FAISS always copies into memory
        # (measured: mapping them only added the file's pages on top), so they are read:
        # 96 B per vector per process.
        flags = 0
        if m.codes == "sq8":
            mmap = getattr(faiss, "IO_FLAG_MMAP_IFC", faiss.IO_FLAG_MMAP)
            flags = mmap | faiss.IO_FLAG_READ_ONLY
        self.segments = [
            reuse[s.file] if s.file in reuse else faiss.read_index(str(gen / s.file), flags)
            for s in m.segments
        ]
        self.nprobe = nprobe or (nprobe_for(m.nlist) if m.nlist else 0)
        # The delta (rows past the segments) is searched exactly: float32 copy, kept across
        # versions of the same generation and extended with the new rows.
        start = m.covered
        if same_gen and previous is not None and previous.delta_start == start:
            old = previous.delta
            tail = np.asarray(self.vectors[start + len(old) : n], dtype=np.float32)
            self.delta = np.concatenate([old, tail]) if len(tail) else old
        else:
            self.delta = np.asarray(self.vectors[start:n], dtype=np.float32)
        self.delta_start = start
        # Article id -> live row: the covered part is sorted once per segment build (cached
        # across versions), the delta part per version.
        if same_gen and previous is not None and previous._base_key == m.covered:
            self._base_ids, self._base_rows = previous._base_ids, previous._base_rows
            self._base_columns = previous._base_columns
        else:
            self._base_ids, self._base_rows = self._lookup(0, m.covered)
            self._base_columns = {}
        self._base_key = m.covered
        self._columns: dict[str, np.ndarray] = {}
        self._columns_lock = threading.Lock()
        self._delta_ids, self._delta_rows = self._lookup(m.covered, n)

    def _lookup(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(start, stop, dtype=np.int64)
        rows = rows[self.live[start:stop]]
        ids = np.asarray(self.rows["id"][rows]) if len(rows) else np.zeros(0, np.int64)
        order = np.argsort(ids, kind="stable")
        return ids[order], rows[order]

    def column(self, name: str) -> np.ndarray:
        """One field of every row's record as a contiguous array of a narrow type (``COLUMNS``),
        built on first use: a filter over a million strided records read ~10× slower. The part
        covered by segments is kept across versions, the delta's part is added per version."""
        out = self._columns.get(name)
        if out is not None:
            return out
        with self._columns_lock:
            out = self._columns.get(name)
            if out is None:
                dtype = COLUMNS[name]
                base = self._base_columns.get(name)
                if base is None:
                    base = np.ascontiguousarray(self.rows[name][: self._base_key], dtype=dtype)
                    self._base_columns[name] = base
                tail = np.asarray(self.rows[name][self._base_key :], dtype=dtype)
                out = np.concatenate([base, tail]) if len(tail) else base
                self._columns[name] = out
        return out

    @property
    def live_count(self) -> int:
        return int(self.live.sum())

    def positions(self, article_ids: np.ndarray) -> np.ndarray:
        """The live row of each article id (-1 where it has none)."""
        ids = np.asarray(article_ids, dtype=np.int64)
        out = np.full(len(ids), -1, dtype=np.int64)
        for sorted_ids, rows in (
            (self._base_ids, self._base_rows),
            (self._delta_ids, self._delta_rows),
        ):
            if not len(sorted_ids) or not len(ids):
                continue
            at = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
            found = (sorted_ids[at] == ids) & (out < 0)
            cand = np.where(found, rows[at], -1)
            ok = cand >= 0
            ok[ok] = self.live[cand[ok]]
            out[ok] = cand[ok]
        return out

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.live)

    def scores(self, rows: np.ndarray, qv: np.ndarray) -> np.ndarray:
        """Cosine of these rows with the query (vectors are unit length)."""
        if not len(rows):
            return np.zeros(0)
        order = np.argsort(rows)
        sims = np.empty(len(rows))
        sims[order] = np.asarray(self.vectors[rows[order]], dtype=np.float32) @ qv
        return sims

    def nearest(
        self, qv: np.ndarray, want: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cosine) of the ``want`` nearest live rows (that ``allowed`` lets through, a
        mask over rows), best first. Segments give candidates by their 8-bit codes; every
        candidate is re-ranked with its stored vector."""
        faiss = load_faiss()
        qv = np.ascontiguousarray(qv, dtype=np.float32)
        found: list[np.ndarray] = []
        if self.segments and want > 0:
            params = faiss.SearchParametersIVF(nprobe=self.nprobe)
            if allowed is not None:
                bits = np.packbits(allowed, bitorder="little")
                params = faiss.SearchParametersIVF(
                    nprobe=self.nprobe, sel=faiss.IDSelectorBitmap(len(bits), faiss.swig_ptr(bits))
                )
            factor, extra = RERANK.get(self.manifest.codes, RERANK["pq4fs"])
            fetch = max(int(want * factor), want + extra)
            for seg in self.segments:
                _, got = seg.search(
                    qv.reshape(1, -1), min(fetch, max(1, seg.ntotal)), params=params
                )
                found.append(got[0][got[0] >= 0])
        if len(self.delta):
            sims = self.delta @ qv
            ok = self.live[self.delta_start :]
            if allowed is not None:
                ok = ok & allowed[self.delta_start :]
            idx = np.flatnonzero(ok)
            if len(idx) > want:
                idx = idx[np.argpartition(-sims[idx], want - 1)[:want]]
            found.append(idx.astype(np.int64) + self.delta_start)
        rows = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
        rows = rows[self.live[rows]]
        if allowed is not None:
            rows = rows[allowed[rows]]
        sims = self.scores(rows, qv)
        order = np.lexsort((rows, -sims))[:want]
        return rows[order], sims[order]

    def exact(self, qv: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return self.scores(rows, np.ascontiguousarray(qv, dtype=np.float32))


class VectorIndex:
    """The index of one embedding model in one directory (one writer: the node's follower)."""

    def __init__(
        self,
        directory: Path,
        model: str,
        *,
        exact_max: int = 50_000,
        delta_max: int = DEFAULT_DELTA_MAX,
        nprobe: int = 0,
    ) -> None:
        self.model = model
        self.slug = model_slug(model)
        self.dir = Path(directory) / self.slug
        self.manifest_path = self.dir / "manifest.json"
        self.exact_max = exact_max
        self.delta_max = delta_max
        self.nprobe = nprobe
        self._snap: Snapshot | None = None
        self._snap_lock = threading.Lock()

    # Reader ------------------------------------------------------------------------------

    def manifest(self) -> Manifest | None:
        return Manifest.read(self.manifest_path)

    def snapshot(self) -> Snapshot | None:
        """The current committed version (None while nothing was indexed); reloaded when the
        writer publishes, reusing what did not change. The manifest is read each time (a few
        hundred bytes): its version, not the file's inode or mtime, says what changed."""
        for _ in range(5):
            m = self.manifest()
            if m is None:
                return None
            snap = self._snap
            if snap is not None and snap.key == (m.generation, m.version):
                return snap
            with self._snap_lock:
                snap = self._snap
                if snap is not None and snap.key == (m.generation, m.version):
                    return snap
                try:
                    self._snap = Snapshot(self.dir, m, snap, self.nprobe)
                    return self._snap
                except (FileNotFoundError, RuntimeError):
                    continue  # replaced while we read it (a merge or rebuild removed a file)
        return self._snap

    @property
    def version(self) -> int:
        m = self.manifest()
        return m.version if m else 0

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[tuple[int, float]]]:
        """(article id, cosine) of the k nearest articles for each query."""
        snap = self.snapshot()
        out: list[list[tuple[int, float]]] = []
        for q in np.asarray(queries, dtype=np.float32).reshape(len(queries), -1):
            if snap is None or not snap.size:
                out.append([])
                continue
            rows, sims = snap.nearest(q, k)
            ids = snap.rows["id"][rows] if len(rows) else []
            out.append([(int(a), float(s)) for a, s in zip(ids, sims, strict=True)])
        return out

    def ids(self) -> set[int]:
        snap = self.snapshot()
        if snap is None:
            return set()
        return {int(i) for i in snap.rows["id"][snap.live_rows()]}

    def stamps(self, article_ids: Sequence[int]) -> dict[int, float]:
        """Article id -> stamp of the live vector of each of these articles that has one."""
        snap = self.snapshot()
        if snap is None or not article_ids:
            return {}
        ids = np.asarray(sorted({int(i) for i in article_ids}), dtype=np.int64)
        rows = snap.positions(ids)
        ok = rows >= 0
        return dict(zip(ids[ok].tolist(), snap.rows["stamp"][rows[ok]].tolist(), strict=True))

    # Writer ------------------------------------------------------------------------------

    def _writer_lock(self) -> contextlib.AbstractContextManager[None]:
        return file_lock(self.dir / "writer.lock")

    def _gen(self, m: Manifest) -> Path:
        return self.dir / f"g{m.generation}"

    def _open_for_append(self, m: Manifest) -> None:
        """Cut what a killed writer appended past the committed lengths."""
        gen = self._gen(m)
        gen.mkdir(parents=True, exist_ok=True)
        for name, size in (
            ("vectors.f16", m.rows * m.dims * 2),
            ("rows.bin", m.rows * ROW.itemsize),
            ("dead.bin", m.dead * 8),
        ):
            path = gen / name
            with open(path, "ab") as fh:
                if fh.tell() != size:
                    fh.truncate(size)

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        with open(path, "ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())

    def _publish(self, m: Manifest) -> None:
        m.version += 1
        raw = asdict(m)
        atomic_write(
            self.manifest_path,
            lambda tmp: Path(tmp).write_text(json.dumps(raw), encoding="utf-8"),
        )

    def apply(self, rows: np.ndarray, vectors: np.ndarray, delete: Iterable[int] = ()) -> int:
        """Add these vectors (``rows``: a ``ROW`` record each) as the live vectors of their
        articles — an article's previous vector becomes dead — and drop the vectors of the
        ``delete`` article ids. Returns the rows written."""
        rows = np.asarray(rows, dtype=ROW)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(rows):
            vectors = vectors.reshape(len(rows), -1)
            keep = last_of_each(rows["id"])  # one row per article: the last one given wins
            rows, vectors = rows[keep], vectors[keep]
        gone = np.asarray(sorted({int(i) for i in delete}), dtype=np.int64)
        if not len(rows) and not len(gone):
            return 0
        with self._writer_lock():
            m = self.manifest()
            if m is None:
                if not len(rows):
                    return 0
                m = Manifest(self.model, int(vectors.shape[1]))
            if len(rows) and m.rows == 0:
                m.dims = int(vectors.shape[1])  # an empty index takes the first vectors' size
            if len(rows) and vectors.shape[1] != m.dims:
                raise ValueError(f"vectors of {vectors.shape[1]} dims, index has {m.dims}")
            self._open_for_append(m)
            snap = self._writer_snapshot(m)
            touched = np.concatenate([rows["id"], gone]) if len(rows) else gone
            old = snap.positions(touched) if snap is not None else np.zeros(0, np.int64)
            dead = np.unique(old[old >= 0])
            gen = self._gen(m)
            if len(rows):
                self._append(gen / "vectors.f16", vectors.astype(np.float16).tobytes())
                self._append(gen / "rows.bin", rows.tobytes())
            if len(dead):
                self._append(gen / "dead.bin", dead.astype(np.int64).tobytes())
            m.rows += len(rows)
            m.dead += len(dead)
            self._maintain(m)
            self._publish(m)
            self._cleanup(m)
            return len(rows)

    def _writer_snapshot(self, m: Manifest) -> Snapshot | None:
        if m.rows == 0:
            return None
        return self.snapshot()

    def rebuild(self, rows: np.ndarray, vectors: np.ndarray) -> Manifest:
        """Replace the index with exactly these vectors (a new generation)."""
        with self.rebuilding() as add:
            add(rows, vectors)
        m = self.manifest()
        assert m is not None
        return m

    @contextlib.contextmanager
    def rebuilding(self) -> Iterator[Any]:
        """A new generation, filled by calling the yielded ``add(rows, vectors)`` (batches of
        ``ROW`` records and their vectors), published whole when the block ends — readers
        keep the old one until then. An article given twice keeps its last vector."""
        with self._writer_lock():
            old = self.manifest()
            state: dict[str, Any] = {"m": None}
            gen_no = (old.generation + 1) if old else 1
            version = old.version if old else 0

            def add(rows: np.ndarray, vectors: np.ndarray) -> None:
                rows = np.asarray(rows, dtype=ROW)
                if not len(rows):
                    return
                vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(rows), -1)
                if state["m"] is None:
                    m = Manifest(
                        self.model, int(vectors.shape[1]), generation=gen_no, version=version
                    )
                    shutil.rmtree(self._gen(m), ignore_errors=True)
                    self._open_for_append(m)
                    state["m"] = m
                m = state["m"]
                gen = self._gen(m)
                self._append(gen / "vectors.f16", vectors.astype(np.float16).tobytes())
                self._append(gen / "rows.bin", rows.tobytes())
                m.rows += len(rows)

            yield add
            m = state["m"]
            if m is None:
                m = Manifest(self.model, old.dims if old else 0, generation=gen_no, version=version)
                shutil.rmtree(self._gen(m), ignore_errors=True)
                self._open_for_append(m)
            # Repeated articles: only the last row of each stays live.
            _, ids, _ = self._view(m)
            ids = np.asarray(ids)
            if len(ids):
                live = np.zeros(len(ids), dtype=bool)
                live[last_of_each(ids)] = True
                dead = np.flatnonzero(~live).astype(np.int64)
                if len(dead):
                    self._append(self._gen(m) / "dead.bin", dead.tobytes())
                    m.dead = len(dead)
            self._maintain(m)
            self._publish(m)
            self._cleanup(m)

    # Segments ------------------------------------------------------------------------------

    def _view(self, m: Manifest) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gen = self._gen(m)
        vectors = _memmap(gen / "vectors.f16", np.float16, m.rows, m.dims)
        ids = _memmap(gen / "rows.bin", ROW, m.rows)["id"]
        live = np.ones(m.rows, dtype=bool)
        live[np.asarray(_memmap(gen / "dead.bin", np.int64, m.dead))] = False
        return vectors, ids, live

    def _write_index(self, m: Manifest, index: Any, stem: str) -> str:
        name = f"{stem}-{m.version + 1}-{len(m.segments)}.ivf"
        atomic_write(self._gen(m) / name, lambda tmp: load_faiss().write_index(index, tmp))
        return name

    def _segment(self, m: Manifest, vectors: np.ndarray, rows: np.ndarray) -> Any:
        faiss = load_faiss()
        index = faiss.read_index(str(self._gen(m) / str(m.trained)))
        for start in range(0, len(rows), 65_536):
            part = rows[start : start + 65_536]
            index.add_with_ids(np.asarray(vectors[part], dtype=np.float32), part)
        return index

    def _maintain(self, m: Manifest) -> None:
        """Train, retrain, turn the delta into a segment, merge segments — as sizes require."""
        vectors, _ids, live = self._view(m)
        n_live = int(live.sum())
        retrain = m.trained is not None and n_live > RETRAIN_GROWTH * max(1, m.trained_at)
        if (m.trained is None and n_live > self.exact_max) or retrain:
            self._train(m, vectors, live, n_live)
            rows = np.flatnonzero(live).astype(np.int64)
            m.segments = [
                Segment(self._write_index(m, self._segment(m, vectors, rows), "seg"), len(rows))
            ]
            m.covered = m.rows
            return
        if m.trained is None:
            return
        if m.rows - m.covered >= self.delta_max:
            rows = np.flatnonzero(live[m.covered :]).astype(np.int64) + m.covered
            seg = self._segment(m, vectors, rows)
            m.segments.append(Segment(self._write_index(m, seg, "seg"), len(rows)))
            m.covered = m.rows
        if len(m.segments) > MAX_SEGMENTS:
            self._merge(m, live)

    def _train(self, m: Manifest, vectors: np.ndarray, live: np.ndarray, n_live: int) -> None:
        faiss = load_faiss()
        nlist = nlist_for(n_live)
        rows = np.flatnonzero(live)
        sample_size = min(len(rows), 64 * nlist)
        sample = np.sort(np.random.default_rng(m.rows).choice(rows, sample_size, replace=False))
        x = np.asarray(vectors[sample], dtype=np.float32)
        quantizer = faiss.IndexFlatIP(m.dims)
        # 4-bit PQ codes scanned with SIMD (fast scan): several times faster to scan than 8-bit
        # scalar codes and half their size; d/2 sub-quantizers (2 dimensions each) keep enough
        # of the order for the exact re-ranking to restore it (docs/architecture.md).
        index = faiss.IndexIVFPQFastScan(
            quantizer, m.dims, nlist, pq_subquantizers(m.dims), 4, faiss.METRIC_INNER_PRODUCT
        )
        index.cp.niter = 10
        index.train(x)
        m.trained = self._write_index(m, index, "trained")
        m.trained_at, m.nlist, m.codes = n_live, nlist, "pq4fs"

    def _merge(self, m: Manifest, live: np.ndarray) -> None:
        faiss = load_faiss()
        order = sorted(range(len(m.segments)), key=lambda i: m.segments[i].count)
        pick = sorted(order[:MERGE_AT_ONCE])
        gen = self._gen(m)
        merged = faiss.read_index(str(gen / m.segments[pick[0]].file))
        for i in pick[1:]:
            merged.merge_from(faiss.read_index(str(gen / m.segments[i].file)), 0)
        dead = np.flatnonzero(~live).astype(np.int64)
        if len(dead):
            merged.remove_ids(faiss.IDSelectorBatch(dead))
        name = self._write_index(m, merged, "seg")
        keep = [s for i, s in enumerate(m.segments) if i not in pick]
        m.segments = [*keep, Segment(name, int(merged.ntotal))]

    def _cleanup(self, m: Manifest) -> None:
        """Remove files the manifest no longer names (readers that mapped them keep them)."""
        for other in self.dir.glob("g*"):
            if other.is_dir() and other.name != f"g{m.generation}":
                shutil.rmtree(other, ignore_errors=True)
        named = {s.file for s in m.segments} | ({m.trained} if m.trained else set())
        for f in self._gen(m).glob("*.ivf"):
            if f.name not in named:
                with contextlib.suppress(OSError):
                    f.unlink()


def store_vectors(
    store: Store, model: str, article_ids: Iterable[int] | None = None
) -> tuple[list[int], np.ndarray]:
    """Vectors of ``model`` from the store (all, or these articles), ordered by article id."""
    with store.session() as s:
        query = select(Embedding.article_id, Embedding.dims, Embedding.vector).where(
            Embedding.model == model
        )
        if article_ids is not None:
            query = query.where(Embedding.article_id.in_(list(article_ids)))
        rows = s.execute(query.order_by(Embedding.article_id)).all()
    if not rows:
        return [], np.zeros((0, 1), dtype=np.float32)
    dims = rows[0][1]
    matrix = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(len(rows), dims)
    return [int(r[0]) for r in rows], matrix
