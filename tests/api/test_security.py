"""API keys (through the real CLI), rate limits (in memory and in the real Redis), CORS."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask

from api.ratelimit import MemoryLimiter, RedisLimiter
from tests.api.conftest import REDIS_DB, AppFactory
from tests.api.test_errors import problem
from tests.conftest import redis_url, run_cli


def get(app: APIFlask, path: str = "/api/test/ping", **kwargs: Any) -> Any:
    return app.test_client().get(path, **kwargs)


def test_anonymous_limit_in_memory(make_app: AppFactory) -> None:
    app = make_app(api_rate_limit_anonymous=3)
    assert app.extensions["covidnews.ratelimit"].backend == "memory"
    remaining = []
    for _ in range(3):
        response = get(app)
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert 1 <= int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(response.headers["RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]

    refused = get(app)
    body = problem(refused, 429)
    assert body["type"] == "urn:covidnews:problem:rate-limited"
    assert body["limit"] == 3
    retry = int(refused.headers["Retry-After"])
    assert 1 <= retry <= 60
    assert body["retry_after"] == retry
    assert refused.headers["RateLimit-Remaining"] == "0"
    # Even a 404 under /api counts and is refused.
    assert get(app, "/api/v1/nothing").status_code == 429

    # Another address has its own budget.
    other = get(app, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert other.status_code == 200
    assert other.headers["RateLimit-Remaining"] == "2"

    # Not limited: health, metrics, docs, spec, static files; and they carry no RateLimit headers.
    for path in (
        "/healthz",
        "/readyz",
        "/metrics",
        "/api/docs",
        "/api/v1/openapi.json",
        "/static/swagger-ui/swagger-ui.css",
    ):
        response = get(app, path)
        assert response.status_code == 200, path
        assert "RateLimit-Limit" not in response.headers, path


def test_window_resets() -> None:
    limiter = MemoryLimiter(window=1)
    assert [limiter.hit("a", 2).allowed for _ in range(3)] == [True, True, False]
    time.sleep(1.05)
    assert limiter.hit("a", 2).allowed


def test_trusted_proxy_hops_decide_the_client_address(make_app: AppFactory) -> None:
    trusting = make_app(api_rate_limit_anonymous=1, api_trusted_proxies=1)
    first = get(trusting, headers={"X-Forwarded-For": "198.51.100.1"})
    second = get(trusting, headers={"X-Forwarded-For": "198.51.100.2"})
    assert first.status_code == second.status_code == 200
    assert get(trusting, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 429

    # Without trusted proxies the header is ignored: one peer, one budget.
    plain = make_app(api_rate_limit_anonymous=1)
    assert get(plain, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 200
    assert get(plain, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 429


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_url(REDIS_DB))
    try:
        client.ping()
    except Exception as exc:  # the suite needs the real server: fail loudly, never skip
        pytest.fail(f"Redis not reachable at {redis_url(REDIS_DB)}: {exc}")
    prefix = f"covidnews-test:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(prefix + "*"):
        client.delete(key)
    client.close()


def test_redis_limit_is_shared_by_two_apps(make_app: AppFactory, redis_prefix: str) -> None:
    import redis

    config = {"RATELIMIT_KEY_PREFIX": redis_prefix}
    one = make_app(config=config, redis_url=redis_url(REDIS_DB), api_rate_limit_anonymous=5)
    two = make_app(config=config, redis_url=redis_url(REDIS_DB), api_rate_limit_anonymous=5)
    assert one.extensions["covidnews.ratelimit"].backend == "redis"
    assert one.extensions["covidnews.ratelimit"] is not two.extensions["covidnews.ratelimit"]
    statuses = [get(one).status_code for _ in range(3)] + [get(two).status_code for _ in range(2)]
    assert statuses == [200] * 5
    last = get(two)
    assert last.headers["RateLimit-Remaining"] == "0"
    problem(last, 429)
    problem(get(one), 429)
    assert 1 <= int(last.headers["Retry-After"]) <= 60

    client = redis.Redis.from_url(redis_url(REDIS_DB))
    keys = list(client.scan_iter(redis_prefix + "*"))
    assert len(keys) == 1  # one counter for the one client address
    assert 0 < client.pttl(keys[0]) <= 60_000  # always expires
    client.close()


def test_redis_concurrent_hits_are_counted_exactly(redis_prefix: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    limiter = RedisLimiter(redis_url(REDIS_DB), prefix=redis_prefix)
    with ThreadPoolExecutor(8) as pool:
        decisions = list(pool.map(lambda _: limiter.hit("ip:x", 50), range(80)))
    assert sum(d.allowed for d in decisions) == 50
    assert sorted(d.remaining for d in decisions if d.allowed) == list(range(50))


def test_redis_down_fails_open_with_a_warning(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(redis_url="redis://127.0.0.1:1/0", api_rate_limit_anonymous=1)
    with caplog.at_level(logging.WARNING, logger="api.ratelimit"):
        statuses = [get(app).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once a request


def _cli(env: dict[str, str], *args: str) -> Any:
    proc = run_cli("apikey", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_api_keys_through_the_cli(
    cli_env: dict[str, str], db_url: str, make_app: AppFactory
) -> None:
    created = json.loads(
        _cli(cli_env, "create", "Equipo UNAM", "--rate-limit", "2", "--json").stdout
    )
    key = created["key"]
    assert key.startswith("cn_") and len(key) >= 40
    assert created["prefix"] == key[:8]
    plain = _cli(cli_env, "create", "sin límite")
    other_key = plain.stdout.strip()
    assert other_key.startswith("cn_")
    assert "not shown again" in plain.stderr

    listed = json.loads(_cli(cli_env, "list", "--json").stdout)
    assert [k["name"] for k in listed] == ["Equipo UNAM", "sin límite"]
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert listed[0]["rate_limit"] == 2 and listed[1]["rate_limit"] is None
    table = _cli(cli_env, "list").stdout
    assert created["prefix"] in table and key not in table

    app = make_app(db_url=db_url, api_rate_limit_anonymous=1, api_rate_limit_key=4)
    # The key's own limit (2/min), whichever header carries it.
    first = get(app, "/api/test/echo?q=x", headers={"X-API-Key": key})
    assert first.status_code == 200
    assert first.get_json()["key"] == "Equipo UNAM"
    assert first.headers["RateLimit-Limit"] == "2"
    second = get(app, headers={"Authorization": f"Bearer {key}"})
    assert second.headers["RateLimit-Remaining"] == "0"
    body = problem(get(app, headers={"X-API-Key": key}), 429)
    assert "this API key" in body["detail"]
    # The other key has the default key limit; anonymous use its own.
    assert get(app, headers={"X-API-Key": other_key}).headers["RateLimit-Limit"] == "4"
    assert get(app).headers["RateLimit-Limit"] == "1"

    # Unknown keys are refused, not treated as anonymous.
    for bad in ("cn_" + "x" * 43, "nonsense", "cn_" + "y" * 5000):
        refused = get(app, headers={"X-API-Key": bad})
        body = problem(refused, 401)
        assert body["type"] == "urn:covidnews:problem:invalid-api-key"
        assert "Bearer" in refused.headers["WWW-Authenticate"]

    # Use is recorded (off the request thread).
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        used = json.loads(_cli(cli_env, "list", "--json").stdout)
        if used[0]["last_used_at"]:
            break
        time.sleep(0.2)
    assert used[0]["last_used_at"] is not None

    revoked = _cli(cli_env, "revoke", created["prefix"])
    assert "revoked" in revoked.stdout
    body = problem(get(app, headers={"X-API-Key": key}), 401)
    assert "revoked" in body["detail"]
    assert get(app, headers={"X-API-Key": other_key}).status_code == 200
    again = _cli(cli_env, "revoke", str(created["id"]))
    assert "already revoked" in again.stdout
    listed = json.loads(_cli(cli_env, "list", "--json").stdout)
    assert [k["status"] for k in listed] == ["revoked", "active"]

    missing = run_cli("apikey", "revoke", "cn_nope", env=cli_env)
    assert missing.returncode == 1
    assert "no API key" in missing.stderr and "Traceback" not in missing.stderr


def test_cors_preflight_and_simple_requests(make_app: AppFactory) -> None:
    client = make_app(api_rate_limit_anonymous=1).test_client()
    preflight = client.options(
        "/api/test/echo",
        headers={
            "Origin": "https://investiga.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "X-API-Key",
        },
    )
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in preflight.headers["Access-Control-Allow-Methods"]
    assert preflight.headers["Access-Control-Allow-Headers"] == "X-API-Key"
    assert "RateLimit-Limit" not in preflight.headers  # preflights are not counted
    response = client.get("/api/test/ping", headers={"Origin": "https://investiga.example"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "RateLimit-Remaining" in response.headers["Access-Control-Expose-Headers"]
    refused = client.get("/api/test/ping", headers={"Origin": "https://investiga.example"})
    assert refused.status_code == 429  # errors are readable cross-origin too
    assert refused.headers["Access-Control-Allow-Origin"] == "*"


def test_cors_origin_list(make_app: AppFactory, tmp_path: Path) -> None:
    client = make_app(api_cors_origins="https://a.example, https://b.example").test_client()
    allowed = client.options(
        "/api/test/ping",
        headers={"Origin": "https://b.example", "Access-Control-Request-Method": "GET"},
    )
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://b.example"
    assert "Origin" in allowed.headers["Vary"]
    denied = client.options(
        "/api/test/ping",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in denied.headers
    simple = client.get("/api/test/ping", headers={"Origin": "https://a.example"})
    assert simple.headers["Access-Control-Allow-Origin"] == "https://a.example"
    assert "Origin" in simple.headers["Vary"]
    assert (
        "Access-Control-Allow-Origin"
        not in client.get("/api/test/ping", headers={"Origin": "https://evil.example"}).headers
    )
