"""Parsing and validation of ingest lines (pure functions) and stream ingest into a real store."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from covidnews.ingest import (
    RecordError,
    apply_field_map,
    ingest_path,
    ingest_stream,
    parse_line,
    parse_record,
)
from covidnews.store import Store

GOOD = {"url": "https://diario.example/a", "text": "Texto."}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ([1, 2], "expected a JSON object"),
        ({"text": "x"}, "missing required field 'url'"),
        ({"url": "", "text": "x"}, "missing required field 'url'"),
        ({"url": 5, "text": "x"}, "'url' must be a string"),
        ({"url": "notaurl", "text": "x"}, "invalid 'url'"),
        ({"url": "https://d.example/a"}, "missing required field 'text'"),
        ({"url": "https://d.example/a", "text": "  \n "}, "'text' is empty"),
        ({"url": "https://d.example/a", "text": ["x"]}, "'text' must be a string"),
        ({**GOOD, "title": 3}, "'title' must be a string"),
        ({**GOOD, "language": "spanish"}, "ISO 639-1"),
        ({**GOOD, "country": "México"}, "ISO 3166-1"),
        ({**GOOD, "published_at": "12/03/2020"}, "ISO 8601"),
        ({**GOOD, "published_at": 1584000000}, "ISO 8601"),
        ({**GOOD, "published_at": "0020-03-12"}, "out of range"),
        ({**GOOD, "authors": [1]}, "list of strings"),
        ({**GOOD, "id": {"a": 1}}, "'id' must be a string"),
        ({**GOOD, "source": True}, "'source' must be a string"),
    ],
)
def test_bad_records_name_the_problem(obj: Any, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_record(obj)


def test_good_record_is_normalised() -> None:
    r = parse_record(
        {
            "url": "https://www.diario.example/a?utm_source=tw",
            "text": "Primer párrafo.\r\nSegundo.\n",
            "title": "  Vacunas   llegan ",
            "id": 42,
            "language": "es-MX",
            "country": "mx",
            "published_at": "2020-03-12T10:00:00+01:00",
            "authors": ["Ana  Pérez", "Ana Pérez", " "],
            "source": " El Universal ",
            "label": "true",
        }
    )
    assert r.url == "https://www.diario.example/a"
    assert r.text == "Primer párrafo.\nSegundo."
    assert r.title == "Vacunas llegan"
    assert r.external_id == "42"
    assert r.language == "es"
    assert r.country == "MX"
    assert r.published_at == datetime(2020, 3, 12, 9, tzinfo=UTC)
    assert r.authors == ["Ana Pérez"]
    assert r.source == "El Universal"
    assert r.extra == {"label": "true"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2020-03-12", datetime(2020, 3, 12, tzinfo=UTC)),
        ("2020-03-12T10:00:00Z", datetime(2020, 3, 12, 10, tzinfo=UTC)),
        ("2020-03-12T10:00:00", datetime(2020, 3, 12, 10, tzinfo=UTC)),
        (
            "2020-03-12 10:00:00-05:00",
            datetime(2020, 3, 12, 10, tzinfo=timezone(timedelta(hours=-5))),
        ),
        (None, None),
        ("", None),
    ],
)
def test_published_at_formats(value: Any, expected: Any) -> None:
    assert parse_record({**GOOD, "published_at": value}).published_at == expected


def test_field_map_renames() -> None:
    row = {"headline": "T", "link": "https://d.example/x", "text": "x", "title": "old"}
    mapped = apply_field_map(row, {"headline": "title", "link": "url"})
    assert mapped == {"title": "T", "url": "https://d.example/x", "text": "x"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid JSON"),
        (b'"just a string"', "expected a JSON object"),
    ],
)
def test_bad_lines(raw: bytes, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_line(raw, {})


def _jsonl(rows: list[Any]) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()) + b"\n"
        for r in rows
    )


def test_stream_keeps_good_lines_and_numbers_bad_ones(store: Store) -> None:
    data = b"\xef\xbb\xbf" + _jsonl(
        [
            {"url": "https://d.example/1", "text": "uno"},
            b"",
            b"{broken",
            {"url": "https://d.example/2", "text": "dos"},
            {"url": "https://d.example/3", "text": ""},
            b"   ",
            {"text": "sin url"},
            {"url": "https://d.example/4", "text": "cuatro"},
        ]
    )
    seen: list[int] = []
    report = ingest_stream(
        store, io.BytesIO(data), batch_size=2, on_bad=lambda b: seen.append(b.line)
    )
    assert [b.line for b in report.bad] == [3, 5, 7] == seen
    assert report.inserted == 3
    assert report.lines == 6
    assert store.stats()["articles"] == 3


def test_gzip_input(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(path, "wb") as f:
        f.write(_jsonl([{"url": f"https://d.example/{i}", "text": "t"} for i in range(5)]))
    assert ingest_path(store, path).inserted == 5


def test_extra_fields_are_kept(store: Store) -> None:
    ingest_stream(store, io.BytesIO(_jsonl([{**GOOD, "label": "fake", "topics": ["vaccines"]}])))
    from sqlalchemy import select

    from covidnews.schema import Article

    with store.session() as s:
        assert s.scalar(select(Article.extra)) == {"label": "fake", "topics": ["vaccines"]}
