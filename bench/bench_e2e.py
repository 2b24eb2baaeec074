"""End to end on one machine: demo site → distributed crawl → Celery NLP → store → the API node's
indexes (its follower) → search API.

Every service is the real one, each its own process: a fresh PostgreSQL database, Redis (a
database of its own, flushed), N ``celery worker -Q nlp -c 1``, ``covidnews serve --workers 2``
(with its index follower) and ``covidnews crawl --run-id`` processes sharing one scrapy-redis
run, over the local demo news site (:class:`DemoSite`).

- **throughput**, for each ``--workers`` count: articles/minute from the start of the crawl until
  every demo article (``expected_articles()``) is returned by
  ``/api/v1/search?covid=all&collapse=false`` (cursors walked), on a fresh database each time.
  Workers load their models on their first task, so that time is included.
- **latency** (with the last cluster still up): ``DemoSite.add_article`` publishes a new article,
  a crawl runs (``--run-id`` new), the API is polled until a keyword search finds it; reported
  as publish → crawl done → searchable.

Prints one JSON object. Usage:
``python bench/bench_e2e.py [--workers 1,2] [--latency-runs 3] [--batch-size 4]``.
:class:`Cluster` is also what ``tests/test_distributed.py`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED, fresh_postgres, redis_url
from bench._load import free_port
from crawler.demo_site import DemoSite, write_registry

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "-s", "AUTOTHROTTLE_ENABLED=false", "-s", "DOWNLOAD_DELAY=0",
    "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=2",
]  # fmt: skip
SEARCH_ALL = {"covid": "all", "collapse": "false", "per_page": "100", "sort": "newest"}


def wait_for(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    check: Callable[[], None] = lambda: None,
) -> float:
    """Poll ``condition`` until true (returns the seconds waited) or fail with ``what``."""
    started = time.monotonic()
    while not condition():
        check()
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)
    return time.monotonic() - started


class Cluster:
    """The services of one deployment on this machine, each a process group of its own."""

    def __init__(
        self,
        workdir: Path,
        site: DemoSite,
        database_url: str,
        redis_url: str,
        *,
        batch_size: int = 4,
        visibility_timeout: int = 60,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        import redis

        self.workdir = workdir
        self.site = site
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        registry = workdir / "demo-sources.yaml"
        write_registry(site.port, registry)
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(self.redis_url)
        self.redis.flushdb()
        env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.update(
            COVIDNEWS_DATABASE_URL=database_url,
            COVIDNEWS_DATA_DIR=str(workdir / "var"),
            COVIDNEWS_BROKER_URL=self.redis_url,
            COVIDNEWS_REDIS_URL=self.redis_url,
            COVIDNEWS_BROKER_VISIBILITY_TIMEOUT=str(visibility_timeout),
            COVIDNEWS_NLP_BATCH_SIZE=str(batch_size),
            COVIDNEWS_SOURCES_FILE=str(registry),
            COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
            COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="1000000",
            PYTHONUNBUFFERED="1",
            TMPDIR=str(workdir),
        )
        env.update(extra_env or {})
        self.env = env
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.api_port = 0
        self._n = 0

    # processes ---------------------------------------------------------------------------
    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", *args],
            env=env or self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a whole
        )

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM)
        self.redis.flushdb()
        self.redis.close()

    def check_alive(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is None:
                continue
            # Crawls end by themselves; every other service must stay up.
            if proc.returncode != 0 or not name.startswith(("crawl", "latency")):
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def init(self) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "covidnews", "init"],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr)

    def worker(self, name: str, queue: str) -> None:
        self.start(
            name,
            ["celery", "-A", "covidnews.celery", "worker", "-Q", queue, "-c", "1",
             "--pool", "prefork", "-l", "INFO", "-n", f"{name}@%h", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
        )  # fmt: skip

    def nlp_worker(self) -> str:
        self._n += 1
        name = f"nlp{self._n}"
        self.worker(name, "nlp")
        return name

    def api(self, workers: int = 2) -> None:
        self.api_port = free_port()
        self.start(
            "api",
            ["covidnews", "serve", "--port", str(self.api_port), "--workers", str(workers),
             "--no-access-log"],
        )  # fmt: skip
        wait_for(self._ready, 300, "the API", lambda: self.check_alive("api"))

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/readyz", timeout=5) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def wait_workers_ready(self, names: list[str], timeout: float = 300) -> None:
        wait_for(
            lambda: all(" ready." in self.log(n, 100_000) for n in names),
            timeout,
            f"workers {names}",
            lambda: self.check_alive(*names),
        )

    def crawl(self, name: str, run_id: str, *extra: str) -> None:
        self.start(name, ["covidnews", "crawl", "--json", "--run-id", run_id, *FAST, *extra])

    def wait_exit(self, name: str, timeout: float = 600) -> int:
        proc = self.procs.pop(name)
        return proc.wait(timeout=timeout)

    # observations ------------------------------------------------------------------------
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def get(self, path: str, **params: Any) -> Any:
        with urllib.request.urlopen(f"{self.base}{path}?{urlencode(params)}", timeout=60) as r:
            return json.load(r)

    def search_all(self, **params: Any) -> list[dict[str, Any]]:
        """Every result of a search through the API, following cursors."""
        params = {**SEARCH_ALL, **params}
        page = self.get("/api/v1/search", **params)
        results = list(page["results"])
        while page["next"]:
            page = self.get("/api/v1/search", **params, cursor=page["next"])
            results += page["results"]
        return results

    def total(self, **params: Any) -> int:
        try:
            return int(
                self.get("/api/v1/search", **{**SEARCH_ALL, "per_page": "1", **params})["total"]
            )
        except (OSError, urllib.error.HTTPError, ValueError):
            return -1

    def queue_busy(self) -> bool:
        """Messages waiting or taken but not acknowledged, on any queue."""
        waiting = int(self.redis.llen("nlp"))
        return bool(waiting or int(self.redis.hlen("unacked")))


def states(database_url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from covidnews.schema import Article
    from covidnews.store import Store

    store = Store(database_url)
    try:
        with store.session() as s:
            rows = s.execute(select(Article.state, func.count()).group_by(Article.state)).all()
        return {str(state): int(n) for state, n in rows}
    finally:
        store.close()


def resubmit_stranded(cluster: Cluster) -> int:
    """Hand the broker again any article left ``pending`` with nothing queued for it (its
    crawler was killed between storing it and handing it over). Call only when the queues are
    idle: a duplicate task for an article being processed would process it twice."""
    from sqlalchemy import select

    from covidnews.schema import Article
    from covidnews.store import Store

    store = Store(cluster.env["COVIDNEWS_DATABASE_URL"])
    try:
        with store.session() as s:
            ids = list(s.scalars(select(Article.id).where(Article.state == "pending")))
    finally:
        store.close()
    if ids:
        from celery import Celery

        app = Celery(broker=cluster.redis_url)
        size = int(cluster.env["COVIDNEWS_NLP_BATCH_SIZE"])
        for start in range(0, len(ids), size):
            app.send_task(
                "nlp_worker.tasks.process_batch", args=[ids[start : start + size]], queue="nlp"
            )
    return len(ids)


@contextmanager
def cluster(workdir: Path, site: DemoSite, redis_db: int, **kwargs: Any) -> Iterator[Cluster]:
    with fresh_postgres() as url:
        c = Cluster(workdir, site, url, redis_url(redis_db), **kwargs)
        try:
            yield c
        finally:
            c.stop()


def start_services(c: Cluster, nlp_workers: int) -> list[str]:
    """Schema, NLP workers, API (ready: its follower has built its indexes); returns the NLP
    workers' names."""
    c.init()
    names = [c.nlp_worker() for _ in range(nlp_workers)]
    c.api(workers=2)
    c.wait_workers_ready(names)
    return names


def throughput(
    workdir: Path,
    site: DemoSite,
    nlp_workers: int,
    redis_db: int,
    crawlers: int,
    batch: int,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    expected = {e["url"] for e in site.expected_articles()}
    with cluster(workdir, site, redis_db, batch_size=batch, extra_env=extra_env) as c:
        start_services(c, nlp_workers)
        run_id = f"bench-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        for i in range(crawlers):
            c.crawl(f"crawl{i}", run_id)
        for i in range(crawlers):
            rc = c.wait_exit(f"crawl{i}")
            if rc != 0:
                raise RuntimeError(c.log(f"crawl{i}"))
        crawled = time.monotonic() - started
        wait_for(
            lambda: c.total() >= len(expected), 1200, "every article searchable", c.check_alive
        )
        searchable = time.monotonic() - started
        found = {r["url"] for r in c.search_all()}
        if found != expected:
            raise RuntimeError(f"searchable != expected: {sorted(found ^ expected)[:5]}")
        latency = latencies(c, LATENCY_RUNS) if nlp_workers == LATENCY_ON else None
    return {
        "nlp_workers": nlp_workers,
        "crawlers": crawlers,
        "articles": len(expected),
        "crawl_seconds": round(crawled, 1),
        "all_searchable_seconds": round(searchable, 1),
        "articles_per_minute": round(len(expected) / searchable * 60, 1),
        "latency": latency,
    }


def _new_article_text(seed: int) -> tuple[str, str]:
    from bench._common import real_articles

    row = real_articles(1, seed=seed)[0]
    return str(row["title"]), str(row["text"])


def latencies(c: Cluster, runs: int) -> dict[str, Any]:
    """Publish → crawl → searchable, ``runs`` times on the running cluster."""
    samples = []
    for i in range(runs):
        token = f"zlat{uuid.uuid4().hex[:8]}"
        title, text = _new_article_text(1000 + i)
        paragraphs = [p.strip() for p in text.split("\n") if p.strip()] or [text]
        t0 = time.monotonic()
        c.site.add_article("elfaro", title=f"{title} {token}", paragraphs=paragraphs)
        c.crawl("latency", f"latency-{token}")
        if c.wait_exit("latency") != 0:
            raise RuntimeError(c.log("latency"))
        crawled = time.monotonic() - t0
        wait_for(
            lambda t=token: c.total(q=t, mode="keyword") == 1,  # type: ignore[misc]
            300,
            f"{token} searchable",
            c.check_alive,
        )
        samples.append(
            {
                "crawl_seconds": round(crawled, 2),
                "searchable_seconds": round(time.monotonic() - t0, 2),
            }
        )
    return {
        "runs": samples,
        "median_crawl_seconds": round(statistics.median(s["crawl_seconds"] for s in samples), 2),
        "median_searchable_seconds": round(
            statistics.median(s["searchable_seconds"] for s in samples), 2
        ),
    }


LATENCY_RUNS = 3
LATENCY_ON = -1


def main(argv: list[str] | None = None) -> int:
    global LATENCY_RUNS, LATENCY_ON
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--workers", default="1,2", help="NLP worker counts to compare (comma-separated)."
    )
    parser.add_argument("--crawlers", type=int, default=2, help="Crawl processes sharing the run.")
    parser.add_argument("--batch-size", type=int, default=4, help="COVIDNEWS_NLP_BATCH_SIZE.")
    parser.add_argument("--latency-runs", type=int, default=3, help="0: no latency measurement.")
    parser.add_argument("--redis-db", type=int, default=8, help="Redis database (flushed).")
    parser.add_argument(
        "--fast-models",
        action="store_true",
        help="Hashing embedder, no translation (smoke test of the harness, not a measurement).",
    )
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.workers.split(",") if x.strip()]
    LATENCY_RUNS = args.latency_runs
    LATENCY_ON = counts[-1] if args.latency_runs else -1
    if not (SHARED / "fakedes").exists():
        parser.error(f"shared data not found at {SHARED} (set COVIDNEWS_SHARED_DATA)")
    fast = {"COVIDNEWS_EMBEDDER": "hashing", "COVIDNEWS_TRANSLATOR": "none"}
    fast = fast if args.fast_models else {}
    results = []
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-e2e-")))
        for n in counts:
            site = stack.enter_context(DemoSite())  # fresh content per run
            results.append(
                throughput(
                    tmp / f"w{n}", site, n, args.redis_db, args.crawlers, args.batch_size, fast
                )
            )
    out = {
        "benchmark": "e2e",
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "batch_size": args.batch_size,
        "models": "hashing embedder, no translation" if args.fast_models else "defaults",
        "runs": results,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
