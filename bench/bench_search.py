"""Search API: latency per mode (engine and Flask app), server throughput, memory and export.

For each corpus size (default 10,000 and 100,000 articles) a deployment is built in its own data
directory by ``bench/search_corpus.py`` (real text, a store, a node's indexes bootstrapped from
it; cached with ``--cache-dir``, so reruns skip it). The server load helpers are in
``bench/_load.py``.

Measured:

- ``engine``: ``SearchEngine.search`` (20 results) p50/p90/p99 per mode over a mixed query set
  (Spanish and English words, 2-3 word queries, phrases, exclusions; a third with filters).
  The query embedding is excluded (the engine's LRU cache is warmed) and reported on its own as
  ``embed_query_ms`` (cold calls of ``engine._embed_query``);
- ``api``: the same queries through ``/api/v1/search`` of ``create_app`` (Flask test client):
  parsing, ranking, hydration from the store, snippets and JSON;
- ``passage``: search by passage (8 Spanish passages of ~1,500 characters): the passage's
  embedding on its own, then semantic and hybrid searches with it cached;
- ``server`` (every size; ``--skip-server`` skips it): requests/s and latency under
  ``covidnews serve --workers 2`` (gunicorn gthread, 4 threads) loaded by ``wrk`` on loopback
  (a Python thread client if ``wrk`` is missing), next to a bare Flask "ok" app under the same
  gunicorn setup in the same run, and ``/healthz`` of the real app; the benchmark queries
  (cycled: caches warm) and never-seen two-word queries (nothing cached, the query embedding
  inside the request);
- ``memory`` (fresh process): RSS after imports, after opening the engine and running a keyword
  query, after loading the query embedder, after a semantic query (FAISS index + vectors), next
  to the raw vector bytes; index sizes on disk;
- ``export`` (fresh process per format): ``/api/v1/export?q=&covid=all`` streamed through the
  test client chunk by chunk; RSS before, sampled while streaming, bytes and rows/s.

Prints one JSON object. Usage: python bench/bench_search.py [--sizes 10000,100000]
[--queries 300] [--cache-dir DIR] [--skip-server] [--embed 3000] [--load-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import ROOT, Timer, stats_ms
from bench._load import BARE_APP, free_port, load, stop, tree_memory, wait_http
from bench.search_corpus import (
    _settings,
    ensure_corpus,
    passages,
    two_word_queries,
)

if TYPE_CHECKING:
    from covidnews.search.engine import Mode

PER_PAGE = 20
MODES: tuple[Mode, ...] = ("keyword", "semantic", "hybrid")

# (query, API filter parameters): Spanish and English words, 2-3 word queries, phrases,
# exclusions; about a third with filters (dates, topic, language, country, source).
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("vacuna", {}),
    ("cubrebocas", {}),
    ("hospitalización", {}),
    ("contagios", {"from": "2020-06-01", "to": "2020-12-31"}),
    ("vaccine", {}),
    ("symptoms", {"language": "en"}),
    ("fever", {}),
    ("hospital beds", {}),
    ("camas de hospital", {}),
    ("vacuna pfizer", {}),
    ("semáforo epidemiológico rojo", {}),
    ("casos confirmados", {"topic": "cases"}),
    ('"sana distancia"', {}),
    ('"casos confirmados"', {"country": "MX"}),
    ('"ciudad de méxico"', {}),
    ("vacuna -influenza", {}),
    ("contagios -escuelas", {"source": "diario-capital"}),
    ("pruebas covid", {"covid": "all"}),
    ("uso de cubrebocas en el transporte", {}),
    ("defunciones", {"from": "2021-01-01", "to": "2021-03-31", "topic": "health_care"}),
    ("vacunación adultos mayores", {}),
    ("economía empleo", {"topic": "economy"}),
    ("regreso a clases", {}),
    ("wearing masks", {}),
    ("ocupación hospitalaria", {"country": "ES"}),
    ("personal de salud", {}),
]


# Corpus ------------------------------------------------------------------------------------


def measure_passages(engine: Any, source_ids: dict[str, int], n: int = 8) -> dict[str, Any]:
    """Search by passage (semantic and hybrid): the embedding of the passage on its own, then
    the engine with the embedding cached."""
    from covidnews.search.engine import Filters, Query

    texts = passages(n)
    embed: Any = engine._embed_query
    embed_samples = []
    for text in texts:
        with Timer() as t:
            embed(text)
        embed_samples.append(t.seconds)
    out: dict[str, Any] = {
        "passages": len(texts),
        "median_chars": int(np.median([len(t) for t in texts])),
        "embed_passage": stats_ms(embed_samples),
    }
    for mode in ("semantic", "hybrid"):
        samples, totals = [], []
        for _ in range(5):
            for text in texts:
                with Timer() as t:
                    page = engine.search(Query(text, mode, Filters()), PER_PAGE)
                samples.append(t.seconds)
                totals.append(page.total)
        out[f"engine_{mode}"] = {**stats_ms(samples), "median_total_hits": int(np.median(totals))}
    return out


def measure_follow(data_dir: Path, rounds: int) -> dict[str, Any]:
    """What following costs at this size: 32 articles added to the store (processed, with
    vectors) then one follower poll — the change feed read, the store reads, both indexes
    written and published — ``rounds`` times; they are deleted afterwards (one more poll).
    Then a new node started from a snapshot: write it, restore it, catch up."""
    from sqlalchemy import text

    from covidnews.follow import Follower, restore_snapshot
    from covidnews.store import Store

    settings = _settings(data_dir)
    store = Store(settings.db_url)
    follower = Follower.from_settings(
        settings, store, json.loads((data_dir / "bench-built.json").read_text())["model"]
    )
    follower.poll()  # caught up before measuring
    rng = np.random.default_rng(5)
    with store.engine.connect() as conn:
        template = dict(
            conn.execute(
                text(
                    "SELECT title, text, source_id, language, published_at FROM articles "
                    "WHERE duplicate_of IS NULL ORDER BY id LIMIT 1"
                )
            )
            .mappings()
            .one()
        )
        dims = int(conn.execute(text("SELECT dims FROM embeddings LIMIT 1")).scalar_one())
    samples, added = [], []
    for r in range(rounds):
        with store.engine.begin() as conn:
            for i in range(32):
                key = f"bench-follow-{r}-{i}-{time.time_ns()}"
                aid = conn.execute(
                    text(
                        "INSERT INTO articles (url, url_hash, origin, source_id, language, "
                        "title, text, authors, published_at, fetched_at, content_hash, "
                        "record_hash, state, attempts, is_covid, covid_score, extra, created_at, "
                        "updated_at) VALUES (:u, :h, 'ingest', :s, :l, :t, :x, '[]', :p, :f, "
                        ":h, :h, 'done', 0, 1, 0.9, '{}', :f, :f) RETURNING id"
                    ),
                    {
                        "u": f"https://bench.example/{key}",
                        "h": key,
                        "s": template["source_id"],
                        "l": template["language"],
                        "t": f"{template['title']} {r}-{i}",
                        "x": template["text"],
                        "p": template["published_at"],
                        "f": datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" "),
                    },
                ).scalar_one()
                v = rng.standard_normal(dims).astype(np.float32)
                conn.execute(
                    text(
                        "INSERT INTO embeddings (article_id, model, dims, vector, created_at) "
                        "VALUES (:a, :m, :d, :v, '2021-01-01 00:00:00')"
                    ),
                    {
                        "a": aid,
                        "m": follower.model,
                        "d": dims,
                        "v": (v / np.linalg.norm(v)).tobytes(),
                    },
                )
                added.append(int(aid))
        with Timer() as t:
            report = follower.poll()
        if report.written != 32:
            raise RuntimeError(f"follow round {r}: {report}")
        samples.append(t.seconds)
    out: dict[str, Any] = {"add_32_poll": {**stats_ms(samples), "rounds": rounds}}
    with store.engine.begin() as conn:
        conn.execute(text(f"DELETE FROM articles WHERE id IN ({','.join(map(str, added))})"))
    with Timer() as t:
        report = follower.poll()
    out["delete_poll"] = {"articles": report.deleted, "ms": round(t.seconds * 1000, 1)}
    with tempfile.TemporaryDirectory(dir=data_dir.parent) as tmp:
        snap = Path(tmp) / "node.tar"
        with Timer() as t:
            follower.snapshot(snap)
        out["snapshot_write_seconds"] = round(t.seconds, 1)
        out["snapshot_mb"] = round(snap.stat().st_size / 1e6, 1)
        node = Path(tmp) / "node"
        with Timer() as t:
            restore_snapshot(node, snap)
        out["snapshot_restore_seconds"] = round(t.seconds, 1)
        with Timer() as t:
            report = Follower(store, node, follower.model).poll()
        out["snapshot_node_catch_up_seconds"] = round(t.seconds, 2)
        if report.bootstrapped:
            raise RuntimeError("the restored node bootstrapped instead of following")
    store.close()
    return out


# Latency -----------------------------------------------------------------------------------


def engine_filters(params: dict[str, str], source_ids: dict[str, int]) -> Any:
    from datetime import date

    from covidnews.search.engine import Filters

    covid = {"true": True, "false": False, "all": None}[params.get("covid", "true")]
    return Filters(
        date_from=date.fromisoformat(params["from"]) if "from" in params else None,
        date_to=date.fromisoformat(params["to"]) if "to" in params else None,
        sources=(source_ids[params["source"]],) if "source" in params else (),
        countries=(params["country"],) if "country" in params else (),
        languages=(params["language"],) if "language" in params else (),
        topics=(params["topic"],) if "topic" in params else (),
        covid=covid,
    )


def measure_latency(data_dir: Path, n_queries: int) -> dict[str, Any]:
    """Engine and API latency per mode; the query embedding on its own."""
    from sqlalchemy import select

    from api import create_app
    from covidnews.schema import Source
    from covidnews.search.engine import Query, SearchEngine
    from covidnews.store import Store

    settings = _settings(data_dir)
    store = Store(settings.db_url)
    with store.session() as s:
        source_ids: dict[str, int] = dict(s.execute(select(Source.slug, Source.id)).all())
    engine = SearchEngine.from_settings(settings, store)
    embed: Any = engine._embed_query
    texts = sorted({q for q, _ in QUERIES})
    embed("warm up")  # loads the model
    embed_samples = []
    for _ in range(3):
        embed.cache_clear()
        for q in texts:
            with Timer() as t:
                embed(q)
            embed_samples.append(t.seconds)
    for q in texts:
        embed(q)  # cached from here on: searches below exclude the embedding
    out: dict[str, Any] = {"embed_query": {**stats_ms(embed_samples), "calls": len(embed_samples)}}
    schedule = [QUERIES[i % len(QUERIES)] for i in range(n_queries)]
    engine_out: dict[str, Any] = {}
    for mode in MODES:
        queries = [Query(q, mode, engine_filters(p, source_ids)) for q, p in schedule]
        for query in queries[: len(QUERIES)]:
            engine.search(query, PER_PAGE)  # warm-up: snapshot, FAISS index, vector rows
        samples, totals = [], []
        by_query: dict[str, list[float]] = {}
        for (q, params), query in zip(schedule, queries, strict=True):
            with Timer() as t:
                page = engine.search(query, PER_PAGE)
            samples.append(t.seconds)
            totals.append(page.total)
            by_query.setdefault(f"{q} {urlencode(params)}".strip(), []).append(t.seconds)
        slowest = sorted(by_query.items(), key=lambda kv: -float(np.median(kv[1])))[:3]
        engine_out[mode] = {
            **stats_ms(samples),
            "median_total_hits": int(np.median(totals)),
            "slowest_queries_median_ms": {
                q: round(float(np.median(ts)) * 1000, 2) for q, ts in slowest
            },
        }
    out["engine"] = engine_out
    out["passage"] = measure_passages(engine, source_ids)

    app = create_app({"SETTINGS": settings, "RATELIMIT_ENABLED": False})
    app.extensions["covidnews"]._engine = engine  # the same engine, its embedding cache warm
    client = app.test_client()
    api_out: dict[str, Any] = {}
    for mode in MODES:
        urls = [
            "/api/v1/search?" + urlencode({"q": q, "mode": mode, "per_page": PER_PAGE, **p})
            for q, p in schedule
        ]
        for url in urls[: len(QUERIES)]:
            client.get(url)
        samples, sizes = [], []
        for url in urls:
            with Timer() as t:
                resp = client.get(url)
            if resp.status_code != 200:
                raise RuntimeError(f"{url}: {resp.status_code} {resp.get_data(as_text=True)}")
            samples.append(t.seconds)
            sizes.append(len(resp.get_data()))
        api_out[mode] = {
            **stats_ms(samples),
            "median_response_kb": round(np.median(sizes) / 1e3, 1),
        }
    out["api"] = api_out
    store.close()
    return out


# Memory and export (each in a fresh process) -----------------------------------------------


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def dir_mb(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def child_memory(data_dir: Path) -> dict[str, Any]:
    import faiss  # noqa: F401

    from covidnews.search.engine import Filters, Query, SearchEngine

    out: dict[str, Any] = {"rss_after_imports_mb": rss_mb()}
    settings = _settings(data_dir)
    engine = SearchEngine.from_settings(settings)
    engine.search(Query("vacuna casos", "keyword", Filters(covid=None)))
    out["rss_after_keyword_query_mb"] = rss_mb()
    embed: Any = engine._embed_query
    embed("vacuna")
    out["rss_after_embedder_loaded_mb"] = rss_mb()
    engine.search(Query("vacuna", "hybrid", Filters(covid=None)))
    out["rss_after_hybrid_query_mb"] = rss_mb()
    from covidnews.follow import read_state
    from covidnews.search.keyword import LAYOUT

    (index_dir,) = [p for p in settings.index_dir.iterdir() if (p / "manifest.json").exists()]
    manifest = json.loads((index_dir / "manifest.json").read_text())
    raw = manifest["rows"] * manifest["dims"] * 4
    vector_mb = dir_mb(index_dir)
    out.update(
        keyword_index_mb=dir_mb(settings.search_dir / LAYOUT),
        keyword_index_rss_mb=round(
            out["rss_after_keyword_query_mb"] - out["rss_after_imports_mb"], 1
        ),
        embedder_rss_mb=round(
            out["rss_after_embedder_loaded_mb"] - out["rss_after_keyword_query_mb"], 1
        ),
        vector_side_rss_mb=round(
            out["rss_after_hybrid_query_mb"] - out["rss_after_embedder_loaded_mb"], 1
        ),
        raw_float32_vectors_mb=round(raw / 1e6, 1),
        vector_index_mb=vector_mb,
        vector_index_vs_raw_float32=round(vector_mb * 1e6 / raw, 2),
        vector_index_kind=f"ivf-{manifest.get('codes', 'sq8')}" if manifest["trained"] else "exact",
        vector_segments=len(manifest["segments"]),
        store_mb=round((data_dir / "covidnews.db").stat().st_size / 1e6, 1),
        node_documents=(read_state(data_dir) or {}).get("documents"),
    )
    return out


def child_export(data_dir: Path, fmt: str) -> dict[str, Any]:
    from api import create_app

    app = create_app({"SETTINGS": _settings(data_dir), "RATELIMIT_ENABLED": False})
    client = app.test_client()
    warm = client.get("/api/v1/search?q=vacuna&mode=keyword")  # engine + store opened
    assert warm.status_code == 200
    before = rss_mb()
    samples = []
    size = 0
    lines = 0
    with Timer() as t:
        resp = client.get(f"/api/v1/export?q=&covid=all&format={fmt}", buffered=False)
        assert resp.status_code == 200
        for i, chunk in enumerate(resp.response):
            data = chunk if isinstance(chunk, bytes) else str(chunk).encode("utf-8")
            size += len(data)
            lines += data.count(b"\n")
            if i % 10 == 0:
                samples.append(rss_mb())
        resp.close()
    samples.append(rss_mb())
    rows = lines - 1 if fmt == "csv" else lines  # csv: header line; quoted newlines: see docs
    quarter = max(1, len(samples) // 4)
    return {
        "rows": rows,
        "output_mb": round(size / 1e6, 1),
        "seconds": round(t.seconds, 2),
        "rows_per_s": round(rows / t.seconds, 1),
        "rss_before_mb": before,
        "rss_peak_during_mb": max(samples),
        "rss_first_quarter_mb": max(samples[:quarter]),
        "rss_last_quarter_mb": max(samples[-quarter:]),
        "rss_growth_mb": round(max(samples) - before, 1),
    }


def run_child(kind: str, data_dir: Path, *extra: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--data-dir", str(data_dir), *extra],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"child {kind} failed: {proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# Server throughput -------------------------------------------------------------------------


def measure_server(data_dir: Path, seconds: float, connections: int) -> dict[str, Any]:
    out: dict[str, Any] = {"workers": 2, "threads": 4, "connections": connections}
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "bare_app.py").write_text(BARE_APP)
        port = free_port()
        bare = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "2",
                "--threads",
                "4",
                "--worker-class",
                "gthread",
                "--preload",
                "--bind",
                f"127.0.0.1:{port}",
                "--chdir",
                str(tmp),
                "bare_app:app",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_http(base + "/", bare)
            out["bare_flask"] = load(base, ["/"], seconds, connections, tmp)
        finally:
            stop(bare)
        port = free_port()
        env.update(
            COVIDNEWS_DATA_DIR=str(data_dir),
            COVIDNEWS_DATABASE_URL=f"sqlite:///{data_dir / 'covidnews.db'}",
            COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="10000000",
            COVIDNEWS_LOG_LEVEL="WARNING",
        )
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("covidnews")),
                "serve",
                "--workers",
                "2",
                "--port",
                str(port),
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd=tmp,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            with Timer() as t:
                wait_http(base + "/healthz", server)
            out["server_start_seconds"] = round(t.seconds, 1)
            out["healthz"] = load(base, ["/healthz"], seconds, connections, tmp)
            for mode in ("keyword", "hybrid"):
                paths = [
                    "/api/v1/search?" + urlencode({"q": q, "mode": mode, **p}) for q, p in QUERIES
                ]
                for path in paths:  # warm both workers' caches (embeddings, snapshots)
                    for _ in range(2):
                        urllib.request.urlopen(base + path, timeout=60).read()
                out[f"search_{mode}"] = load(base, paths, seconds, connections, tmp)
            # Every request a query never seen (two words of the corpus): nothing cached, the
            # query embedding included — what a crowd of new users costs.
            for mode in ("keyword", "hybrid"):
                paths = [
                    "/api/v1/search?" + urlencode({"q": q, "mode": mode})
                    for q in two_word_queries(4000, seed=1 if mode == "keyword" else 2)
                ]
                out[f"search_{mode}_unique"] = load(base, paths, seconds, connections, tmp)
            out["node_memory"] = tree_memory(server.pid)
        finally:
            stop(server)
    return out


# Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--queries", type=int, default=300, help="timed searches per mode")
    parser.add_argument("--cache-dir", type=Path, default=None, help="keep built corpora here")
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--embed", type=int, default=3000, help="texts embedded with E5")
    parser.add_argument("--noise", type=float, default=0.012, help="per-dimension vector noise")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--follow-rounds", type=int, default=20, help="32-article polls timed")
    parser.add_argument("--child", choices=["memory", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--format", default="jsonl", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        child = (
            child_memory(args.data_dir)
            if args.child == "memory"
            else child_export(args.data_dir, args.format)
        )
        print(json.dumps(child))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = None
    if args.cache_dir is None:
        tmp = tempfile.mkdtemp(prefix="bench-search-")
        root = Path(tmp)
    else:
        root = args.cache_dir.resolve()
        root.mkdir(parents=True, exist_ok=True)
    try:
        results = []
        for n in sizes:
            data_dir, build = ensure_corpus(root, n, args)
            result: dict[str, Any] = {"articles": n, "build": build}
            result["follow"] = measure_follow(data_dir, args.follow_rounds)
            result.update(measure_latency(data_dir, args.queries))
            result["memory"] = run_child("memory", data_dir)
            if not args.skip_export:
                result["export"] = {
                    fmt: run_child("export", data_dir, "--format", fmt) for fmt in ("jsonl", "csv")
                }
            if not args.skip_server:
                result["server"] = measure_server(data_dir, args.load_seconds, args.connections)
            results.append(result)
        print(
            json.dumps(
                {
                    "benchmark": "search",
                    "sizes": sizes,
                    "queries_per_mode": args.queries,
                    "distinct_queries": len(QUERIES),
                    "per_page": PER_PAGE,
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    "results": results,
                }
            )
        )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
