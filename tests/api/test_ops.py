"""/healthz, /readyz, /metrics and request ids."""

from __future__ import annotations

import json
import re

from apiflask import APIFlask

from tests.api.conftest import AppFactory
from tests.api.test_errors import problem


def test_healthz(app: APIFlask) -> None:
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_waits_for_this_nodes_indexes(make_app: AppFactory, db_url: str) -> None:
    """Not ready until the node's follower has bootstrapped and caught up; then ready, with the
    lag; not ready again when the follower has not caught up for longer than the limit."""
    from covidnews.follow import STATE_FILE, Follower

    app = make_app(db_url=db_url, index_max_lag=60)
    svc = app.extensions["covidnews"]
    body = problem(app.test_client().get("/readyz"), 503)
    assert body["checks"] == {"store": "ok", "indexes": "bootstrapping"}

    follower = Follower(svc.store, svc.settings.data_dir, "none")
    follower.poll()  # bootstrap (an empty store)
    assert problem(app.test_client().get("/readyz"), 503)["checks"]["indexes"] == "bootstrapping"
    follower.poll()  # caught up
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_data(as_text=True)
    checks = response.get_json()["checks"]
    assert checks["store"] == "ok" and checks["indexes"] == "caught up"
    assert 0 <= checks["index_lag_seconds"] < 60
    assert checks["search_engine"] == "not loaded"  # readyz never builds the search engine
    assert not svc.engine_loaded

    state_path = svc.settings.data_dir / STATE_FILE
    state = json.loads(state_path.read_text())
    state["caught_up_at"] -= 3600  # a follower that stopped an hour ago
    state_path.write_text(json.dumps(state))
    body = problem(app.test_client().get("/readyz"), 503)
    assert body["checks"] == {"store": "ok", "indexes": "behind"}
    assert "behind the store" in body["detail"]
    metrics = app.test_client().get("/metrics").get_data(as_text=True)
    assert _sample(metrics, "covidnews_index_lag_seconds") > 3000
    assert _sample(metrics, "covidnews_index_pending_changes") == 0


def test_readyz_when_the_store_is_unreachable(make_app: AppFactory) -> None:
    app = make_app(db_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    response = app.test_client().get("/readyz")
    body = problem(response, 503)
    assert body["checks"] == {"store": "unreachable"}
    assert response.headers["Retry-After"]
    assert "127.0.0.1:1" not in response.get_data(as_text=True)  # no internals
    assert app.test_client().get("/healthz").status_code == 200  # alive all the same


def test_request_ids(app: APIFlask) -> None:
    client = app.test_client()
    given = client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert given.headers["X-Request-ID"] == "trace-abc.123"
    for insane in ("has space", "x" * 200, "<script>", ""):
        made = client.get("/healthz", headers={"X-Request-ID": insane})
        assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"]), insane
    one = client.get("/api/v1/missing").headers["X-Request-ID"]
    two = client.get("/api/v1/missing").headers["X-Request-ID"]
    assert one != two


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith((name + "{", name + " ")):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0])) if "{" in line else {}
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics(make_app: AppFactory) -> None:
    client = make_app(api_rate_limit_anonymous=1).test_client()
    before = client.get("/metrics").get_data(as_text=True)
    client.get("/healthz")
    client.get("/api/test/ping")
    client.get("/api/test/ping")  # 429
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    after = response.get_data(as_text=True)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    total = "covidnews_http_requests_total"
    assert delta(total, endpoint="/healthz", method="GET", status="200") == 1
    assert delta(total, endpoint="/api/test/ping", method="GET", status="200") == 1
    assert delta(total, endpoint="/api/test/ping", method="GET", status="429") == 1
    assert delta("covidnews_http_rate_limited_total", client="anonymous") == 1
    assert (
        delta(
            "covidnews_http_request_duration_seconds_count",
            endpoint="/healthz",
            method="GET",
            status="200",
        )
        == 1
    )
    assert 'le="0.005"' in after


def test_metrics_report_each_sources_health(make_app: AppFactory, db_url: str) -> None:
    """Per-source gauges read from the store: the newest article's time, 7/30-day counts,
    walled articles, the failure streak of the endpoints in use, endpoints by state."""
    from datetime import UTC, datetime, timedelta

    from covidnews.schema import Article, Source, SourceEndpoint
    from covidnews.store import Store
    from covidnews.urls import url_hash

    store = Store(db_url)
    store.migrate()
    now = datetime.now(UTC)
    with store.session() as s:
        src = Source(name="Diario Uno", slug="diario-uno", kind="outlet", country="MX")
        s.add(src)
        s.flush()
        for n, (age, complete) in enumerate([(1, True), (10, False), (40, True)]):
            url = f"https://uno.example/{n}"
            s.add(
                Article(
                    url=url,
                    url_hash=url_hash(url),
                    source_id=src.id,
                    text="t",
                    content_hash=str(n),
                    record_hash=str(n),
                    text_complete=complete,
                    created_at=now - timedelta(days=age),
                )
            )
        for url, state, failures in [
            ("https://uno.example/rss", "active", 2),
            ("https://uno.example/old", "demoted", 3),
        ]:
            s.add(
                SourceEndpoint(
                    source_id=src.id,
                    url=url,
                    url_hash=url_hash(url),
                    kind="feed",
                    news=False,
                    origin="registry",
                    state=state,
                    failures=failures,
                    found_at=now,
                )
            )
    store.close()
    text = make_app(db_url=db_url).test_client().get("/metrics").get_data(as_text=True)
    assert _sample(text, "covidnews_source_articles_7d", source="diario-uno") == 1
    assert _sample(text, "covidnews_source_articles_30d", source="diario-uno") == 2
    assert _sample(text, "covidnews_source_walled_30d", source="diario-uno") == 1
    assert _sample(text, "covidnews_source_error_streak", source="diario-uno") == 2
    assert _sample(text, "covidnews_source_endpoints", source="diario-uno", state="demoted") == 1
    last = _sample(text, "covidnews_source_last_article_timestamp_seconds", source="diario-uno")
    assert abs(last - (now - timedelta(days=1)).timestamp()) < 5
