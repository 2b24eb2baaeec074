"""The keyword index (tantivy) and the engine over it: writes, replacement, deletion, readers
reloading, exact cursors with ties and collapse, filters, counts and snippets — each checked
against a brute-force answer computed here."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, update

from covidnews.follow import Follower
from covidnews.ingest import ingest_path
from covidnews.schema import Article
from covidnews.search.analysis import QueryError
from covidnews.search.engine import Filters, Query, SearchEngine
from covidnews.search.keyword import KeywordIndex, KeywordReader, SearchDoc
from covidnews.store import Store
from tests.corpus import write_jsonl

WORDS = ["vacuna", "contagio", "hospital", "escuela", "mascarilla", "frontera", "economia"]
WORDS += ["prueba"]
BASE = 1_600_000_000


def doc(
    i: int,
    title: str,
    text: str,
    *,
    lang: str = "es",
    story: int | None = None,
    when: int | None = None,
    extra: list[tuple[str, str, str | None]] | None = None,
) -> SearchDoc:
    return SearchDoc(
        article_id=i,
        stamp=float(i),
        date=BASE + i * 86_400 if when is None else when,
        source_id=i % 3,
        country=["MX", "ES", "CO"][i % 3],
        language=lang,
        topics=(("vaccines",) if "vacuna" in text else ("cases",)),
        is_covid=i % 5 != 0,
        story_id=story or i,
        texts=[(title, text, lang), *(extra or [])],
    )


def marked(docs: list[SearchDoc]) -> list[SearchDoc]:
    """Mark the first copies others point to (what ``search_docs`` reads from the store)."""
    roots = {d.story_id for d in docs if d.story_id != d.article_id}
    for d in docs:
        d.has_copies = d.article_id in roots
    return docs


def synthetic(n: int, seed: int = 1, start: int = 1) -> list[SearchDoc]:
    rng = np.random.default_rng(seed)
    return [
        doc(i, f"Nota {i}", " ".join(rng.choice(WORDS, size=12).tolist()))
        for i in range(start, start + n)
    ]


def walk(engine: SearchEngine, query: Query, per_page: int = 7) -> tuple[list, int]:
    out, cursor, totals = [], None, set()
    while True:
        page = engine.search(query, per_page=per_page, cursor=cursor)
        out += [(h.article_id, h.score, h.copies) for h in page.hits]
        totals.add(page.total)
        cursor = page.next_cursor
        if cursor is None:
            assert len(totals) == 1
            return out, totals.pop()


def kw(q: str = "", **kwargs: object) -> Query:
    return Query(q=q, mode="keyword", filters=Filters(covid=None), **kwargs)  # type: ignore[arg-type]


def test_batches_equal_one_rebuild_and_replace_and_delete(tmp_path: Path) -> None:
    docs = synthetic(120)
    incremental = KeywordIndex(tmp_path / "inc")
    for start in range(0, len(docs), 5):
        incremental.write(docs[start : start + 5])
    KeywordIndex(tmp_path / "one").rebuild([docs])
    a, b = SearchEngine(tmp_path / "inc"), SearchEngine(tmp_path / "one")
    queries = ["vacuna", "hospital escuela", '"vacuna contagio"', "economia -prueba", ""]
    for q in queries:
        got_a, total_a = walk(a, kw(q))
        got_b, total_b = walk(b, kw(q))
        assert [i for i, _, _ in got_a] == [i for i, _, _ in got_b]
        assert np.allclose([s for _, s, _ in got_a], [s for _, s, _ in got_b], rtol=1e-5)
        assert total_a == total_b == len(got_a)
    # A batch written again replaces its documents: the same hits, each once.
    incremental.write(docs[:10])
    for q in queries:
        assert [i for i, _, _ in walk(a, kw(q))[0]] == [i for i, _, _ in walk(b, kw(q))[0]]
    assert sorted(a.indexed_ids().tolist()) == list(range(1, 121))  # each article once

    ix = KeywordIndex(tmp_path / "one")
    ix.write([doc(2, "Vacunas", "llega vacuna")], delete=[3])
    assert 3 not in b.indexed_ids().tolist() and len(b.indexed_ids()) == 119
    assert [i for i, _, _ in walk(b, kw("llega"))[0]] == [2]
    assert ix.stamps([2, 3]) == {2: 2.0}


def test_reader_keeps_its_searcher_while_the_writer_commits(tmp_path: Path) -> None:
    ix = KeywordIndex(tmp_path)
    ix.write(synthetic(30))
    reader = KeywordReader(tmp_path)
    old = reader.searcher()
    assert old is not None
    generation = reader.generation
    for k in range(12):  # many commits: tantivy merges and deletes old segment files
        ix.write(synthetic(5, seed=k + 10, start=100 + 5 * k))
    assert old.num_docs == 30  # the old commit still answers
    new = reader.searcher()
    assert new is not None and new.num_docs == 90 and reader.generation > generation


def test_exact_order_with_ties_and_collapse(tmp_path: Path) -> None:
    """Identical texts score the same: pages still follow (score desc, id desc) exactly, and a
    story appears once, at its best-ranked copy, whatever the page size."""
    same = "brote de contagio en la escuela"
    docs = [doc(i, "Nota", same, story=(i if i % 4 else i - 1)) for i in range(1, 81)]
    docs += [doc(100 + i, "Otra", "contagio " + "escuela " * (i % 3)) for i in range(40)]
    KeywordIndex(tmp_path).write(marked(docs))
    engine = SearchEngine(tmp_path)
    flat, total = walk(engine, kw("contagio", collapse=False), per_page=9)
    assert total == len(flat) == 120
    keys = [(-s, -i) for i, s, _ in flat]
    assert keys == sorted(keys)
    for per_page in (1, 5, 13, 100):
        got, total = walk(engine, kw("contagio"), per_page=per_page)
        # Brute force: the first hit of each story in the flat order.
        story = {d.article_id: d.story_id for d in docs}
        expected, seen = [], set()
        for i, _, _ in flat:
            if story[i] not in seen:
                seen.add(story[i])
                expected.append(i)
        assert [i for i, _, _ in got] == expected and total == len(expected)
    copies = {i: c for i, _, c in got}
    assert copies[4] == [3] or copies.get(3) == [4]
    # Exports: the same order in chunks, in one ranking.
    for collapse in (True, False):
        chunks = list(engine.iter_hits(kw("contagio", collapse=collapse), chunk=17))
        exported = [h.article_id for c in chunks for h in c]
        assert exported == [i for i, _, _ in walk(engine, kw("contagio", collapse=collapse))[0]]
        assert all(len(c) <= 17 for c in chunks)


def test_newest_first_and_same_second_ties(tmp_path: Path) -> None:
    docs = [doc(i, "Nota", "vacuna", when=BASE + (i // 10) * 60) for i in range(1, 55)]
    KeywordIndex(tmp_path).write(docs)
    engine = SearchEngine(tmp_path)
    got, total = walk(engine, kw("", sort="newest"), per_page=4)
    expected = sorted(docs, key=lambda d: (d.date, d.article_id), reverse=True)
    assert [i for i, _, _ in got] == [d.article_id for d in expected] and total == 54
    got, _ = walk(engine, kw("vacuna", sort="newest"), per_page=6)
    assert [i for i, _, _ in got] == [d.article_id for d in expected]


def test_filters_totals_and_counts_match_brute_force(tmp_path: Path) -> None:
    docs = synthetic(90)
    docs += [
        doc(200 + i, "Copia", "vacuna " + docs[i].texts[0][1], story=docs[i].article_id)
        for i in range(5)
    ]
    KeywordIndex(tmp_path).write(marked(docs))
    engine = SearchEngine(tmp_path)

    def matches(d: SearchDoc, f: Filters, word: str | None) -> bool:
        day = datetime.fromtimestamp(d.date or 0, UTC).date()
        return (
            (f.covid is None or d.is_covid == f.covid)
            and (not f.countries or d.country in f.countries)
            and (not f.sources or d.source_id in f.sources)
            and (not f.topics or bool(set(d.topics) & set(f.topics)))
            and (f.date_from is None or day >= f.date_from)
            and (f.date_to is None or day <= f.date_to)
            and (word is None or word in re.findall(r"\w+", d.texts[0][1]))
        )

    cases = [
        Filters(covid=None, countries=("MX",)),
        Filters(covid=True, topics=("vaccines",)),
        Filters(covid=None, sources=(1,), date_from=date(2020, 10, 1), date_to=date(2020, 11, 15)),
        Filters(covid=False),
    ]
    for f in cases:
        for word in (None, "hospital"):
            query = Query(q=word or "", mode="keyword", filters=f)
            hits = [d for d in docs if matches(d, f, word)]
            stories = {d.story_id for d in hits}
            got, total = walk(engine, query, per_page=11)
            assert total == len(got) == len(stories), (f, word)
            flat = engine.search(Query(q=word or "", mode="keyword", filters=f, collapse=False))
            assert flat.total == len(hits)
            rows = engine.counts(Query(q=word or "", mode="keyword", filters=f), "month")
            assert sum(r["count"] for r in rows) == len(stories)
            by_country = engine.counts(
                Query(q=word or "", mode="keyword", filters=f, collapse=False), "year", "country"
            )
            want = Counter((d.country or "").lower() for d in hits)
            got_c = Counter()
            for r in by_country:
                got_c[r["key"]] += r["count"]
            assert got_c == want
    topics = engine.topic_counts()
    assert topics["vaccines"] == sum(1 for d in docs if d.is_covid and "vaccines" in d.topics)
    assert sum(engine.source_counts().values()) == len(docs)
    assert engine.story_members(docs[0].article_id) == [docs[0].article_id, 200]


def test_highlights_only_where_the_field_matched(tmp_path: Path) -> None:
    """ "side" has the Spanish stem of "sido": the Spanish text is not where the query matched."""
    KeywordIndex(tmp_path).write(
        [
            doc(
                1,
                "Efectos de la vacuna",
                "Los efectos secundarios de la vacuna han sido leves, según el ministerio.",
                extra=[
                    ("Vaccine effects", "Vaccine side effects were mild, the ministry said.", "en")
                ],
            ),
            doc(2, "Otra nota", "La situación ha sido difícil <b>en</b> la frontera."),
        ]
    )
    engine = SearchEngine(tmp_path)
    page = engine.search(kw("vaccine side effects"))
    assert [h.article_id for h in page.hits] == [1]
    text, lang = engine.snippets(page)[1]
    assert lang == "en"
    assert re.findall(r"<mark>(.*?)</mark>", text) == ["Vaccine", "side", "effects"]
    assert "sido" not in text
    page = engine.search(kw("sido frontera"))
    text, lang = engine.snippets(page)[2]
    assert lang == "es" and "<mark>frontera</mark>" in text and "&lt;b&gt;" in text
    assert "<b>" not in text  # stored text is escaped, only <mark> is markup


def test_phrases_exclusions_accents_and_limits(tmp_path: Path) -> None:
    KeywordIndex(tmp_path).write(
        [
            doc(1, "Vacunación en la Ciudad de México", "Avanza la campaña."),
            doc(2, "Ciudad en México", "Otra ciudad, otra campaña de vacunacion."),
            doc(3, "Madrid", "La ciudad de Madrid y México firman un acuerdo."),
        ]
    )
    engine = SearchEngine(tmp_path)
    assert [h.article_id for h in engine.search(kw('"ciudad de mexico"')).hits] == [1]
    assert {h.article_id for h in engine.search(kw("vacunacion")).hits} == {1, 2}
    assert {h.article_id for h in engine.search(kw("VACUNACIÓN -otra")).hits} == {1}
    with pytest.raises(QueryError, match="keyword mode"):
        engine.search(kw(" ".join(f"palabra{i}" for i in range(40))))
    with pytest.raises(QueryError, match="keyword mode"):
        engine.search(kw("x" * 600))
    with pytest.raises(QueryError):
        engine.search(Query(q="x" * 2001, mode="hybrid"))


def test_phrases_match_their_exact_words_in_any_language_and_are_highlighted(
    tmp_path: Path,
) -> None:
    """Phrases are looked up as word pairs: exact words (accents and case folded), adjacent and
    in order, in every language; no stems. Snippets still mark the phrase's words."""
    KeywordIndex(tmp_path).write(
        [
            doc(1, "Casos confirmados en Jalisco", "Suben los CASOS CONFIRMADOS."),
            doc(2, "Un caso confirmado", "Un solo caso confirmado hoy."),  # other forms
            doc(3, "Confirmed cases rise", "More confirmed cases today.", lang="en"),
            doc(4, "Los casos no confirmados", "Casos que no fueron confirmados."),
            doc(5, "Casos confirmados no Brasil", "Mais casos confirmados.", lang="pt"),
            doc(6, "Confirmados", "Confirmados los casos."),  # both words, other order
        ]
    )
    engine = SearchEngine(tmp_path)

    def ids(q: str) -> set[int]:
        return {h.article_id for h in engine.search(kw(q)).hits}

    assert ids('"casos confirmados"') == {1, 5}
    assert ids('"Casos Confirmados" -jalisco') == {5}
    assert ids('"confirmed cases"') == {3}
    assert ids('"casos no confirmados"') == {4}  # three words: a phrase of two pairs
    assert ids('"casos que no fueron"') == {4}
    assert ids('"no confirmados los"') == set()
    assert ids("casos confirmados") == {1, 2, 4, 5, 6}  # words, not a phrase: stems match
    assert ids('casos -"casos confirmados"') == {2, 4, 6}
    page = engine.search(kw('"casos confirmados"'))
    text, lang = engine.snippets(page)[1]
    assert lang == "es"
    assert [w.casefold() for w in re.findall(r"<mark>(.*?)</mark>", text)] == [
        "casos",
        "confirmados",
    ]


@pytest.mark.parametrize("n", [0, 1])
def test_empty_and_tiny_indexes(tmp_path: Path, n: int) -> None:
    if n:
        KeywordIndex(tmp_path).write(synthetic(n))
    engine = SearchEngine(tmp_path)
    for mode in ("keyword", "hybrid", "semantic"):
        page = engine.search(Query(q="vacuna hospital", mode=mode, filters=Filters(covid=None)))  # type: ignore[arg-type]
        assert page.total <= n and page.next_cursor is None
    assert engine.counts(kw("")) == ([] if not n else engine.counts(kw("")))
    assert engine.date_span() is None if not n else engine.date_span() is not None


def test_a_first_copy_indexed_before_its_copies_is_marked_when_they_arrive(
    store: Store, tmp_path: Path
) -> None:
    """Collapse reads the "shared" mark: indexing a copy re-marks its story's first copy, so
    the total counts the story once (on SQLite and PostgreSQL)."""
    rows = [
        {"url": f"https://n{i}.example.org/nota", "title": "Vacunas", "text": "Llegan vacunas."}
        for i in range(3)
    ]
    ingest_path(store, write_jsonl(rows, tmp_path / "rows.jsonl"))
    with store.session() as s:
        ids = sorted(s.scalars(select(Article.id)))
        s.execute(update(Article).values(state="done", is_covid=True))
        s.commit()
    search_dir = tmp_path / "search"
    follower = Follower(store, tmp_path, "none")  # keyword documents only (no vectors)
    assert follower.apply(ids[:1])[0] == 1  # the first copy, alone
    with store.session() as s:
        s.execute(update(Article).where(Article.id.in_(ids[1:])).values(duplicate_of=ids[0]))
        s.commit()
    assert follower.apply(ids[1:])[0] == 2  # its copies (the first one re-marked)
    engine = SearchEngine(search_dir)
    page = engine.search(kw("vacunas"))
    assert page.total == 1 and len(page.hits) == 1
    assert sorted([page.hits[0].article_id, *page.hits[0].copies]) == ids
    assert sorted(engine.indexed_ids().tolist()) == ids  # each article once
    assert follower.apply(ids)[0] == 0  # caught up: nothing to write


def test_a_passage_search_survives_deleted_documents(tmp_path: Path) -> None:
    """tantivy's more_like_this panics while deleted documents still count in a term's
    document frequency (quickwit-oss/tantivy#2964): replaced documents — what every update
    does — made passage searches fail. The engine then selects the terms itself."""
    index = KeywordIndex(tmp_path)
    index.write(synthetic(200))
    index.write(synthetic(150, seed=2))  # replaces 1-150: their old versions are deleted
    passage = " ".join(["vacuna hospital contagio frontera escuela"] * 20)  # > 500 characters
    engine = SearchEngine(tmp_path)
    assert engine.view().size == 200
    page = engine.search(Query(q=passage, mode="hybrid", filters=Filters(covid=None)), 50)
    assert page.total > 100 and {h.article_id for h in page.hits} <= set(range(1, 201))


@pytest.mark.parametrize("exact_max", [100_000, 500])
def test_semantic_filters_and_exclusions_match_brute_force(tmp_path: Path, exact_max: int) -> None:
    """Semantic hits are the k nearest articles that pass the filters and contain no excluded
    word, cosine ≥ the minimum — whichever path the engine takes: the nearest rows filtered,
    every excluded id read (a rare word) or only the candidates asked about (a common word),
    and the fall-back over every row when too few of the nearest pass; exact and IVF."""
    from covidnews.index import ROW, VectorIndex

    rng = np.random.default_rng(11)
    n, dims = 2000, 16
    vectors = rng.normal(size=(n, dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[7] + 0.3 * vectors[8]
    query /= np.linalg.norm(query)
    near = np.argsort(-(vectors @ query))
    rare = set(near[:40:2].tolist())  # half of the very nearest say "raro"
    common = set(range(0, n, 2)) | set(near[:60].tolist())  # "comun": many, and the nearest
    docs = [
        doc(
            i,
            f"Nota {i}",
            " ".join(["texto", "raro" if i in rare else "", "comun" if i in common else ""]),
        )
        for i in range(n)
    ]
    KeywordIndex(tmp_path / "search").write(docs)
    rows = np.zeros(n, dtype=ROW)
    rows["id"] = np.arange(n)
    rows["stamp"] = np.arange(n, dtype=np.float64)
    rows["date"] = [d.date for d in docs]
    rows["source"] = [d.source_id for d in docs]
    rows["story"] = np.arange(n)
    rows["covid"] = [int(bool(d.is_covid)) for d in docs]
    index = VectorIndex(tmp_path / "index", "m", exact_max=exact_max)
    index.apply(rows, vectors)
    k, floor = 15, -1.0
    engine = SearchEngine(
        tmp_path / "search",
        index,
        lambda q: query,
        semantic_min_score=floor,
        max_semantic_hits=k,
    )
    sims = vectors.astype(np.float16).astype(np.float32) @ query  # the index stores float16
    for q, word, source in (
        ("nota -raro", "raro", None),
        ("nota -comun", "comun", None),
        ("nota -comun", "comun", 1),
        ("nota", None, 2),
    ):
        filters = Filters(covid=True, sources=(source,) if source is not None else ())
        hits = [
            h.article_id
            for h in engine.search(Query(q=q, mode="semantic", filters=filters), per_page=k).hits
        ]
        allowed = [
            i
            for i in range(n)
            if docs[i].is_covid
            and (source is None or docs[i].source_id == source)
            and (word is None or i not in (rare if word == "raro" else common))
        ]
        truth = sorted(allowed, key=lambda i: (-sims[i], -i))[:k]
        if exact_max > n:
            assert hits == truth, (q, source)
        else:  # IVF: approximate, but never an excluded or filtered-out article
            assert set(hits) <= set(allowed) and len(hits) == k
            assert len(set(hits) & set(truth)) >= k - 2, (q, source)
