"""Real Redis, real `celery worker` processes, real PostgreSQL: 50 ingested articles all reach the
index; a worker SIGKILLed mid-batch and restarted leaves every article processed exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from covidnews.index import VectorIndex
from covidnews.schema import Article, Embedding, StageRun
from covidnews.search.engine import Filters, Query, SearchEngine
from covidnews.store import Store
from tests.conftest import ROOT, SHARED, _fresh_pg_database

pytestmark = pytest.mark.slow
REDIS_DB = 13  # a database of its own, flushed by the test


@pytest.fixture
def pg_url(pg_admin: object) -> Iterator[str]:
    yield from _fresh_pg_database(pg_admin)


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(f"redis://127.0.0.1:6379/{REDIS_DB}")
    client.flushdb()
    values = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    values.update(
        COVIDNEWS_DATABASE_URL=pg_url,
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_BROKER_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        COVIDNEWS_BROKER_VISIBILITY_TIMEOUT="5",
        COVIDNEWS_NLP_BATCH_SIZE="5",
        COVIDNEWS_EMBEDDER="hashing",  # the worker semantics are under test, not model quality
        PYTHONUNBUFFERED="1",
    )
    yield values
    client.flushdb()


def corpus(path: Path, n: int = 50) -> None:
    rows = [json.loads(line) for line in (SHARED / "fakedes" / "labelled_dev.jsonl").open()]
    rows = [r for r in rows if str(r.get("link", "")).startswith("http") and r["text"].strip()][:n]
    with path.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(
                json.dumps(
                    {"url": r["link"], "title": r["headline"] or "", "text": r["text"]},
                    ensure_ascii=False,
                )
                + "\n"
            )


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "nlp_worker.celery_app",
            "worker",
            "-Q",
            "nlp,index",
            "-c",
            "1",
            "--pool",
            "prefork",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def counts(url: str) -> tuple[int, int]:
    store = Store(url)
    try:
        with store.session() as s:
            done = (
                s.scalar(select(func.count()).select_from(Article).where(Article.state == "done"))
                or 0
            )
            total = s.scalar(select(func.count()).select_from(Article)) or 0
            return done, total
    finally:
        store.close()


@pytest.mark.timeout(900)
def test_worker_killed_mid_batch_then_restarted(env: dict[str, str], tmp_path: Path) -> None:
    data = tmp_path / "corpus.jsonl"
    corpus(data)
    ingest = subprocess.run(
        [sys.executable, "-m", "covidnews", "ingest", str(data), "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["inserted"] == 50
    url = env["COVIDNEWS_DATABASE_URL"]
    assert counts(url) == (0, 50)  # queued, not processed: the ingest process did no NLP

    log = tmp_path / "worker.log"
    first = worker(env, log)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and counts(url)[0] < 10:
        time.sleep(0.2)
    done_before_kill = counts(url)[0]
    assert 0 < done_before_kill < 50, log.read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)  # the whole worker: main process and pool children
    first.wait()

    second = worker(env, log)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and counts(url)[0] < 50:
            time.sleep(0.5)
        assert counts(url) == (50, 50), log.read_text()[-3000:]
        store = Store(url)
        try:
            # Index tasks are queued after each batch: wait for the last one.
            model = _model(store)
            index = VectorIndex(Path(env["COVIDNEWS_DATA_DIR"]) / "index", model)
            while time.monotonic() < deadline and len(index.ids()) < 50:
                time.sleep(0.5)
            with store.session() as s:
                ids = set(s.scalars(select(Article.id)))
                assert s.scalar(select(func.count()).select_from(Embedding)) == 50
                # Every stage ran exactly once per article (a rolled-back run does not count).
                runs = s.execute(select(StageRun.stage, StageRun.attempts)).all()
                assert runs and all(attempts == 1 for _, attempts in runs), runs
                assert {stage for stage, _ in runs} >= {"langid", "classify", "summarize", "embed"}
            assert index.ids() == ids
            assert _ntotal(index) == 50  # no duplicate vectors
            # Every article is keyword-searchable exactly once.
            search_dir = Path(env["COVIDNEWS_DATA_DIR"]) / "search"
            while time.monotonic() < deadline and _searchable(search_dir) != ids:
                time.sleep(0.5)
            assert _searchable(search_dir) == ids
            assert len(SearchEngine(search_dir).indexed_ids()) == 50  # no duplicate documents
        finally:
            store.close()
    finally:
        os.killpg(second.pid, signal.SIGTERM)
        second.wait(timeout=60)

    # The indexes are caches: lost, they are rebuilt from the store when the writer starts.
    shutil.rmtree(Path(env["COVIDNEWS_DATA_DIR"]) / "index")
    shutil.rmtree(search_dir)
    third = worker(env, log)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and (
            _searchable(search_dir) != ids or index.ids() != ids
        ):
            time.sleep(0.5)
        assert _searchable(search_dir) == ids, log.read_text()[-3000:]
        assert index.ids() == ids and _ntotal(index) == 50
    finally:
        os.killpg(third.pid, signal.SIGTERM)
        third.wait(timeout=60)


def _searchable(search_dir: Path) -> set[int]:
    """Article ids in the keyword index (every document, Covid or not, copies included)."""
    engine = SearchEngine(search_dir)
    query = Query(mode="keyword", filters=Filters(covid=None), collapse=False)
    return {h.article_id for chunk in engine.iter_hits(query) for h in chunk}


def _model(store: Store) -> str:
    with store.session() as s:
        model = s.scalar(select(Embedding.model).limit(1))
    assert model
    return model


def _ntotal(index: VectorIndex) -> int:
    from covidnews.index import Manifest

    manifest = Manifest.read(index.manifest_path)
    assert manifest is not None
    return manifest.count
