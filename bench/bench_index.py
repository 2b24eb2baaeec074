"""Vector index: exact (IndexFlatIP) vs HNSW, through ``covidnews.index.VectorIndex``.

For each size, random unit vectors of the embedder's dimensions (384, multilingual E5 small) are
indexed twice, once below ``exact_max`` (exact inner product) and once above it (HNSW, M=32,
efConstruction=80, efSearch=128), and measured:

- ``build_seconds``: ``VectorIndex.rebuild`` (index construction + the file written and renamed);
- ``add_batch_ms``: ``VectorIndex.add`` of 32 new vectors to the existing index (median of
  ``--add-rounds``): the writer reads the index file, adds, and rewrites the whole file;
- query latency p50/p99 for k=10, one query at a time: through ``VectorIndex.search`` (the API's
  path: manifest check + search) and the bare FAISS ``search`` of the same index;
- ``recall_at_10`` of HNSW against the exact results, for random unit queries (the hard case: in
  384 dimensions random points have no close neighbours) and for "near" queries (a stored vector
  plus noise, like a query whose answer is in the index);
- size: index file, resident memory added by loading it, next to the raw float32 vector bytes.

Prints one JSON object. Usage: python bench/bench_index.py [--sizes 10000,100000] [--queries 500]
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
from covidnews.index import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, VectorIndex

MODEL = "bench:random-unit"


def unit(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    x = rng.standard_normal((n, dims), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def low_rank(rng: np.random.Generator, n: int, dims: int, rank: int = 32) -> np.ndarray:
    """Unit vectors near a random ``rank``-dimensional subspace (plus 20 % isotropic noise): data
    with a low intrinsic dimension, as real text embeddings have, unlike uniform random points."""
    basis = np.random.default_rng(12345).standard_normal((rank, dims), dtype=np.float32)
    x = rng.standard_normal((n, rank), dtype=np.float32) @ basis / np.float32(np.sqrt(rank))
    x += rng.standard_normal((n, dims), dtype=np.float32) * np.float32(0.2)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


LOAD_RSS = """
import sys
from pathlib import Path
import faiss

def rss():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

before = rss()
index = faiss.read_index(sys.argv[1])
print(rss() - before)
"""


def loaded_rss_mib(path: Path) -> float:
    """Resident memory a fresh process gains by loading the index file (as a reader does)."""
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_RSS, str(path)], capture_output=True, text=True, check=True
    )
    return round(float(proc.stdout.strip()), 1)


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def recall(found: list[list[int]], truth: list[list[int]], k: int) -> float:
    hits = sum(len(set(f[:k]) & set(t[:k])) for f, t in zip(found, truth, strict=True))
    return round(hits / (k * len(truth)), 4)


def measure(
    directory: Path,
    kind: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    extra: np.ndarray,
    k: int,
    add_batch: int,
    add_rounds: int,
) -> tuple[dict[str, Any], list[list[int]], list[list[int]]]:
    """Figures for one index kind, and its ids found for the near and the random queries."""
    import faiss

    n, dims = vectors.shape
    near_q, random_q = queries
    # exact: the threshold above everything this run adds; hnsw: below the smallest size
    exact_max = n + add_batch * add_rounds + 1 if kind == "exact" else 0
    index = VectorIndex(directory, MODEL, exact_max=exact_max)
    ids = np.arange(1, n + 1, dtype=np.int64)
    with Timer() as build:
        manifest = index.rebuild(ids.tolist(), vectors)
    if manifest.kind != kind:
        raise RuntimeError(f"expected a {kind} index, got {manifest.kind}")
    file_bytes = (directory / manifest.file).stat().st_size

    loaded_mib = loaded_rss_mib(directory / manifest.file)
    loaded = faiss.read_index(str(directory / manifest.file))

    # Latency, one query at a time (the API answers one search at a time).
    api, bare = [], []
    for q in random_q:
        one = q[None, :]
        started = time.perf_counter()
        index.search(one, k)
        api.append(time.perf_counter() - started)
        started = time.perf_counter()
        loaded.search(one, k)
        bare.append(time.perf_counter() - started)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    one_thread = []
    for q in random_q:
        started = time.perf_counter()
        loaded.search(q[None, :], k)
        one_thread.append(time.perf_counter() - started)
    faiss.omp_set_num_threads(threads)
    _, near_ids = loaded.search(near_q, k)
    _, random_ids = loaded.search(random_q, k)
    del loaded

    adds = []
    next_id = n + 1
    for r in range(add_rounds):
        batch = extra[r * add_batch : (r + 1) * add_batch]
        new_ids = list(range(next_id, next_id + len(batch)))
        next_id += len(batch)
        started = time.perf_counter()
        added = index.add(new_ids, batch)
        adds.append(time.perf_counter() - started)
        if added != len(batch):
            raise RuntimeError(f"add returned {added} for {len(batch)} vectors")
    out = {
        "build_seconds": round(build.seconds, 3),
        "build_vectors_per_s": round(n / build.seconds, 1),
        f"add_batch_{add_batch}_ms": round(float(np.median(adds)) * 1000, 1),
        "search_api": percentiles(api),
        "search_bare_faiss": percentiles(bare),
        "search_bare_faiss_1_thread": percentiles(one_thread),
        "file_mib": round(file_bytes / 2**20, 1),
        "loaded_rss_mib": loaded_mib,
        "file_vs_raw_vectors": round(file_bytes / (n * dims * 4), 3),
    }
    return out, near_ids.tolist(), random_ids.tolist()


def run_size(
    n: int, dims: int, n_queries: int, k: int, add_batch: int, add_rounds: int, data: str
) -> dict[str, Any]:
    rng = np.random.default_rng(n)
    make = low_rank if data == "low-rank" else unit
    vectors = make(rng, n, dims)
    picked = vectors[rng.integers(0, n, n_queries)]
    near = picked + rng.standard_normal(picked.shape, dtype=np.float32) * np.float32(
        0.5 / np.sqrt(dims)
    )
    near /= np.linalg.norm(near, axis=1, keepdims=True)
    queries = np.stack([near, make(rng, n_queries, dims)])
    extra = make(rng, add_batch * add_rounds, dims)
    results: dict[str, Any] = {"vectors": n, "raw_vector_mib": round(n * dims * 4 / 2**20, 1)}
    found: dict[str, tuple[list[list[int]], list[list[int]]]] = {}
    for kind in ("exact", "hnsw"):
        with tempfile.TemporaryDirectory() as tmp:
            figures, near_ids, random_ids = measure(
                Path(tmp), kind, vectors, queries, extra, k, add_batch, add_rounds
            )
        results[kind] = figures
        found[kind] = (near_ids, random_ids)
    results["hnsw"]["recall_at_10_near_queries"] = recall(found["hnsw"][0], found["exact"][0], k)
    results["hnsw"]["recall_at_10_random_queries"] = recall(found["hnsw"][1], found["exact"][1], k)
    results["hnsw"]["recall_at_1_near_queries"] = recall(found["hnsw"][0], found["exact"][0], 1)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated vector counts")
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--add-batch", type=int, default=32)
    parser.add_argument("--add-rounds", type=int, default=5)
    parser.add_argument(
        "--data",
        choices=("random", "low-rank"),
        default="random",
        help="uniform random unit vectors (default, the hard case) or low-rank ones",
    )
    args = parser.parse_args()
    import faiss

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    out = {
        "benchmark": "index",
        "dims": args.dims,
        "data": args.data,
        "k": args.k,
        "queries": args.queries,
        "faiss": faiss.__version__,
        "faiss_threads": faiss.omp_get_max_threads(),
        "hnsw": {"M": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION, "ef_search": HNSW_EF_SEARCH},
        "results": [
            run_size(n, args.dims, args.queries, args.k, args.add_batch, args.add_rounds, args.data)
            for n in sizes
        ],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
