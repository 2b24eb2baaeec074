"""``covidnews ingest``: researchers bring their own corpus as JSONL.

One JSON object per line::

    {"url": "https://…", "text": "…", "title": "…", "id": "…", "language": "es",
     "published_at": "2020-03-12T10:00:00+01:00", "source": "El País", "country": "ES",
     "authors": ["…"]}

``url`` and a non-empty ``text`` are required; everything else is optional. Fields the schema
does not know are kept in the article's ``extra``. Valid lines are stored even when others are bad;
each bad line is reported with its number and reason (and can be written to an errors file, so
nothing is lost). Rows are stored in batches, each batch one transaction, so a killed ingest leaves
a consistent database and re-running the same file completes it without duplicates.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

from covidnews.dedup import group_copies
from covidnews.fingerprint import content_hash, normalise_text, simhash
from covidnews.store import ArticleRecord, Store
from covidnews.urls import InvalidURL, canonical_url, url_hash

KNOWN_FIELDS = frozenset(
    {
        "url", "text", "title", "id", "language", "published_at", "source", "country", "authors",
        "modified_at", "section", "image", "text_complete",
    }
)  # fmt: skip
MAX_LINE_BYTES = 20 * 1024 * 1024  # a line larger than this is reported, not parsed
_LANG = re.compile(r"^([A-Za-z]{2})(?:[-_][A-Za-z0-9]{1,8})*$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


class RecordError(ValueError):
    """Why one input line was rejected."""


@dataclass(slots=True)
class BadLine:
    line: int
    reason: str
    raw: str


@dataclass(slots=True)
class IngestReport:
    lines: int = 0  # non-blank lines read
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    syndicated: int = 0  # new articles found to be copies of a stored story
    bad: list[BadLine] = field(default_factory=list)
    article_ids: list[int] = field(default_factory=list)  # inserted or changed

    @property
    def ok(self) -> bool:
        return not self.bad

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "stored": self.inserted + self.updated + self.unchanged,
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "syndicated": self.syndicated,
            "bad": len(self.bad),
            "bad_lines": [{"line": b.line, "reason": b.reason} for b in self.bad[:1000]],
        }


# Field parsing ------------------------------------------------------------------------------


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RecordError(f"'{key}' must be a string, got {type(value).__name__}")
    value = str(value).strip()
    return value or None


def parse_datetime(
    value: object, key: str = "published_at", *, keep_zone: bool = False
) -> datetime | None:
    """ISO 8601 date or date-time; a time without a zone is taken as UTC. Returned in UTC, or
    with the offset it was written in when ``keep_zone``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise RecordError(f"'{key}' must be an ISO 8601 string, got {type(value).__name__}")
    raw = value.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise RecordError(f"'{key}' is not an ISO 8601 date: {raw[:60]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not 1900 <= parsed.year <= 2200:
        raise RecordError(f"'{key}' year {parsed.year} is out of range")
    return parsed if keep_zone else parsed.astimezone(UTC)


def offset_minutes(value: datetime | None) -> int | None:
    """The UTC offset of an aware datetime in minutes (None for None)."""
    offset = value.utcoffset() if value is not None else None
    return None if offset is None else int(offset.total_seconds() // 60)


def parse_language(value: object) -> str | None:
    """ISO 639-1 code; a BCP 47 tag such as ``es-MX`` is reduced to ``es``."""
    raw = _opt_str({"language": value}, "language")
    if raw is None:
        return None
    match = _LANG.match(raw)
    if not match:
        raise RecordError(f"'language' must be an ISO 639-1 code such as 'es', got {raw[:40]!r}")
    return match.group(1).lower()


def parse_country(value: object) -> str | None:
    raw = _opt_str({"country": value}, "country")
    if raw is None:
        return None
    if not _COUNTRY.match(raw):
        raise RecordError(
            f"'country' must be an ISO 3166-1 alpha-2 code such as 'MX', got {raw[:40]!r}"
        )
    return raw.upper()


def parse_authors(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise RecordError("'authors' must be a list of strings")
    seen: dict[str, None] = {}
    for author in value:
        name = " ".join(author.split())
        if name:
            seen.setdefault(name, None)
    return list(seen)


def _record_hash(fields: Mapping[str, Any]) -> str:
    payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_record(obj: object, *, origin: str = "ingest") -> ArticleRecord:
    """Validate one input object into an :class:`ArticleRecord` or raise :class:`RecordError`.

    Besides the documented ingest fields, ``modified_at`` (ISO 8601), ``section``, ``image``
    (URL) and ``text_complete`` (false: a wall kept part of the text away) are understood; the
    crawler builds its records through this same function.
    """
    if not isinstance(obj, dict):
        raise RecordError(f"expected a JSON object, got {type(obj).__name__}")
    raw_url = obj.get("url")
    if raw_url is None or (isinstance(raw_url, str) and not raw_url.strip()):
        raise RecordError("missing required field 'url'")
    if not isinstance(raw_url, str):
        raise RecordError("'url' must be a string")
    try:
        url = canonical_url(raw_url)
    except InvalidURL as exc:
        raise RecordError(f"invalid 'url': {exc}") from None
    text = obj.get("text")
    if text is None:
        raise RecordError("missing required field 'text'")
    if not isinstance(text, str):
        raise RecordError("'text' must be a string")
    if not text.strip():
        raise RecordError("'text' is empty")
    title = obj.get("title")
    if title is not None and not isinstance(title, str):
        raise RecordError("'title' must be a string")
    text = text.replace("\r\n", "\n").strip()
    title = normalise_text(title or "")
    published = parse_datetime(obj.get("published_at"), keep_zone=True)
    fields: dict[str, Any] = {
        "url": url,
        "title": title,
        "text": text,
        "external_id": _opt_str(obj, "id"),
        "language": parse_language(obj.get("language")),
        "country": parse_country(obj.get("country")),
        "source": _opt_str(obj, "source"),
        "authors": parse_authors(obj.get("authors")),
        "published_at": published.astimezone(UTC) if published else None,
        "published_offset": offset_minutes(published),
        "modified_at": parse_datetime(obj.get("modified_at"), "modified_at"),
        "section": _opt_str(obj, "section"),
        "image_url": _opt_str(obj, "image"),
        "extra": {k: v for k, v in obj.items() if k not in KNOWN_FIELDS},
    }
    complete = obj.get("text_complete", True)
    if not isinstance(complete, bool):
        raise RecordError("'text_complete' must be true or false")
    if not complete:  # (hashed only when false: complete records hash as before the field)
        fields["text_complete"] = False
    if fields["external_id"] and len(fields["external_id"]) > 255:
        raise RecordError("'id' is longer than 255 characters")
    if fields["source"] and len(fields["source"]) > 200:
        raise RecordError("'source' is longer than 200 characters")
    return ArticleRecord(
        url_hash=url_hash(url),
        content_hash=content_hash(title, text),
        # (an offset of 0 hashes as before it was stored: re-ingesting UTC data changes nothing)
        record_hash=_record_hash({k: v for k, v in fields.items() if k != "published_offset" or v}),
        simhash=simhash(text),  # body only: outlets retitle syndicated copies
        origin=origin,
        **fields,
    )


def apply_field_map(obj: object, field_map: Mapping[str, str]) -> object:
    """Rename input keys (``--map headline=title``); a mapped key replaces the target key."""
    if not field_map or not isinstance(obj, dict):
        return obj
    out = {k: v for k, v in obj.items() if k not in field_map}
    for src, dst in field_map.items():
        if src in obj:
            out[dst] = obj[src]
    return out


# Reading ------------------------------------------------------------------------------------


@contextlib.contextmanager
def open_input(path: str) -> Iterator[IO[bytes]]:
    """``-`` is standard input (left open); ``.gz`` files are decompressed."""
    if path == "-":
        yield sys.stdin.buffer
        return
    with open(path, "rb") as handle:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=handle) as unzipped:
                yield unzipped  # type: ignore[misc]
        else:
            yield handle


def iter_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, raw bytes) for every line, 1-based, newline stripped."""
    number = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            # Skip the rest of an oversized line, keep numbering right.
            while raw and not raw.endswith(b"\n"):
                raw = stream.readline(MAX_LINE_BYTES)
            yield number, b"\x00OVERSIZED"
            continue
        yield number, raw.rstrip(b"\r\n")


def parse_line(raw: bytes, field_map: Mapping[str, str]) -> ArticleRecord:
    if raw == b"\x00OVERSIZED":
        raise RecordError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid UTF-8 at byte {exc.start}") from None
    try:
        obj = json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise RecordError(f"invalid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RecordError("invalid JSON: nested too deeply") from None
    return parse_record(apply_field_map(obj, field_map))


def ingest_stream(
    store: Store,
    stream: IO[bytes],
    *,
    batch_size: int = 500,
    field_map: Mapping[str, str] | None = None,
    on_bad: Callable[[BadLine], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
) -> IngestReport:
    """Read JSONL from ``stream`` and store it in batches (one transaction each).

    ``on_bad`` sees each rejected line as it is found; ``on_progress`` gets the bytes consumed;
    ``on_batch`` gets the ids of the articles each committed batch inserted or changed.
    """
    report = IngestReport()
    batch: list[ArticleRecord] = []
    mapping = dict(field_map or {})

    def flush() -> None:
        if not batch:
            return
        result = store.upsert_articles(batch)
        if result.inserted:
            with store.session() as session:
                report.syndicated += group_copies(session, result.inserted)
        report.inserted += len(result.inserted)
        report.updated += len(result.updated)
        report.unchanged += result.unchanged
        report.article_ids.extend(result.changed_ids)
        if on_batch and result.changed_ids:
            on_batch(result.changed_ids)
        batch.clear()

    for number, raw in iter_lines(stream):
        if on_progress:
            on_progress(len(raw) + 1)
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]  # UTF-8 byte-order mark
        if not raw.strip():
            continue
        report.lines += 1
        try:
            batch.append(parse_line(raw, mapping))
        except RecordError as exc:
            bad = BadLine(number, str(exc), raw[:10_000].decode("utf-8", "replace"))
            report.bad.append(bad)
            if on_bad:
                on_bad(bad)
            continue
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


def ingest_path(store: Store, path: str | Path, **kwargs: Any) -> IngestReport:
    """Ingest a JSONL file (``.gz`` allowed) or ``-`` for standard input."""
    with open_input(str(path)) as stream:
        return ingest_stream(store, stream, **kwargs)


def write_bad_lines(bad: BadLine, handle: io.TextIOBase | IO[str]) -> None:
    """One JSON object per rejected line: its number, the reason and the original text."""
    handle.write(
        json.dumps({"line": bad.line, "reason": bad.reason, "raw": bad.raw}, ensure_ascii=False)
        + "\n"
    )
    handle.flush()
