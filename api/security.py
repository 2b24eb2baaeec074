"""API keys, rate limits and CORS for ``/api/*``.

A request may present an API key (``X-API-Key: cn_…`` or ``Authorization: Bearer cn_…``). With a
valid key it is limited per key (the key's own limit, else ``COVIDNEWS_API_RATE_LIMIT_KEY`` per
minute); without one, per client address (``COVIDNEWS_API_RATE_LIMIT_ANONYMOUS``). An unknown or
revoked key is a 401 problem, never silently anonymous. Every limited response carries
``RateLimit-Limit``/``-Remaining``/``-Reset``; a refused one is a 429 problem with ``Retry-After``.
The API docs, the spec, ``/healthz``, ``/readyz``, ``/metrics`` and static files are not limited.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from flask import Flask, Response, current_app, g, request

from api import keys
from api.errors import TYPE_INVALID_API_KEY, TYPE_RATE_LIMITED, problem_response
from api.ratelimit import RateLimiter, make_limiter
from api.services import services

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

LIMITER = "covidnews.ratelimit"
EXPOSED_HEADERS = (
    "RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, Retry-After, "
    "X-Request-ID"
)
ALLOWED_HEADERS = "Authorization, Content-Type, X-API-Key, X-Request-ID"
TOUCH_EVERY = 60.0  # seconds between `last_used_at` writes for one key, per process


def is_api_path(path: str) -> bool:
    return path == "/api" or path.startswith("/api/")


def is_limited(path: str) -> bool:
    """``/api/*`` except the docs and the spec."""
    if not is_api_path(path):
        return False
    docs = current_app.config.get("API_DOCS_PATH", "/api/docs")
    spec = current_app.config.get("API_SPEC_PATH", "/api/v1/openapi.json")
    return not (path in (spec, docs) or path.startswith(docs + "/"))


def presented_key() -> str | None:
    """The API key in ``X-API-Key`` or ``Authorization: Bearer``, if any."""
    key = request.headers.get("X-API-Key", "").strip()
    if key:
        return key
    auth = request.headers.get("Authorization", "").strip()
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


class _Toucher:
    """Records ``last_used_at`` at most once a minute per key, off the request thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}

    def __call__(self, key_id: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key_id, -TOUCH_EVERY) < TOUCH_EVERY:
                return
            self._last[key_id] = now
        store = services().store
        threading.Thread(target=self._write, args=(store, key_id), daemon=True).start()

    @staticmethod
    def _write(store: object, key_id: int) -> None:
        try:
            keys.touch(store, key_id)  # type: ignore[arg-type]
        except Exception as exc:  # bookkeeping only: never fail a request for it
            log.warning("could not record use of API key %s: %s", key_id, exc)


def _guard() -> Response | None:
    if request.method == "OPTIONS" or not is_limited(request.path):
        return None
    svc = services()
    settings = svc.settings
    key = presented_key()
    if key is not None:
        try:
            info = keys.lookup(svc.store, key)
        except Exception as exc:
            log.error("cannot check an API key: %s", exc)
            return problem_response(
                503, "The API key cannot be checked right now; try again shortly."
            )
        if info is None or info.revoked:
            reason = "has been revoked" if info is not None else "is not valid"
            return problem_response(
                401,
                f"The API key {reason}. Send a valid key in X-API-Key or "
                "'Authorization: Bearer', or none for anonymous access.",
                title="Invalid API key",
                type=TYPE_INVALID_API_KEY,
                headers={"WWW-Authenticate": 'Bearer realm="covidnews"'},
            )
        g.api_key = info
        current_app.extensions["covidnews.touch"](info.id)
        identity, client = f"key:{info.id}", "key"
        limit = info.rate_limit or settings.api_rate_limit_key
    else:
        identity, client = f"ip:{request.remote_addr or 'unknown'}", "anonymous"
        limit = settings.api_rate_limit_anonymous
    if not current_app.config.get("RATELIMIT_ENABLED", True):
        return None
    limiter: RateLimiter = current_app.extensions[LIMITER]
    decision = limiter.hit(identity, limit)
    g.rate_limit = decision
    if decision.allowed:
        return None
    from api.ops import RATE_LIMITED

    RATE_LIMITED.labels(client=client).inc()
    who = "this API key" if client == "key" else "anonymous clients (per address)"
    more = "" if client == "key" else " An API key raises the limit."
    return problem_response(
        429,
        f"Rate limit of {limit} requests per minute for {who} exceeded; retry in "
        f"{decision.reset} s.{more}",
        title="Too many requests",
        type=TYPE_RATE_LIMITED,
        limit=limit,
        retry_after=decision.reset,
    )


def _add_headers(response: Response) -> Response:
    decision = g.get("rate_limit")
    if decision is not None:
        for name, value in decision.headers().items():
            response.headers.setdefault(name, value)
    return response


# CORS --------------------------------------------------------------------------------------


def allowed_origin(settings: Settings, origin: str) -> str | None:
    """The Access-Control-Allow-Origin value for this origin, or None (not allowed)."""
    origins = settings.api_cors_origins
    if "*" in origins:
        return "*"
    return origin if origin.rstrip("/") in origins else None


def _preflight() -> Response | None:
    if not (
        request.method == "OPTIONS"
        and is_api_path(request.path)
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    ):
        return None
    response = Response(status=204)
    allow = allowed_origin(services().settings, request.headers["Origin"])
    response.headers.pop("Content-Type", None)
    response.headers["Vary"] = (
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    )
    if allow is not None:
        response.headers["Access-Control-Allow-Origin"] = allow
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", ALLOWED_HEADERS
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response


def _cors(response: Response) -> Response:
    origin = request.headers.get("Origin")
    if not origin or not is_api_path(request.path):
        return response
    if "Access-Control-Allow-Origin" not in response.headers:
        allow = allowed_origin(services().settings, origin)
        if allow is not None:
            response.headers["Access-Control-Allow-Origin"] = allow
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            if allow != "*":
                response.vary.add("Origin")
    return response


def init_app(app: Flask, settings: Settings) -> None:
    """CORS preflight first, then key check and rate limit; headers on the way out."""
    app.extensions[LIMITER] = app.config.get("RATELIMITER") or make_limiter(
        settings.redis_url, prefix=app.config.get("RATELIMIT_KEY_PREFIX")
    )
    app.extensions["covidnews.touch"] = _Toucher()
    app.before_request(_preflight)
    app.before_request(_guard)
    app.after_request(_add_headers)
    app.after_request(_cors)
