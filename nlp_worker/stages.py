"""The NLP stages, cheapest first, and the runner that applies them to a batch of articles.

language id → Covid relevance + topics → summary → translation (Covid articles only) → embedding
(→ the index, by the single index writer). Each stage is a plain function of its input; its result
is stored with the model id that produced it and the hash of its input (``stage_runs``), so a stage
re-runs only when its input or model changed. One article's failure never stops the batch: it is
recorded with its error and retried up to ``COVIDNEWS_NLP_MAX_ATTEMPTS`` times, then marked failed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import delete, select

from covidnews.embed import document_text
from covidnews.interfaces import BackendUnavailable, Classifier, Embedder, Translator
from covidnews.schema import (
    Article,
    ArticleTopic,
    Embedding,
    ProcessingState,
    StageRun,
    Translation,
    utcnow,
)
from covidnews.store import Store
from nlp_worker import leases

if TYPE_CHECKING:
    from covidnews.settings import Settings

log = logging.getLogger(__name__)

STAGES = ("langid", "classify", "summarize", "translate", "embed")
LANGID_MIN_CONFIDENCE = 0.80


@dataclass
class Backends:
    """The models a worker process uses; built once per process from settings."""

    detect_language: Callable[[str], tuple[str | None, float]]
    langid_model: str
    classifier: Classifier
    translator: Translator | None  # None: no translator configured (COVIDNEWS_TRANSLATOR=none)
    embedder: Embedder
    split_sentences: Callable[[str, str | None], list[str]] | None = None
    #: why the configured translator cannot run here (e.g. Apertium not installed); translations
    #: are then deferred, not failed: the articles are stored, classified and searchable, and
    #: ``covidnews process`` translates them once the translator is installed
    translator_unavailable: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        return _backends(
            settings.translator,
            tuple(sorted(settings.translation_models.items())),
            settings.embedder,
            settings.embedding_model,
            str(settings.classifier_path or ""),
            settings.nlp_threads,
        )


@functools.cache
def _backends(
    translator: str,
    translation_models: tuple[tuple[str, str], ...],
    embedder: str,
    embedding_model: str | None,
    classifier_path: str,
    threads: int,
) -> Backends:
    from covidnews.embed import get_embedder
    from nlp_worker.backends.langid import MODEL_ID as LANGID_MODEL
    from nlp_worker.backends.langid import detect_language
    from nlp_worker.backends.sentences import split_sentences
    from nlp_worker.backends.translate import get_translator
    from nlp_worker.classify import load_classifier

    options: dict[str, Any] = {}
    if embedding_model:
        options["model_name_or_path"] = embedding_model
    emb = get_embedder(embedder, **options)
    tr_options: dict[str, Any] = {}
    if translator in {"transformers", "ctranslate2"}:
        tr_options["models"] = {
            tuple(pair.split("-", 1)): model for pair, model in translation_models
        }
    built, unavailable = None, None
    if translator != "none":
        try:
            built = get_translator(translator, **tr_options)
        except BackendUnavailable as exc:  # said by whoever runs the stages (CLI, worker)
            unavailable = str(exc)
    return Backends(
        detect_language=detect_language,
        langid_model=LANGID_MODEL,
        classifier=load_classifier(classifier_path or None),
        translator=built,
        embedder=emb,
        split_sentences=split_sentences,
        translator_unavailable=unavailable,
    )


def _hash(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()


@dataclass
class BatchReport:
    done: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)  # gave up (state failed)
    retry: list[int] = field(default_factory=list)  # failed this time, will be retried
    embedded: list[int] = field(default_factory=list)  # got a (new) vector: index them
    skipped_stages: int = 0
    #: wall seconds spent in each stage for this batch (incl. per-article retries), by stage
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: CPU seconds of this process (all its threads; not subprocesses) in each stage
    stage_cpu_seconds: dict[str, float] = field(default_factory=dict)
    #: texts sent to the embedder in this batch (the classifier's and the embed stage's)
    texts_embedded: int = 0
    #: claimed, then released unprocessed after the lease on part of the batch was lost
    released: list[int] = field(default_factory=list)
    #: fact-check links made after the batch (nlp_worker.factchecks)
    factcheck_links: int = 0


@dataclass
class _Work:
    article: Article
    runs: dict[str, StageRun]
    error: str | None = None
    #: document vectors computed earlier in this batch: (embedder model id, input hash) → vector,
    #: so the embed stage reuses the classifier's embedding instead of encoding it again
    vectors: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)


def process_leased(
    store: Store, ids: Sequence[int], backends: Backends, settings: Settings, owner: str
) -> BatchReport:
    """Claim ``ids`` under ``owner``'s lease, run the stages on what was claimed while a
    heartbeat renews the lease, and write the results only if the lease still holds. Articles
    another live worker holds are left to it; on a lease lost mid-batch nothing of the batch is
    written and what is still held is released (``report.released``) for the caller to hand
    over again."""
    from nlp_worker.factchecks import link_batch

    claimed = leases.claim(store, ids, owner, settings.lease_seconds)
    with leases.Heartbeat(store, claimed, owner, settings.lease_seconds):
        try:
            report = run_batch(
                store, claimed, backends, max_attempts=settings.nlp_max_attempts, owner=owner,
                handoff_seconds=settings.handoff_seconds,
            )  # fmt: skip
        except leases.LeaseLost as exc:
            report = BatchReport()
            report.released = leases.release(store, claimed, owner)
            log.warning("%s; %d released to be handed over again", exc, len(report.released))
            return report
    # Fact-checks about these articles (and any fact-check waiting to be linked).
    report.factcheck_links = link_batch(store, backends.embedder, report.done)
    return report


def run_batch(
    store: Store,
    ids: Sequence[int],
    backends: Backends,
    *,
    max_attempts: int = 3,
    owner: str | None = None,
    handoff_seconds: int = 1800,
) -> BatchReport:
    """Run every stage that needs running on these articles; idempotent. With ``owner``, the
    results are written only if ``owner`` still holds every article's lease (else
    :class:`~nlp_worker.leases.LeaseLost`, nothing written); the leases are cleared with them."""
    report = BatchReport()
    if not ids:
        return report
    with store.session() as s:
        articles = list(s.scalars(select(Article).where(Article.id.in_(list(ids)))))
        runs = {
            (r.article_id, r.stage): r
            for r in s.scalars(select(StageRun).where(StageRun.article_id.in_(list(ids))))
        }
        work = [
            _Work(a, {st: runs[(a.id, st)] for st in STAGES if (a.id, st) in runs})
            for a in articles
        ]
        for stage in STAGES:
            todo = [w for w in work if w.error is None]
            started, cpu_started = time.perf_counter(), time.process_time()
            if todo:
                try:
                    report.skipped_stages += _STAGE_FUNCS[stage](s, todo, backends, report)
                except Exception:
                    # A batch-level failure (model crash): retry the articles one by one so a
                    # single bad input cannot fail the others.
                    if len(todo) == 1:
                        todo[0].error = f"{stage}: {traceback.format_exc(limit=3)}"
                    else:
                        for w in todo:
                            try:
                                report.skipped_stages += _STAGE_FUNCS[stage](
                                    s, [w], backends, report
                                )
                            except Exception:
                                w.error = f"{stage}: {traceback.format_exc(limit=3)}"
            report.stage_seconds[stage] = time.perf_counter() - started
            report.stage_cpu_seconds[stage] = time.process_time() - cpu_started
        if owner is not None:
            lost = {w.article.id for w in work} - leases.still_held(s, ids, owner)
            if lost:
                raise leases.LeaseLost(sorted(lost))  # the session rolls back
        now = utcnow()
        for w in work:
            a = w.article
            a.lease_owner, a.lease_until = None, None
            if w.error is None:
                a.state, a.state_error = ProcessingState.done.value, None
                report.done.append(a.id)
            else:
                a.attempts += 1
                a.state_error = w.error[-4000:]
                if a.attempts >= max_attempts:
                    a.state = ProcessingState.failed.value
                    report.failed.append(a.id)
                else:
                    # Retried by the task that ran it; the sweep hands it over after the grace.
                    a.state = ProcessingState.pending.value
                    a.lease_until = now + timedelta(seconds=handoff_seconds)
                    report.retry.append(a.id)
                log.warning(
                    "article %s failed (attempt %d): %s", a.id, a.attempts, w.error.splitlines()[-1]
                )
    return report


def _record(
    s: Any,
    w: _Work,
    stage: str,
    model: str,
    input_hash: str,
    detail: dict[str, Any] | None = None,
    status: str = "done",
) -> None:
    run = w.runs.get(stage)
    if run is None:
        run = StageRun(article_id=w.article.id, stage=stage, attempts=0)
        s.add(run)
        w.runs[stage] = run
    run.model, run.input_hash, run.status = model, input_hash, status
    run.detail, run.error, run.updated_at = detail or {}, None, utcnow()
    run.attempts = (run.attempts or 0) + 1  # times this stage actually ran (committed)


def _fresh(w: _Work, stage: str, model: str, input_hash: str) -> bool:
    run = w.runs.get(stage)
    return (
        run is not None
        and run.status in {"done", "skipped"}
        and run.model == model
        and run.input_hash == input_hash
    )


# Stages ---------------------------------------------------------------------------------------


def _langid(s: Any, work: list[_Work], b: Backends, report: BatchReport) -> int:
    skipped = 0
    for w in work:
        a = w.article
        key = _hash(a.content_hash)
        if _fresh(w, "langid", b.langid_model, key):
            skipped += 1
            continue
        sample = f"{a.title}\n{a.text[:3000]}"
        detected, confidence = b.detect_language(sample)
        declared = a.language
        if detected and (
            declared is None or (confidence >= LANGID_MIN_CONFIDENCE and detected != declared)
        ):
            a.language = detected
        _record(
            s,
            w,
            "langid",
            b.langid_model,
            key,
            {"detected": detected, "confidence": round(confidence, 4), "declared": declared},
        )
    return skipped


def _document(a: Article) -> tuple[str, str]:
    """What is embedded for an article (by the classifier and the embed stage) and its hash."""
    text = document_text(a.title, a.text)
    return text, _hash(text)


def _classify(s: Any, work: list[_Work], b: Backends, report: BatchReport) -> int:
    clf = b.classifier
    model = clf.model_id
    todo = []
    for w in work:
        key = _hash(w.article.content_hash, w.article.language or "")
        if _fresh(w, "classify", model, key):
            continue
        todo.append((w, key))
    if not todo:
        return len(work)
    items = [
        {"title": w.article.title, "text": w.article.text, "language": w.article.language}
        for w, _ in todo
    ]
    # The classifier's input is the article's document embedding: computed here (not inside
    # predict) so that the embed stage can reuse it when both use the same embedding model.
    embeddings = None
    embedder = clf.embedder
    if embedder is not None:
        docs = [_document(w.article) for w, _ in todo]
        embeddings = np.asarray(
            embedder.encode([text for text, _ in docs], kind="passage"), dtype=np.float32
        )
        report.texts_embedded += len(docs)
        if embedder.model_id == b.embedder.model_id:
            for (w, _), (_, doc_key), vector in zip(todo, docs, embeddings, strict=True):
                w.vectors[(embedder.model_id, doc_key)] = vector
    results = clf.predict(items, embeddings=embeddings)
    s.execute(
        delete(ArticleTopic).where(ArticleTopic.article_id.in_([w.article.id for w, _ in todo]))
    )
    for (w, key), res in zip(todo, results, strict=True):
        a = w.article
        a.covid_score, a.is_covid = float(res["covid_score"]), bool(res["is_covid"])
        for rank, topic in enumerate(res["topics"], start=1):
            s.add(
                ArticleTopic(
                    article_id=a.id,
                    topic=topic["id"],
                    score=float(topic["score"]),
                    rank=rank,
                    model=model,
                )
            )
        _record(s, w, "classify", model, key, {"topics": [t["id"] for t in res["topics"]]})
    return len(work) - len(todo)


def _summarize(s: Any, work: list[_Work], b: Backends, report: BatchReport) -> int:
    from nlp_worker.summarize import MODEL_ID, summarize

    skipped = 0
    for w in work:
        a = w.article
        key = _hash(a.content_hash, a.language or "")
        if _fresh(w, "summarize", MODEL_ID, key):
            skipped += 1
            continue
        split = None
        if b.split_sentences is not None:
            splitter, lang = b.split_sentences, a.language

            def split(
                text: str,
                splitter: Callable[[str, str | None], list[str]] = splitter,
                lang: str | None = lang,
            ) -> list[str]:
                return list(splitter(text, lang))

        a.summary = summarize(a.text, title=a.title, split=split)
        _record(s, w, "summarize", MODEL_ID, key)
    return skipped


def _targets(language: str | None, pairs: set[tuple[str, str]]) -> list[str]:
    if not language:
        return []
    wanted = {"es": ["en"], "en": ["es"]}.get(language, ["es", "en"])
    return [t for t in wanted if (language, t) in pairs]


#: the pairs a missing translator is deferred for (every translator here has them)
DEFERRED_PAIRS = {("es", "en"), ("en", "es")}
#: the ``stage_runs.model`` of a deferred translation (never equal to a real model id, so the
#: stage runs again once a translator is there)
DEFERRED_MODEL = "unavailable"


def _translate(s: Any, work: list[_Work], b: Backends, report: BatchReport) -> int:
    if b.translator is None:
        if b.translator_unavailable:
            for w in work:
                a = w.article
                targets = _targets(a.language, DEFERRED_PAIRS) if a.is_covid else []
                if targets:
                    key = _hash(
                        a.content_hash, a.language or "", a.summary or "", ",".join(targets)
                    )
                    reason = {"reason": b.translator_unavailable, "targets": targets}
                    _record(s, w, "translate", DEFERRED_MODEL, key, reason, status="deferred")
        return len(work)
    model = b.translator.model_id
    pairs = b.translator.pairs()
    skipped = 0
    todo: list[tuple[_Work, str, list[str]]] = []
    for w in work:
        a = w.article
        targets = _targets(a.language, pairs) if a.is_covid else []
        key = _hash(a.content_hash, a.language or "", a.summary or "", ",".join(targets))
        if _fresh(w, "translate", model, key):
            skipped += 1
            continue
        if not targets:
            _record(
                s,
                w,
                "translate",
                model,
                key,
                {"reason": "not covid" if not a.is_covid else "no backend for language"},
                status="skipped",
            )
            continue
        todo.append((w, key, targets))
    if not todo:
        return skipped
    # One translator call per language pair for the whole batch (title, summary and text of
    # every article in it): a call has a fixed cost, and the translators batch internally.
    groups: dict[tuple[str, str], list[_Work]] = {}
    for w, _, targets in todo:
        for target in targets:
            groups.setdefault((w.article.language or "", target), []).append(w)
    results: dict[tuple[int, str], list[str]] = {}
    unavailable: dict[int, str] = {}  # article id → why a pair could not run (deferred)
    for (source, target), members in groups.items():
        texts = [
            t for w in members for t in (w.article.title, w.article.summary or "", w.article.text)
        ]
        try:
            out = b.translator.translate(texts, source, target)
        except BackendUnavailable as exc:  # e.g. a model folder gone: defer, as if missing
            for w in members:
                unavailable[w.article.id] = str(exc)
            continue
        if len(out) != len(texts):
            raise RuntimeError(f"translator returned {len(out)} texts for {len(texts)}")
        for i, w in enumerate(members):
            results[(w.article.id, target)] = list(out[3 * i : 3 * i + 3])
    existing = {
        (t.article_id, t.language): t
        for t in s.scalars(
            select(Translation).where(
                Translation.article_id.in_([w.article.id for w, _, _ in todo])
            )
        )
    }
    for w, key, targets in todo:
        a = w.article
        for target in targets:
            if (a.id, target) not in results:
                continue
            title, summary, text = results[(a.id, target)]
            row = existing.get((a.id, target)) or Translation(article_id=a.id, language=target)
            row.title, row.summary, row.text, row.model = title, summary or None, text, model
            s.add(row)
        if a.id in unavailable:
            reason = {"reason": unavailable[a.id], "targets": targets}
            _record(s, w, "translate", DEFERRED_MODEL, key, reason, status="deferred")
        else:
            _record(s, w, "translate", model, key, {"targets": targets})
    return skipped


def _embed(s: Any, work: list[_Work], b: Backends, report: BatchReport) -> int:
    model = b.embedder.model_id
    todo: list[tuple[_Work, str, np.ndarray | None]] = []
    texts: list[str] = []
    for w in work:
        text, key = _document(w.article)
        if _fresh(w, "embed", model, key):
            continue
        vector = w.vectors.get((model, key))  # the classifier's, when it used this model
        if vector is None:
            texts.append(text)
        todo.append((w, key, vector))
    if not todo:
        return len(work)
    encoded = iter(
        np.asarray(b.embedder.encode(texts, kind="passage"), dtype=np.float32) if texts else ()
    )
    report.texts_embedded += len(texts)
    existing = {
        e.article_id: e
        for e in s.scalars(
            select(Embedding).where(
                Embedding.model == model,
                Embedding.article_id.in_([w.article.id for w, _, _ in todo]),
            )
        )
    }
    for w, key, reused in todo:
        vector = reused if reused is not None else next(encoded)
        a = w.article
        row = existing.get(a.id) or Embedding(article_id=a.id, model=model)
        row.dims, row.vector = int(vector.shape[0]), vector.tobytes()
        s.add(row)
        _record(s, w, "embed", model, key, {"dims": int(vector.shape[0])})
        report.embedded.append(a.id)
    return len(work) - len(todo)


_STAGE_FUNCS: dict[str, Callable[[Any, list[_Work], Backends, BatchReport], int]] = {
    "langid": _langid,
    "classify": _classify,
    "summarize": _summarize,
    "translate": _translate,
    "embed": _embed,
}
