"""Observability: Prometheus metrics of the crawler and of real Celery workers (scraped over
HTTP), JSON log lines carrying the request id (API) and the task id (worker)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from covidnews.logging import setup_logging
from covidnews.store import slugify
from crawler.demo_site import DemoSite, write_registry
from tests.api.test_serve import _free_port
from tests.conftest import ROOT, _fresh_pg_database, redis_url
from tests.nlp_worker.test_celery import corpus, counts

REDIS_DB = 9  # a database of its own, flushed by the test


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of http://127.0.0.1:PORT/metrics: (name, sorted labels) → value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# JSON logs ------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_request_id() -> None:
    from flask import Flask

    from api import ops

    stream = io.StringIO()
    logger = logging.getLogger("covidnews.test.api")
    logger.propagate = False
    setup_logging("INFO", "json", logger=logger, stream=stream)
    app = Flask(__name__)
    ops.init_app(app)

    @app.get("/work")
    def work() -> dict[str, str]:
        logger.info("handling %s", "work", extra={"items": 3})
        return {"ok": "yes"}

    client = app.test_client()
    assert client.get("/work", headers={"X-Request-ID": "req-123"}).status_code == 200
    assert client.get("/work").status_code == 200
    logger.info("outside any request")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [x["message"] for x in lines] == [
        "handling work",
        "handling work",
        "outside any request",
    ]
    assert lines[0]["request_id"] == "req-123" and lines[0]["items"] == 3
    assert len(lines[1]["request_id"]) == 32  # a generated one
    assert "request_id" not in lines[2] and "task_id" not in lines[2]
    assert {"ts", "level", "logger", "pid"} <= set(lines[0])
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "covidnews.test.api"


def test_text_format_shows_ids_in_brackets() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("covidnews.test.text")
    logger.propagate = False
    setup_logging("INFO", "text", logger=logger, stream=stream)
    logger.info("hello", extra={"task_id": "t-1"})
    logger.info("plain")
    first, second = stream.getvalue().splitlines()
    assert first.endswith("covidnews.test.text [task=t-1]: hello")
    assert second.endswith("covidnews.test.text: plain")


def test_cli_logs_json_when_asked(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_LOG_FORMAT="json",
        COVIDNEWS_LOG_LEVEL="DEBUG",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "covidnews", "init"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    for line in lines:
        record = json.loads(line)
        assert {"ts", "level", "logger", "message"} <= set(record)


def test_bad_log_format_is_refused(tmp_path: Path) -> None:
    from covidnews.settings import SettingsError, load_settings

    assert load_settings(log_format="JSON").log_format == "json"
    with pytest.raises(SettingsError, match="COVIDNEWS_LOG_FORMAT"):
        load_settings(log_format="xml")
    with pytest.raises(SettingsError, match="COVIDNEWS_METRICS_PORT"):
        load_settings(metrics_port=70000)


# Crawler metrics ------------------------------------------------------------------------------

CRAWL_SCRIPT = """
import json, sys, urllib.request
from covidnews.metrics import serve_metrics
from covidnews.settings import get_settings
from covidnews.store import Store
from crawler.run import run_crawl

settings = get_settings()
port = serve_metrics(settings)
store = Store(settings.db_url)
store.migrate()
report = run_crawl(settings, store, overrides={"AUTOTHROTTLE_ENABLED": False, "DOWNLOAD_DELAY": 0})
store.close()
with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
    text = r.read().decode()
print(json.dumps({"summary": report.summary(), "port": port, "metrics": text}))
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_crawl_metrics_count_pages_and_stored_articles(tmp_path: Path) -> None:
    with DemoSite() as site:
        registry = tmp_path / "demo-sources.yaml"
        write_registry(site.port, registry)
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
        env.update(
            COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
            COVIDNEWS_SOURCES_FILE=str(registry),
            COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
            COVIDNEWS_PROCESS_ON_INGEST="false",
            COVIDNEWS_METRICS_PORT="0",  # any free port
        )
        proc = subprocess.run(
            [sys.executable, "-c", CRAWL_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(out["metrics"])
            for s in family.samples
        }
        summary = out["summary"]
        expected = site.expected_articles()
        stored = value(samples, "covidnews_articles_stored_total")
        assert stored == summary["articles_stored"] == len(expected)
        pages = {
            labels: v
            for (name, labels), v in samples.items()
            if name == "covidnews_pages_crawled_total"
        }
        assert sum(pages.values()) == summary["pages_fetched"]
        # Every demo outlet's responses are counted under its registry slug.
        sources = {dict(labels)["source"] for labels in pages}
        assert {slugify(e["outlet_name"]) for e in expected} <= sources
        ok = sum(v for labels, v in pages.items() if dict(labels)["status"] == "200")
        assert ok >= len(expected)


# Worker metrics -------------------------------------------------------------------------------


@pytest.fixture
def worker_env(pg_admin: object, tmp_path: Path) -> Iterator[dict[str, str]]:
    import redis

    client = redis.Redis.from_url(redis_url(REDIS_DB))
    client.flushdb()
    gen = _fresh_pg_database(pg_admin)
    url = next(gen)
    values = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    values.pop("PROMETHEUS_MULTIPROC_DIR", None)
    values.update(
        COVIDNEWS_DATABASE_URL=url,
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_BROKER_URL=redis_url(REDIS_DB),
        COVIDNEWS_NLP_BATCH_SIZE="4",
        COVIDNEWS_EMBEDDER="hashing",  # the metrics are under test, not model quality
        COVIDNEWS_LOG_FORMAT="json",
        PYTHONUNBUFFERED="1",
    )
    try:
        yield values
    finally:
        client.flushdb()
        with contextlib.suppress(StopIteration):
            next(gen)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_worker_metrics_over_http_and_json_task_logs(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    from celery import Celery

    data = tmp_path / "corpus.jsonl"
    corpus(data, n=12)
    ingest = subprocess.run(
        [sys.executable, "-m", "covidnews", "ingest", str(data), "--json"],
        env=worker_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ingest.returncode == 0, ingest.stderr
    assert json.loads(ingest.stdout)["inserted"] == 12  # queued as 3 tasks of 4
    # Three messages on a queue this worker does not consume: its depth must read 3.
    sender = Celery(broker=worker_env["COVIDNEWS_BROKER_URL"])
    for _ in range(3):
        sender.send_task("bot.tasks.run_once", queue="bot")

    port = _free_port()
    env = dict(worker_env, COVIDNEWS_METRICS_PORT=str(port))
    log = tmp_path / "worker.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "covidnews.celery", "worker", "-Q",
         "nlp", "-c", "2", "--pool", "prefork", "-l", "INFO", "--without-gossip",
         "--without-mingle", "--without-heartbeat"],
        env=env, cwd=ROOT, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = worker_env["COVIDNEWS_DATABASE_URL"]
    try:
        deadline = time.monotonic() + 300
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        while time.monotonic() < deadline:
            try:
                samples = scrape(port)
            except OSError:
                samples = {}
            batches = value(
                samples, "covidnews_task_seconds_count", task="nlp_worker.tasks.process_batch"
            )
            if counts(url) == (12, 12) and batches >= 3:
                break
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        assert counts(url) == (12, 12), log.read_text()[-3000:]
        done = value(samples, "covidnews_articles_processed_total", stage="nlp", status="done")
        assert done == 12, samples
        assert (
            value(samples, "covidnews_articles_processed_total", stage="nlp", status="failed") == 0
        )
        batches = value(
            samples, "covidnews_task_seconds_count", task="nlp_worker.tasks.process_batch"
        )
        assert batches == 3
        assert (
            value(samples, "covidnews_task_seconds_sum", task="nlp_worker.tasks.process_batch") > 0
        )
        # Workers only write the store (each API node's indexes follow it): process_batch is
        # the one task they ran, and nothing is counted for an index stage or queue.
        tasks = {
            dict(labels)["task"]
            for (name, labels) in samples
            if name == "covidnews_task_seconds_count"
        }
        assert tasks == {"nlp_worker.tasks.process_batch"}, tasks
        stages = {
            dict(labels)["stage"]
            for (name, labels) in samples
            if name == "covidnews_articles_processed_total"
        }
        assert stages == {"nlp"}, stages
        assert value(samples, "covidnews_nlp_stage_seconds_total", stage="embed") > 0
        assert value(samples, "covidnews_queue_depth", queue="bot") == 3
        assert value(samples, "covidnews_queue_depth", queue="nlp") == 0
        assert {
            dict(labels)["queue"] for (name, labels) in samples if name == "covidnews_queue_depth"
        } == {"nlp", "bot"}
        assert (
            value(samples, "covidnews_task_failures_total", task="nlp_worker.tasks.process_batch")
            == 0
        )

        # A task that fails (not a transient error: no retry) is counted.
        sender.send_task("nlp_worker.tasks.process_batch", args=[[1], "unexpected"], queue="nlp")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            samples = scrape(port)
            if value(
                samples, "covidnews_task_failures_total", task="nlp_worker.tasks.process_batch"
            ):
                break
            time.sleep(0.5)
        assert (
            value(samples, "covidnews_task_failures_total", task="nlp_worker.tasks.process_batch")
            == 1
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)

    # Log lines are JSON; those written inside a task carry its id.
    records = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    batch_lines = [r for r in records if r["message"].startswith("batch of ")]
    assert len(batch_lines) == 3, log.read_text()[-3000:]
    assert all(len(r.get("task_id", "")) == 36 for r in batch_lines), batch_lines
    assert len({r["task_id"] for r in batch_lines}) == 3
    assert any(r["logger"].startswith("celery") for r in records)


def test_library_chatter_shows_only_at_debug() -> None:
    """FAISS's loader and Scrapy's INFO lines are dropped by our handlers unless the level is
    DEBUG; their warnings/errors and our own INFO lines always pass."""

    def emitted(level: str) -> str:
        stream = io.StringIO()
        logger = logging.getLogger(f"covidnews-test-{level}")
        logger.propagate = False
        setup_logging(level, "text", logger=logger, stream=stream)
        for name, lvl, text in (
            ("faiss.loader", logging.INFO, "Could not load library with AVX512 support"),
            ("scrapy.statscollectors", logging.INFO, "Dumping Scrapy stats"),
            ("scrapy.core.engine", logging.ERROR, "Scraper close failure"),
            ("trafilatura.core", logging.WARNING, "discarding data"),
            ("covidnews.store", logging.INFO, "migrating the store"),
        ):
            logger.handle(logging.LogRecord(name, lvl, __file__, 0, text, None, None))
        return stream.getvalue()

    quiet = emitted("INFO")
    assert "migrating the store" in quiet and "Scraper close failure" in quiet
    for noise in ("AVX512", "Dumping Scrapy stats", "discarding data"):
        assert noise not in quiet
    loud = emitted("DEBUG")
    for line in ("AVX512", "Dumping Scrapy stats", "discarding data", "migrating the store"):
        assert line in loud
