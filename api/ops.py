"""Operations: request ids, Prometheus metrics, ``/healthz``, ``/readyz``, ``/metrics``.

Every response carries ``X-Request-ID`` (the caller's, when it looks sane, else a new one); log
records made while handling a request carry it as ``request_id``. Metrics are process-wide; under
a multi-process server (``PROMETHEUS_MULTIPROC_DIR`` set, as ``covidnews serve --workers N``
does) ``/metrics`` aggregates every worker.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from apiflask import APIBlueprint
from flask import Flask, Response, g, has_request_context, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import text

from api.errors import TYPE_NOT_READY, problem_response
from api.services import services

if TYPE_CHECKING:
    from collections.abc import Iterator

    from flask.typing import ResponseReturnValue
    from prometheus_client.metrics_core import Metric

    from covidnews.settings import Settings
    from covidnews.store import Store

log = logging.getLogger(__name__)

bp = APIBlueprint("ops", __name__, tag="Operations")

REQUESTS = Counter(
    "covidnews_http_requests_total",
    "HTTP requests handled, by endpoint (route template), method and status.",
    ["endpoint", "method", "status"],
)
LATENCY = Histogram(
    "covidnews_http_request_duration_seconds",
    "Time to handle a request, by endpoint (route template), method and status.",
    ["endpoint", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMITED = Counter(
    "covidnews_http_rate_limited_total",
    "Requests refused with 429, by client kind (anonymous or key).",
    ["client"],
)

SEARCH_SECONDS = Histogram(
    "covidnews_search_seconds",
    "Time the search engine takes to answer /api/v1/search (parsing to page), by mode.",
    ["mode"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+=-]{0,127}")


def request_id() -> str:
    """The current request's id ("-" outside a request)."""
    if has_request_context():
        return str(g.get("request_id", "-"))
    return "-"


_factory_installed = False


def _install_log_record_factory() -> None:
    """Give every log record a ``request_id`` attribute (usable in any log format)."""
    global _factory_installed
    if _factory_installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return record

    logging.setLogRecordFactory(factory)
    _factory_installed = True


def _start() -> None:
    g.started = time.perf_counter()
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = request_id()
    rule = request.url_rule
    endpoint = rule.rule if rule is not None else "<unmatched>"
    labels = (endpoint, request.method, str(response.status_code))
    REQUESTS.labels(*labels).inc()
    started = g.get("started")
    if started is not None:
        LATENCY.labels(*labels).observe(time.perf_counter() - started)
    return response


@bp.get("/healthz")
@bp.doc(summary="Liveness", description="The process is up (does not touch the store).")
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@bp.get("/readyz")
@bp.doc(
    summary="Readiness",
    description="The store answers a query and this node's indexes have bootstrapped and are "
    "caught up with the store (within `COVIDNEWS_INDEX_MAX_LAG` seconds); 503 (problem details) "
    "when not.",
    responses={200: "Ready", 503: "Not ready"},
)
def readyz() -> ResponseReturnValue:
    from covidnews.follow import lag_seconds, read_state

    svc = services()
    try:
        with svc.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        log.warning("not ready: store unreachable: %s", exc)
        return problem_response(
            503,
            "The store cannot be reached.",
            title="Not ready",
            type=TYPE_NOT_READY,
            headers={"Retry-After": "5"},
            checks={"store": "unreachable"},
        )
    max_lag = svc.settings.index_max_lag
    lag = lag_seconds(svc.settings.data_dir)
    if max_lag > 0 and (lag is None or lag > max_lag):
        state = read_state(svc.settings.data_dir)
        why = "bootstrapping" if state is None or not state.get("caught_up_at") else "behind"
        log.warning("not ready: indexes %s (lag %s s)", why, lag)
        return problem_response(
            503,
            "This node's search indexes are still being built from the store."
            if why == "bootstrapping"
            else f"This node's search indexes are {lag:.0f} s behind the store.",
            title="Not ready",
            type=TYPE_NOT_READY,
            headers={"Retry-After": "10"},
            checks={"store": "ok", "indexes": why},
        )
    return {
        "status": "ready",
        "checks": {
            "store": "ok",
            "indexes": "caught up" if lag is not None else "not checked",
            "index_lag_seconds": None if lag is None else round(lag, 3),
            "search_engine": "loaded" if svc.engine_loaded else "not loaded",
        },
    }


class IndexCollector:
    """This node's index metrics, read when scraped: lag, pending changes, documents."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings, self.store = settings, store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        from covidnews.follow import ChangeFeed, lag_seconds, read_state

        state = read_state(self.settings.data_dir)
        lag = lag_seconds(self.settings.data_dir)
        yield GaugeMetricFamily(
            "covidnews_index_lag_seconds",
            "Seconds since this node's indexes were last caught up with the store "
            "(+Inf while bootstrapping).",
            value=float("inf") if lag is None else lag,
        )
        if state is not None:
            yield GaugeMetricFamily(
                "covidnews_index_documents",
                "Documents in this node's keyword index (at its last catch-up).",
                value=float(state.get("documents") or 0),
            )
            try:
                pending = ChangeFeed(self.store).pending(state["position"])
            except Exception as exc:  # a scrape must not fail because the store is away
                log.warning("pending changes unavailable: %s", exc)
            else:
                yield GaugeMetricFamily(
                    "covidnews_index_pending_changes",
                    "Store changes past this node's position (on PostgreSQL including a "
                    "re-read window of changes already applied).",
                    value=float(pending),
                )


class SourceHealthCollector:
    """Per-source health read from the store when scraped (``covidnews.source_health``), at most
    once per :data:`SOURCE_HEALTH_TTL` seconds per process: every node reports the same values
    (alert rules take ``max by (source)``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        rows = _source_health(self.store)
        if rows is None:
            return
        last = GaugeMetricFamily(
            "covidnews_source_last_article_timestamp_seconds",
            "Unix time of the newest article stored from the source (absent: never).",
            labels=["source"],
        )
        week = GaugeMetricFamily(
            "covidnews_source_articles_7d", "Articles stored from the source in 7 days.",
            labels=["source"],
        )  # fmt: skip
        month = GaugeMetricFamily(
            "covidnews_source_articles_30d", "Articles stored from the source in 30 days.",
            labels=["source"],
        )  # fmt: skip
        walled = GaugeMetricFamily(
            "covidnews_source_walled_30d",
            "Articles stored in 30 days with text_complete=false (paywall or consent wall).",
            labels=["source"],
        )
        streak = GaugeMetricFamily(
            "covidnews_source_error_streak",
            "Longest run of failed reads among the source's feeds and sitemaps in use.",
            labels=["source"],
        )
        endpoints = GaugeMetricFamily(
            "covidnews_source_endpoints",
            "The source's feeds and sitemaps, by state (active, demoted).",
            labels=["source", "state"],
        )
        for r in rows:
            if r.last_article_at is not None:
                last.add_metric([r.slug], r.last_article_at.timestamp())
            week.add_metric([r.slug], r.articles_7d)
            month.add_metric([r.slug], r.articles_30d)
            walled.add_metric([r.slug], r.walled_30d)
            streak.add_metric([r.slug], r.error_streak)
            for state in ("active", "demoted"):
                endpoints.add_metric(
                    [r.slug, state], sum(1 for e in r.endpoints if e.state == state)
                )
        yield from (last, week, month, walled, streak, endpoints)


SOURCE_HEALTH_TTL = 60.0
_health_cache: dict[str, tuple[float, Any]] = {}


def _source_health(store: Store) -> Any:
    from covidnews.source_health import source_health

    now = time.monotonic()
    cached = _health_cache.get(store.url)
    if cached is not None and now - cached[0] < SOURCE_HEALTH_TTL:
        return cached[1]
    try:
        rows = source_health(store)
    except Exception as exc:  # a scrape must not fail because the store is away
        log.warning("source health unavailable: %s", exc)
        return None
    _health_cache[store.url] = (now, rows)
    return rows


@bp.get("/metrics")
@bp.doc(hide=True)
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        data = generate_latest(registry)
    else:
        data = generate_latest(REGISTRY)
    svc = services()
    node = CollectorRegistry()
    node.register(IndexCollector(svc.settings, svc.store))
    node.register(SourceHealthCollector(svc.store))
    data += generate_latest(node)
    return Response(data, status=200, headers={"Content-Type": CONTENT_TYPE_LATEST})


def init_app(app: Flask) -> None:
    """Request id and timing first of all hooks; metrics last on the way out."""
    _install_log_record_factory()
    app.before_request(_start)
    app.after_request(_finish)
    app.register_blueprint(bp)
