"""The vector index: a rebuildable FAISS cache of the store's embeddings.

The store keeps every vector (``embeddings`` table, the source of truth). The index files in
``COVIDNEWS_DATA_DIR/index/`` are a cache, one per embedding model:

- FAISS ids are article ids (``IndexIDMap2``), so a hit is an article without a lookup table;
- one writer at a time (a file lock), adding incrementally; each change is written to a temporary
  file and renamed over the old one (atomic), with a manifest (JSON) renamed last;
- readers (the API) reload when the manifest's version changes — they never see half a file;
- exact inner-product search up to ``COVIDNEWS_INDEX_EXACT_MAX`` vectors, HNSW past it;
- ``catch_up`` adds what the store has and the index lacks (start-up), ``rebuild`` starts over
  (``covidnews reindex``); a vector whose model differs lives in another index file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from covidnews.schema import Embedding
from covidnews.store import Store

HNSW_M = 32
HNSW_EF_SEARCH = 128
HNSW_EF_CONSTRUCTION = 80


def _faiss() -> Any:
    import faiss

    return faiss


def model_slug(model: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_")[:120] or "model"


@dataclass
class Manifest:
    model: str
    dims: int
    count: int
    kind: str  # exact | hnsw
    version: int
    file: str

    @classmethod
    def read(cls, path: Path) -> Manifest | None:
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class VectorIndex:
    """The index files of one embedding model in one directory."""

    def __init__(self, directory: Path, model: str, *, exact_max: int = 50_000) -> None:
        self.dir = Path(directory)
        self.model = model
        self.exact_max = exact_max
        self.slug = model_slug(model)
        self.manifest_path = self.dir / f"{self.slug}.json"
        self._index: Any = None
        self._version = -1

    # Writer ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / f"{self.slug}.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _new_index(self, dims: int, count: int) -> tuple[Any, str]:
        faiss = _faiss()
        if count > self.exact_max:
            inner = faiss.IndexHNSWFlat(dims, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
            inner.hnsw.efSearch = HNSW_EF_SEARCH
            return faiss.IndexIDMap2(inner), "hnsw"
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dims)), "exact"

    def _load_for_write(self) -> tuple[Any, Manifest | None]:
        manifest = Manifest.read(self.manifest_path)
        if manifest is None:
            return None, None
        return _faiss().read_index(str(self.dir / manifest.file)), manifest

    def _publish(self, index: Any, kind: str, dims: int, previous: Manifest | None) -> Manifest:
        faiss = _faiss()
        version = (previous.version + 1) if previous else 1
        file = f"{self.slug}.v{version}.faiss"
        _atomic_write(self.dir / file, lambda tmp: faiss.write_index(index, tmp))
        manifest = Manifest(self.model, dims, int(index.ntotal), kind, version, file)
        _atomic_write(
            self.manifest_path,
            lambda tmp: Path(tmp).write_text(json.dumps(manifest.__dict__), encoding="utf-8"),
        )
        # Older files are kept one version back, so a reader mid-load never loses its file.
        for old in self.dir.glob(f"{self.slug}.v*.faiss"):
            match = re.search(r"\.v(\d+)\.faiss$", old.name)
            if match and int(match.group(1)) < version - 1:
                with contextlib.suppress(OSError):
                    old.unlink()
        return manifest

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> int:
        """Add vectors for article ids not in the index yet; returns how many were added."""
        if len(ids) == 0:
            return 0
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._writer_lock():
            index, manifest = self._load_for_write()
            present = self._ids_of(index) if index is not None else set()
            keep = [i for i, article_id in enumerate(ids) if int(article_id) not in present]
            # One vector per article even if the caller repeats an id.
            seen: set[int] = set()
            unique = []
            for i in keep:
                if int(ids[i]) not in seen:
                    seen.add(int(ids[i]))
                    unique.append(i)
            if not unique:
                return 0
            dims = vectors.shape[1]
            total = (index.ntotal if index is not None else 0) + len(unique)
            kind = manifest.kind if manifest else "exact"
            if index is None or (kind == "exact" and total > self.exact_max):
                # First index, or it outgrew exact search: rebuild from the store instead.
                if index is not None:
                    return -1
                index, kind = self._new_index(dims, total)
            new_ids = np.asarray([int(ids[i]) for i in unique], dtype=np.int64)
            index.add_with_ids(vectors[unique], new_ids)
            self._publish(index, kind, dims, manifest)
            return len(unique)

    @staticmethod
    def _ids_of(index: Any) -> set[int]:
        faiss = _faiss()
        return set(faiss.vector_to_array(index.id_map).tolist()) if index is not None else set()

    def rebuild(self, ids: Sequence[int], vectors: np.ndarray) -> Manifest:
        """Replace the index with exactly these vectors."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dims = vectors.shape[1] if len(ids) else 1
        with self._writer_lock():
            _, manifest = self._load_for_write()
            index, kind = self._new_index(dims, len(ids))
            if len(ids):
                index.add_with_ids(vectors, np.asarray(ids, dtype=np.int64))
            return self._publish(index, kind, dims, manifest)

    def ids(self) -> set[int]:
        index, _ = self._load_for_write()
        return self._ids_of(index)

    # Reader ------------------------------------------------------------------------------

    def _refresh(self) -> Any:
        manifest = Manifest.read(self.manifest_path)
        if manifest is None:
            return None
        if manifest.version != self._version:
            try:
                self._index = _faiss().read_index(str(self.dir / manifest.file))
                self._version = manifest.version
            except RuntimeError:  # replaced between manifest read and load: keep the old one
                pass
        return self._index

    def search(self, queries: np.ndarray, k: int = 10) -> list[list[tuple[int, float]]]:
        """(article id, inner-product score) of the k nearest vectors for each query."""
        index = self._refresh()
        if index is None or index.ntotal == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = index.search(
            np.ascontiguousarray(queries, dtype=np.float32), min(k, index.ntotal)
        )
        return [
            [(int(i), float(s)) for i, s in zip(row_ids, row_scores, strict=True) if i != -1]
            for row_ids, row_scores in zip(ids, scores, strict=True)
        ]

    @property
    def version(self) -> int:
        manifest = Manifest.read(self.manifest_path)
        return manifest.version if manifest else 0


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


def sync_index(
    store: Store,
    directory: Path,
    model: str,
    *,
    exact_max: int = 50_000,
    article_ids: Iterable[int] | None = None,
) -> int:
    """Bring the index up to date with the store (these articles, or all); returns vectors added.

    If the index must change kind (outgrew exact search) it is rebuilt from the store.
    """
    index = VectorIndex(directory, model, exact_max=exact_max)
    ids, vectors = store_vectors(store, model, article_ids)
    if not ids:
        return 0
    present = index.ids()
    todo = [i for i, a in enumerate(ids) if a not in present]
    if not todo:
        return 0
    added = index.add([ids[i] for i in todo], vectors[todo])
    if added == -1:
        all_ids, all_vectors = store_vectors(store, model)
        index.rebuild(all_ids, all_vectors)
        return len(todo)
    return added
