"""Helpers shared by the benchmarks: real-text corpora and throw-away databases."""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COVIDNEWS_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"


def pg_admin_url() -> str:
    """The PostgreSQL admin connection (``COVIDNEWS_TEST_POSTGRES_URL``, default: local)."""
    return os.environ.get("COVIDNEWS_TEST_POSTGRES_URL", DEFAULT_PG_URL)


def redis_url(db: int) -> str:
    """Database ``db`` of the Redis server in ``COVIDNEWS_TEST_REDIS_URL`` (default: local)."""
    base = os.environ.get("COVIDNEWS_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    return urlsplit(base)._replace(path=f"/{db}").geturl()


def real_articles(n: int, seed: int = 1) -> list[dict[str, Any]]:
    """``n`` rows of real Spanish text (FakeDeS news, covid19mx press-conference paragraphs)."""
    rng = random.Random(seed)
    texts: list[tuple[str, str]] = []
    for name in ("train.jsonl", "development.jsonl"):
        for line in (SHARED / "fakedes" / name).open(encoding="utf-8"):
            row = json.loads(line)
            texts.append((row["headline"], row["text"]))
    for path in sorted((SHARED / "covid19mx" / "corpus_simple").glob("*.txt"))[:60]:
        paragraphs = [p for p in path.read_text(encoding="utf-8").split("\n") if len(p) > 400]
        for p in paragraphs[:40]:
            texts.append((p[:90], p))
    rows = []
    for i in range(n):
        title, text = texts[rng.randrange(len(texts))]
        rows.append(
            {
                "url": f"https://medio{i % 50}.example/noticias/{i}",
                "id": str(i),
                "title": title,
                "text": text,
                "language": "es",
                "source": f"Medio {i % 50}",
                "published_at": f"2020-{1 + i % 12:02d}-{1 + i % 28:02d}T12:00:00Z",
            }
        )
    return rows


def write_jsonl(rows: list[dict[str, Any]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextmanager
def fresh_postgres() -> Iterator[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin_url = pg_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"covidnews_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class Timer:
    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


def stats_ms(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/mean in milliseconds of durations in seconds."""
    a = np.asarray(samples) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p90_ms": round(float(np.percentile(a, 90)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
        "mean_ms": round(float(a.mean()), 2),
    }
