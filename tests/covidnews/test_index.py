"""The vector index of a node: ids are article ids, updates and deletes, readers see whole
published versions, a killed writer's tail is cut, exact search then IVF (PQ fast-scan) segments (recall,
new segments, merges dropping dead rows, retraining), filter masks, rebuilds, the store helper."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from covidnews.index import (
    MAX_SEGMENTS,
    RETRAIN_GROWTH,
    ROW,
    Manifest,
    Snapshot,
    VectorIndex,
    store_vectors,
)
from covidnews.ingest import parse_record
from covidnews.schema import Embedding
from covidnews.store import Store

F16 = 2e-3  # cosine tolerance of vectors stored as float16


def unit(rows: int, dims: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(rows, dims)).astype(np.float32)
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def clustered(rows: int, dims: int = 32, centres: int = 48, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres, like topics of news articles."""
    rng = np.random.default_rng(seed)
    c = unit(centres, dims, 1000)  # the same centres for every call
    v = c[rng.integers(0, centres, rows)] + 0.35 * rng.normal(size=(rows, dims)) / np.sqrt(dims)
    return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def records(ids: Sequence[int] | np.ndarray, stamp: float = 1.0) -> np.ndarray:
    rows = np.zeros(len(ids), dtype=ROW)
    rows["id"] = ids
    rows["stamp"] = stamp
    rows["story"] = ids
    return rows


def snap(idx: VectorIndex) -> Snapshot:
    s = idx.snapshot()
    assert s is not None
    return s


def manifest(idx: VectorIndex) -> Manifest:
    m = idx.manifest()
    assert m is not None
    return m


def segment_rows(snapshot: Snapshot) -> list[np.ndarray]:
    """The rows (faiss ids) held by each segment of a snapshot."""
    import faiss

    out = []
    for seg in snapshot.segments:
        ivf = faiss.extract_index_ivf(seg)
        lists = ivf.invlists
        assert lists is not None
        parts = [
            faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
            for i in range(ivf.nlist)
            if lists.list_size(i)
        ]
        out.append(np.concatenate(parts) if parts else np.zeros(0, np.int64))
    return out


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Top-k rows by cosine over the float16-rounded vectors (what the index stores)."""
    stored = vectors.astype(np.float16).astype(np.float32)
    sims = queries @ stored.T
    return np.argsort(-sims, axis=1, kind="stable")[:, :k]


# Exact search ---------------------------------------------------------------------------


def test_ids_are_article_ids_and_exact_search_finds_itself(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1")
    vectors = unit(50)
    ids = list(range(1000, 1050))
    assert idx.apply(records(ids), vectors) == 50
    hits = idx.search(vectors[:3], k=1)
    assert [h[0][0] for h in hits] == [1000, 1001, 1002]
    assert all(h[0][1] == pytest.approx(1.0, abs=F16) for h in hits)
    # Cosines are those of the (float16) stored vectors, best first.
    full = idx.search(vectors[7:8], k=50)[0]
    assert full[0][0] == 1007 and len(full) == 50
    assert [s for _, s in full] == sorted((s for _, s in full), reverse=True)
    expected = vectors @ vectors[7]
    for a, s in full:
        assert s == pytest.approx(expected[a - 1000], abs=F16)
    assert idx.ids() == set(ids)
    m = manifest(idx)
    assert (m.kind, m.rows, m.dead, m.segments, m.generation) == ("exact", 50, 0, [], 1)
    assert idx.dir == tmp_path / "m1"
    # An article given twice in one batch keeps its last vector.
    twice = unit(2, seed=7)
    assert idx.apply(records([5, 5]), twice) == 1
    assert idx.search(twice[1:], k=1)[0][0][0] == 5
    assert len(idx.ids()) == 51
    # Dimensions are the index's.
    with pytest.raises(ValueError, match="dims"):
        idx.apply(records([9]), unit(1, dims=8))


def test_update_supersedes_the_old_row_and_delete_removes_it(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1")
    vectors = unit(11)
    idx.apply(records(range(10), stamp=1.0), vectors[:10])
    old, new = vectors[3], vectors[10]
    # Article 3 changes: a new vector and stamp; its first row becomes dead.
    assert idx.apply(records([3], stamp=2.0), new[None]) == 1
    m = manifest(idx)
    assert (m.rows, m.dead) == (11, 1)
    assert idx.ids() == set(range(10))
    assert idx.stamps([3, 4, 99]) == {3: 2.0, 4: 1.0}
    assert snap(idx).positions(np.array([3, 4, 99])).tolist() == [10, 4, -1]
    top = idx.search(new[None], k=1)[0][0]
    assert top[0] == 3 and top[1] == pytest.approx(1.0, abs=F16)
    # Searching the old vector: article 3 appears once, scored with its new vector.
    hits = idx.search(old[None], k=100)[0]
    assert len(hits) == 10 and sorted(a for a, _ in hits) == list(range(10))
    assert dict(hits)[3] == pytest.approx(float(old @ new), abs=F16)
    # Delete (an unknown id is ignored).
    idx.apply(np.zeros(0, dtype=ROW), np.zeros((0, 16), np.float32), delete=[3, 12345])
    assert idx.ids() == set(range(10)) - {3}
    assert idx.stamps([3]) == {}
    assert 3 not in dict(idx.search(new[None], k=100)[0])
    assert manifest(idx).dead == 2
    # Back again after the delete.
    idx.apply(records([3], stamp=3.0), old[None])
    assert idx.ids() == set(range(10)) and idx.stamps([3]) == {3: 3.0}
    assert idx.search(old[None], k=1)[0][0][0] == 3
    # Nothing to do: nothing published.
    version = manifest(idx).version
    assert idx.apply(np.zeros(0, dtype=ROW), np.zeros((0, 16), np.float32)) == 0
    assert manifest(idx).version == version


def test_readers_see_each_published_version_and_never_a_partial_one(tmp_path: Path) -> None:
    writer, reader = VectorIndex(tmp_path, "m1"), VectorIndex(tmp_path, "m1")
    vectors = unit(400)
    assert reader.search(vectors[:1], k=5) == [[]]
    writer.apply(records(range(10)), vectors[:10])
    assert len(reader.search(vectors[:1], k=100)[0]) == 10
    first = snap(reader)
    writer.apply(records(range(10, 20)), vectors[10:20])
    assert len(reader.search(vectors[:1], k=100)[0]) == 20
    assert snap(reader).key == (1, 2) and first.key == (1, 1)
    assert first.live_count == 10  # a snapshot taken stays what it was

    # A writer publishing batches of 10 while a reader reads: only whole batches are seen.
    seen: list[int] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                s = snap(reader)
                ids = reader.ids()
                assert len(ids) % 10 == 0 and ids == set(range(len(ids))), sorted(ids)
                assert s.size % 10 == 0 and s.live_count == s.size
                seen.append(s.version)
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for start in range(20, 400, 10):
            writer.apply(records(range(start, start + 10)), vectors[start : start + 10])
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert seen == sorted(seen) and len(set(seen)) > 1
    assert reader.ids() == set(range(400))
    assert manifest(reader).version == 40
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_killed_writers_tail_is_ignored_and_cut(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1")
    vectors = unit(30)
    idx.apply(records(range(20)), vectors[:20])
    idx.apply(records([0]), vectors[20:21])  # one dead row
    m = manifest(idx)
    gen = idx.dir / f"g{m.generation}"
    sizes = {
        "vectors.f16": m.rows * m.dims * 2,
        "rows.bin": m.rows * ROW.itemsize,
        "dead.bin": m.dead * 8,
    }
    assert {name: (gen / name).stat().st_size for name in sizes} == sizes
    # A writer killed mid-batch: bytes appended, no manifest published.
    garbage = np.random.default_rng(1).bytes(3 * ROW.itemsize + 5)
    for name in sizes:
        with open(gen / name, "ab") as fh:
            fh.write(garbage)
    reader = VectorIndex(tmp_path, "m1")
    assert reader.ids() == set(range(20))
    assert snap(reader).size == 21
    assert reader.search(vectors[5:6], k=1)[0][0][0] == 5
    assert reader.stamps(range(20)) == dict.fromkeys(range(20), 1.0)
    # The next apply cuts the tail before appending.
    idx.apply(records(range(20, 25), stamp=2.0), vectors[25:30])
    m = manifest(idx)
    assert (m.rows, m.dead) == (26, 1)
    assert (gen / "vectors.f16").stat().st_size == 26 * m.dims * 2
    assert (gen / "rows.bin").stat().st_size == 26 * ROW.itemsize
    assert (gen / "dead.bin").stat().st_size == 8
    assert reader.ids() == set(range(25))
    for n, article in enumerate(range(20, 25)):
        top = reader.search(vectors[25 + n : 26 + n], k=1)[0][0]
        assert top[0] == article and top[1] == pytest.approx(1.0, abs=F16)
    assert reader.stamps([0, 24]) == {0: 1.0, 24: 2.0}


def test_empty_index_searches_to_nothing(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1")
    assert idx.manifest() is None and idx.snapshot() is None and idx.version == 0
    assert idx.search(unit(2), k=5) == [[], []]
    assert idx.ids() == set() and idx.stamps([1, 2]) == {}
    # Deleting from an empty index writes nothing.
    assert idx.apply(np.zeros(0, dtype=ROW), np.zeros((0, 16)), delete=[1]) == 0
    assert idx.manifest() is None
    # An index whose every article was deleted.
    idx.apply(records([1, 2]), unit(2))
    idx.apply(np.zeros(0, dtype=ROW), np.zeros((0, 16)), delete=[1, 2])
    assert idx.search(unit(2), k=5) == [[], []] and idx.ids() == set()
    # An empty rebuild.
    m = idx.rebuild(np.zeros(0, dtype=ROW), np.zeros((0, 16)))
    assert m.rows == 0 and m.generation == 2
    assert idx.search(unit(1), k=3) == [[]] and idx.ids() == set()
    # A node bootstrapped from an empty store: its first vectors give the index its size.
    fresh = VectorIndex(tmp_path / "fresh", "m1")
    assert fresh.rebuild(np.zeros(0, dtype=ROW), np.zeros((0, 1))).rows == 0
    assert fresh.search(unit(1), k=3) == [[]]
    vectors = unit(3, dims=24)
    assert fresh.apply(records([7, 8, 9]), vectors) == 3
    assert manifest(fresh).dims == 24
    assert fresh.search(vectors[1:2], k=1)[0][0][0] == 8


# Filters --------------------------------------------------------------------------------


@pytest.mark.parametrize("exact_max", [10_000, 300])
def test_allowed_mask_returns_only_allowed_rows(tmp_path: Path, exact_max: int) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=exact_max, delta_max=200)
    vectors = clustered(1000, dims=16)
    idx.apply(records(range(1000)), vectors[:1000])
    idx.apply(records(range(0, 1000, 7), stamp=2.0), vectors[0:1000:7][::-1])  # some dead rows
    s = snap(idx)
    assert manifest(idx).kind == ("exact" if exact_max > 1000 else "ivf-pq4fs")
    allowed = (s.rows["id"] % 3 == 0) & (np.arange(s.size) % 2 == 0)
    queries = clustered(20, dims=16, seed=5)
    allowed_live = np.flatnonzero(allowed & s.live)
    stored = np.asarray(s.vectors, dtype=np.float32)
    hits = 0
    for q in queries:
        rows, sims = s.nearest(q, 10, allowed=allowed)
        assert len(rows) == 10
        assert allowed[rows].all() and s.live[rows].all()
        assert np.allclose(sims, stored[rows] @ q, atol=1e-5)
        truth = allowed_live[np.argsort(-(stored[allowed_live] @ q), kind="stable")[:10]]
        hits += len(set(rows.tolist()) & set(truth.tolist()))
        if manifest(idx).kind == "exact":
            assert sorted(rows.tolist()) == sorted(truth.tolist())
        # Without a mask, dead rows are never returned either.
        rows, _ = s.nearest(q, 50)
        assert s.live[rows].all() and len(set(s.rows["id"][rows].tolist())) == 50
    assert hits / (10 * len(queries)) >= 0.95
    # A mask letting nothing through.
    rows, sims = s.nearest(queries[0], 10, allowed=np.zeros(s.size, dtype=bool))
    assert len(rows) == 0 and len(sims) == 0


# IVF segments ---------------------------------------------------------------------------


def test_past_exact_max_ivf_segments_with_high_recall(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=1000)
    vectors = clustered(4000)
    ids = np.arange(4000) + 10_000
    idx.apply(records(ids[:800]), vectors[:800])
    assert manifest(idx).kind == "exact"
    idx.apply(records(ids[800:]), vectors[800:])
    m = manifest(idx)
    assert m.kind == "ivf-pq4fs" and m.nlist >= 64 and m.trained
    assert m.segments and m.covered == m.rows == 4000
    gen = idx.dir / f"g{m.generation}"
    assert (gen / m.trained).is_file()
    assert all((gen / seg.file).is_file() for seg in m.segments)
    assert sum(seg.count for seg in m.segments) == 4000
    assert {f.name for f in gen.glob("*.ivf")} == {m.trained, *(s.file for s in m.segments)}

    queries = clustered(200, seed=9)
    truth = brute_force(vectors, queries, 10)
    found = idx.search(queries, k=10)
    recall = np.mean(
        [
            len({a for a, _ in hits} & set(ids[t].tolist())) / 10
            for hits, t in zip(found, truth, strict=True)
        ]
    )
    assert recall >= 0.95, recall
    # Each stored vector finds its own article.
    self_hits = idx.search(vectors[:100], k=1)
    assert [h[0][0] for h in self_hits] == ids[:100].tolist()
    assert all(h[0][1] == pytest.approx(1.0, abs=F16) for h in self_hits)
    # A second reader (another API worker) reads the same segments.
    other = VectorIndex(tmp_path, "m1")
    assert other.search(queries[:5], k=10) == found[:5]


def test_delta_becomes_segments_and_segments_merge_dropping_dead_rows(tmp_path: Path) -> None:
    dims = 16
    idx = VectorIndex(tmp_path, "m1", exact_max=200, delta_max=100)
    rng = np.random.default_rng(3)
    current: dict[int, np.ndarray] = {}

    def apply(new_ids: Sequence[int], updates: Sequence[int], seed: int) -> None:
        batch = [*new_ids, *updates]
        vecs = clustered(len(batch), dims=dims, seed=seed)
        idx.apply(records(batch, stamp=float(seed)), vecs)
        current.update(zip(batch, vecs, strict=True))

    apply(range(300), [], seed=1)
    m = manifest(idx)
    assert m.kind == "ivf-pq4fs" and len(m.segments) == 1 and m.covered == 300
    counts = [len(m.segments)]
    next_id, seed, merged_now = 300, 2, False
    # Batches of 100 rows (= delta_max): 80 new articles and 20 updates of older ones.
    while not merged_now or len(counts) < 15:
        updates = rng.choice(next_id, 20, replace=False).tolist()
        apply(range(next_id, next_id + 80), updates, seed)
        next_id, seed = next_id + 80, seed + 1
        m = manifest(idx)
        assert len(m.segments) <= MAX_SEGMENTS
        assert m.covered == m.rows  # each batch filled the delta: it became a segment
        merged_now = len(m.segments) < counts[-1]
        counts.append(len(m.segments))
        if merged_now:
            # The merged segment (the last) holds no row dead when it was built.
            s = snap(idx)
            merged = segment_rows(s)[-1]
            assert len(merged) == m.segments[-1].count > 2 * idx.delta_max
            assert s.live[merged].all()
    assert max(counts) == MAX_SEGMENTS
    assert sum(1 for a, b in itertools.pairwise(counts) if b < a) >= 2  # merged more than once

    s = snap(idx)
    held = segment_rows(s)
    everything = np.concatenate(held)
    assert len(everything) == len(set(everything.tolist()))  # no row in two segments
    assert [len(h) for h in held] == [seg.count for seg in m.segments]
    live = s.live_rows()
    assert set(live.tolist()) <= set(everything.tolist())
    # Dead rows were dropped by the merges: the segments hold fewer rows than were covered.
    assert len(everything) < m.covered
    assert len(everything) - len(live) < m.dead

    # Results are still exact for the articles' current vectors, and deleted ones are gone.
    assert idx.ids() == set(current) == set(range(next_id))
    sample = sorted(rng.choice(next_id, 50, replace=False).tolist())
    hits = idx.search(np.stack([current[a] for a in sample]), k=1)
    assert [h[0][0] for h in hits] == sample
    assert all(h[0][1] == pytest.approx(1.0, abs=F16) for h in hits)
    gone = sample[:10]
    idx.apply(np.zeros(0, dtype=ROW), np.zeros((0, dims)), delete=gone)
    assert idx.ids() == set(range(next_id)) - set(gone)
    hits = idx.search(np.stack([current[a] for a in gone]), k=5)
    assert not {a for h in hits for a, _ in h} & set(gone)
    # Recall against brute force over the live vectors.
    keep = sorted(set(current) - set(gone))
    matrix = np.stack([current[a] for a in keep])
    queries = clustered(100, dims=dims, seed=999)
    truth = brute_force(matrix, queries, 10)
    found = idx.search(queries, k=10)
    recall = np.mean(
        [
            len({a for a, _ in f} & {keep[i] for i in t}) / 10
            for f, t in zip(found, truth, strict=True)
        ]
    )
    assert recall >= 0.95, recall
    # Files no manifest names are removed.
    gen = idx.dir / f"g{m.generation}"
    m = manifest(idx)
    assert {f.name for f in gen.glob("*.ivf")} == {m.trained, *(x.file for x in m.segments)}


def test_delta_is_searched_exactly_until_full(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=200, delta_max=500)
    vectors = unit(800, dims=16)
    idx.apply(records(range(300)), vectors[:300])
    idx.apply(records(range(300, 500)), vectors[300:500])
    m = manifest(idx)
    assert len(m.segments) == 1 and (m.covered, m.rows) == (300, 500)
    s = snap(idx)
    assert s.delta_start == 300 and len(s.delta) == 200
    hits = idx.search(vectors[300:500], k=1)
    assert [h[0][0] for h in hits] == list(range(300, 500))
    idx.apply(records(range(500, 800)), vectors[500:800])
    m = manifest(idx)
    assert len(m.segments) == 2 and m.covered == m.rows == 800
    assert [seg.count for seg in m.segments] == [300, 500]


def test_retrains_when_the_collection_grows(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=100, delta_max=10_000)
    vectors = clustered(150 + RETRAIN_GROWTH * 150, dims=16)
    idx.apply(records(range(150)), vectors[:150])
    first = manifest(idx)
    assert first.kind == "ivf-pq4fs" and first.trained_at == 150
    n = len(vectors)
    idx.apply(records(range(150, n)), vectors[150:])
    m = manifest(idx)
    assert m.trained != first.trained and m.trained_at == n
    assert len(m.segments) == 1 and m.segments[0].count == n and m.covered == n
    hits = idx.search(vectors[::97], k=1)
    assert [h[0][0] for h in hits] == list(range(0, n, 97))


# Rebuilds -------------------------------------------------------------------------------


def test_rebuild_starts_a_new_generation(tmp_path: Path) -> None:
    idx = VectorIndex(tmp_path, "m1", exact_max=100, delta_max=50)
    reader = VectorIndex(tmp_path, "m1")
    vectors = unit(400, dims=16)
    idx.apply(records(range(60)), vectors[:60])
    idx.apply(records(range(10)), vectors[60:70])
    before = manifest(idx)
    assert before.generation == 1 and (idx.dir / "g1").is_dir()
    assert reader.ids() == set(range(60))

    m = idx.rebuild(records(range(100, 150)), vectors[100:150])
    assert (m.generation, m.rows, m.dead, m.kind) == (2, 50, 0, "exact")
    assert m.version > before.version
    assert not (idx.dir / "g1").exists() and (idx.dir / "g2").is_dir()
    assert reader.ids() == set(range(100, 150))
    assert reader.search(vectors[120:121], k=1)[0][0][0] == 120

    # Filled in batches, published whole: readers keep the old generation until the end.
    with idx.rebuilding() as add:
        add(records(range(200, 300)), vectors[200:300])
        assert reader.ids() == set(range(100, 150))
        add(records(range(300, 400)), vectors[300:400])
        add(records([250]), vectors[0:1])  # given twice: the last vector wins
        assert manifest(reader).generation == 2
    m = manifest(idx)
    assert (m.generation, m.rows, m.dead, m.kind) == (3, 201, 1, "ivf-pq4fs")
    assert m.segments and sum(seg.count for seg in m.segments) == 200
    assert sorted(p.name for p in idx.dir.glob("g*")) == ["g3"]
    assert reader.ids() == set(range(200, 400))
    assert reader.search(vectors[0:1], k=1)[0][0][0] == 250
    assert reader.search(vectors[333:334], k=1)[0][0][0] == 333
    # A rebuilt index grows in place as before.
    idx.apply(records([500]), vectors[1:2])
    assert reader.ids() == set(range(200, 400)) | {500}


# The store ------------------------------------------------------------------------------


def test_store_vectors_by_model(store: Store, tmp_path: Path) -> None:
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
    assert ids == sorted(result.inserted) and matrix.shape == (30, 16)
    by_id = dict(zip(result.inserted, vectors, strict=True))
    assert all(np.array_equal(matrix[n], by_id[a]) for n, a in enumerate(ids))
    some = result.inserted[5:8]
    ids, matrix = store_vectors(store, "m1", reversed(some))
    assert ids == sorted(some) and np.array_equal(matrix[0], by_id[ids[0]])
    ids, matrix = store_vectors(store, "m2")
    assert ids == [result.inserted[0]] and np.array_equal(matrix[0], vectors[0])
    ids, matrix = store_vectors(store, "m3")
    assert ids == [] and len(matrix) == 0
    # Store vectors into an index: one per article, per model directory.
    ids, matrix = store_vectors(store, "m1")
    idx = VectorIndex(tmp_path, "m1")
    idx.apply(records(ids), matrix)
    assert idx.ids() == set(result.inserted)
    assert VectorIndex(tmp_path, "m2").ids() == set()
    hits = idx.search(vectors[:1], k=1)[0]
    assert hits[0][0] == result.inserted[0]


def test_filter_columns_follow_every_version(tmp_path: Path) -> None:
    """The contiguous filter columns a snapshot caches equal its records at every version: the
    part covered by segments is reused, the delta's part is re-read, a new segment re-reads."""
    from covidnews.index import COLUMNS

    idx = VectorIndex(tmp_path, "m1", exact_max=100, delta_max=150)
    vectors = clustered(600, dims=16)

    def dated(ids: range, offset: int) -> np.ndarray:
        rows = records(ids)
        rows["date"] = np.asarray(ids) * 10 + offset
        rows["source"] = np.asarray(ids) % 7
        rows["topics"] = np.asarray(ids) % 5
        return rows

    idx.apply(dated(range(200), 0), vectors[:200])
    first = snap(idx)
    assert first.column("date") is first.column("date")  # built once per version
    covered = manifest(idx).covered
    for start, offset in ((200, 1), (260, 2), (320, 3), (0, 4)):  # the last batch: updates
        stop = start + 60
        idx.apply(dated(range(start, stop), offset), vectors[start:stop])
        s = snap(idx)
        for name, dtype in COLUMNS.items():
            col = s.column(name)
            assert col.dtype == dtype and len(col) == s.size
            assert np.array_equal(col, np.asarray(s.rows[name]).astype(dtype))
        if manifest(idx).covered == covered:
            assert s._base_columns is first._base_columns  # the covered part was reused
    assert manifest(idx).covered > covered  # a delta turned into a segment on the way
