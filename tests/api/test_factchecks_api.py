"""Fact-checks in the API: /api/v1/factchecks (filters, cursor, bad parameters), `factchecks` on
an article and on search results, and in the export (both databases, real processing)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from covidnews.factchecks import FactCheckRecord, upsert_factchecks
from covidnews.ingest import parse_record
from covidnews.schema import Source
from covidnews.store import Store
from nlp_worker.factchecks import link_pending
from nlp_worker.process import process_ids
from tests.api.conftest import AppFactory, make_settings
from tests.nlp_worker.conftest import real_backends

TEXT = (
    "El ministerio de salud informó que la campaña de vacunación contra la covid-19 avanza en "
    "todo el país y pidió a la población mantener el uso de cubrebocas en lugares cerrados. "
)


def test_factchecks_everywhere_a_user_looks(
    db_url: str, make_app: AppFactory, tmp_path: Path
) -> None:
    store = Store(db_url)
    store.migrate()
    settings = make_settings(tmp_path, db_url)
    urls = [f"https://diario.example/2021/03/0{i}/nota-{i}" for i in (1, 2)]
    ids = store.upsert_articles(
        [
            parse_record(
                {"url": u, "title": f"Vacunación {i}", "text": TEXT * 3, "language": "es",
                 "published_at": f"2021-03-0{i}T10:00:00-06:00"}
            )
            for i, u in enumerate(urls, start=1)
        ]
    ).changed_ids  # fmt: skip
    backends = real_backends("hashing")
    process_ids(store, settings, ids, backends=backends)
    with store.session() as s:
        checker = Source(name="Verifica Ya", slug="verifica-ya", kind="factchecker", country="MX")
        s.add(checker)
        s.flush()
        source_id = checker.id

    def fc(claim: str, verdict: str, day: int, appearance: str | None) -> FactCheckRecord:
        return FactCheckRecord(
            url=f"https://verificaya.example/{day}",
            claim=claim,
            verdict=verdict,
            verdict_text=verdict.upper(),
            language="es",
            reviewed_at=datetime(2021, 3, day, 12, tzinfo=UTC),
            appearances=[appearance] if appearance else [],
        )

    fc_false, fc_true, fc_none = upsert_factchecks(
        store,
        [
            fc("La vacuna contiene grafeno", "false", 3, urls[0]),
            fc("El cubrebocas reduce los contagios", "true", 4, urls[0] + "?utm_medium=social"),
            fc("Un té de hierbas cura la covid", "misleading", 5, None),
        ],
        source_id,
    )
    link_pending(store, backends.embedder)
    store.close()

    client = make_app(db_url=db_url).test_client()

    article = client.get(f"/api/v1/articles/{ids[0]}").get_json()
    assert [(f["id"], f["reason"], f["verdict"]) for f in article["factchecks"]] == [
        (fc_false, "appearance", "false"),
        (fc_true, "appearance", "true"),
    ]
    assert article["factchecks"][0]["factchecker"] == "Verifica Ya"
    assert client.get(f"/api/v1/articles/{ids[1]}").get_json()["factchecks"] == []

    found = client.get("/api/v1/search?q=vacunación&covid=all&per_page=10").get_json()["results"]
    by_id = {r["id"]: r for r in found}
    assert {f["id"] for f in by_id[ids[0]]["factchecks"]} == {fc_false, fc_true}
    assert by_id[ids[1]]["factchecks"] == []

    # The list: newest first, a cursor, filters by verdict, fact-checker, words and date.
    page = client.get("/api/v1/factchecks?per_page=2").get_json()
    assert [f["id"] for f in page["results"]] == [fc_none, fc_true] and page["next"] == fc_true
    rest = client.get(f"/api/v1/factchecks?per_page=2&cursor={page['next']}").get_json()
    assert [f["id"] for f in rest["results"]] == [fc_false] and rest["next"] is None

    def ids_of(query: str) -> list[int]:
        r = client.get(f"/api/v1/factchecks?{query}")
        assert r.status_code == 200, r.get_data(as_text=True)
        return [f["id"] for f in r.get_json()["results"]]

    assert ids_of("verdict=false&verdict=misleading") == [fc_none, fc_false]
    assert ids_of("factchecker=verifica-ya") == [fc_none, fc_true, fc_false]
    assert ids_of("factchecker=otro") == []
    assert ids_of("q=grafeno") == [fc_false]
    assert ids_of("from=2021-03-04&to=2021-03-04") == [fc_true]
    for bad in ("verdict=maybe", "per_page=0", "from=2021-13-01", "from=2021-03-05&to=2021-03-01"):
        r = client.get(f"/api/v1/factchecks?{bad}")
        assert r.status_code == 400, bad
        assert r.headers["Content-Type"].startswith("application/problem+json")

    # The export carries them too.
    jsonl = client.get("/api/v1/export?q=vacunación&covid=all&format=jsonl").get_data(as_text=True)
    rows = {r["id"]: r for r in map(json.loads, jsonl.splitlines())}
    assert [f["verdict"] for f in rows[ids[0]]["factchecks"]] == ["false", "true"]
    text = client.get("/api/v1/export?q=vacunación&covid=all&format=csv").get_data(as_text=True)
    table = {int(r["id"]): r for r in csv.DictReader(io.StringIO(text))}
    assert table[ids[0]]["factcheck_verdicts"] == "false true"
    assert table[ids[1]]["factcheck_verdicts"] == ""

    # The archive's list of verdicts: every fact-check, filters by verdict and by the topic of a
    # linked article, the verdict in words in both languages, bad filters are 404s.
    page = client.get("/verificaciones").get_data(as_text=True)
    assert all(c in page for c in ("grafeno", "cubrebocas reduce", "hierbas"))
    assert ">Falso<" in page and ">Engañoso<" in page
    only_true = client.get("/verificaciones?veredicto=true").get_data(as_text=True)
    assert "cubrebocas reduce" in only_true and "grafeno" not in only_true
    assert ">False<" in client.get("/verificaciones?lang=en").get_data(as_text=True)
    with Store(db_url).session() as s:
        from covidnews.schema import ArticleTopic

        topic = s.scalar(select(ArticleTopic.topic).where(ArticleTopic.article_id == ids[0]))
    assert topic is not None  # a Covid article gets 1-3 topics from the classifier
    by_topic = client.get(f"/verificaciones?tema={topic}").get_data(as_text=True)
    assert "grafeno" in by_topic and "hierbas" not in by_topic
    for bad in ("tema=nada", "veredicto=quizas", "cursor=abc"):
        assert client.get(f"/verificaciones?{bad}").status_code == 404, bad
