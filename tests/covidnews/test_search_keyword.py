"""The keyword index: segments, merges, replacement, deletion, readers reloading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from covidnews.search.analysis import parse_query
from covidnews.search.engine import Filters, Query, SearchEngine
from covidnews.search.keyword import (
    MAX_SEGMENTS,
    KeywordIndex,
    KeywordReader,
    SearchDoc,
)

WORDS = ["vacuna", "contagio", "hospital", "escuela", "mascarilla", "frontera", "economia"]
WORDS += ["prueba"]


def doc(i: int, title: str, text: str, *, lang: str = "es", story: int | None = None) -> SearchDoc:
    return SearchDoc(
        article_id=i,
        stamp=float(i),
        date=1_600_000_000 + i * 86_400,
        source_id=i % 3,
        country=["MX", "ES", "CO"][i % 3],
        language=lang,
        topics=(("vaccines",) if "vacuna" in text else ("cases",)),
        is_covid=True,
        story_id=story or i,
        fields=[(title, lang), (title, lang), ("", lang), (text, lang)],
    )


def synthetic(n: int, seed: int = 1) -> list[SearchDoc]:
    rng = np.random.default_rng(seed)
    return [
        doc(i, f"Nota {i}", " ".join(rng.choice(WORDS, size=12).tolist())) for i in range(1, n + 1)
    ]


def hits(engine: SearchEngine, q: str, **kw: object) -> list[tuple[int, float]]:
    out, cursor = [], None
    query = Query(q=q, mode="keyword", filters=Filters(covid=None), **kw)  # type: ignore[arg-type]
    while True:
        page = engine.search(query, per_page=7, cursor=cursor)
        out += [(h.article_id, round(h.score, 9)) for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            return out


def test_many_small_writes_merge_and_equal_one_rebuild(tmp_path: Path) -> None:
    docs = synthetic(120)
    incremental = KeywordIndex(tmp_path / "inc")
    for start in range(0, len(docs), 5):
        incremental.write(docs[start : start + 5])
    manifest = json.loads((tmp_path / "inc/manifest.json").read_text())
    assert len(manifest["segments"]) <= MAX_SEGMENTS  # merged as it grew
    assert sum(s["docs"] for s in manifest["segments"]) == 120
    KeywordIndex(tmp_path / "one").rebuild([docs])
    a, b = SearchEngine(tmp_path / "inc"), SearchEngine(tmp_path / "one")
    for q in ["vacuna", "hospital escuela", '"vacuna contagio"', "prueba -frontera", ""]:
        assert hits(a, q) == hits(b, q), q
        assert len(hits(a, q)) == len({i for i, _ in hits(a, q)})  # no repeats


def test_phrase_requires_adjacent_words_in_one_field(tmp_path: Path) -> None:
    ix = KeywordIndex(tmp_path)
    ix.write(
        [
            doc(1, "Salud", "El ministerio de salud informó"),
            doc(2, "Ministerio", "de salud pública no se habló"),  # phrase across title/body
            doc(3, "Otro", "salud del ministerio"),
        ]
    )
    engine = SearchEngine(tmp_path)
    assert [i for i, _ in hits(engine, '"ministerio de salud"')] == [1]
    assert {i for i, _ in hits(engine, "ministerio salud")} == {1, 2, 3}
    assert [i for i, _ in hits(engine, "ministerio salud -informó")] == [3, 2]


def test_rewritten_article_replaces_its_old_version_and_deletes(tmp_path: Path) -> None:
    ix = KeywordIndex(tmp_path)
    ix.write([doc(1, "Escuelas cerradas", "cierran escuelas"), doc(2, "Vacunas", "llega vacuna")])
    engine = SearchEngine(tmp_path)
    assert [i for i, _ in hits(engine, "cierran")] == [1]
    ix.write([doc(1, "Escuelas abiertas", "abren escuelas")])
    assert hits(engine, "cierran") == []
    assert [i for i, _ in hits(engine, "abren")] == [1]
    assert engine.snapshot().n_live == 2
    ix.write([], delete=[2])
    assert hits(engine, "vacuna") == []
    assert sorted(ix.stamps()) == [1]
    # Written again after its deletion, it is back.
    ix.write([doc(2, "Vacunas", "llega vacuna")])
    assert [i for i, _ in hits(engine, "vacuna")] == [2]


def test_reader_keeps_its_snapshot_while_the_writer_publishes(tmp_path: Path) -> None:
    ix = KeywordIndex(tmp_path)
    ix.write(synthetic(30))
    reader = KeywordReader(tmp_path)
    old = reader.snapshot()
    for k in range(MAX_SEGMENTS + 3):  # forces merges that delete old segment directories
        ix.write(synthetic(5, seed=k + 10))
    # The old snapshot still answers (its files stay mapped) and the reader moved on.
    pos, _ = old.match(parse_query("vacuna").required[0])
    assert len(pos) > 0
    assert reader.snapshot().version > old.version


def test_filters_and_counts(tmp_path: Path) -> None:
    KeywordIndex(tmp_path).write(synthetic(60))
    engine = SearchEngine(tmp_path)
    everything = hits(engine, "")
    assert len(everything) == 60
    mx = engine.search(
        Query(mode="keyword", filters=Filters(covid=None, countries=("MX",))), per_page=100
    )
    assert mx.total == 20 and all(h.article_id % 3 == 0 for h in mx.hits)
    rows = engine.counts(Query(mode="keyword", filters=Filters(covid=None)), "month")
    assert sum(r["count"] for r in rows) == 60
    by_topic = engine.counts(Query(mode="keyword", filters=Filters(covid=None)), "year", "topic")
    assert {r["key"] for r in by_topic} <= {"vaccines", "cases"}


def test_a_corrupt_or_missing_segment_keeps_the_current_snapshot(tmp_path: Path) -> None:
    ix = KeywordIndex(tmp_path)
    ix.write(synthetic(10))
    reader = KeywordReader(tmp_path)
    assert reader.snapshot().n_live == 10
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["segments"].append({"name": "seg-missing", "gen": 99, "docs": 1})
    manifest["version"] += 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert reader.snapshot().n_live == 10  # not a crash, not an empty index


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_tiny_indexes(tmp_path: Path, n: int) -> None:
    if n:
        KeywordIndex(tmp_path).write(synthetic(n))
    engine = SearchEngine(tmp_path)
    page = engine.search(Query(q="vacuna hospital", mode="hybrid", filters=Filters(covid=None)))
    assert page.total <= n and page.next_cursor is None
