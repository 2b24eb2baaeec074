"""Golden-file extraction tests over real publisher pages (fundus and newspaper4k test data).

Exact title, authors and publication day; body token-F1 >= 0.95 against the expected text.
Parametrised over every page in ../shared/data/extraction, and over the pages committed in
tests/crawler/pages/ (``<name>.html.gz`` + ``<name>.json`` with url, title, authors,
published_day, text: how a new source's page becomes a test, docs/adding-a-source.md).
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from crawler.extract import extract
from tests.conftest import SHARED

EXTRACTION = SHARED / "extraction"
HERE = Path(__file__).parent


def _cases() -> list[Any]:
    cases = []
    flat = EXTRACTION / "fundus" / "ground_truth_flat.jsonl"
    for line in flat.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        cases.append(
            pytest.param(
                EXTRACTION / "fundus" / row["html_file"],
                row["url"],
                {
                    "title": row["title"],
                    "authors": row["authors"],
                    "published_day": row["publishing_date"][:10],
                    "text": row["body_text"],
                },
                id=row["html_file"].removesuffix(".html.gz"),
            )
        )
    np4k = EXTRACTION / "newspaper4k"
    meta = json.loads((np4k / "spanish_article.json").read_text(encoding="utf-8"))
    fixes = json.loads(
        (HERE / "golden" / "newspaper4k_corrections.json").read_text(encoding="utf-8")
    )
    cases.append(
        pytest.param(
            np4k / "spanish_article.html",
            meta["url"],
            {
                "title": meta["title"],
                "authors": fixes["authors"],
                "published_day": fixes["published_day"],
                "text": (np4k / "spanish_article.txt").read_text(encoding="utf-8"),
            },
            id="newspaper4k-ultimahora",
        )
    )
    for expected_file in sorted((HERE / "pages").glob("*.json")):
        expected = json.loads(expected_file.read_text(encoding="utf-8"))
        page = expected_file.with_name(expected_file.stem + ".html.gz")
        cases.append(
            pytest.param(page, expected["url"], expected, id=f"pages-{expected_file.stem}")
        )
    return cases


def token_f1(got: str, expected: str) -> float:
    a = Counter(re.findall(r"\w+", got.lower()))
    b = Counter(re.findall(r"\w+", expected.lower()))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize(("path", "url", "expected"), _cases())
def test_golden_page(path: Path, url: str, expected: dict[str, Any]) -> None:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    page = extract(raw, url)
    assert page.title == expected["title"].strip()
    assert page.authors == expected["authors"]
    assert page.published_at is not None
    assert page.published_at.date().isoformat() == expected["published_day"]
    assert page.published_at.tzinfo is not None
    f1 = token_f1(page.text, expected["text"])
    assert f1 >= 0.95, f"body token-F1 {f1:.3f}"
    assert page.language == "es"
    assert page.is_article


def test_token_f1_can_fail() -> None:
    assert token_f1("uno dos tres", "uno dos tres") == 1.0
    assert token_f1("uno dos", "tres cuatro") == 0.0
    assert 0.5 < token_f1("uno dos tres cuatro", "uno dos tres cinco") < 0.8
