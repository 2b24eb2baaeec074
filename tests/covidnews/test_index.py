"""The FAISS index: ids are article ids, atomic publication, reload, rebuild, exact vs HNSW."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from covidnews.index import Manifest, VectorIndex, store_vectors, sync_index
from covidnews.ingest import parse_record
from covidnews.schema import Embedding
from covidnews.store import Store


def unit(rows: int, dims: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dims)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_add_search_and_ids_are_article_ids(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1")
    vectors = unit(50)
    ids = list(range(1000, 1050))
    assert idx.add(ids, vectors) == 50
    hits = idx.search(vectors[:3], k=1)
    assert [h[0][0] for h in hits] == [1000, 1001, 1002]
    assert hits[0][0][1] == pytest.approx(1.0, abs=1e-5)
    # Adding the same ids again adds nothing: one vector per article.
    assert idx.add(ids[:10], vectors[:10]) == 0
    assert len(idx.ids()) == 50


def test_readers_reload_when_the_writer_publishes(tmp_path: Path) -> None:
    writer, reader = VectorIndex(tmp_path, "m1"), VectorIndex(tmp_path, "m1")
    vectors = unit(20)
    writer.add(list(range(10)), vectors[:10])
    assert len(reader.search(vectors[:1], k=100)[0]) == 10
    writer.add(list(range(10, 20)), vectors[10:])
    assert len(reader.search(vectors[:1], k=100)[0]) == 20
    manifest = Manifest.read(tmp_path / "m1.json")
    assert manifest is not None and manifest.version == 2 and manifest.count == 20
    assert not list(tmp_path.glob("*.tmp"))


def test_switches_to_hnsw_past_the_threshold(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=100)
    vectors = unit(300, dims=32)
    idx.rebuild(list(range(300)), vectors)
    manifest = Manifest.read(tmp_path / "m1.json")
    assert manifest is not None and manifest.kind == "hnsw"
    found = [h[0][0] for h in idx.search(vectors[:50], k=1)]
    assert sum(f == i for i, f in enumerate(found)) >= 48  # approximate, but near exact here


def test_concurrent_writers_never_corrupt_or_duplicate(tmp_path: Path) -> None:
    vectors = unit(200)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            idx = VectorIndex(tmp_path, "m1")
            for start in range(offset, 200, 40):
                idx.add(list(range(start, start + 20)), vectors[start : start + 20])
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(o,)) for o in (0, 20, 0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert VectorIndex(tmp_path, "m1").ids() == set(range(200))


def test_sync_from_store_catch_up_and_model_separation(store: Store, tmp_path: Path) -> None:
    result = store.upsert_articles(
        [parse_record({"url": f"https://d.example/{i}", "text": f"t {i}"}) for i in range(30)]
    )
    vectors = unit(30)
    with store.session() as s:
        for article_id, vector in zip(result.inserted, vectors, strict=True):
            s.add(Embedding(article_id=article_id, model="m1", dims=16, vector=vector.tobytes()))
        s.add(
            Embedding(
                article_id=result.inserted[0], model="m2", dims=16, vector=vectors[0].tobytes()
            )
        )
    ids, matrix = store_vectors(store, "m1")
    assert ids == sorted(result.inserted)
    assert np.allclose(matrix[0], vectors[0])
    assert sync_index(store, tmp_path, "m1", article_ids=result.inserted[:10]) == 10
    assert sync_index(store, tmp_path, "m1") == 20  # start-up catch-up adds only what is missing
    assert sync_index(store, tmp_path, "m1") == 0
    assert VectorIndex(tmp_path, "m1").ids() == set(result.inserted)
    assert VectorIndex(tmp_path, "m2").ids() == set()
    assert sync_index(store, tmp_path, "m2") == 1
    # Growing past the exact threshold rebuilds from the store as HNSW.
    assert (
        sync_index(store, tmp_path / "small", "m1", exact_max=5, article_ids=result.inserted[:3])
        == 3
    )
    assert sync_index(store, tmp_path / "small", "m1", exact_max=5) == 27
    manifest = Manifest.read(tmp_path / "small" / "m1.json")
    assert manifest is not None and manifest.kind == "hnsw" and manifest.count == 30
