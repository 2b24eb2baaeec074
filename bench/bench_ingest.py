"""Ingest throughput (articles/s) on SQLite and PostgreSQL, next to a raw DBAPI baseline.

For each backend, on the same real-text JSONL file:
- ``ingest``: ``covidnews.ingest.ingest_path`` into an empty, migrated store (parse, validate,
  canonicalise URLs, hash, SimHash, resolve sources, upsert in batches);
- ``reingest``: the same file again (every row unchanged: the idempotency check's cost);
- ``raw_insert``: the baseline, the same rows' fields ``executemany``-inserted by the bare DBAPI
  driver (sqlite3 / psycopg) into a bare table, same batch size, one transaction per batch.

Prints one JSON object. Usage: python bench/bench_ingest.py [--articles N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Timer, fresh_postgres, real_articles, write_jsonl
from covidnews.ingest import ingest_path, parse_line
from covidnews.store import Store

RAW_COLUMNS = ("url", "id", "title", "text", "language", "source", "published_at")
INSERT_SQL = (
    "INSERT INTO raw_articles (url, ext, title, text, language, source, published_at) "
    "VALUES ({},{},{},{},{},{},{})"
)


def raw_baseline(url: str, rows: list[dict[str, Any]], batch: int) -> float:
    """Seconds for the bare driver to insert the rows' fields (no validation, no upsert)."""
    values = [tuple(r[c] for c in RAW_COLUMNS) for r in rows]
    ddl = (
        "CREATE TABLE raw_articles (pk INTEGER PRIMARY KEY, url TEXT UNIQUE, ext TEXT, title TEXT, "
        "text TEXT, language TEXT, source TEXT, published_at TEXT)"
    )
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///") + ".raw"
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(ddl)
        sql = INSERT_SQL.format(*["?"] * 7)
        with Timer() as t:
            for i in range(0, len(values), batch):
                with conn:
                    conn.executemany(sql, values[i : i + batch])
        conn.close()
        return t.seconds
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as pg:
        pg.execute(ddl.replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY"))
        pg.commit()
        sql = INSERT_SQL.format(*["%s"] * 7)
        with Timer() as t:
            for i in range(0, len(values), batch):
                with pg.cursor() as cur:
                    cur.executemany(sql, values[i : i + batch])
                pg.commit()
    return t.seconds


def run_backend(url: str, path: Path, rows: list[dict[str, Any]], batch: int) -> dict[str, Any]:
    store = Store(url)
    store.migrate()
    with Timer() as first:
        report = ingest_path(store, path, batch_size=batch)
    if report.inserted != len(rows) or report.bad:
        raise RuntimeError(f"ingest did not store every row: {report.as_dict()}")
    with Timer() as second:
        again = ingest_path(store, path, batch_size=batch)
    if again.unchanged != len(rows) or again.inserted:
        raise RuntimeError(f"re-ingest was not a no-op: {again.as_dict()}")
    store.close()
    raw = raw_baseline(url, rows, batch)
    n = len(rows)
    return {
        "ingest_articles_per_s": round(n / first.seconds, 1),
        "reingest_articles_per_s": round(n / second.seconds, 1),
        "raw_insert_articles_per_s": round(n / raw, 1),
        "ingest_seconds": round(first.seconds, 3),
        "raw_insert_seconds": round(raw, 3),
        "ingest_vs_raw": round(first.seconds / raw, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()

    rows = real_articles(args.articles)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        write_jsonl(rows, path)
        raw_lines = path.read_bytes().splitlines()
        with Timer() as parse:
            for line in raw_lines:
                parse_line(line, {})
        results: dict[str, Any] = {}
        for backend in args.backends.split(","):
            if backend == "sqlite":
                results["sqlite"] = run_backend(
                    f"sqlite:///{tmp}/bench.db", path, rows, args.batch_size
                )
            elif backend == "postgresql":
                with fresh_postgres() as url:
                    results["postgresql"] = run_backend(url, path, rows, args.batch_size)
            else:
                raise SystemExit(f"unknown backend {backend!r}")
        out = {
            "benchmark": "ingest",
            "articles": len(rows),
            "batch_size": args.batch_size,
            "corpus_mb": round(path.stat().st_size / 1e6, 1),
            "parse_validate_only_articles_per_s": round(len(rows) / parse.seconds, 1),
            "results": results,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
