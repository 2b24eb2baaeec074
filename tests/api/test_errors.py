"""Every error is RFC 9457 problem details; bad input is a 400 naming the parameter, never a 500."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from apiflask import APIFlask
from flask import Response

from api.errors import PROBLEM_MIMETYPE


def problem(response: Response, status: int) -> dict[str, Any]:
    """Check the problem-details shape; return the body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MIMETYPE
    body = response.get_json(force=True)
    assert isinstance(body, dict)
    assert body["status"] == status
    for member in ("type", "title", "detail", "instance", "request_id"):
        assert isinstance(body[member], str) and body[member], member
    assert body["request_id"] == response.headers["X-Request-ID"]
    return body


def test_404_is_a_problem(app: APIFlask) -> None:
    body = problem(app.test_client().get("/api/v1/no-such-thing"), 404)
    assert body["type"] == "about:blank"
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/no-such-thing"
    # Outside /api too.
    problem(app.test_client().get("/nowhere"), 404)


def test_405_is_a_problem_with_allow(app: APIFlask) -> None:
    response = app.test_client().delete("/api/test/ping")
    body = problem(response, 405)
    assert "GET" in response.headers["Allow"]
    assert "GET" in body["allowed_methods"]


def test_missing_and_malformed_query_parameters_are_400_by_name(app: APIFlask) -> None:
    client = app.test_client()
    body = problem(client.get("/api/test/echo?limit=abc"), 400)
    assert set(body["errors"]) == {"q", "limit"}
    assert body["errors"]["limit"] == ["Not a valid integer."]
    assert body["locations"] == {"q": "query", "limit": "query"}
    assert "'limit'" in body["detail"] and "'q'" in body["detail"]

    body = problem(client.get("/api/test/echo?q=vacuna&limit=1000"), 400)
    assert body["param"] == "limit"
    assert list(body["errors"]) == ["limit"]
    assert body["detail"].startswith("Invalid parameter 'limit'")

    ok = client.get("/api/test/echo?q=vacuna")
    assert ok.status_code == 200
    assert ok.get_json() == {"q": "vacuna", "limit": 10, "key": None}


def test_bad_json_bodies_are_400(app: APIFlask) -> None:
    client = app.test_client()
    body = problem(client.post("/api/test/ids", json={"ids": ["x", 2]}), 400)
    assert body["errors"] == {"ids": ["Not a valid integer."]}
    problem(client.post("/api/test/ids", data="{not json", content_type="application/json"), 400)
    body = problem(client.post("/api/test/ids", json={}), 400)
    assert body["param"] == "ids"


def test_bad_param_helper(app: APIFlask) -> None:
    body = problem(app.test_client().get("/api/test/bad-param"), 400)
    assert body["param"] == "since"
    assert body["errors"] == {"since": ["must be a date (YYYY-MM-DD)"]}
    assert body["type"] == "urn:covidnews:problem:invalid-parameter"
    assert "since" in body["detail"]


def test_api_problem_with_extension_members(app: APIFlask) -> None:
    body = problem(app.test_client().get("/api/test/conflict"), 409)
    assert body["title"] == "Export busy"
    assert body["detail"] == "The export is still running."
    assert body["job"] == "abc"


def test_500_hides_the_error_and_logs_it_with_the_request_id(
    app: APIFlask, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        response = app.test_client().get("/api/test/boom", headers={"X-Request-ID": "req-42"})
    body = problem(response, 500)
    text = response.get_data(as_text=True)
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert body["request_id"] == "req-42"
    records = [r for r in caplog.records if "req-42" in r.getMessage()]
    assert records and records[0].exc_info is not None
    assert getattr(records[0], "request_id", None) == "req-42"


@pytest.mark.parametrize(
    "query",
    [
        "?q=%00",
        "?q=" + "x" * 5000,
        "?q=a&limit=-1",
        "?q=a&limit=1e9",
        "?q=a&limit=%F0%9F%A6%A0",
        "?q=%ZZ",
    ],
)
def test_odd_input_never_500(app: APIFlask, query: str) -> None:
    response = app.test_client().get("/api/test/echo" + query)
    assert response.status_code < 500
