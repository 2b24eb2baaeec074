"""The OpenAPI document and the interactive docs, which must work without internet."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urljoin

from apiflask import APIFlask
from openapi_spec_validator import validate

import api


def test_docs_use_only_local_assets(app: APIFlask) -> None:
    client = app.test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assets = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 4  # css, favicon, bundle, preset
    for url in assets:
        assert not re.match(r"(?i)(https?:)?//", url), url
        path = urljoin("http://localhost/api/docs", url).removeprefix("http://localhost")
        response = client.get(path)
        assert response.status_code == 200, path
        assert len(response.data) > 100, path
    assert '"validatorUrl": null' in html  # no call to the online validator
    assert "/api/v1/openapi.json" in html


def test_swagger_ui_licence_is_shipped() -> None:
    folder = Path(api.__file__).parent / "static" / "swagger-ui"
    assert "Apache License" in (folder / "LICENSE").read_text()


def test_openapi_document_is_valid(app: APIFlask) -> None:
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    info = spec["info"]
    assert info["title"] == "covidnews API"
    assert info["version"]
    assert "RFC 9457" in info["description"]
    assert info["contact"]["url"].startswith("https://")
    assert info["license"]["identifier"] == "MIT"
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKeyAuth"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    assert "/healthz" in spec["paths"] and "/readyz" in spec["paths"]
    assert "/metrics" not in spec["paths"]

    echo = spec["paths"]["/api/test/echo"]["get"]
    assert {"ApiKeyAuth": []} in echo["security"] and {} in echo["security"]
    for code in ("400", "401", "429"):
        assert "application/problem+json" in echo["responses"][code]["content"], code
    assert "Retry-After" in echo["responses"]["429"]["headers"]
    assert "RateLimit-Remaining" in echo["responses"]["200"]["headers"]
    names = {p["name"] for p in echo["parameters"]}
    assert names == {"q", "limit"}
