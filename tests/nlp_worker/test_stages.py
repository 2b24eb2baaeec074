"""The stage runner on real backends (langid, classifier, apertium, hashing embedder): results stored
with their model, stages re-run only when input or model change, one bad article fails alone.
Processing writes the store (and its change sequence); this machine's indexes follow the store
(:class:`covidnews.follow.Follower`, polled after each batch) to exactly the processed articles."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from covidnews.embed import document_text, get_embedder
from covidnews.follow import Follower
from covidnews.index import VectorIndex
from covidnews.ingest import parse_record
from covidnews.interfaces import BackendUnavailable, Kind
from covidnews.schema import (
    Article,
    ArticleChange,
    ArticleTopic,
    Embedding,
    StageRun,
    Translation,
)
from covidnews.search.keyword import KeywordIndex
from covidnews.settings import load_settings
from covidnews.store import Store
from nlp_worker.classify import CovidClassifier, load_classifier
from nlp_worker.process import deferred_count, pending_ids, process_ids, requeue_deferred
from nlp_worker.stages import Backends, _hash
from tests.conftest import SHARED

COVID_ES = (
    "El Ministerio de Salud informó este martes de 3.500 nuevos contagios de coronavirus y 80 "
    "fallecidos en las últimas 24 horas. La ocupación de camas de cuidados intensivos llegó al 70 % "
    "en la capital. Las autoridades pidieron a la población usar mascarilla y mantener la distancia. "
    "La campaña de vacunación contra la covid-19 comenzará la próxima semana con el personal sanitario."
)
COVID_EN = (
    "The health ministry reported 3,500 new coronavirus infections and 80 deaths in the last 24 hours. "
    "Intensive care occupancy reached 70 percent in the capital. Authorities asked people to wear masks "
    "and keep their distance. The COVID-19 vaccination campaign will start next week with health workers."
)


def settings(tmp_path: Path) -> Any:
    return load_settings(data_dir=tmp_path / "var", nlp_batch_size=4)


def done_ids(store: Store) -> set[int]:
    with store.session() as s:
        return set(s.scalars(select(Article.id).where(Article.state == "done")))


def changed_ids(store: Store) -> set[int]:
    """Articles noted in the store's change sequence."""
    with store.session() as s:
        return set(s.scalars(select(ArticleChange.article_id)))


def vector_ids(cfg: Any, model: str) -> set[int]:
    index = VectorIndex(cfg.index_dir, model)
    snapshot = index.snapshot()
    ids = index.ids()
    assert snapshot is not None and snapshot.live_count == len(ids)  # one vector per article
    return ids


def keyword_ids(cfg: Any) -> set[int]:
    keyword = KeywordIndex(cfg.data_dir / "search")
    stamps = keyword.stamps()
    assert len(stamps) == keyword.count()  # one document per article
    return set(stamps)


def store_stamps(store: Store) -> dict[int, float]:
    """The version (``updated_at``) of each processed article: what the indexes must hold."""
    with store.session() as s:
        rows = s.execute(select(Article.id, Article.updated_at).where(Article.state == "done"))
        return {int(i): u.timestamp() for i, u in rows}


def assert_indexes_follow(store: Store, cfg: Any, model: str) -> None:
    """This machine's indexes hold exactly the processed articles, at their stored version."""
    done = store_stamps(store)
    assert vector_ids(cfg, model) == set(done) == keyword_ids(cfg)
    assert VectorIndex(cfg.index_dir, model).stamps(sorted(done)) == done
    assert KeywordIndex(cfg.data_dir / "search").stamps() == done


def articles(store: Store) -> list[int]:
    rows = [json.loads(line) for line in (SHARED / "fakedes" / "train.jsonl").open()][:6]
    records = [
        parse_record(
            {"url": "https://d.example/covid-es", "title": "Récord de contagios", "text": COVID_ES}
        ),
        parse_record(
            {"url": "https://d.example/covid-en", "title": "Record infections", "text": COVID_EN}
        ),
        *[
            parse_record({"url": r["link"], "title": r["headline"], "text": r["text"]})
            for r in rows
        ],
    ]
    return store.upsert_articles(records).inserted


def test_pipeline_stores_every_stage_result(
    store: Store, tmp_path: Path, backends: Backends
) -> None:
    ids = articles(store)
    cfg = settings(tmp_path)
    report = process_ids(store, cfg, pending_ids(store), backends=backends)
    assert report.done == len(ids) and report.failed == 0
    assert report.indexed == len(ids)
    with store.session() as s:
        by_url = {a.url: a for a in s.scalars(select(Article))}
        es, en = by_url["https://d.example/covid-es"], by_url["https://d.example/covid-en"]
        assert es.language == "es" and en.language == "en"
        assert es.is_covid and en.is_covid
        assert es.covid_score is not None and es.covid_score > 0.5
        assert es.summary
        assert es.summary.split(". ")[0].rstrip(".") in es.text
        non_covid = [a for a in by_url.values() if not a.url.startswith("https://d.example/")]
        assert sum(1 for a in non_covid if not a.is_covid) >= 5  # 2018 news
        # Translation only for Covid articles, into the other language.
        translations = {(t.article_id, t.language): t for t in s.scalars(select(Translation))}
        assert (es.id, "en") in translations and (en.id, "es") in translations
        assert translations[(es.id, "en")].title and translations[(es.id, "en")].model.startswith(
            "apertium"
        )
        assert not any(
            aid in {a.id for a in non_covid if not a.is_covid} for aid, _ in translations
        )
        # Topics: 1-3 per Covid article, none for the others.
        topics = s.execute(
            select(ArticleTopic.article_id, func.count()).group_by(ArticleTopic.article_id)
        ).all()
        assert all(1 <= n <= 3 for _, n in topics)
        assert {aid for aid, _ in topics} <= {a.id for a in by_url.values() if a.is_covid}
        assert s.scalar(select(func.count()).select_from(Embedding)) == len(ids)
        runs = s.execute(select(StageRun.stage, StageRun.model)).all()
        assert {stage for stage, _ in runs} == {
            "langid",
            "classify",
            "summarize",
            "translate",
            "embed",
        }
        assert all(model for _, model in runs)
    # Every processed article is in the store's change sequence; the indexes followed it.
    assert done_ids(store) == set(ids) == changed_ids(store)
    model = backends.embedder.model_id
    assert_indexes_follow(store, cfg, model)
    # Another node (another data directory) bootstraps the same indexes from the store alone,
    # then finds nothing more to do.
    node = Follower(store, tmp_path / "node", model)
    first = node.poll()
    assert first.bootstrapped and first.vectors == len(ids) and first.written == len(ids)
    assert node.vectors.ids() == set(ids)
    again = node.poll()
    assert not again.bootstrapped and (again.written, again.vectors, again.deleted) == (0, 0, 0)


def test_stages_rerun_only_on_changed_input_or_model(
    store: Store, tmp_path: Path, backends: Backends
) -> None:
    ids = articles(store)
    cfg = settings(tmp_path)
    process_ids(store, cfg, ids, backends=backends)
    with store.session() as s:
        s.execute(Article.__table__.update().values(state="pending"))
    process_ids(store, cfg, ids, backends=backends)  # nothing changed: nothing re-runs
    with store.session() as s:
        assert set(s.scalars(select(StageRun.attempts))) == {1}
    # The text of one article changes (a re-crawl): its stages run again, the others' do not.
    changed = parse_record(
        {
            "url": "https://d.example/covid-es",
            "title": "Récord de contagios",
            "text": COVID_ES + " Actualización: 3.600 casos.",
        }
    )
    store.upsert_articles([changed])
    model = backends.embedder.model_id
    index = VectorIndex(cfg.index_dir, model)
    before = index.manifest()
    assert before is not None
    process_ids(store, cfg, pending_ids(store), backends=backends)
    # The changed article's vector was replaced in this machine's index (its old row is dead),
    # the others' left alone.
    after = index.manifest()
    assert after is not None and after.rows - before.rows == 1 and after.dead - before.dead == 1
    assert_indexes_follow(store, cfg, model)
    with store.session() as s:
        es_id = s.scalar(select(Article.id).where(Article.url == "https://d.example/covid-es"))
        runs = dict(
            s.execute(
                select(StageRun.stage, StageRun.attempts).where(StageRun.article_id == es_id)
            ).all()
        )
        assert runs["embed"] == 2 and runs["classify"] == 2
        others = (
            s.execute(select(StageRun.attempts).where(StageRun.article_id != es_id)).scalars().all()
        )
        assert set(others) == {1}
    # A new embedding model re-embeds everything (and only embeds).
    other = Backends(**{**backends.__dict__, "embedder": get_embedder("hashing", dims=64)})
    with store.session() as s:
        s.execute(Article.__table__.update().values(state="pending"))
    process_ids(store, cfg, ids, backends=other)
    with store.session() as s:
        models = set(s.scalars(select(Embedding.model)))
        assert models == {backends.embedder.model_id, other.embedder.model_id}
        langid_runs = s.scalars(
            select(StageRun.attempts).where(
                StageRun.stage == "langid", StageRun.article_id != es_id
            )
        )
        assert set(langid_runs) == {1}  # a new embedder changes nothing upstream
    # Each model has its own vector index, holding every processed article.
    assert_indexes_follow(store, cfg, other.embedder.model_id)
    assert vector_ids(cfg, model) == set(ids)
    other_manifest = VectorIndex(cfg.index_dir, other.embedder.model_id).manifest()
    assert other_manifest is not None and other_manifest.dims == 64


class Exploding:
    """A translator that fails on one input (a corrupt article), to test isolation."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id = inner, inner.model_id

    def pairs(self) -> set[tuple[str, str]]:
        return set(self.inner.pairs())

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        if any("3.500 nuevos contagios" in t for t in texts):
            raise RuntimeError("backend crashed on this text")
        return list(self.inner.translate(texts, source, target))


def test_a_failing_article_fails_alone_and_is_marked_failed(
    store: Store, tmp_path: Path, backends: Backends
) -> None:
    ids = articles(store)
    cfg = settings(tmp_path)
    broken = Backends(**{**backends.__dict__, "translator": Exploding(backends.translator)})
    first = process_ids(store, cfg, ids, backends=broken)
    assert first.done == len(ids) - 1 and first.retry == 1
    for _ in range(cfg.nlp_max_attempts - 1):
        process_ids(store, cfg, pending_ids(store), backends=broken)
    with store.session() as s:
        states = dict(s.execute(select(Article.url, Article.state)).all())
        failed = s.scalar(select(Article).where(Article.state == "failed"))
        assert failed is not None and failed.url == "https://d.example/covid-es"
        assert "backend crashed" in (failed.state_error or "")
        assert sum(1 for v in states.values() if v == "done") == len(ids) - 1
    assert pending_ids(store) == []  # a failed article never blocks the queue
    # The failed article is in neither index; every other one is.
    assert_indexes_follow(store, cfg, backends.embedder.model_id)
    assert len(vector_ids(cfg, backends.embedder.model_id)) == len(ids) - 1


class Counting:
    """The real E5 embedder, counting the texts it is asked to encode."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.dims = inner, inner.model_id, inner.dims
        self.texts: Counter[str] = Counter()
        self.calls = 0

    def encode(self, texts: Sequence[str], *, kind: Kind = "passage") -> np.ndarray:
        self.calls += 1
        self.texts.update(texts)
        return np.asarray(self.inner.encode(texts, kind=kind))


def test_classifier_and_embed_stage_share_one_embedding_per_article(
    store: Store, tmp_path: Path, backends: Backends
) -> None:
    """Same model for the classifier and the embed stage: each article is encoded once."""
    e5 = Counting(get_embedder("e5"))
    shared = Backends(
        **{
            **backends.__dict__,
            "classifier": CovidClassifier(load_classifier().artefact, embedder=e5),
            "embedder": e5,
            "translator": None,  # not under test here
        }
    )
    ids = articles(store)
    cfg = settings(tmp_path)  # batches of 4
    report = process_ids(store, cfg, ids, backends=shared)
    assert report.done == len(ids) and report.indexed == len(ids)
    assert sum(e5.texts.values()) == len(ids) and set(e5.texts.values()) == {1}
    assert e5.calls == 2  # one encode per batch, by the classifier
    with store.session() as s:
        stored = {
            a.id: (a, np.frombuffer(v, dtype=np.float32))
            for a, v in s.execute(
                select(Article, Embedding.vector).join(
                    Embedding, Embedding.article_id == Article.id
                )
            ).all()
        }
        assert set(stored) == set(ids)
        for a, vector in stored.values():
            text = document_text(a.title, a.text)
            assert e5.texts[text] == 1  # the embedded text is the classifier's document text
            expected = e5.inner.encode([text], kind="passage")[0]
            assert np.allclose(vector, expected, atol=1e-4)
            run = s.scalar(
                select(StageRun).where(StageRun.article_id == a.id, StageRun.stage == "embed")
            )
            assert run is not None and run.model == e5.model_id and run.input_hash == _hash(text)
        s.execute(Article.__table__.update().values(state="pending"))
    e5.texts.clear()
    process_ids(store, cfg, ids, backends=shared)  # nothing changed: nothing is encoded
    assert not e5.texts
    with store.session() as s:
        assert set(s.scalars(select(StageRun.attempts))) == {1}


class GoneModel:
    """A translator whose model went away between start and use (a deleted model folder)."""

    model_id = "hf:gone"

    def pairs(self) -> set[tuple[str, str]]:
        return {("es", "en"), ("en", "es")}

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        raise BackendUnavailable("the model folder /models/gone does not exist")


def _translate_runs(store: Store) -> dict[str, tuple[str, str]]:
    with store.session() as s:
        return {
            url: (status, model)
            for url, status, model in s.execute(
                select(Article.url, StageRun.status, StageRun.model)
                .join(StageRun, StageRun.article_id == Article.id)
                .where(StageRun.stage == "translate")
            )
        }


@pytest.mark.parametrize("how", ["not installed", "model gone"])
def test_a_translator_that_cannot_run_defers_translations_until_one_can(
    store: Store, tmp_path: Path, backends: Backends, how: str
) -> None:
    ids = articles(store)
    cfg = settings(tmp_path)
    if how == "not installed":  # what Backends.from_settings builds without the apertium command
        missing = Backends(
            **{**backends.__dict__, "translator": None, "translator_unavailable": "no apertium"}
        )
    else:
        missing = Backends(**{**backends.__dict__, "translator": GoneModel()})
    first = process_ids(store, cfg, ids, backends=missing)
    # Nothing failed: every article is done and searchable, none translated.
    assert first.done == len(ids) and first.failed == first.retry == 0
    assert_indexes_follow(store, cfg, backends.embedder.model_id)
    runs = _translate_runs(store)
    deferred = {url for url, (status, _) in runs.items() if status == "deferred"}
    assert deferred == {"https://d.example/covid-es", "https://d.example/covid-en"}
    assert {model for status, model in runs.values() if status == "deferred"} == {"unavailable"}
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Translation)) == 0
        assert set(s.scalars(select(Article.attempts))) == {0}
    assert deferred_count(store) == 2 == store.stats()["translations_deferred"]
    # Once a translator can run (`covidnews process` checks), only those two go back to the
    # queue, and only their translation runs.
    assert requeue_deferred(store) == 2
    assert set(pending_ids(store)) == set(articles_by_url(store, deferred).values())
    process_ids(store, cfg, pending_ids(store), backends=backends)
    assert deferred_count(store) == 0 and requeue_deferred(store) == 0
    with store.session() as s:
        languages = set(s.execute(select(Translation.article_id, Translation.language)))
        assert {lang for _, lang in languages} == {"en", "es"} and len(languages) == 2
        attempts = dict(
            s.execute(
                select(StageRun.stage, func.max(StageRun.attempts)).group_by(StageRun.stage)
            ).all()
        )
    assert attempts == {"langid": 1, "classify": 1, "summarize": 1, "translate": 2, "embed": 1}
    assert done_ids(store) == set(ids)
    assert_indexes_follow(store, cfg, backends.embedder.model_id)


def articles_by_url(store: Store, urls: set[str]) -> dict[str, int]:
    with store.session() as s:
        return dict(s.execute(select(Article.url, Article.id).where(Article.url.in_(urls))).all())
