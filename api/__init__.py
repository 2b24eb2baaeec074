"""Flask app: the researchers' search API (and, later, the readers' archive).

``create_app()`` builds the app (apiflask: the OpenAPI 3 spec is generated from the endpoints'
marshmallow schemas). Serve it with ``covidnews serve`` (gunicorn). The spec is at
``/api/v1/openapi.json``, interactive docs at ``/api/docs`` (Swagger UI served from ``api/static``,
no internet needed).

Concerns live in their own modules, each with an ``init_app`` hook: ``errors`` (RFC 9457 problem
details), ``services`` (settings, store, search engine), ``ops`` (request ids, metrics, health),
``security`` (API keys, rate limits, CORS); endpoints in blueprints (``v1``, ``ops``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apiflask import APIFlask

API_SPEC_PATH = "/api/v1/openapi.json"
API_DOCS_PATH = "/api/docs"
_SWAGGER = "../static/swagger-ui/"  # relative to /api/docs, so a path prefix (proxy) still works

DESCRIPTION = """\
Spanish-language Covid-19 news, aggregated from outlets and public-health agencies, classified
by topic, translated es⇄en and searchable across languages.

**Access.** Anonymous use is rate limited per client address. An API key (`covidnews apikey
create NAME` on the server) raises the limit: send it as `X-API-Key: cn_…` or
`Authorization: Bearer cn_…`. Every `/api/*` response says where you stand in the
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` headers; over the limit the answer
is 429 with `Retry-After` (seconds).

**Errors** are [RFC 9457](https://www.rfc-editor.org/rfc/rfc9457) problem details
(`application/problem+json`) with `type`, `title`, `status`, `detail`, `instance` and
`request_id`; a bad parameter (400) is named in `param` and `errors`.
"""

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details (media type application/problem+json).",
    "properties": {
        "type": {"type": "string", "description": "Problem type URI (about:blank: see title)."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string", "description": "Quote it when reporting a problem."},
        "param": {"type": "string", "description": "The bad request parameter (400)."},
        "errors": {
            "type": "object",
            "description": "Messages per bad parameter (400).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["type", "title", "status"],
}

DEFAULT_CONFIG: dict[str, Any] = {
    "JSON_SORT_KEYS": False,
    "INFO": {
        "contact": {"name": "covidnews", "url": "https://github.com/covidnews/covidnews"},
        "license": {"name": "MIT (code); article texts © their publishers", "identifier": "MIT"},
    },
    "DESCRIPTION": DESCRIPTION,
    "SECURITY_SCHEMES": {
        "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        "BearerAuth": {"type": "http", "scheme": "bearer", "description": "The same API key."},
    },
    "VALIDATION_ERROR_STATUS_CODE": 400,
    "VALIDATION_ERROR_DESCRIPTION": "Invalid request parameter (problem details)",
    "VALIDATION_ERROR_SCHEMA": PROBLEM_SCHEMA,
    "HTTP_ERROR_SCHEMA": PROBLEM_SCHEMA,
    "SWAGGER_UI_CSS": _SWAGGER + "swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": _SWAGGER + "swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": _SWAGGER + "swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": _SWAGGER + "favicon-32x32.png",
    # No calls to validator.swagger.io (the docs must work offline).
    "SWAGGER_UI_CONFIG": {"validatorUrl": None, "persistAuthorization": True},
    "API_SPEC_PATH": API_SPEC_PATH,
    "API_DOCS_PATH": API_DOCS_PATH,
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_KEY_PREFIX": None,  # Redis key prefix (default covidnews:ratelimit:)
    "RATELIMITER": None,  # a ready limiter object (tests)
    "COVIDNEWS_MIGRATE": True,  # migrate the store on first use, like every command
}


def create_app(config: Mapping[str, Any] | None = None) -> APIFlask:  # Flask config: any values
    """Build the app. ``config`` overrides Flask config; its ``SETTINGS`` may carry a
    :class:`covidnews.settings.Settings` (default: :func:`covidnews.settings.get_settings`)."""
    from apiflask import APIFlask
    from werkzeug.middleware.proxy_fix import ProxyFix

    from api import errors, ops, security
    from api import services as services_module
    from api.archive import init_app as init_archive
    from api.v1 import bp as v1_bp
    from covidnews import __version__
    from covidnews.settings import Settings, get_settings

    overrides = dict(config or {})
    settings = overrides.pop("SETTINGS", None) or get_settings()
    if not isinstance(settings, Settings):
        raise TypeError(f"SETTINGS must be a covidnews Settings, not {type(settings).__name__}")

    app = APIFlask(
        __name__,
        title="covidnews API",
        version=__version__,
        spec_path=API_SPEC_PATH,
        docs_path=API_DOCS_PATH,
        docs_oauth2_redirect_path=None,
        docs_ui="swagger-ui",
    )
    app.config.from_mapping(DEFAULT_CONFIG)
    app.config.from_mapping(overrides)
    app.json.sort_keys = bool(app.config["JSON_SORT_KEYS"])  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if settings.api_trusted_proxies:
        n = settings.api_trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    errors.init_app(app)
    services_module.init_app(app, settings)
    ops.init_app(app)  # request id + timing: first in, last out
    security.init_app(app, settings)
    app.register_blueprint(v1_bp)
    init_archive(app)  # the readers' web archive (pages and feeds)
    app.spec_processor(_finish_spec)
    return app


def _finish_spec(spec: dict[str, Any] | str) -> dict[str, Any] | str:
    """Security on the API operations, problem+json error bodies, 401/429 documented."""
    from api.errors import PROBLEM_MIMETYPE

    if not isinstance(spec, dict):  # only with SPEC_PROCESSOR_PASS_OBJECT / YAML: leave it
        return spec

    problem_ref = {"$ref": "#/components/schemas/HTTPError"}
    ratelimit_headers = {
        name: {"description": text, "schema": {"type": "integer"}}
        for name, text in (
            ("RateLimit-Limit", "Requests allowed per window (one minute)."),
            ("RateLimit-Remaining", "Requests left in the current window."),
            ("RateLimit-Reset", "Seconds until the window resets."),
        )
    }
    for path, item in spec.get("paths", {}).items():
        api = path.startswith("/api/")
        for method, operation in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code, response in responses.items():
                content = response.get("content")
                if str(code)[0] in "45" and content and "application/json" in content:
                    content[PROBLEM_MIMETYPE] = content.pop("application/json")
                if api and str(code).startswith("2"):
                    response.setdefault("headers", {}).update(ratelimit_headers)
            if not api:
                continue
            operation["security"] = [{"ApiKeyAuth": []}, {"BearerAuth": []}, {}]
            responses.setdefault(
                "401",
                {
                    "description": "Unknown or revoked API key",
                    "content": {PROBLEM_MIMETYPE: {"schema": problem_ref}},
                },
            )
            responses.setdefault(
                "429",
                {
                    "description": "Rate limit exceeded (see Retry-After)",
                    "headers": {
                        "Retry-After": {
                            "description": "Seconds to wait.",
                            "schema": {"type": "integer"},
                        }
                    },
                    "content": {PROBLEM_MIMETYPE: {"schema": problem_ref}},
                },
            )
    return spec
