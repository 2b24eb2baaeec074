"""Every error is RFC 9457 problem details (``application/problem+json``).

Endpoints raise :class:`ApiProblem` (or :func:`bad_param` for one bad parameter); apiflask's input
validation errors, HTTP errors (404, 405…) and unexpected exceptions are turned into the same
shape by :func:`init_app`. A body always has ``type``, ``title``, ``status``, ``detail`` and
``instance`` (the request path), plus ``request_id`` and any extension members. A 500 never shows
a traceback; it is logged with the request id. While the database is down or restarting the
answer is a 503 (``urn:covidnews:problem:store-unavailable``) with ``Retry-After``, never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from flask import Response, g, json, request

if TYPE_CHECKING:
    from apiflask import APIFlask, HTTPError

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
# Problem types of our own (URNs: stable identifiers, not pages to fetch). Plain HTTP errors use
# "about:blank", whose title is the status phrase (RFC 9457 §4.2.1).
TYPE_INVALID_PARAMETER = "urn:covidnews:problem:invalid-parameter"
TYPE_RATE_LIMITED = "urn:covidnews:problem:rate-limited"
TYPE_INVALID_API_KEY = "urn:covidnews:problem:invalid-api-key"
TYPE_NOT_READY = "urn:covidnews:problem:not-ready"
TYPE_STORE_UNAVAILABLE = "urn:covidnews:problem:store-unavailable"
#: seconds a client should wait before retrying while the database is unavailable
STORE_RETRY_AFTER = 5
TYPE_INTERNAL = "about:blank"

_RESERVED = {"type", "title", "status", "detail", "instance"}


def status_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class ApiProblem(Exception):
    """Raise from an endpoint to answer with a problem-details body.

    ``ApiProblem(404, "no article 12")``; ``ApiProblem(409, "…", title="Conflict", hint="…")``.
    ``param`` names the offending request parameter; ``extra`` become extension members;
    ``headers`` are added to the response (e.g. ``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        param: str | None = None,
        type: str | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,  # extension members of the problem body: any JSON value
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or status_phrase(status)
        self.type = type or "about:blank"
        self.param = param
        self.headers = dict(headers or {})
        clash = _RESERVED & extra.keys()
        if clash:
            raise ValueError(f"extension members may not replace {sorted(clash)}")
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.param is not None:
            body["param"] = self.param
        body.update(self.extra)
        return body


def bad_param(name: str, detail: str) -> ApiProblem:
    """A 400 for one bad request parameter: ``raise bad_param("q", "may not be empty")``."""
    return ApiProblem(
        400,
        f"Invalid parameter '{name}': {detail}",
        title="Invalid request parameter",
        type=TYPE_INVALID_PARAMETER,
        param=name,
        errors={name: [detail]},
    )


def problem_response(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    **extra: Any,  # extension members of the problem body: any JSON value
) -> Response:
    """A complete problem-details response for the current request."""
    body: dict[str, Any] = {
        "type": type,
        "title": title or status_phrase(status),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return _respond(body, headers)


def _respond(body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    body.setdefault("instance", request.path)
    request_id = g.get("request_id")
    if request_id:
        body.setdefault("request_id", request_id)
    response = Response(
        json.dumps(body, ensure_ascii=False), status=body["status"], mimetype=PROBLEM_MIMETYPE
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error messages keyed by parameter (``{"q": ["…"]}``)."""
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            # A list item's errors (marshmallow keys them by index) belong to the parameter.
            if isinstance(key, int) and prefix:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(messages, list | tuple):
        texts = [m for m in messages if isinstance(m, str)]
        if texts:
            out.setdefault(prefix or "_request", []).extend(texts)
        for item in messages:
            if not isinstance(item, str):
                out.update(_flatten(item, prefix))
    else:
        out.setdefault(prefix or "_request", []).append(str(messages))
    return out


def validation_problem(error: HTTPError) -> Response:
    """apiflask's input validation error → 400 naming each bad parameter.

    apiflask's detail is ``{location: {field: [messages]}}`` (location: query, json, path…);
    ``errors`` is keyed by the parameter name, ``locations`` says where each came from.
    """
    errors: dict[str, list[str]] = {}
    locations: dict[str, str] = {}
    detail_in = error.detail if isinstance(error.detail, Mapping) else {}
    for location, messages in detail_in.items():
        for name, texts in _flatten(messages).items():
            name = "_schema" if name == "_schema" else name
            errors.setdefault(name, []).extend(texts)
            locations.setdefault(name, str(location))
    names = sorted(errors)
    if len(names) == 1:
        detail = f"Invalid parameter '{names[0]}': {'; '.join(errors[names[0]])}"
    elif names:
        detail = "Invalid parameters: " + ", ".join(f"'{n}'" for n in names)
    else:
        detail = error.message or "The request is invalid."
    body: dict[str, Any] = {
        "type": TYPE_INVALID_PARAMETER,
        "title": "Invalid request parameter",
        "status": 400,
        "detail": detail,
    }
    if len(names) == 1:
        body["param"] = names[0]
    body["errors"] = errors
    body["locations"] = locations
    return _respond(body, _plain_headers(error.headers))


def http_problem(error: HTTPError) -> Response:
    """Any apiflask ``HTTPError`` (werkzeug's 404/405… arrive as one) → problem details."""
    from apiflask.exceptions import _ValidationError

    if isinstance(error, _ValidationError):
        return validation_problem(error)
    status = error.status_code
    headers = _plain_headers(error.headers)
    detail = _default_detail(status)
    if isinstance(error.detail, str) and error.detail:
        detail = error.detail
    elif error.message and error.message != status_phrase(status):
        detail = error.message
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": status_phrase(status),
        "status": status,
        "detail": detail,
    }
    if status == 405 and "Allow" in headers:
        body["allowed_methods"] = [m.strip() for m in headers["Allow"].split(",")]
    for key, value in (error.extra_data or {}).items():
        if key not in _RESERVED:
            body[key] = value
    return _respond(body, headers)


def _plain_headers(headers: Any) -> dict[str, str]:
    """apiflask's headers (a mapping or pairs; values may be lists) as one string each."""
    items = headers.items() if isinstance(headers, Mapping) else (headers or [])
    out: dict[str, str] = {}
    for name, value in items:
        out[str(name)] = (
            ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        )
    return out


def _default_detail(status: int) -> str:
    if status == 404:
        return f"Nothing at {request.path}."
    if status == 405:
        return f"{request.method} is not allowed on {request.path}."
    try:
        return HTTPStatus(status).description or status_phrase(status)
    except ValueError:
        return status_phrase(status)


def init_app(app: APIFlask) -> None:
    """Install the handlers: ApiProblem, HTTP errors, validation errors, anything else (500)."""
    app.config["VALIDATION_ERROR_STATUS_CODE"] = 400

    @app.errorhandler(ApiProblem)
    def _api_problem(error: ApiProblem) -> Response:
        return _respond(error.body(), error.headers)

    app.error_processor(http_problem)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception) -> Response:
        from werkzeug.exceptions import HTTPException

        if isinstance(error, HTTPException):  # e.g. raised by a werkzeug helper
            from apiflask import HTTPError

            headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
            return http_problem(HTTPError(error.code or 500, message=error.name, headers=headers))
        request_id = g.get("request_id", "-")
        from covidnews.store import unavailable

        if unavailable(error):  # down or restarting: say so, no traceback, retry shortly
            log.warning(
                "store unavailable in %s %s (request id %s): %s",
                request.method,
                request.path,
                request_id,
                (str(error).splitlines() or [type(error).__name__])[0],
            )
            return problem_response(
                503,
                "The database is unavailable for a moment (restarting or unreachable); "
                "try again shortly.",
                type=TYPE_STORE_UNAVAILABLE,
                title="Store unavailable",
                headers={"Retry-After": str(STORE_RETRY_AFTER)},
            )
        log.error(
            "unhandled error in %s %s (request id %s)",
            request.method,
            request.path,
            request_id,
            exc_info=error,
        )
        return problem_response(
            500,
            "An unexpected error occurred; it has been logged. Quote the request id when "
            "reporting it.",
        )
