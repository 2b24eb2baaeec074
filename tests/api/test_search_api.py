"""The search API over a real processed corpus (tests/corpus.py): filters, sorting, cursors,
collapse, cross-lingual search, the query language, exports, and SQLite = PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from api import create_app
from covidnews.search.keyword import KeywordIndex
from tests.conftest import SHARED, Corpus
from tests.corpus import COPIED, ENGLISH_DOCS, serve_copy

MASKS_ES = "https://www.bbc.com/mundo/Noticia-53999415"  # "Mascarillas 'egoístas'…" (Spanish)


def _client(c: Corpus) -> FlaskClient:
    app = create_app({"SETTINGS": c.settings, "TESTING": True, "RATELIMIT_ENABLED": False})
    return app.test_client()


@pytest.fixture(scope="module")
def client(corpus: Corpus) -> FlaskClient:
    return _client(corpus)


def get(client: FlaskClient, path: str, **params: Any) -> Any:
    r = client.get(f"{path}?{urlencode(params, doseq=True)}")
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def walk(client: FlaskClient, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every result of a query, following cursors; and the total the first page announced."""
    params.setdefault("per_page", 3)
    first = get(client, "/api/v1/search", **params)
    results, page = list(first["results"]), first
    while page["next"]:
        page = get(client, "/api/v1/search", **params, cursor=page["next"])
        assert page["total"] == first["total"]
        results += page["results"]
    return results, first["total"]


@pytest.mark.parametrize("mode", ["keyword", "semantic", "hybrid"])
@pytest.mark.parametrize("sort", ["relevance", "newest"])
@pytest.mark.parametrize("q", ["", "covid", "vacunas", "coronavirus symptoms"])
def test_cursor_walk_yields_every_hit_once(
    client: FlaskClient, mode: str, sort: str, q: str
) -> None:
    results, total = walk(client, q=q, mode=mode, sort=sort, covid="all")
    ids = [r["id"] for r in results]
    assert len(ids) == total and len(set(ids)) == total
    if q == "" and mode != "semantic":
        assert total > 30  # browsing: every story
    if sort == "newest":
        dates = [r["published_at"] for r in results]
        assert dates == sorted(dates, reverse=True)
    else:
        scores = [r["score"] for r in results]
        assert scores == sorted(scores, reverse=True)


def test_every_filter(client: FlaskClient, corpus: Corpus) -> None:
    everything, total = walk(client, covid="all", per_page=100, collapse="false")
    assert total == len(corpus.rows)

    def ids(**params: Any) -> set[int]:
        params = {"covid": "all", "per_page": 100, "collapse": "false", **params}
        return {r["id"] for r in walk(client, **params)[0]}

    # Dates (inclusive, by publication day).
    days = sorted(r["published_at"][:10] for r in everything)
    mid = days[len(days) // 2]
    assert ids(**{"from": mid}) == {r["id"] for r in everything if r["published_at"][:10] >= mid}
    assert ids(to=mid) == {r["id"] for r in everything if r["published_at"][:10] <= mid}
    assert ids(**{"from": mid, "to": mid}) == {
        r["id"] for r in everything if r["published_at"][:10] == mid
    }
    # Source (repeatable), country, language.
    bbc = ids(source="bbc")
    assert bbc and all(r["source"]["slug"] == "bbc" for r in everything if r["id"] in bbc)
    assert ids(source=["bbc", "wikinews"]) == bbc | ids(source="wikinews")
    mx = ids(country="MX")
    assert mx == {r["id"] for r in everything if r["country"] == "MX"}
    assert ids(country="mx") == mx  # case-insensitive
    english = ids(language="en")
    assert len(english) == len(ENGLISH_DOCS)
    # Topics (repeatable: any of), covid true/false/all.
    vaccines = ids(topic="vaccines")
    assert vaccines == {r["id"] for r in everything if "vaccines" in [t["id"] for t in r["topics"]]}
    assert ids(topic=["vaccines", "economy"]) == vaccines | ids(topic="economy")
    covid = {r["id"] for r in walk(client, per_page=100, collapse="false")[0]}
    not_covid = ids(covid="false")
    assert covid and not_covid and covid | not_covid == {r["id"] for r in everything}
    assert not covid & not_covid


def test_collapse_of_syndicated_copies(client: FlaskClient, corpus: Corpus) -> None:
    original = corpus.rows[COPIED]
    copies_urls = {r["url"] for r in corpus.rows if r["title"].startswith(original["title"])}
    story = {corpus.ids[u] for u in copies_urls}
    assert len(story) == 3
    collapsed, _ = walk(client, q="cargamento vacunas Pfizer", mode="keyword")
    assert len([r for r in collapsed if r["id"] in story]) == 1
    shown = next(r for r in collapsed if r["id"] in story)
    assert {c["id"] for c in shown["copies"]} == story - {shown["id"]}
    flat, _ = walk(client, q="cargamento vacunas Pfizer", mode="keyword", collapse="false")
    assert {r["id"] for r in flat} >= story and all(not r["copies"] for r in flat)


def test_english_query_finds_spanish_article_and_the_reverse(
    client: FlaskClient, corpus: Corpus
) -> None:
    for mode in ["keyword", "semantic", "hybrid"]:
        hits = get(client, "/api/v1/search", q="face masks", mode=mode)["results"]
        assert hits[0]["id"] == corpus.ids[MASKS_ES], mode
        assert hits[0]["language"] == "es"
    # A Spanish query reaches an English article (through its Spanish translation, and through
    # the embeddings).
    toilet_paper = corpus.ids["https://en.example.org/wikinews_4"]
    for mode in ["keyword", "semantic", "hybrid"]:
        q = "límites de compra de papel higiénico en Australia"
        assert get(client, "/api/v1/search", q=q, mode=mode)["results"][0]["id"] == toilet_paper
    ace2 = corpus.ids["https://en.example.org/wiki_20"]
    q = "enzima convertidora de angiotensina"
    assert get(client, "/api/v1/search", q=q, mode="semantic")["results"][0]["id"] == ace2
    hit = get(client, "/api/v1/search", q="face masks", mode="keyword")["results"][0]
    assert "<mark>" in hit["snippet"]
    assert hit["translations"]["en"]["title"]


def _tico_spanish(doc: str, chars: int) -> str:
    """The Spanish (es-419) TICO-19 sentences of one English document, about ``chars`` long."""
    out = ""
    with open(SHARED / "tico19/tico19_dev.tsv", encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if row["tuid"].split(":")[0] == doc and not row["tuid"].endswith(":1"):
                if len(out) + len(row["es_419"]) > chars:
                    break
                out += row["es_419"] + " "
    return out.strip()


def test_a_spanish_passage_finds_the_english_article_it_was_translated_from(
    client: FlaskClient, corpus: Corpus
) -> None:
    """A researcher pastes a paragraph: semantic and hybrid take it whole; keyword mode refuses
    it with a 400 that says what to do."""
    passage = _tico_spanish("Wikinews_4", 1500)
    assert 1200 <= len(passage) <= 1500
    toilet_paper = corpus.ids["https://en.example.org/wikinews_4"]
    for mode in ["semantic", "hybrid"]:
        results = get(client, "/api/v1/search", q=passage, mode=mode)["results"]
        assert results[0]["id"] == toilet_paper, mode
    r = client.get("/api/v1/search?" + urlencode({"q": passage, "mode": "keyword"}))
    assert r.status_code == 400
    problem = r.get_json()
    assert "q" in problem["errors"] and "hybrid" in json.dumps(problem["errors"]["q"])


def test_highlights_only_in_the_language_field_that_matched(client: FlaskClient) -> None:
    """An English query matches a Spanish article through its English translation: the snippet
    is the English text, and only English words are marked."""
    hit = get(client, "/api/v1/search", q="face masks", mode="keyword")["results"][0]
    assert hit["language"] == "es" and hit["snippet_language"] == "en"
    marked = {m.lower() for m in re.findall(r"<mark>(.*?)</mark>", hit["snippet"])}
    assert marked and marked <= {"face", "faces", "mask", "masks"}


def test_phrase_and_exclusion(client: FlaskClient, corpus: Corpus) -> None:
    def ids(q: str) -> set[int]:
        return {
            r["id"] for r in walk(client, q=q, mode="keyword", covid="all", collapse="false")[0]
        }

    both = ids("vacunas Pfizer")
    phrase = ids('"vacunas contra Covid-19 de Pfizer"')
    assert phrase and phrase <= both
    assert corpus.ids[corpus.rows[COPIED]["url"]] in phrase
    without = ids("vacunas -Pfizer")
    assert without and not (without & both)
    assert ids("vacunas") == without | both
    # Accents and case do not matter.
    assert ids("VACUNACIÓN") == ids("vacunacion")


def test_snippets_are_escaped(client: FlaskClient) -> None:
    for r in get(client, "/api/v1/search", q="covid", per_page=50, covid="all")["results"]:
        stripped = r["snippet"].replace("<mark>", "").replace("</mark>", "")
        assert "<" not in stripped and ">" not in stripped


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"per_page": "many"}, "per_page"),
        ({"mode": "fuzzy"}, "mode"),
        ({"sort": "oldest"}, "sort"),
        ({"from": "2021-13-01"}, "from"),
        ({"from": "2021-03-01", "to": "2021-01-01"}, "from"),
        ({"topic": "gossip"}, "topic"),
        ({"country": "Mexico"}, "country"),
        ({"source": "no-such-outlet"}, "source"),
        ({"covid": "maybe"}, "covid"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"q": "x" * 2001}, "q"),
        ({"q": "x" * 501, "mode": "keyword"}, "q"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(
    client: FlaskClient, params: dict[str, Any], param: str
) -> None:
    r = client.get(f"/api/v1/search?{urlencode(params)}")
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"
    assert param in r.get_json()["errors"]


def test_cursor_of_another_query_is_refused(client: FlaskClient) -> None:
    page = get(client, "/api/v1/search", q="covid", per_page=2)
    assert page["next"]
    r = client.get(f"/api/v1/search?q=vacunas&per_page=2&cursor={page['next']}")
    assert r.status_code == 400 and "cursor" in r.get_json()["errors"]


def test_article_similar_sources_topics_stats(client: FlaskClient, corpus: Corpus) -> None:
    aid = corpus.ids[corpus.rows[COPIED]["url"]]
    art = get(client, f"/api/v1/articles/{aid}")
    assert art["text"].startswith("La mañana")
    assert art["translations"]["en"]["text"]
    assert len(art["copies"]) == 2
    similar = get(client, f"/api/v1/articles/{aid}/similar", k=5)["results"]
    assert len(similar) == 5
    assert aid not in {s["id"] for s in similar}
    assert not {c["id"] for c in art["copies"]} & {s["id"] for s in similar}
    assert client.get("/api/v1/articles/999999").status_code == 404
    assert client.get("/api/v1/articles/999999/similar").status_code == 404
    sources = get(client, "/api/v1/sources")["sources"]
    assert sum(s["articles"] for s in sources) == len(corpus.rows)
    topics = get(client, "/api/v1/topics")["topics"]
    assert len(topics) == 11 and all(t["es"] and t["en"] for t in topics)
    stats = get(client, "/api/v1/stats", interval="week", covid="all", collapse="false")
    assert stats["total"] == len(corpus.rows) == sum(b["count"] for b in stats["buckets"])
    by_country = get(
        client, "/api/v1/stats", interval="month", by="country", covid="all", collapse="false"
    )
    mx = sum(b["count"] for b in by_country["buckets"] if b["key"] == "mx")
    assert mx == len(walk(client, country="MX", covid="all", collapse="false", per_page=100)[0])
    by_topic = get(client, "/api/v1/stats", interval="year", by="topic", topic="vaccines")
    assert {b["key"] for b in by_topic["buckets"]} >= {"vaccines"}


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_export_streams_every_hit_in_order(client: FlaskClient, fmt: str) -> None:
    params = {"q": "covid", "covid": "all", "sort": "newest"}
    expected = [r["id"] for r in walk(client, **params, per_page=7)[0]]
    r = client.get(f"/api/v1/export?{urlencode({**params, 'format': fmt})}")
    assert r.status_code == 200 and r.is_streamed
    body = r.get_data(as_text=True)
    if fmt == "jsonl":
        rows = [json.loads(line) for line in body.splitlines()]
        assert [row["id"] for row in rows] == expected
    else:
        rows = list(csv.DictReader(io.StringIO(body)))
        assert [int(row["id"]) for row in rows] == expected
        assert rows[0]["title"] and "published_at" in rows[0]


QUERIES = [
    "",
    "covid",
    "vacunas",
    "face masks",
    '"ministerio de salud"',
    "pandemia -vacunas",
    "hospital",
]


@pytest.mark.slow
def test_postgresql_and_sqlite_give_the_same_hits(corpus: Corpus, corpus_pg: Corpus) -> None:
    sqlite, pg = _client(corpus), _client(corpus_pg)
    for q in QUERIES:
        for mode in ["keyword", "semantic", "hybrid"]:
            for sort in ["relevance", "newest"]:
                params = {"q": q, "mode": mode, "sort": sort, "covid": "all", "per_page": 5}
                a = walk(sqlite, **params)
                b = walk(pg, **params)
                assert [(r["id"], r["score"]) for r in a[0]] == [
                    (r["id"], r["score"]) for r in b[0]
                ]
                assert a[1] == b[1]
    for params in [{"by": "topic"}, {"by": "country", "interval": "week"}]:
        assert get(sqlite, "/api/v1/stats", **params) == get(pg, "/api/v1/stats", **params)


@pytest.mark.slow
def test_served_instance_answers_like_the_test_client(
    client: FlaskClient, corpus: Corpus, tmp_path: Path
) -> None:
    """`covidnews serve` (gunicorn, 2 workers) on the corpus: the same answers over real HTTP,
    the index reloaded by each worker when the writer publishes a new version."""
    # A copy of the corpus: this test publishes a new index version.
    with serve_copy(corpus, tmp_path, workers=2) as (base, data_dir):
        for params in [
            {"q": "vacunas", "mode": "hybrid"},
            {"q": "face masks", "mode": "semantic", "per_page": 3},
            {"q": "", "sort": "newest", "country": "MX", "covid": "all"},
        ]:
            query = urlencode(params)
            expected = get(client, "/api/v1/search", **params)
            for _ in range(2):  # both workers
                with urllib.request.urlopen(f"{base}/api/v1/search?{query}", timeout=30) as r:
                    got = json.load(r)
                assert [x["id"] for x in got["results"]] == [x["id"] for x in expected["results"]]
                assert got["total"] == expected["total"]
        # The writer publishes a new version (an article deleted): every worker follows.
        gone = expected["results"][0]["id"]
        KeywordIndex(data_dir / "search").write([], delete=[gone])
        for _ in range(4):
            with urllib.request.urlopen(f"{base}/api/v1/search?{query}", timeout=30) as r:
                got = json.load(r)
            assert gone not in [x["id"] for x in got["results"]]
            assert got["total"] == expected["total"] - 1
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(f"{base}/api/v1/search?per_page=1000", timeout=30)
        assert bad.value.code == 400
        assert json.load(bad.value)["param"] == "per_page"
