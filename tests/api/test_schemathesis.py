"""Property-based API testing: schemathesis generates requests from /api/v1/openapi.json and
checks that no response is a 5xx and every response matches its documented schema.

Driven through hypothesis directly (one bounded run per operation) rather than schemathesis'
pytest plugin, which does not support this pytest version's node ids."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from tests.conftest import Corpus

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.mark.slow
def test_api_has_no_5xx_and_matches_its_schema(corpus: Corpus) -> None:
    app = create_app({"SETTINGS": corpus.settings, "TESTING": True, "RATELIMIT_ENABLED": False})
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/api/v1/search", "/api/v1/export", "/api/v1/stats"} <= paths
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
