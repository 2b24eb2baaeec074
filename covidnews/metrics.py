"""Prometheus metrics of the crawler and the NLP workers (each API node exports its index lag).

Each service exposes them on ``COVIDNEWS_METRICS_PORT`` when it is set (the API serves its own
``/metrics``, see :mod:`api.ops`):

- ``covidnews crawl``: :func:`serve_metrics` from the crawl process (one port per process);
- Celery workers: :func:`start_worker_metrics` in the worker's main process (``celeryd_init``),
  reading every pool process's values through prometheus' multiprocess mode
  (``PROMETHEUS_MULTIPROC_DIR``: a temporary directory made for the worker unless set), plus
  ``covidnews_queue_depth`` read from the broker (Redis ``LLEN``) at scrape time.

Metric objects are built on first use (:func:`metrics`), not at import: a worker must choose
multiprocess mode before any value exists. Every ``record_*`` function is a no-op unless
``COVIDNEWS_METRICS_PORT`` is set, so nothing is collected where nobody can scrape it.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from covidnews.settings import Settings

log = logging.getLogger(__name__)

TASK_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: kombu's Redis transport keeps priorities 3, 6 and 9 of a queue in lists of their own
_PRIORITY_SEP = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)


@dataclass(frozen=True)
class Metrics:
    pages_crawled: Any
    articles_stored: Any
    articles_processed: Any
    stage_seconds: Any
    task_seconds: Any
    task_failures: Any


@functools.cache
def metrics() -> Metrics:
    from prometheus_client import Counter, Histogram

    return Metrics(
        pages_crawled=Counter(
            "covidnews_pages_crawled_total",
            "Responses received by the crawler, by source (registry slug) and HTTP status.",
            ["source", "status"],
        ),
        articles_stored=Counter(
            "covidnews_articles_stored_total", "New articles stored by the crawler."
        ),
        articles_processed=Counter(
            "covidnews_articles_processed_total",
            "Articles through the workers' NLP stages (stage nlp; status done, failed = gave "
            "up, retry = failed this time).",
            ["stage", "status"],
        ),
        stage_seconds=Counter(
            "covidnews_nlp_stage_seconds_total",
            "Wall seconds spent in each NLP stage (langid, classify, …), summed over batches.",
            ["stage"],
        ),
        task_seconds=Histogram(
            "covidnews_task_seconds",
            "Duration of Celery tasks, by task name.",
            ["task"],
            buckets=TASK_BUCKETS,
        ),
        task_failures=Counter(
            "covidnews_task_failures_total",
            "Celery tasks that raised (after their retries, or not retryable), by task name.",
            ["task"],
        ),
    )


@functools.cache
def enabled() -> bool:
    """Whether this process serves metrics (``COVIDNEWS_METRICS_PORT`` is set)."""
    from covidnews.settings import get_settings

    try:
        return get_settings().metrics_port is not None
    except Exception:  # invalid settings are reported by whoever uses them
        return False


# Recording -----------------------------------------------------------------------------------


def record_page(source: str | None, status: int | str) -> None:
    if enabled():
        metrics().pages_crawled.labels(source or "-", str(status)).inc()


def record_article_stored(count: int = 1) -> None:
    if enabled() and count:
        metrics().articles_stored.inc(count)


class BatchCounts(Protocol):
    """What the metrics read of a processed batch (:class:`nlp_worker.stages.BatchReport`)."""

    done: list[int]
    failed: list[int]
    retry: list[int]
    stage_seconds: dict[str, float]


def record_batch(report: BatchCounts) -> None:
    """Counts of a processed batch (done, failed, retry; stage times)."""
    if not enabled():
        return
    m = metrics()
    for status, ids in (("done", report.done), ("failed", report.failed), ("retry", report.retry)):
        m.articles_processed.labels("nlp", status).inc(len(ids))
    for stage, seconds in report.stage_seconds.items():
        m.stage_seconds.labels(stage).inc(max(0.0, float(seconds)))


_task_started: dict[str, float] = {}


def task_started(task_id: str | None) -> None:
    if enabled() and task_id:
        _task_started[task_id] = time.perf_counter()


def task_finished(task_id: str | None, task_name: str) -> None:
    started = _task_started.pop(task_id or "", None)
    if enabled() and started is not None:
        metrics().task_seconds.labels(task_name).observe(time.perf_counter() - started)


def task_failed(task_name: str) -> None:
    if enabled():
        metrics().task_failures.labels(task_name).inc()


# Queue depth ---------------------------------------------------------------------------------


def _redis_keys(queue: str) -> list[str]:
    return [queue, *(f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITY_STEPS)]


class QueueDepthCollector:
    """``covidnews_queue_depth{queue}``: messages waiting in each Celery queue, read from the
    Redis broker when scraped (messages taken by a worker and not yet acknowledged excluded)."""

    def __init__(self, broker_url: str, queues: Sequence[str]) -> None:
        self.broker_url = broker_url
        self.queues = list(queues)
        self._client: Any = None

    def _redis(self) -> Any:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(
                self.broker_url, socket_timeout=2, socket_connect_timeout=2
            )
        return self._client

    def depths(self) -> dict[str, int]:
        client = self._redis()
        pipe = client.pipeline(transaction=False)
        for queue in self.queues:
            for key in _redis_keys(queue):
                pipe.llen(key)
        values = iter(pipe.execute())
        return {q: sum(int(next(values)) for _ in _redis_keys(q)) for q in self.queues}

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        family = GaugeMetricFamily(
            "covidnews_queue_depth",
            "Messages waiting in each Celery queue (read from the broker at scrape time).",
            labels=["queue"],
        )
        try:
            for queue, depth in self.depths().items():
                family.add_metric([queue], depth)
        except Exception as exc:  # a scrape must not fail because the broker is away
            log.warning("queue depth unavailable: %s", exc)
        yield family

    def describe(self) -> Iterable[Any]:
        return []  # collected at scrape time only (no describe-time broker call)


# Exposition ----------------------------------------------------------------------------------


def _registry() -> Any:
    from prometheus_client import REGISTRY, CollectorRegistry

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def serve_metrics(
    settings: Settings, *, queues: Sequence[str] = (), registry: CollectorRegistry | None = None
) -> int | None:
    """Serve ``/metrics`` on ``settings.metrics_port`` (all interfaces) from a daemon thread;
    returns the port (useful with 0), or None when the setting is unset. With ``queues`` and a
    Redis broker, their depths are included."""
    if settings.metrics_port is None:
        return None
    from prometheus_client import start_http_server

    registry = registry if registry is not None else _registry()
    broker = settings.broker_url or ""
    if queues and broker.startswith(("redis://", "rediss://")):
        registry.register(QueueDepthCollector(broker, queues))
    server, _thread = start_http_server(settings.metrics_port, registry=registry)
    port = int(server.server_port)
    log.info("metrics on http://0.0.0.0:%d/metrics", port)
    return port


_made_dir: str | None = None


def start_worker_metrics(settings: Settings, queues: Sequence[str]) -> int | None:
    """In a Celery worker's main process, before the pool starts: multiprocess mode (so every
    pool process's values are summed) and the exporter."""
    global _made_dir
    if settings.metrics_port is None:
        return None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _made_dir = tempfile.mkdtemp(prefix="covidnews-worker-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_dir
        import atexit

        atexit.register(shutil.rmtree, _made_dir, True)
    import prometheus_client.values as values

    # Multiprocess values must be chosen before any metric exists; prometheus_client decides at
    # import time, which may have happened before the directory was set.
    values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
    return serve_metrics(settings, queues=queues)
