"""Generate ``content.json`` for the demo news site from the shared, openly licensed corpora.

    python -m crawler.demo_site.build_content [--data /work/shared/data] [--out FILE]

Reads FakeDeS (CC BY 4.0) and covid19mx-corpus (CC BY 4.0) from the shared data folder and writes
the articles of the fictional outlets: every title and paragraph is a verbatim (whitespace
-normalised) excerpt of the record named by the article's ``source``; outlets, authors, URLs and
dates are invented, deterministically. The server reads only the generated file at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crawler.demo_site.outlets import OUTLETS, amp_path, article_path, slugify

DEFAULT_DATA = Path(os.environ.get("COVIDNEWS_SHARED_DATA", "/work/shared/data"))
DEFAULT_OUT = Path(__file__).with_name("content.json")

MAX_PARAGRAPHS = 8
MAX_PARAGRAPH_CHARS = 1100
MAX_ARTICLE_CHARS = 5200

FAKEDES_DEV = "fakedes/labelled_dev"
FAKEDES_TRAIN = "fakedes/train"
COVID19MX = "covid19mx/corpus_simple"

# Taxonomy topic -> section of the fictional outlets.
TOPIC_SECTION = {
    "cases": "Salud",
    "vaccines": "Salud",
    "health_care": "Salud",
    "measures": "Sociedad",
    "economy": "Economía",
    "education": "Educación",
    "travel": "Mundo",
    "science": "Ciencia",
    "misinformation": "Verificación",
    "politics": "Política",
    "society": "Sociedad",
}
# FakeDeS 2018 topic -> section.
FAKEDES_TOPIC_SECTION = {
    "Sport": "Deportes",
    "Science": "Ciencia",
    "Entertainment": "Espectáculos",
    "Economy": "Economía",
    "Education": "Educación",
    "Health": "Salud",
    "Security": "Seguridad",
    "Politics": "Política",
    "Society": "Sociedad",
}

# Fictional staff of each outlet.
AUTHORS = {
    "elfaro": ["Martina Echeverría", "Julián Ferreyra", "Sofía Benítez", "Lucas Maidana"],
    "lamontana": ["Valentina Ospina", "Andrés Felipe Ríos", "Laura Cárdenas", "Camilo Restrepo"],
    "delvalle": ["Guadalupe Treviño", "Emiliano Zárate", "Ximena Olvera", "Rodrigo Salinas"],
    "gaceta": ["Yokasta Peña", "Ramón Almonte", "Altagracia Fermín"],
    "cronica": ["Rosa Huamán", "Diego Quispe", "Milagros Chávez", "Renzo Valdivia"],
    "saludhoy": ["Elena Muñiz", "Pablo Arrieta", "Nuria Castells"],
}

# How many Covid items from FakeDeS each outlet carries (40 in all) ...
COVID_SHARE = {
    "elfaro": 10,
    "lamontana": 8,
    "delvalle": 5,
    "gaceta": 6,
    "cronica": 6,
    "saludhoy": 5,
}
# ... which outlets have article-looking pages under a robots.txt-disallowed prefix ...
DISALLOWED_SHARE = {"elfaro": 2, "cronica": 1}
# ... and the non-Covid 2018 items (FakeDeS train ids, no *NUMBER* placeholders) per outlet.
NON_COVID = {
    "elfaro": ["286", "140"],
    "lamontana": ["612", "244"],
    "delvalle": ["377"],
    "gaceta": ["192"],
    "cronica": ["13"],
    "saludhoy": ["220"],
}
COVID19MX_OUTLET = "delvalle"
COVID19MX_COUNT = 10

# Wire stories reprinted by three outlets each (a fictional agency, a real FakeDeS text).
# Per copy: outlet, title choice, lead edit, minutes after the first copy.
WIRE_GROUPS: list[dict[str, Any]] = [
    {
        "group": "wire-aln-gates",
        "source_id": "470",
        "agency": "Agencia Latina de Noticias",
        "copies": [
            ("elfaro", "headline", "full", 0),
            ("lamontana", "Gates se refiere a efectos secundarios, no a muertes", "merge", 47),
            ("delvalle", "headline", "drop", 133),
        ],
    },
    {
        "group": "wire-sip-oms",
        "source_id": "354",
        "agency": "Servicio Iberoamericano de Prensa",
        "copies": [
            ("gaceta", "headline", "full", 0),
            (
                "cronica",
                '"Han bajado la guardia": el director de OMS lamenta el aumento de casos de '
                "coronavirus",
                "merge",
                38,
            ),
            ("saludhoy", "headline", "drop", 205),
        ],
    },
]
EXCLUDED_COVID_IDS = {"52"}  # its "headline" is a list of city names

_SPEAKER = re.compile(r"^[A-ZÁÉÍÓÚÑÜ][A-ZÁÉÍÓÚÑÜ .\-]+(?:,[^:]{0,160})?:\s+")
_QA_START = re.compile(r"^(?:PREGUNTA|INTERLOCUTORA?|PREGUNTAS?)\b")
_BORING = re.compile(
    r"buenas tardes|buenas noches|buenos días|muchas gracias|les agradezco|diapositiva|"
    r"bienvenid|nos acompañ",
    re.IGNORECASE,
)


_TITLE_WORDS = re.compile(
    r"casos|confirmad|defunci|vacun|hospital|COVID|epidemi|contagi|semáforo", re.IGNORECASE
)
_FILLER = re.compile(
    r"(?:Y|Entonces|Vamos|Hoy vamos|Estamos|Pero|Después|Enseguida|Iniciamos|Aquí|Como|Esto|"
    r"Nuestro|Recordamos|Al día|Bueno|Pues|Les|Le|Ahí|Ahora|Ya|Si|Se|Siempre|Abrimos|Que|"
    r"Recordando)\b"
)


def norm(text: str) -> str:
    """Collapse all whitespace: how texts are compared with their source."""
    return " ".join(text.split())


def _hash(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def _cut(paragraph: str, limit: int = MAX_PARAGRAPH_CHARS) -> str:
    """``paragraph`` shortened to end at a sentence boundary before ``limit`` characters."""
    if len(paragraph) <= limit:
        return paragraph
    head = paragraph[:limit]
    end = max(head.rfind(". "), head.rfind("? "), head.rfind("! "), head.rfind('." '))
    if end > limit // 3:
        return head[: end + 1]
    return head[: head.rfind(" ")].rstrip(",;:")


def fakedes_paragraphs(text: str, headline: str) -> list[str]:
    lines = [norm(line) for line in text.split("\n")]
    lines = [line for line in lines if len(line) >= 25]
    if lines and norm(headline).casefold().startswith(lines[0].casefold()):
        lines = lines[1:]
    out: list[str] = []
    total = 0
    for line in lines:
        piece = _cut(line)
        if total + len(piece) > MAX_ARTICLE_CHARS and out:
            break
        out.append(piece)
        total += len(piece)
        if len(out) == MAX_PARAGRAPHS:
            break
    return out


def covid19mx_excerpt(text: str) -> tuple[str, list[str]]:
    """Title and paragraphs from the presentation part of a press-conference transcript."""
    chosen: list[str] = []
    for index, raw in enumerate(text.split("\n")):
        line = norm(raw)
        if _QA_START.match(line):
            break
        line = _SPEAKER.sub("", line)
        if index < 2 or len(line) < 180 or _BORING.search(line):
            continue
        chosen.append(_cut(line, 900))
        if len(chosen) == 6:
            break
    candidates: list[tuple[int, int, str]] = []
    for paragraph in chosen:
        for sentence in re.split(r"(?<=[.?!])\s+", paragraph):
            # the sentence itself or its beginning up to a comma
            cuts = [m.start() for m in re.finditer(r",", sentence)] + [len(sentence)]
            for cut in cuts:
                clause = sentence[:cut].rstrip(".")
                if 40 <= len(clause) <= 125 and clause[:1].isupper():
                    score = 2 * bool(_TITLE_WORDS.search(clause)) + bool(re.search(r"\d", clause))
                    score -= 3 * bool(_FILLER.match(clause))
                    score -= 2 * bool(re.search(r"\b(?:que|de|la|el|en|y|a|los|las)$", clause))
                    candidates.append((-score, len(candidates), clause))
    title = min(candidates)[2] if candidates else ""
    return title, chosen


def _zone(outlet: str) -> tzinfo:
    return ZoneInfo(OUTLETS[outlet].tz)


def _date_between(key: str, start: datetime, days: int, tz: tzinfo) -> datetime:
    h = _hash(key)
    day = start + timedelta(days=h % days)
    local = datetime(day.year, day.month, day.day, 7 + (h >> 8) % 15, (h >> 16) % 60, tzinfo=tz)
    return local


def _modified(key: str, published: datetime) -> datetime:
    h = _hash("modified", key)
    if h % 3:
        return published
    return published + timedelta(hours=1 + h % 30, minutes=(h >> 8) % 60)


def _authors(outlet: str, key: str) -> list[str]:
    pool = AUTHORS[outlet]
    h = _hash("authors", key)
    first = pool[h % len(pool)]
    if (h >> 8) % 5 == 0:
        second = pool[(h % len(pool) + 1) % len(pool)]
        return [first, second]
    return [first]


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _record(
    outlet: str,
    title: str,
    paragraphs: list[str],
    published: datetime,
    modified: datetime,
    authors: list[str],
    section: str,
    tags: list[str],
    topics: list[str],
    is_covid: bool,
    source: dict[str, str],
    syndication_group: str | None = None,
    disallowed: bool = False,
) -> dict[str, Any]:
    return {
        "outlet": outlet,
        "title": title,
        "paragraphs": paragraphs,
        "authors": authors,
        "published": published,
        "modified": modified,
        "section": section,
        "tags": tags,
        "topics": topics,
        "is_covid": is_covid,
        "source": source,
        "syndication_group": syndication_group,
        "disallowed": disallowed,
    }


def _covid_tags(topics: list[str], taxonomy: dict[str, str]) -> list[str]:
    return ["Coronavirus", *(taxonomy[t] for t in topics if t in taxonomy)]


def _load_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _taxonomy(data: Path) -> dict[str, str]:
    import yaml

    doc = yaml.safe_load((data / "taxonomy.yaml").read_text(encoding="utf-8"))
    return {str(t["id"]): str(t["es"]) for t in doc["topics"]}


def build(data: Path) -> dict[str, Any]:
    taxonomy = _taxonomy(data)
    dev = {str(r["id"]): r for r in _load_jsonl(data / "fakedes" / "labelled_dev.jsonl")}
    train = {str(r["id"]): r for r in _load_jsonl(data / "fakedes" / "train.jsonl")}
    records: list[dict[str, Any]] = []

    # --- Covid items (FakeDeS 2020-2021, label true, covid true) -------------------------------
    wire_ids = {g["source_id"] for g in WIRE_GROUPS}
    pool = [
        r
        for r in dev.values()
        if r.get("covid")
        and r["label"] == "true"
        and str(r["id"]) not in EXCLUDED_COVID_IDS | wire_ids
        and norm(r["headline"] or "")
        and len(r["text"]) <= 8000
    ]
    pool.sort(key=lambda r: int(r["id"]))
    random.Random(2020).shuffle(pool)
    start = datetime(2020, 11, 2)
    shares = [(o, n, False) for o, n in COVID_SHARE.items()]
    shares += [(o, n, True) for o, n in DISALLOWED_SHARE.items()]
    for outlet, count, disallowed in shares:
        for _ in range(count):
            row = pool.pop(0)
            rid = str(row["id"])
            key = f"{FAKEDES_DEV}:{rid}"
            published = _date_between(key, start, 140, _zone(outlet))
            topics = [str(t) for t in row["topics"]]
            records.append(
                _record(
                    outlet,
                    norm(row["headline"]),
                    fakedes_paragraphs(row["text"], row["headline"]),
                    published,
                    _modified(key, published),
                    _authors(outlet, key),
                    TOPIC_SECTION[topics[0]],
                    _covid_tags(topics, taxonomy),
                    topics,
                    True,
                    {"dataset": FAKEDES_DEV, "id": rid, "publisher": norm(row["source"])},
                    disallowed=disallowed,
                )
            )

    # --- Wire copies -------------------------------------------------------------------------
    for group in WIRE_GROUPS:
        row = dev[group["source_id"]]
        rid = str(row["id"])
        key = f"{FAKEDES_DEV}:{rid}"
        base = _date_between(key, start, 140, UTC)
        full = fakedes_paragraphs(row["text"], row["headline"])
        topics = [str(t) for t in row["topics"]]
        for outlet, title_choice, edit, minutes in group["copies"]:
            if edit == "merge":  # the lead absorbs the second paragraph
                paragraphs = [f"{full[0]} {full[1]}", *full[2:6]]
            elif edit == "drop":  # the standfirst is dropped
                paragraphs = full[1:7]
            else:
                paragraphs = full[:7]
            published = (base + timedelta(minutes=minutes)).astimezone(_zone(outlet))
            records.append(
                _record(
                    outlet,
                    norm(row["headline"]) if title_choice == "headline" else title_choice,
                    paragraphs,
                    published,
                    published,
                    [group["agency"]],
                    TOPIC_SECTION[topics[0]],
                    _covid_tags(topics, taxonomy),
                    topics,
                    True,
                    {"dataset": FAKEDES_DEV, "id": rid, "publisher": norm(row["source"])},
                    syndication_group=group["group"],
                )
            )

    # --- Press-conference excerpts (covid19mx) -----------------------------------------------
    files = sorted((data / "covid19mx" / "corpus_simple").glob("*.txt"))
    step = len(files) // COVID19MX_COUNT
    for index in range(COVID19MX_COUNT):
        path = files[8 + index * step]
        title, paragraphs = covid19mx_excerpt(path.read_text(encoding="utf-8", errors="replace"))
        if not title or len(paragraphs) < 3:
            raise SystemExit(f"{path.name}: no usable excerpt")
        key = f"{COVID19MX}:{path.stem}"
        day = datetime.fromisoformat(path.stem)
        h = _hash(key)
        published = datetime(
            day.year, day.month, day.day, 20, 15 + h % 40, tzinfo=_zone(COVID19MX_OUTLET)
        )
        authors = [] if h % 2 else _authors(COVID19MX_OUTLET, key)
        records.append(
            _record(
                COVID19MX_OUTLET,
                title,
                paragraphs,
                published,
                _modified(key, published),
                authors,
                "Salud",
                ["Coronavirus", "Conferencia de prensa", taxonomy["cases"]],
                ["cases"],
                True,
                {"dataset": COVID19MX, "id": path.stem, "publisher": "Gobierno de México"},
            )
        )

    # --- Non-Covid items (FakeDeS 2018, label true) ------------------------------------------
    for outlet, ids in NON_COVID.items():
        for rid in ids:
            row = train[rid]
            assert row["label"] == "true", rid
            key = f"{FAKEDES_TRAIN}:{rid}"
            published = _date_between(key, datetime(2020, 2, 3), 680, _zone(outlet))
            section = FAKEDES_TOPIC_SECTION[row["topic"]]
            records.append(
                _record(
                    outlet,
                    norm(row["headline"]),
                    fakedes_paragraphs(row["text"], row["headline"]),
                    published,
                    _modified(key, published),
                    _authors(outlet, key),
                    section,
                    [section],
                    [],
                    False,
                    {"dataset": FAKEDES_TRAIN, "id": rid, "publisher": norm(row["source"])},
                )
            )

    articles = _finish(records)
    return {"articles": articles, "factchecks": _factchecks(articles, dev)}


FACTCHECKER_TZ = ZoneInfo("America/Santiago")  # the demo fact-checker is Chilean
#: The demo fact-checker's reviews (``factchecker.py`` serves them). Claims are excerpts of the
#: FakeDeS records named in ``source``; the ratings follow the corpus: a claim its debunking story
#: calls false, a statement its story reports, and items the corpus labels fake news.
FACTCHECKS: list[dict[str, Any]] = [
    {  # quoted, to be debunked, by the three copies of the wire story "wire-aln-gates"
        "page": "bulos-vacunas-gates-fauci",
        "source_id": "470",
        "claim": 'Gates "reconoce que miles de personas morirán con la vacuna" del coronavirus',
        "verdict_text": "Falso",
        "claimant": "Publicaciones en Facebook y Twitter",
        "appearances_group": None,
        "markup": "json-ld",
    },
    {  # a FakeDeS item labelled fake (its "publisher" is the fact-checker that quoted it)
        "page": "bulos-vacunas-gates-fauci",
        "source_id": "92",
        "claim": None,  # its headline
        "verdict_text": "Falso",
        "claimant": "Cadena de WhatsApp",
        "appearances_group": None,
        "markup": "json-ld",
    },
    {  # a statement reported by the three copies of "wire-sip-oms": they are its appearances
        "page": "oms-bajado-la-guardia",
        "source_id": "354",
        "claim": 'muchos países "han bajado la guardia"',
        "verdict_text": "Verdadero",
        "claimant": "Tedros Adhanom Ghebreyesus, director general de la OMS",
        "appearances_group": "wire-sip-oms",
        "markup": "json-ld",
    },
    {
        "page": "epidemia-cada-100-anos",
        "source_id": "48",
        "claim": None,
        "verdict_text": "Falso",
        "claimant": "Publicaciones en redes sociales",
        "appearances_group": None,
        "markup": "microdata",
    },
]


def _factchecks(articles: list[dict[str, Any]], dev: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for n, spec in enumerate(FACTCHECKS, start=1):
        row = dev[spec["source_id"]]
        key = f"{FAKEDES_DEV}:{row['id']}:factcheck"
        group = spec["appearances_group"]
        # Reviewed the day after the demo story that carries the claim, if there is one.
        stories = [a["published"] for a in articles if a["source"]["id"] == str(row["id"])]
        reviewed = (
            datetime.fromisoformat(min(stories)) + timedelta(days=1)
            if stories
            else _date_between(key, datetime(2020, 11, 20), 120, FACTCHECKER_TZ)
        )
        out.append(
            {
                "id": f"verificado-{n:03d}",
                "page": spec["page"],
                "claim": norm(spec["claim"] or row["headline"]),
                "verdict_text": spec["verdict_text"],
                "claimant": spec["claimant"],
                "appearances": [
                    a["id"] for a in articles if group and a["syndication_group"] == group
                ],
                "reviewed": _iso(reviewed.astimezone(FACTCHECKER_TZ)),
                "markup": spec["markup"],
                "source": {
                    "dataset": FAKEDES_DEV,
                    "id": str(row["id"]),
                    "publisher": norm(row["source"]),
                },
            }
        )
    return out


def _finish(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Number, slug and path the records, newest first per outlet; stringify dates."""
    out: list[dict[str, Any]] = []
    for outlet in OUTLETS:
        mine = sorted(
            (r for r in records if r["outlet"] == outlet), key=lambda r: r["published"]
        )  # oldest first, so CMS numbers grow with time
        seen: set[str] = set()
        number = {"lamontana": 31207, "delvalle": 204518, "gaceta": 1180}.get(outlet, 1)
        for index, record in enumerate(mine):
            number += 7 + _hash(record["title"]) % 40
            slug = slugify(record["title"])
            path = article_path(
                outlet, slug, record["published"], number, record["section"], record["disallowed"]
            )
            if path in seen:
                raise SystemExit(f"duplicate path {path}")
            seen.add(path)
            record["id"] = f"{outlet}-{index + 1:03d}"
            record["number"] = number
            record["path"] = path
            record["amp_path"] = None if record["disallowed"] else amp_path(outlet, path)
        for record in sorted(mine, key=lambda r: r["published"], reverse=True):
            record["published"] = _iso(record["published"])
            record["modified"] = _iso(record["modified"])
            keys = ["id", "outlet", "path", "amp_path", "number", "title", "paragraphs"]
            keys += ["authors", "published", "modified", "section", "tags", "topics"]
            keys += ["is_covid", "syndication_group", "disallowed", "source"]
            out.append({k: record[k] for k in keys})
    return out


def check_traceable(
    articles: list[dict[str, Any]], data: Path, factchecks: Sequence[dict[str, Any]] = ()
) -> None:  # JSON records
    """Every title, paragraph and reviewed claim is an excerpt of the record its ``source``
    names."""
    dev = {str(r["id"]): r for r in _load_jsonl(data / "fakedes" / "labelled_dev.jsonl")}
    train = {str(r["id"]): r for r in _load_jsonl(data / "fakedes" / "train.jsonl")}
    for article in articles:
        source = article["source"]
        if source["dataset"] == COVID19MX:
            path = data / "covid19mx" / "corpus_simple" / f"{source['id']}.txt"
            original = norm(path.read_text(encoding="utf-8", errors="replace"))
        else:
            row = (dev if source["dataset"] == FAKEDES_DEV else train)[source["id"]]
            original = norm(row["headline"] or "") + " " + norm(row["text"])
        for piece in [article["title"], *article["paragraphs"]]:
            if piece not in original:
                raise SystemExit(f"{article['id']}: not traceable to its source: {piece[:80]!r}")
    for fc in factchecks:
        row = dev[fc["source"]["id"]]
        if fc["claim"] not in norm(row["headline"] or "") + " " + norm(row["text"]):
            raise SystemExit(f"{fc['id']}: claim not traceable to its source: {fc['claim'][:80]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    content = build(args.data)
    check_traceable(content["articles"], args.data, content["factchecks"])
    content = {
        "about": "Demo news site content; see ATTRIBUTION.md. Generated by "
        "crawler/demo_site/build_content.py - do not edit by hand.",
        **content,
    }
    text = json.dumps(content, ensure_ascii=False, indent=1) + "\n"
    args.out.write_text(text, encoding="utf-8")
    count = len(content["articles"])
    print(f"wrote {args.out} ({count} articles, {len(text.encode()) // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
