"""Nothing stuck, nothing doubled, nothing lost — with real processes: a Celery worker and
Celery beat (the sweep), a Redis of our own that the test kills and starts again empty, a
PostgreSQL of our own that it stops and starts under load, and the API serving meanwhile.

Each scenario ends with every article ``done`` and every stage run exactly once
(``stage_runs.attempts == 1``): leases and the sweep (nlp_worker.leases) hand over what a killed
collector or a lost queue left behind, and a worker whose lease was taken over writes nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import func, select

from covidnews.schema import Article, StageRun
from covidnews.store import Store
from tests.conftest import ROOT, SHARED, _fresh_pg_database
from tests.servers import PostgresCluster, RedisServer, create_postgres, free_port

pytestmark = pytest.mark.slow
N = 200
LEASE, HANDOFF, SWEEP = 6, 4, 1  # seconds (defaults: 300, 1800, 60)


@pytest.fixture
def pg_url(pg_admin: object) -> Iterator[str]:
    for url in _fresh_pg_database(pg_admin):
        store = Store(url)
        store.migrate()
        store.close()
        yield url


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.remove()


def recovery_env(db_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    values.update(
        COVIDNEWS_DATABASE_URL=db_url,
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_BROKER_URL=broker_url,
        COVIDNEWS_BROKER_VISIBILITY_TIMEOUT="30",
        COVIDNEWS_NLP_BATCH_SIZE="5",
        COVIDNEWS_EMBEDDER="hashing",  # recovery is under test, not model quality
        COVIDNEWS_LEASE_SECONDS=str(LEASE),
        COVIDNEWS_HANDOFF_SECONDS=str(HANDOFF),
        COVIDNEWS_SWEEP_SECONDS=str(SWEEP),
        PYTHONUNBUFFERED="1",
    )
    return values


@pytest.fixture
def env(pg_url: str, redis_server: RedisServer, tmp_path: Path) -> dict[str, str]:
    return recovery_env(pg_url, redis_server.url + "/0", tmp_path)


def write_corpus(path: Path, n: int = N) -> None:
    """``n`` real Covid news articles (FakeDeS), texts cut short to keep the run brief."""
    rows = [json.loads(line) for line in (SHARED / "fakedes" / "labelled_dev.jsonl").open()]
    rows = [r for r in rows if str(r.get("link", "")).startswith("http") and r["text"].strip()]
    assert len(rows) >= n
    with path.open("w", encoding="utf-8") as f:
        for r in rows[:n]:
            record = {"url": r["link"], "title": r["headline"] or "", "text": r["text"][:600]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def celery(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "covidnews.celery", *args, "-l", "INFO"],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return celery(
        env, log, "worker", "-Q", "nlp", "-c", "1", "--pool", "prefork",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    )  # fmt: skip


def beat(env: dict[str, str], log: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    return celery(env, log, "beat", "-s", str(tmp_path / "beat-schedule"), "--max-interval", "1")


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def states(url: str) -> dict[str, int]:
    store = Store(url)
    try:
        with store.session() as s:
            rows = s.execute(select(Article.state, func.count()).group_by(Article.state))
            return {str(state): int(count) for state, count in rows}
    finally:
        store.close()


def wait_done(url: str, n: int, timeout: float, logs: list[Path]) -> float:
    """Seconds until all ``n`` articles are done."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if states(url).get("done", 0) == n:
            return time.monotonic() - started
        time.sleep(0.5)
    tails = "\n".join(log.read_text(errors="replace")[-2500:] for log in logs)
    raise AssertionError(f"not all done after {timeout:.0f} s: {states(url)}\n{tails}")


def assert_each_stage_ran_once(url: str, n: int) -> None:
    store = Store(url)
    try:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Article)) == n
            runs = s.execute(select(StageRun.stage, StageRun.attempts)).all()
            assert {stage for stage, _ in runs} >= {"langid", "classify", "summarize", "embed"}
            twice = [(stage, attempts) for stage, attempts in runs if attempts != 1]
            assert not twice, twice
            per_article = s.execute(
                select(StageRun.article_id, func.count()).group_by(StageRun.article_id)
            ).all()
            assert len(per_article) == n
            leased = s.scalar(select(func.count()).where(Article.lease_owner.is_not(None)))
            assert leased == 0
    finally:
        store.close()


@pytest.mark.timeout(600)
def test_collector_killed_between_store_and_handoff(env: dict[str, str], tmp_path: Path) -> None:
    """The ingest stores 200 articles, then hangs handing them over (its broker never answers)
    and is SIGKILLed there: nothing was queued, the sweep hands all 200 over."""
    data = tmp_path / "corpus.jsonl"
    write_corpus(data)
    url = env["COVIDNEWS_DATABASE_URL"]
    with socket.socket() as hole:  # accepts connections (the backlog) and never answers
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        stuck = dict(env, COVIDNEWS_BROKER_URL=f"redis://127.0.0.1:{hole.getsockname()[1]}/0")
        collector = subprocess.Popen(
            [sys.executable, "-m", "covidnews", "ingest", str(data), "--batch-size", "1000"],
            env=stuck, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(states(url).values()) < N:
            assert collector.poll() is None, collector.stderr.read() if collector.stderr else ""
            time.sleep(0.2)
        time.sleep(1.0)
        assert collector.poll() is None  # stored everything, stuck in the hand-off
        collector.kill()
        collector.wait()
    assert states(url) == {"pending": N}

    log = tmp_path / "celery.log"
    started = time.monotonic()
    procs = [worker(env, log), beat(env, log, tmp_path)]
    try:
        while time.monotonic() - started < 120 and states(url) == {"pending": N}:
            time.sleep(0.2)
        picked_up = time.monotonic() - started
        elapsed = wait_done(url, N, 420, [log])
    finally:
        stop(*procs)
    print(
        f"collector killed: first articles taken {picked_up:.0f} s and all {N} done "
        f"{elapsed + picked_up:.0f} s after the worker and beat started"
    )
    # Handed over within the grace + one sweep interval (+ the processes' start-up).
    assert picked_up < HANDOFF + SWEEP + 45
    assert "handed over again" in log.read_text()  # by the sweep, not by anyone else
    assert_each_stage_ran_once(url, N)


@pytest.mark.timeout(600)
def test_redis_restarted_empty_mid_run(
    env: dict[str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    """200 articles queued; Redis is SIGKILLed and started again empty while the worker is
    busy: the queue is gone, the worker and beat reconnect by themselves, the sweep hands over
    what was lost, each stage runs once."""
    data = tmp_path / "corpus.jsonl"
    write_corpus(data)
    url = env["COVIDNEWS_DATABASE_URL"]
    log = tmp_path / "celery.log"
    procs = [worker(env, log), beat(env, log, tmp_path)]
    try:
        ingest = subprocess.run(
            [sys.executable, "-m", "covidnews", "ingest", str(data), "--json"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr
        assert json.loads(ingest.stdout)["inserted"] == N
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and states(url).get("done", 0) < 30:
            time.sleep(0.2)
        before = states(url)
        assert 30 <= before.get("done", 0) < N - 50, before
        queued = redis.Redis.from_url(env["COVIDNEWS_BROKER_URL"]).llen("nlp")
        assert queued > 0
        redis_server.kill()  # the queued tasks are gone
        time.sleep(2)
        redis_server.start()  # same port, empty
        elapsed = wait_done(url, N, 420, [log])
        assert all(proc.poll() is None for proc in procs)  # nobody had to be restarted
    finally:
        stop(*procs)
    print(f"redis restarted ({before}, {queued} tasks queued): all {N} done {elapsed:.0f} s later")
    assert "handed over again" in log.read_text()
    assert_each_stage_ran_once(url, N)


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    server = create_postgres()
    yield server
    server.remove()


def _get(url: str) -> tuple[int, str, str | None, bytes]:
    """(status, content type, Retry-After, body) of a GET; connection errors are status 0."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.headers["Content-Type"], None, response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        return exc.code, exc.headers.get("Content-Type", ""), exc.headers.get("Retry-After"), body
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, type(exc).__name__, None, b""


@pytest.mark.timeout(600)
def test_postgres_restarted_during_processing_and_api_traffic(
    cluster: PostgresCluster, redis_server: RedisServer, tmp_path: Path
) -> None:
    """PostgreSQL is stopped for ~6 s and started again while the worker processes 200 articles
    and clients keep asking the API and the archive: the API answers 503 problem+json with
    Retry-After while it is down (never a 500), everything recovers without a restart, and
    every article is done with each stage run once."""
    env = recovery_env(cluster.url, redis_server.url + "/0", tmp_path)
    url = env["COVIDNEWS_DATABASE_URL"]
    store = Store(url)
    store.migrate()
    store.close()
    data = tmp_path / "corpus.jsonl"
    write_corpus(data)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "celery.log"
    api_log = tmp_path / "api.log"
    api_env = dict(  # one client asking many times a second: no rate limit in the way
        env, COVIDNEWS_DATA_DIR=str(tmp_path / "api"), COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="100000"
    )
    procs = [
        worker(env, log),
        beat(env, log, tmp_path),
        subprocess.Popen(
            [sys.executable, "-m", "covidnews", "serve", "--port", str(port), "--workers", "2"],
            env=api_env,
            cwd=ROOT,
            stdout=api_log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        ),
    ]
    answers: list[tuple[float, str, int, str, str | None, bytes]] = []
    stop_asking = threading.Event()

    def ask() -> None:
        paths = [
            "/api/v1/search?q=vacuna",
            "/api/v1/stats",
            "/api/v1/sources",
            "/",
            "/buscar?q=covid",
        ]
        while not stop_asking.is_set():
            for path in paths:
                status, kind, retry, body = _get(base + path)
                answers.append((time.monotonic(), path, status, kind, retry, body))
            time.sleep(0.05)

    asker = threading.Thread(target=ask, daemon=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _get(base + "/healthz")[0] != 200:
            time.sleep(0.5)
        ingest = subprocess.run(
            [sys.executable, "-m", "covidnews", "ingest", str(data), "--json"],
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ingest.returncode == 0, ingest.stderr
        asker.start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and states(url).get("done", 0) < 30:
            time.sleep(0.2)
        before = states(url)
        assert before.get("done", 0) < N - 50, before
        stopped = time.monotonic()
        cluster.stop("fast")  # closes every connection: workers, beat, API
        time.sleep(6)
        cluster.start()
        started = time.monotonic()
        elapsed = wait_done(url, N, 420, [log, api_log])
        time.sleep(3)  # the API keeps answering after the restart
        stop_asking.set()
        asker.join(timeout=60)
        assert all(proc.poll() is None for proc in procs)  # nobody had to be restarted
    finally:
        stop_asking.set()
        stop(*procs)
    statuses = [a[2] for a in answers]
    print(
        f"postgres restarted ({before}): all {N} done {elapsed:.0f} s after; API answers "
        f"{ {s: statuses.count(s) for s in set(statuses)} }"
    )
    assert 500 not in statuses, [a[:5] for a in answers if a[2] == 500][:5]
    assert set(statuses) <= {200, 503}, [a[:5] for a in answers if a[2] not in (200, 503)][:5]
    down = [a for a in answers if stopped <= a[0] <= started]
    unavailable = [a for a in down if a[2] == 503]
    assert unavailable, "no 503 while the database was down"
    for _, path, _, kind, retry, body in unavailable:
        assert retry is not None and int(retry) > 0
        if path.startswith("/api/"):
            problem = json.loads(body)
            assert kind == "application/problem+json" and problem["status"] == 503
            assert problem["type"] == "urn:covidnews:problem:store-unavailable"
            assert "Traceback" not in problem["detail"]
        else:
            assert kind.startswith("text/html") and b"Traceback" not in body
    after = [a for a in answers if a[0] > started + 10]
    assert after and {a[2] for a in after} == {200}, [a[:5] for a in after if a[2] != 200][:5]
    assert_each_stage_ran_once(url, N)


@pytest.mark.timeout(600)
def test_postgres_restarted_during_a_crawl(cluster: PostgresCluster, tmp_path: Path) -> None:
    """The store goes away in the middle of a crawl of the demo site: the crawler waits for it
    (the crawl pauses), stores what it held once it is back, and ends with every article."""
    from crawler.demo_site import DemoSite, write_registry
    from tests.crawler.test_crawl import assert_matches_demo, stored

    url = cluster.url
    store = Store(url)
    store.migrate()
    store.close()
    with DemoSite() as site:
        registry = tmp_path / "demo-sources.yaml"
        write_registry(site.port, registry)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
        env.update(
            COVIDNEWS_DATABASE_URL=url,
            COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
            COVIDNEWS_PROCESS_ON_INGEST="false",
            COVIDNEWS_SOURCES_FILE=str(registry),
            COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
            PYTHONUNBUFFERED="1",
        )
        # Unhurried (0.3 s between requests to a host), so the store is down mid-crawl.
        steady = ["-s", "AUTOTHROTTLE_ENABLED=false", "-s", "DOWNLOAD_DELAY=0.3"]
        crawler = subprocess.Popen(
            [sys.executable, "-m", "covidnews", "crawl", "--json", *steady],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and sum(states(url).values()) < 5:
            assert crawler.poll() is None
            time.sleep(0.05)
        held = sum(states(url).values())
        assert crawler.poll() is None  # still crawling when the store goes away
        cluster.stop("fast")
        time.sleep(5)
        cluster.start()
        _out, err = crawler.communicate(timeout=300)
        assert crawler.returncode == 0, err[-3000:]
        assert "database unavailable" in err  # it waited, and said so
        assert_matches_demo(site, stored(env))
    print(f"crawl: store stopped after {held} articles, all {len(stored(env))} stored")
