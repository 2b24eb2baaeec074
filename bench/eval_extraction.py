"""Article extraction quality on every real page of ../shared/data/extraction (docs/quality.md).

Pages: the 28 real Spanish-language news pages of the seven folders (fundus, fundus_history,
liqen_scraper, mozilla_readability, go_readability, c4v_py, newspaper4k), each with expected
fields. Fields and metrics, per page then averaged over the pages that have the field:

- **body**: token F1 of the extracted text against the expected body (words, lower-cased), with
  precision and recall;
- **title**: exact match after collapsing whitespace;
- **day**: the publication day in the outlet's own time zone (an expected instant written in UTC
  is converted to the zone of the outlet's country first); a page with no expected date is left
  out, and a date where none is expected is not counted either way;
- **authors**: exact match of the set of names (case, accents and spacing folded; an expected
  raw byline such as "S. Fernández / N. Val" counts as its two names).

Systems, on the same pages in the same run: ``covidnews`` (``crawler.extract.extract`` with the
outlet's zone), ``trafilatura`` (``bare_extraction``, default settings), ``trafilatura_precision``
(``favor_precision=True``) and ``newspaper4k`` (``Article.download(input_html=…)`` + ``parse``; left
out when the package is not installed). The expected values of some folders are another
extractor's output (see the data README): read per-page misses critically, not as gospel.

Prints one JSON object. Usage: python bench/eval_extraction.py [--pages]  (--pages: per page too)
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED

EXTRACTION = SHARED / "extraction"
CORRECTIONS = Path(__file__).resolve().parents[1] / "tests" / "crawler" / "golden"
#: outlet country by host suffix, for hosts whose TLD does not say it
COUNTRY_BY_HOST = {"elpitazo.net": "VE", "cnet.com": "US", "eldiario.es": "ES"}
FIELDS = ("body", "title", "day", "authors")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).split())


def country_of(url: str) -> str:
    from covidnews.urls import host_of

    host = host_of(url)
    for suffix, country in COUNTRY_BY_HOST.items():
        if host == suffix or host.endswith("." + suffix):
            return country
    tld = host.rsplit(".", 1)[-1].upper()
    return {"COM": "ES", "NET": "ES"}.get(tld, tld)  # .com/.net here: Spanish outlets


def pages() -> list[dict[str, Any]]:
    """Every page with its expected fields: html, url, country, title, authors, day, body."""
    out = []
    for flat in sorted(EXTRACTION.glob("*/ground_truth_flat.jsonl")):
        for line in flat.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            raw = (flat.parent / row["html_file"]).read_bytes()
            out.append(
                {
                    "id": f"{flat.parent.name}/{row['html_file'].split('.')[0]}",
                    "html": gzip.decompress(raw) if row["html_file"].endswith(".gz") else raw,
                    "url": row["url"],
                    "title": row.get("title"),
                    "authors": row.get("authors"),
                    "published": row.get("publishing_date"),
                    "body": row.get("body_text"),
                }
            )
    np4k = EXTRACTION / "newspaper4k"
    meta = json.loads((np4k / "spanish_article.json").read_text(encoding="utf-8"))
    fixes = json.loads((CORRECTIONS / "newspaper4k_corrections.json").read_text("utf-8"))
    out.append(
        {
            "id": "newspaper4k/spanish_article",
            "html": (np4k / "spanish_article.html").read_bytes(),
            "url": meta["url"],
            "title": meta["title"],
            "authors": fixes["authors"],
            "published": fixes["published_day"],
            "body": (np4k / "spanish_article.txt").read_text(encoding="utf-8"),
        }
    )
    for page in out:
        page["country"] = country_of(page["url"])
        page["day"] = expected_day(page["published"], page["country"])
    return out


def expected_day(value: str | None, country: str) -> date | None:
    """The outlet's local day of an expected date (UTC instants converted to its zone)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None and parsed.utcoffset() == datetime.min.resolution * 0:
        from crawler.dates import zone_for

        parsed = parsed.astimezone(zone_for(country))
    return parsed.date()


def token_f1(got: str, expected: str) -> tuple[float, float, float]:
    a = Counter(re.findall(r"\w+", got.lower()))
    b = Counter(re.findall(r"\w+", expected.lower()))
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    precision, recall = overlap / sum(a.values()), overlap / sum(b.values())
    return 2 * precision * recall / (precision + recall), precision, recall


# Systems: html bytes, url, country → {"title", "text", "authors", "day"} ----------------------


def covidnews_system(page: dict[str, Any]) -> dict[str, Any]:
    from crawler.dates import zone_for
    from crawler.extract import extract

    zone = zone_for(page["country"])
    got = extract(page["html"], page["url"], tz=zone)
    when = got.published_at
    return {
        "title": got.title,
        "text": got.text,
        "authors": got.authors,
        "day": when.astimezone(zone).date() if when else None,
    }


def _trafilatura(precision: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def run(page: dict[str, Any]) -> dict[str, Any]:
        import trafilatura

        from crawler.extract import decode_html

        doc = trafilatura.bare_extraction(
            decode_html(page["html"]), url=page["url"], favor_precision=precision,
            with_metadata=True,
        )  # fmt: skip
        if doc is None:
            return {"title": "", "text": "", "authors": [], "day": None}
        data = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
        author = data.get("author") or ""
        raw_day = data.get("date")
        return {
            "title": data.get("title") or "",
            "text": data.get("text") or "",
            "authors": [a.strip() for a in author.split(";") if a.strip()],
            "day": date.fromisoformat(raw_day[:10]) if raw_day else None,
        }

    return run


def newspaper4k_system(page: dict[str, Any]) -> dict[str, Any]:
    import newspaper

    from crawler.extract import decode_html

    article = newspaper.Article(page["url"], language="es", fetch_images=False)
    article.download(input_html=decode_html(page["html"]))
    article.parse()
    when = article.publish_date
    if when is not None and when.tzinfo is not None:
        when = when.astimezone(ZoneInfo("UTC"))
    return {
        "title": article.title or "",
        "text": article.text or "",
        "authors": list(article.authors or []),
        "day": when.date() if when else None,
    }


def systems() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    found: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "covidnews": covidnews_system,
        "trafilatura": _trafilatura(False),
        "trafilatura_precision": _trafilatura(True),
    }
    try:
        import newspaper  # noqa: F401
    except ImportError:
        pass
    else:
        found["newspaper4k"] = newspaper4k_system
    return found


def score(page: dict[str, Any], got: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if page["body"]:
        f1, p, r = token_f1(got["text"], page["body"])
        out["body"], out["body_precision"], out["body_recall"] = f1, p, r
    if page["title"]:
        out["title"] = float(" ".join(got["title"].split()) == " ".join(page["title"].split()))
    if page["day"] is not None:
        out["day"] = float(got["day"] == page["day"])
    if page["authors"] is not None:
        # Some expected values are a raw byline ("S. Fernández / N. Val"): names split on " / ".
        expected = {_fold(n) for a in page["authors"] for n in a.split(" / ")}
        out["authors"] = float({_fold(a) for a in got["authors"]} == expected)
    return out


def evaluate(all_pages: list[dict[str, Any]], per_page: bool = False) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for name, system in systems().items():
        scores: dict[str, list[float]] = {}
        rows = []
        for page in all_pages:
            try:
                got = system(page)
            except Exception as exc:  # a system failing on a page scores 0 there
                got = {"title": "", "text": "", "authors": [], "day": None, "error": str(exc)}
            s = score(page, got)
            for key, value in s.items():
                scores.setdefault(key, []).append(value)
            rows.append({"page": page["id"], **{k: round(v, 3) for k, v in s.items()}})
        summary: dict[str, Any] = {
            key: {"mean": round(sum(values) / len(values), 3), "pages": len(values)}
            for key, values in sorted(scores.items())
        }
        if per_page:
            summary["per_page"] = rows
        results[name] = summary
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pages", action="store_true", help="Per-page scores too.")
    args = parser.parse_args()
    all_pages = pages()
    out = {"pages": len(all_pages), "systems": evaluate(all_pages, args.pages)}
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
