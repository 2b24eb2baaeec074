"""App fixtures: a real app (create_app) on a real store, with a test blueprint under /api/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIBlueprint, APIFlask, Schema, fields, validators
from flask import g

from api import create_app
from api.errors import ApiProblem, bad_param
from covidnews.settings import Settings, load_settings

REDIS_DB = 15  # the rate-limit tests' database on the test Redis server (tests/servers.py)


class EchoQuery(Schema):
    q = fields.String(required=True, validate=validators.Length(min=1))
    limit = fields.Integer(load_default=10, validate=validators.Range(1, 100))


class IdsBody(Schema):
    ids = fields.List(fields.Integer(), required=True)


def _test_blueprint() -> APIBlueprint:
    bp = APIBlueprint("testing", __name__, url_prefix="/api/test", tag="Testing")

    @bp.get("/echo")
    @bp.input(EchoQuery, location="query")
    def echo(query_data: dict[str, Any]) -> dict[str, Any]:
        key = g.get("api_key")
        return {**query_data, "key": key.name if key else None}

    @bp.post("/ids")
    @bp.input(IdsBody)
    def ids(json_data: dict[str, Any]) -> dict[str, Any]:
        return json_data

    @bp.get("/ping")
    def ping() -> dict[str, Any]:
        return {"pong": True}

    @bp.get("/bad-param")
    def bad() -> dict[str, Any]:
        raise bad_param("since", "must be a date (YYYY-MM-DD)")

    @bp.get("/conflict")
    def conflict() -> dict[str, Any]:
        raise ApiProblem(409, "The export is still running.", title="Export busy", job="abc")

    @bp.get("/boom")
    def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals /etc/passwd")

    return bp


def make_settings(tmp_path: Path, db_url: str | None = None, **overrides: Any) -> Settings:
    # No follower runs beside these apps: /readyz does not wait for indexes unless a test asks.
    values: dict[str, Any] = {"data_dir": tmp_path / "var", "redis_url": None, "index_max_lag": 0}
    if db_url:
        values["database_url"] = db_url
    values.update(overrides)
    return load_settings(**values)


AppFactory = Callable[..., APIFlask]


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    """Build apps: ``make_app(db_url=None, config=None, **settings)``; closed afterwards."""
    made: list[APIFlask] = []

    def factory(
        db_url: str | None = None, config: dict[str, Any] | None = None, **settings: Any
    ) -> APIFlask:
        app = create_app(
            {"TESTING": True, "SETTINGS": make_settings(tmp_path, db_url, **settings)}
            | (config or {})
        )
        app.register_blueprint(_test_blueprint())
        made.append(app)
        return app

    yield factory
    for app in made:
        app.extensions["covidnews"].close()


@pytest.fixture
def app(make_app: AppFactory) -> APIFlask:
    """An app on SQLite with the in-memory limiter (for tests where the store does not matter)."""
    return make_app()
