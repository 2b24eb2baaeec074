"""Covid relevance + topic classifier: the committed artefact, predictions in Spanish and English,
the JSONL stream contract and retraining (on a small subset, with the fast hashing embedder)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nlp_worker.classify import (
    DEFAULT_ARTEFACT,
    MAX_TOPICS,
    Artefact,
    CovidClassifier,
    covid_keyword_features,
    keyword_rule,
    load_classifier,
    load_training_data,
    select_topics,
    train,
)
from nlp_worker.classify_cli import classify_stream, train_classifier_main
from tests.conftest import SHARED

TOPIC_IDS = {
    "cases",
    "vaccines",
    "health_care",
    "measures",
    "economy",
    "education",
    "travel",
    "science",
    "misinformation",
    "politics",
    "society",
}

COVID_ES = [
    {
        "title": "Récord de contagios de covid-19 en la capital",
        "text": "El Ministerio de Salud informó este martes de 3.500 nuevos contagios de coronavirus y "
        "80 fallecidos en las últimas 24 horas. La ocupación de camas de cuidados intensivos llegó "
        "al 70 % y las autoridades pidieron usar mascarilla y mantener la distancia.",
    },
    {
        "title": "",
        "text": "La campaña de vacunación contra la COVID-19 comenzará la próxima semana con el "
        "personal sanitario y las residencias de mayores, tras la llegada de las primeras dosis de "
        "la vacuna de Pfizer.",
    },
]
COVID_EN = [
    {
        "title": "Coronavirus cases surge as hospitals fill up",
        "text": "The health ministry reported 3,500 new coronavirus infections and 80 deaths in the "
        "last 24 hours. Intensive care occupancy reached 70 percent and authorities asked people "
        "to wear masks and keep their distance.",
    },
    {
        "title": "",
        "text": "Schools will close again from Thursday and pupils will return to remote classes as "
        "the COVID-19 positivity rate passed 3 percent, the mayor said. A lockdown of bars and "
        "restaurants is also being considered.",
        "language": "en",
    },
]


def _fakedes_2018(n: int) -> list[dict[str, Any]]:
    """The first ``n`` FakeDeS 2018 development articles (all pre-Covid), bodies shortened."""
    rows = []
    with (SHARED / "fakedes" / "development.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            rows.append({"title": r["headline"], "text": r["text"][:800]})
            if len(rows) == n:
                break
    return rows


@pytest.fixture(scope="module")
def classifier() -> CovidClassifier:
    return load_classifier()


def test_committed_artefact_loads_and_is_small(classifier: CovidClassifier) -> None:
    assert DEFAULT_ARTEFACT.is_file()
    assert DEFAULT_ARTEFACT.stat().st_size < 300_000
    assert load_classifier() is classifier  # loaded once per process
    a = classifier.artefact
    assert set(a.topic_ids) == TOPIC_IDS
    assert a.embedder == "e5"
    assert classifier.model_id.startswith("covidclf-v1:")
    assert classifier.model_id.endswith(a.embedder_model_id)
    assert 0.0 < a.threshold < 1.0 and 0.0 < a.topic_threshold < 1.0
    meta = json.loads(DEFAULT_ARTEFACT.with_suffix(".json").read_text(encoding="utf-8"))
    assert meta["digest"] == a.digest()
    assert meta["cv"]["relevance"]["f1"]["mean"] > 0.9
    assert "features" in meta and "training_data" in meta


def test_spanish_and_english_covid_texts_score_high_and_others_low(
    classifier: CovidClassifier,
) -> None:
    covid = classifier.predict(COVID_ES + COVID_EN)
    assert all(r["is_covid"] and r["covid_score"] > 0.8 for r in covid), covid
    other = classifier.predict(_fakedes_2018(3))
    assert all(not r["is_covid"] and r["covid_score"] < 0.3 for r in other), other


def test_topics_valid_sorted_and_empty_when_not_covid(classifier: CovidClassifier) -> None:
    results = classifier.predict(COVID_ES + COVID_EN + _fakedes_2018(2))
    for r in results:
        assert 0.0 <= r["covid_score"] <= 1.0
        if not r["is_covid"]:
            assert r["topics"] == []
            continue
        assert 1 <= len(r["topics"]) <= MAX_TOPICS
        assert {t["id"] for t in r["topics"]} <= TOPIC_IDS
        scores = [t["score"] for t in r["topics"]]
        assert scores == sorted(scores, reverse=True)
    # the vaccination campaign is about vaccines, the school closure about education/measures
    assert results[1]["topics"][0]["id"] == "vaccines"
    assert {t["id"] for t in results[3]["topics"]} & {"education", "measures"}


def test_precomputed_embeddings_give_the_same_result(classifier: CovidClassifier) -> None:
    emb = classifier.embed(COVID_ES)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    assert classifier.predict(COVID_ES, embeddings=emb) == classifier.predict(COVID_ES)
    assert classifier.predict([]) == []


def test_keyword_features_are_bilingual() -> None:
    assert keyword_rule("Nuevos contagios de coronavirus", "")
    assert keyword_rule("", "The lockdown was extended. COVID-19 deaths keep rising.")
    assert not keyword_rule(
        "El Real Madrid gana la Liga", "El equipo celebró el título en Cibeles."
    )
    assert covid_keyword_features("Vacunación", "la pandemia")[0] > 0  # accents folded


def test_select_topics_rule() -> None:
    scores = np.array([0.2, 0.9, 0.5, 0.6, 0.1])
    assert select_topics(scores, 0.55) == [1, 3]
    assert select_topics(scores, 0.4) == [1, 3, 2]
    assert select_topics(scores, 0.95) == [1]  # the best one always


class _Stub:
    model_id = "stub"

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.batches.append(len(items))
        return [
            {"covid_score": 0.9, "is_covid": True, "topics": [{"id": "cases", "score": 0.8}]}
            for _ in items
        ]


def test_stream_reports_bad_lines_and_keeps_good_ones() -> None:
    lines: list[bytes | str] = [
        json.dumps({"title": "Vacunas", "text": "Llegan las vacunas contra la covid-19.", "id": 1}),
        "{not json",
        "",  # blank: skipped silently
        json.dumps(["a", "list"]),
        json.dumps({"title": "sin texto"}),
        json.dumps({"text": "   "}),
        b"\xff\xfe broken utf-8",
        json.dumps({"text": "The lockdown was extended for two weeks.", "language": "en"}).encode(),
        json.dumps({"text": 5}),
        json.dumps({"text": "Se prorroga el confinamiento en toda la región durante dos semanas."}),
    ]
    bad: list[tuple[int, str]] = []
    stub = _Stub()
    out = list(classify_stream(lines, stub, on_bad=lambda n, r: bad.append((n, r)), batch_size=2))
    assert [n for n, _ in bad] == [2, 4, 5, 6, 7, 9]
    assert "invalid JSON" in bad[0][1] and "not a JSON object" in bad[1][1]
    assert "text" in bad[2][1] and "UTF-8" in bad[4][1]
    assert [o.get("id") for o in out] == [1, None, None]
    assert out[0]["language"] == "es"  # detected
    assert out[1]["language"] == "en"  # kept
    assert out[2]["language"] == "es"
    assert all(o["is_covid"] and o["topics"][0]["id"] == "cases" for o in out)
    assert stub.batches == [2, 1]


def test_stream_with_the_real_classifier(classifier: CovidClassifier) -> None:
    lines = [json.dumps(COVID_EN[0]), "[]", json.dumps(_fakedes_2018(1)[0], ensure_ascii=False)]
    bad: list[int] = []
    out = list(classify_stream(lines, classifier, on_bad=lambda n, r: bad.append(n)))
    assert bad == [2]
    assert [o["is_covid"] for o in out] == [True, False]
    assert out[0]["language"] == "en" and out[1]["language"] == "es"
    assert out[1]["topics"] == []


def _small_training_data() -> Any:
    data = load_training_data(SHARED)
    covid = [r for r in data.labelled if r["covid"]][:24]
    other = [r for r in data.labelled if not r["covid"]][:16]
    data.labelled = covid + other
    data.negatives = data.negatives[:20]
    return data


def test_retraining_on_a_subset_gives_a_loadable_artefact(tmp_path: Path) -> None:
    artefact = train(_small_training_data(), embedder="hashing", folds=3)
    path = artefact.save(tmp_path / "clf.npz")
    assert path.with_suffix(".json").is_file()
    loaded = Artefact.load(path)
    assert loaded.digest() == artefact.digest()
    assert loaded.meta["training_data"]["labelled"] == 40
    clf = load_classifier(path)
    assert clf.model_id.startswith(f"covidclf-v1:{artefact.digest()}+hashing:")
    results = clf.predict(COVID_ES + _fakedes_2018(1))
    assert len(results) == 3
    for r in results:
        assert (r["topics"] == []) == (not r["is_covid"])
        assert {t["id"] for t in r["topics"]} <= TOPIC_IDS


def test_train_classifier_main_writes_artefact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    (shared / "fakedes").mkdir(parents=True)
    shutil.copy(SHARED / "taxonomy.yaml", shared / "taxonomy.yaml")
    data = _small_training_data()
    for name, rows in (
        ("labelled_dev.jsonl", data.labelled),
        ("train.jsonl", data.negatives[:10]),
        ("development.jsonl", data.negatives[10:]),
    ):
        with (shared / "fakedes" / name).open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
    out = tmp_path / "out" / "classifier.npz"
    status = train_classifier_main(
        out, shared=shared, embedder="hashing", repeats=1, folds=3, cache_dir=None
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "relevance" in printed and "macro-F1" in printed and str(out) in printed
    meta = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    assert set(meta["cv"]) >= {"relevance", "topics", "protocol"}
    assert load_classifier(out).predict(COVID_EN)[0]["covid_score"] >= 0.0
    assert train_classifier_main(out, shared=tmp_path / "nowhere", embedder="hashing") == 2


@pytest.mark.slow
def test_english_covid_news_from_tico19_is_relevant(classifier: CovidClassifier) -> None:
    """English Wikinews Covid stories of TICO-19, 6-sentence passages: nearly all relevant."""
    import csv
    from collections import defaultdict

    docs: dict[str, list[str]] = defaultdict(list)
    with (SHARED / "tico19" / "tico19_dev.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["doc_source"] == "Wikinews":
                docs[row["tuid"].split(":")[0]].append(row["en"])
    passages = [
        {"title": "", "text": " ".join(sents[i : i + 6])}
        for sents in docs.values()
        for i in range(0, len(sents), 6)
    ]
    results = classifier.predict(passages)
    share = sum(r["is_covid"] for r in results) / len(results)
    assert len(passages) >= 8 and share >= 0.75, share


def test_fit_logistic_solves_the_l2_objective() -> None:
    """The fitted weights are the optimum of c·Σ sw·logloss + ||w||²/2 (standardised features):
    the gradient there is zero. Both bases: more rows than columns, and the row-space reduction."""
    from nlp_worker.classify import fit_logistic

    rng = np.random.default_rng(7)
    for n, d in ((200, 12), (30, 80)):
        x = rng.normal(size=(n, d))
        y = (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(float)
        w, b = fit_logistic(x, y, c=1.0, balanced=False)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        ws = w * scale  # weights in the standardised space
        z = (x - mean) / scale @ ws + (b + (mean * w).sum())
        p = 1.0 / (1.0 + np.exp(-z))
        grad = ((x - mean) / scale).T @ (p - y) + ws
        assert np.abs(grad).max() < 1e-4, (n, d, np.abs(grad).max())
        assert abs((p - y).sum()) < 1e-4  # the unpenalised intercept's own condition


def test_workers_do_not_import_training_code() -> None:
    code = (
        "import sys; import nlp_worker.stages, nlp_worker.classify as c; c.load_classifier(); "
        "print(sorted(m for m in sys.modules if m.startswith(('sklearn', 'nlp_worker.classify.'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['nlp_worker.classify.model']"
