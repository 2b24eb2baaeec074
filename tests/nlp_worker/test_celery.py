"""Real Redis, real `celery worker` processes, real PostgreSQL: 50 ingested articles are all
processed; a worker SIGKILLed mid-batch and restarted leaves every article processed exactly once.
Workers write the store only; a node's follower (`covidnews follow`, a real process) brings its
own indexes to exactly the processed articles, and rebuilds them from the store when lost."""

from __future__ import annotations

import contextlib
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

from covidnews.follow import Follower, read_state
from covidnews.index import VectorIndex
from covidnews.schema import Article, ArticleChange, Embedding, StageRun
from covidnews.search.engine import Filters, Query, SearchEngine
from covidnews.store import Store
from tests.conftest import ROOT, SHARED, _fresh_pg_database, redis_url

pytestmark = pytest.mark.slow
REDIS_DB = 13  # a database of its own, flushed by the test


@pytest.fixture
def pg_url(pg_admin: object) -> Iterator[str]:
    yield from _fresh_pg_database(pg_admin)


@pytest.fixture
def env(pg_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(redis_url(REDIS_DB))
    client.flushdb()
    values = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    values.update(
        COVIDNEWS_DATABASE_URL=pg_url,
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_BROKER_URL=redis_url(REDIS_DB),
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
            "covidnews.celery",
            "worker",
            "-Q",
            "nlp",
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


def follower(env: dict[str, str], data_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """A node's follower (``covidnews follow``): its own indexes in its own data directory."""
    return subprocess.Popen(
        [sys.executable, "-m", "covidnews", "follow", *args],
        env=dict(env, COVIDNEWS_DATA_DIR=str(data_dir)),
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


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

    # A node follows the store while the workers write it (its first poll bootstraps).
    node = tmp_path / "node"
    follow_log = tmp_path / "follow.log"
    following = follower(env, node, follow_log, "--interval", "0.2")
    log = tmp_path / "worker.log"
    try:
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
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=60)

        store = Store(url)
        try:
            model = _model(store)
            with store.session() as s:
                ids = set(s.scalars(select(Article.id)))
                assert s.scalar(select(func.count()).select_from(Embedding)) == 50
                # Every stage ran exactly once per article (a rolled-back run does not count).
                runs = s.execute(select(StageRun.stage, StageRun.attempts)).all()
                assert runs and all(attempts == 1 for _, attempts in runs), runs
                assert {stage for stage, _ in runs} >= {"langid", "classify", "summarize", "embed"}
                # The store noted every article that became searchable in its change sequence.
                assert set(s.scalars(select(ArticleChange.article_id))) == ids
        finally:
            store.close()
        # Workers write the store only: no index in their data directory.
        worker_dir = Path(env["COVIDNEWS_DATA_DIR"])
        assert not (worker_dir / "index").exists() and not (worker_dir / "search").exists()

        # The node's follower brings its indexes to exactly the processed articles.
        index = VectorIndex(node / "index", model)
        search_dir = node / "search"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (
            index.ids() != ids or _searchable(search_dir) != ids
        ):
            assert following.poll() is None, follow_log.read_text()[-3000:]
            time.sleep(0.5)
        assert index.ids() == ids, follow_log.read_text()[-3000:]
        assert _live_vectors(index) == 50  # one live vector per article
        assert _searchable(search_dir) == ids
        assert len(SearchEngine(search_dir).indexed_ids()) == 50  # no duplicate documents
        state = read_state(node)
        assert state is not None and state["model"] == model and state["caught_up_at"]
    finally:
        following.send_signal(signal.SIGTERM)  # stops after the current poll
        following.wait(timeout=60)
    assert following.returncode == 0, follow_log.read_text()[-3000:]

    # The indexes are caches: lost, the node rebuilds them from the store.
    shutil.rmtree(node / "index")
    shutil.rmtree(search_dir)
    once = follower(env, node, follow_log, "--once")
    assert once.wait(timeout=180) == 0, follow_log.read_text()[-3000:]
    report = json.loads(follow_log.read_text().strip().splitlines()[-1])
    assert report["bootstrapped"] and report["vectors"] == 50 and report["written"] == 50
    index = VectorIndex(node / "index", model)
    assert index.ids() == ids and _live_vectors(index) == 50
    assert _searchable(search_dir) == ids
    assert len(SearchEngine(search_dir).indexed_ids()) == 50
    # A caught-up node finds nothing more to do.
    with contextlib.closing(Store(url)) as store:
        again = Follower(store, node, model).poll()
    assert not again.bootstrapped and (again.written, again.vectors, again.deleted) == (0, 0, 0)


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


def _live_vectors(index: VectorIndex) -> int:
    snapshot = index.snapshot()
    assert snapshot is not None
    return snapshot.live_count
