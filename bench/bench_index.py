"""Vector index that grows in place: recall on real E5 vectors, add cost, query latency, memory.

Two parts, each through ``covidnews.index.VectorIndex`` (the node's index) next to a raw baseline
measured in the same run:

- ``real``: recall@10 of the IVF index (PQ fast-scan codes, candidates re-ranked with the stored
  float16 vectors) against exact float32 search, on **real E5 vectors**: ``--real`` distinct
  covid19mx paragraphs (first 400 characters, ``kind="passage"``) and ``--queries`` other
  paragraphs' first sentences (``kind="query"``), embedded with the default embedder (cached in
  ``--cache-dir``). The index is forced past exact search (``exact_max`` below the size). The
  queries are split in two: the *tune* half picks the smallest nprobe reaching 0.95; recall is
  **reported on the other half**, for that nprobe and for the production rule (``nprobe_for``).
- ``scale`` (``--sizes``, default 100,000 and 1,000,000): vectors are the real E5 vectors plus
  Gaussian noise (``--noise`` per dimension), re-normalised — synthetic, with real
  neighbourhoods. Measured: build (``rebuilding``: append + train + segments; vectors/s);
  ``add_32``: ``apply`` of 32 new vectors at that size (median/p99 of ``--add-rounds``, the
  delta growing as in production; segment builds included when they fall in); query latency
  p50/p99 for k=10 and k=1,000 through ``Snapshot.nearest`` (what the engine calls) next to a
  bare numpy exact product over the same float32 matrix; recall@10 against that exact product;
  disk bytes per vector; RSS of a fresh process that opens the index and runs queries.

Prints one JSON object. Usage: python bench/bench_index.py [--sizes 100000,1000000]
[--real 8000] [--queries 200] [--cache-dir DIR] [--add-rounds 50]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Timer
from covidnews.index import ROW, VectorIndex, nlist_for, nprobe_for

MODEL = "bench:e5"


def _stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
    }


def real_vectors(n: int, n_queries: int, cache: Path) -> tuple[np.ndarray, np.ndarray, str]:
    """(passage vectors, query vectors, model id) of real covid19mx text, cached."""
    from bench.search_corpus import es_paragraphs, first_sentence
    from covidnews.embed import get_embedder

    embedder = get_embedder("e5")
    path = cache / f"real-e5-{n}-{n_queries}.npz"
    if path.exists():
        data = np.load(path)
        return data["docs"], data["queries"], str(data["model"])
    paragraphs = sorted(set(es_paragraphs()))
    rng = np.random.default_rng(3)
    pick = rng.permutation(len(paragraphs))
    docs = [paragraphs[i][:400] for i in pick[:n]]
    queries = [first_sentence(paragraphs[i], 120) for i in pick[n : n + n_queries]]
    d = np.asarray(embedder.encode(docs, kind="passage"), dtype=np.float32)
    q = np.asarray(embedder.encode(queries, kind="query"), dtype=np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(path, docs=d, queries=q, model=embedder.model_id)
    return d, q, embedder.model_id


def rows_for(ids: np.ndarray) -> np.ndarray:
    rows = np.zeros(len(ids), dtype=ROW)
    rows["id"] = ids
    rows["stamp"] = 1.0
    rows["story"] = ids
    rows["covid"] = 1
    return rows


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = queries @ matrix.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(sims, top, 1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, 1)


def recall(index: VectorIndex, queries: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    snap = index.snapshot()
    assert snap is not None
    hits = 0
    for q, t in zip(queries, truth, strict=True):
        rows, _ = snap.nearest(q, k)
        hits += len(set(snap.rows["id"][rows].tolist()) & set(t[:k].tolist()))
    return hits / (k * len(queries))


def measure_real(docs: np.ndarray, queries: np.ndarray, root: Path) -> dict[str, Any]:
    n = len(docs)
    truth = exact_top(docs, queries, 10)
    half = len(queries) // 2
    index = VectorIndex(root / "real", MODEL, exact_max=n // 4, delta_max=n)
    with index.rebuilding() as add:
        add(rows_for(np.arange(n)), docs)
    m = index.manifest()
    assert m is not None
    assert m.kind == "ivf-pq4fs"
    default = nprobe_for(m.nlist)
    tuned = None
    curve = {}
    for nprobe in (1, 2, 4, 8, 16, 32, 64):
        if nprobe > m.nlist:
            break
        probe = VectorIndex(root / "real", MODEL, nprobe=nprobe)
        r = recall(probe, queries[:half], truth[:half])
        curve[nprobe] = round(r, 4)
        if tuned is None and r >= 0.95:
            tuned = nprobe
    tuned = tuned or m.nlist
    report = {}
    for name, nprobe in (("tuned", tuned), ("production_rule", default)):
        probe = VectorIndex(root / "real", MODEL, nprobe=nprobe)
        report[name] = {
            "nprobe": nprobe,
            "recall_at_10": round(recall(probe, queries[half:], truth[half:]), 4),
        }
    return {
        "vectors": n,
        "queries_tune": half,
        "queries_report": len(queries) - half,
        "nlist": m.nlist,
        "recall_at_10_tune_curve": curve,
        "report_half": report,
    }


def synthetic(base: np.ndarray, n: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x = base[rng.integers(0, len(base), stop - start)]
        x = x + rng.standard_normal(x.shape, dtype=np.float32) * np.float32(noise)
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


RSS_CHILD = """
import json, sys, resource
import numpy as np
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from covidnews.index import VectorIndex
def rss():
    for line in Path('/proc/self/status').read_text().splitlines():
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
before = rss()
index = VectorIndex(Path(sys.argv[1]), sys.argv[2])
snap = index.snapshot()
opened = rss()
q = np.load(sys.argv[4])
for v in q:
    snap.nearest(v, 1000)
print(json.dumps({"rss_before_mb": round(before, 1), "rss_open_mb": round(opened, 1),
                  "rss_after_queries_mb": round(rss(), 1)}))
"""


def measure_scale(
    base: np.ndarray, queries: np.ndarray, n: int, noise: float, rounds: int, root: Path
) -> dict[str, Any]:
    matrix = synthetic(base, n, noise, seed=n)
    directory = root / f"scale-{n}"
    index = VectorIndex(directory, MODEL)
    out: dict[str, Any] = {"vectors": n}
    with Timer() as t, index.rebuilding() as add:
        for start in range(0, n, 100_000):
            stop = min(n, start + 100_000)
            add(rows_for(np.arange(start, stop)), matrix[start:stop])
    m = index.manifest()
    assert m is not None
    out["build_seconds"] = round(t.seconds, 2)
    out["build_vectors_per_s"] = round(n / t.seconds)
    out["kind"], out["nlist"], out["nprobe"] = m.kind, m.nlist, nprobe_for(m.nlist)
    gen = directory / index.slug / f"g{m.generation}"
    disk = sum(f.stat().st_size for f in gen.iterdir())
    out["disk_bytes_per_vector"] = round(disk / n, 1)
    # Adding 32 vectors at this size (the delta grows; a segment is built when it fills).
    extra = synthetic(base, 32 * rounds, noise, seed=n + 1)
    samples = []
    for r in range(rounds):
        ids = np.arange(n + 32 * r, n + 32 * (r + 1))
        with Timer() as t:
            index.apply(rows_for(ids), extra[32 * r : 32 * (r + 1)])
        samples.append(t.seconds)
    out["add_32"] = {**_stats(samples), "max_ms": round(max(samples) * 1000, 2)}
    full = np.concatenate([matrix, extra])
    snap = index.snapshot()
    assert snap is not None
    probe = queries[: min(len(queries), 100)]
    for k in (10, 1000):
        ours, bare = [], []
        for q in probe:
            with Timer() as t:
                snap.nearest(q, k)
            ours.append(t.seconds)
            with Timer() as t:
                sims = full @ q
                np.argpartition(-sims, k - 1)[:k]
            bare.append(t.seconds)
        out[f"query_k{k}"] = {"index": _stats(ours), "bare_numpy_exact": _stats(bare)}
    truth = exact_top(full, probe, 10)
    out["recall_at_10_synthetic"] = round(recall(index, probe, truth), 4)
    qfile = root / "queries.npy"
    np.save(qfile, probe)
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RSS_CHILD,
            str(directory),
            MODEL,
            str(Path(__file__).parents[1]),
            str(qfile),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out["memory"] = json.loads(proc.stdout)
    out["memory"]["raw_float32_mb"] = round(full.nbytes / 1e6, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--real", type=int, default=8000, help="real texts embedded with E5")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--noise", type=float, default=0.012)
    parser.add_argument("--add-rounds", type=int, default=50)
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "covidnews-bench"
    )
    args = parser.parse_args()
    import faiss

    faiss.omp_set_num_threads(1)  # as in the API: one thread per request
    started = time.time()
    docs, queries, model = real_vectors(args.real, args.queries, args.cache_dir)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        out: dict[str, Any] = {
            "benchmark": "index",
            "model": model,
            "dims": int(docs.shape[1]),
            "nlist_rule": {str(n): nlist_for(n) for n in (10_000, 100_000, 1_000_000, 10_000_000)},
            "real": measure_real(docs, queries, root),
            "scale": [
                measure_scale(docs, queries, int(n), args.noise, args.add_rounds, root)
                for n in args.sizes.split(",")
            ],
        }
    out["seconds"] = round(time.time() - started, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
