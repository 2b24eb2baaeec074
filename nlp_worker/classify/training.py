"""Training the classifier (``covidnews train-classifier``): embeddings of the training data,
logistic regressions, thresholds chosen by inner cross-validation. Never imported by workers."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from covidnews.interfaces import ArticleFields, Kind

if TYPE_CHECKING:
    from covidnews.interfaces import Embedder

from nlp_worker.classify.model import (
    MAX_TOPICS,
    MIN_TOPIC_POSITIVES,
    Artefact,
    _relevance_features,
    _sigmoid,
    _topic_features,
    document_text,
    select_topics,
)

log = logging.getLogger(__name__)

#: Hyperparameters tried by the inner cross-validation: (C, embedding weight). C is the inverse
#: L2 regularisation strength on standardised features; the embedding weight is the total
#: variance the embedding block is scaled to (one scale for all its dimensions, so the block
#: counts like that many standardised hand-made features).
REL_GRID = tuple((c, e) for c in (0.3, 1.0, 3.0) for e in (100.0, 300.0))
TOPIC_GRID = tuple((c, e) for c in (0.3, 1.0, 3.0, 10.0) for e in (10.0, 30.0, 100.0))
#: Candidate thresholds for the 2nd and 3rd topic (on the topic score, 0-1).
TOPIC_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 0.96, 0.05))
#: Sample weight of one extra (2018) negative relative to a labelled article.
NEGATIVE_WEIGHT = 0.5

# ------------------------------------------------------------------------------------ training


@dataclass
class TrainingData:
    """Labelled articles (``title``, ``text``, ``covid``, ``topics``), extra negatives
    (``title``, ``text``) and the taxonomy's topics (``id``, ``es``, ``en``, ``about``)."""

    labelled: list[dict[str, Any]]
    negatives: list[dict[str, Any]]
    taxonomy: list[dict[str, str]]
    description: str = ""


def _article(row: Mapping[str, Any]) -> dict[str, Any]:
    title = row.get("title", row.get("headline"))
    return {**row, "title": title or "", "text": row.get("text") or ""}


def load_training_data(shared: str | Path) -> TrainingData:
    """The shared data: ``fakedes/labelled_dev.jsonl`` (labelled), ``fakedes/train.jsonl`` and
    ``development.jsonl`` (2018, all non-Covid: extra negatives), ``taxonomy.yaml``."""
    import yaml

    shared = Path(shared)

    def rows(name: str) -> list[dict[str, Any]]:
        with (shared / "fakedes" / name).open(encoding="utf-8") as f:
            return [_article(json.loads(line)) for line in f if line.strip()]

    labelled = rows("labelled_dev.jsonl")
    negatives = rows("train.jsonl") + rows("development.jsonl")
    doc = yaml.safe_load((shared / "taxonomy.yaml").read_text(encoding="utf-8"))
    taxonomy = [{k: str(t.get(k, "")) for k in ("id", "es", "en", "about")} for t in doc["topics"]]
    n_covid = sum(bool(r.get("covid")) for r in labelled)
    description = (
        f"FakeDeS labelled_dev.jsonl: {len(labelled)} Spanish articles Nov 2020 - Mar 2021 "
        f"({n_covid} Covid, topics labelled); FakeDeS train+development: {len(negatives)} "
        f"Spanish articles from 2018 as extra non-Covid examples (weight {NEGATIVE_WEIGHT}); "
        f"taxonomy.yaml version {doc.get('version')}"
    )
    return TrainingData(labelled, negatives, taxonomy, description)


def prototype_texts(taxonomy: Sequence[Mapping[str, str]]) -> list[tuple[str, str]]:
    """Per topic, the two texts its prototype averages: the Spanish name, and the English name
    with the "about" description."""
    return [(t["es"], f"{t['en']}: {t['about']}" if t.get("about") else t["en"]) for t in taxonomy]


#: ``encode(texts, kind)`` → (len(texts), dims) unit rows: an embedder's encode, maybe cached.
Encoder = Callable[[Sequence[str], Kind], np.ndarray]


def _encoder(embedder: Any) -> Encoder:
    def encode(texts: Sequence[str], kind: str) -> np.ndarray:
        return np.asarray(embedder.encode(list(texts), kind=kind), dtype=np.float32)

    return encode


def embed_prototypes(
    embedder: Embedder, taxonomy: Sequence[Mapping[str, str]], encode: Encoder | None = None
) -> np.ndarray:
    """(K, dims) topic prototypes: the normalised sum of the E5 *query* embeddings of the
    topic's Spanish name and of its English name + description."""
    enc = encode or _encoder(embedder)
    pairs = prototype_texts(taxonomy)
    es = enc([p[0] for p in pairs], "query")
    en = enc([p[1] for p in pairs], "query")
    proto = np.asarray(es, dtype=np.float64) + np.asarray(en, dtype=np.float64)
    proto /= np.maximum(np.linalg.norm(proto, axis=1, keepdims=True), 1e-12)
    return proto.astype(np.float32)


def _l2_logistic(
    x: np.ndarray, y: np.ndarray, sw: np.ndarray, c: float
) -> tuple[np.ndarray, float]:
    """Minimise c * sum(sw * logloss) + ||w||^2 / 2 (intercept not penalised) on standardised
    ``x``: scikit-learn's L2 logistic regression, Newton-Cholesky solver (exact for these sizes:
    a few hundred rows, at most a few hundred columns after the row-space reduction)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, solver="newton-cholesky", max_iter=100, tol=1e-8)
    model.fit(x, y.astype(int), sample_weight=sw)
    return model.coef_[0].astype(np.float64), float(model.intercept_[0])


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    c: float,
    weights: np.ndarray | None = None,
    *,
    balanced: bool = True,
    n_emb: int = 0,
    emb_weight: float = 30.0,
) -> tuple[np.ndarray, float]:
    """L2 logistic regression, optionally class-balanced; returns (w, b) in the raw feature
    space: logit = x @ w + b. Features are centred; the first ``n_emb`` columns (an embedding)
    share one scale that gives the block a total variance of ``emb_weight``, every other column
    is standardised."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    if n_emb:
        block_var = float(((x[:, :n_emb] - mean[:n_emb]) ** 2).mean(axis=0).sum())
        scale[:n_emb] = max(np.sqrt(block_var / emb_weight), 1e-9)
    sw = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if balanced:
        pos = sw[y == 1].sum()
        neg = sw[y == 0].sum()
        sw = sw * np.where(y == 1, (pos + neg) / (2 * max(pos, 1e-9)), (pos + neg) / (2 * neg))
    xs = (x - mean) / scale
    if len(xs) < xs.shape[1]:
        # The optimal weights lie in the row space of xs: solve in its basis (n x n, not d x d).
        _, sv, vt = np.linalg.svd(xs, full_matrices=False)
        basis = vt[sv > 1e-9 * sv[0]].T
        beta, intercept = _l2_logistic(xs @ basis, y, sw, c)
        coef = basis @ beta
    else:
        coef, intercept = _l2_logistic(xs, y, sw, c)
    w = coef / scale
    return w, float(intercept - (mean * w).sum())


@contextlib.contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """Many small matrix products: BLAS threads only fight each other (10x slower on a busy
    2-core machine). Limited with threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _f1(tp: float, n_pred: float, n_true: float) -> float:
    return 0.0 if n_pred + n_true == 0 else 2.0 * tp / (n_pred + n_true)


def _best_threshold(prob: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(threshold maximising F1, that F1); ties go to the threshold closest to 0.5."""
    best_key = (-1.0, 0.0)
    best_t = 0.5
    for t in np.round(np.arange(0.05, 0.951, 0.01), 2):
        pred = prob >= t
        f1 = _f1(float((pred & (y == 1)).sum()), float(pred.sum()), float((y == 1).sum()))
        key = (round(f1, 6), -abs(float(t) - 0.5))
        if key > best_key:
            best_key, best_t = key, float(t)
    return best_t, best_key[0]


def topic_set_f1(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, list[float | None]]:
    """(macro-F1, micro-F1, per-topic F1) of 0/1 matrices (articles x topics). The macro average
    runs over the topics that occur in ``truth`` or in ``pred``; a topic in neither is None."""
    per: list[float | None] = []
    for k in range(truth.shape[1]):
        n_true, n_pred = float(truth[:, k].sum()), float(pred[:, k].sum())
        if n_true + n_pred == 0:
            per.append(None)
        else:
            per.append(_f1(float((truth[:, k] * pred[:, k]).sum()), n_pred, n_true))
    present = [f for f in per if f is not None]
    macro = float(np.mean(present)) if present else 0.0
    micro = _f1(float((truth * pred).sum()), float(pred.sum()), float(truth.sum()))
    return macro, micro, per


def _select_matrix(scores: np.ndarray, threshold: float) -> np.ndarray:
    pred = np.zeros(scores.shape, dtype=np.int64)
    for i in range(len(scores)):
        pred[i, select_topics(scores[i], threshold)] = 1
    return pred


def _kfold(n: int, folds: int, seed: int, strata: np.ndarray | None = None) -> list[np.ndarray]:
    """Test-index arrays of a (stratified) shuffled k-fold split of range(n)."""
    rng = np.random.default_rng(seed)
    groups = [np.arange(n)] if strata is None else [np.flatnonzero(strata == v) for v in (0, 1)]
    out: list[list[int]] = [[] for _ in range(folds)]
    offset = 0
    for g in groups:
        g = rng.permutation(g)
        for j, idx in enumerate(g):
            out[(j + offset) % folds].append(int(idx))
        offset += len(g)
    return [np.array(sorted(f), dtype=np.int64) for f in out]


def _topic_models(
    x: np.ndarray, y: np.ndarray, hyper: tuple[float, float], n_emb: int
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest topic logits (K x F weights, K biases); the zero-shot shared model for topics
    with fewer than MIN_TOPIC_POSITIVES positives."""
    n_topics = y.shape[1]
    w = np.zeros((n_topics, x.shape[1]))
    b = np.zeros(n_topics)
    rare = [k for k in range(n_topics) if y[:, k].sum() < MIN_TOPIC_POSITIVES]
    if rare:
        # zero-shot: logit = a * sim_k + c * keywords_k + d, one (a, c, d) for all topics
        sims = x[:, n_emb : n_emb + n_topics]
        kws = x[:, n_emb + n_topics :]
        pooled_x = np.stack([sims.ravel(), kws.ravel()], axis=1)
        pooled_w, pooled_b = fit_logistic(pooled_x, y.ravel(), 1.0, balanced=False)
        for k in rare:
            w[k, n_emb + k] = pooled_w[0]
            w[k, n_emb + n_topics + k] = pooled_w[1]
            b[k] = pooled_b
    for k in range(n_topics):
        if k not in rare:
            w[k], b[k] = fit_logistic(x, y[:, k], hyper[0], n_emb=n_emb, emb_weight=hyper[1])
    return w, b


@dataclass
class _Prepared:
    """Features of the training data, computed once (embedding is the slow part)."""

    rel_x: np.ndarray  # labelled rows then negatives
    rel_y: np.ndarray
    n_labelled: int
    topic_x: np.ndarray  # labelled Covid rows
    topic_y: np.ndarray  # (n_covid, K)


def _prepare(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
) -> _Prepared:
    topic_ids = [t["id"] for t in data.taxonomy]
    rel_x = _relevance_features(
        np.vstack([emb_labelled, emb_negatives]), data.labelled + data.negatives
    )
    rel_y = np.array([int(bool(r.get("covid"))) for r in data.labelled] + [0] * len(data.negatives))
    covid_rows = [i for i, r in enumerate(data.labelled) if r.get("covid")]
    items = [data.labelled[i] for i in covid_rows]
    topic_x = (
        _topic_features(emb_labelled[covid_rows], items, prototypes, topic_ids)
        if covid_rows
        else np.zeros((0, emb_labelled.shape[1] + 2 * len(topic_ids)))
    )
    topic_y = np.zeros((len(items), len(topic_ids)), dtype=np.int64)
    for j, r in enumerate(items):
        for t in r.get("topics") or []:
            if t in topic_ids:
                topic_y[j, topic_ids.index(t)] = 1
            else:
                raise ValueError(f"unknown topic {t!r} in training data")
    return _Prepared(rel_x, rel_y, len(data.labelled), topic_x, topic_y)


def _fit_relevance(
    p: _Prepared, n_emb: int, grid: Sequence[tuple[float, float]], folds: int, seed: int
) -> tuple[np.ndarray, float, tuple[float, float], float, dict[str, Any]]:
    n = p.n_labelled
    y_lab = p.rel_y[:n]
    weights = np.where(np.arange(len(p.rel_y)) < n, 1.0, NEGATIVE_WEIGHT)
    splits = _kfold(n, folds, seed, y_lab)

    def fit(mask: np.ndarray, hyper: tuple[float, float]) -> tuple[np.ndarray, float]:
        return fit_logistic(
            p.rel_x[mask],
            p.rel_y[mask],
            hyper[0],
            weights[mask],
            n_emb=n_emb,
            emb_weight=hyper[1],
        )

    best: tuple[tuple[float, float], float, np.ndarray] | None = None
    for hyper in grid:
        oof = np.zeros(n)
        for test in splits:
            train_mask = np.ones(len(p.rel_y), dtype=bool)
            train_mask[test] = False
            w, b = fit(train_mask, hyper)
            oof[test] = p.rel_x[test] @ w + b
        _, f1 = _best_threshold(_sigmoid(oof), y_lab)
        if best is None or f1 > best[1] + 1e-9:
            best = (hyper, f1, oof)
    assert best is not None
    hyper, inner_f1, oof = best
    # Platt scaling on the out-of-fold logits of the labelled rows
    a, b0 = fit_logistic(oof[:, None], y_lab, 1e4, balanced=False)
    platt = (float(a[0]), float(b0))
    threshold, _ = _best_threshold(_sigmoid(platt[0] * oof + platt[1]), y_lab)
    w, b = fit(np.ones(len(p.rel_y), dtype=bool), hyper)
    info = {"C": hyper[0], "embedding_weight": hyper[1], "inner_cv_f1": round(inner_f1, 4)}
    return w, b, platt, threshold, info


def _fit_topics(
    p: _Prepared, n_emb: int, grid: Sequence[tuple[float, float]], folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float, dict[str, Any]]:
    n = len(p.topic_y)
    splits = _kfold(n, min(folds, n), seed)
    best: tuple[tuple[float, float], float, float] | None = None
    for hyper in grid:
        oof = np.zeros(p.topic_y.shape)
        for test in splits:
            train_mask = np.ones(n, dtype=bool)
            train_mask[test] = False
            w, b = _topic_models(p.topic_x[train_mask], p.topic_y[train_mask], hyper, n_emb)
            oof[test] = _sigmoid(p.topic_x[test] @ w.T + b)
        for t in TOPIC_THRESHOLDS:
            macro = topic_set_f1(p.topic_y, _select_matrix(oof, t))[0]
            if best is None or macro > best[1] + 1e-9:
                best = (hyper, macro, t)
    assert best is not None
    hyper, inner_macro, threshold = best
    w, b = _topic_models(p.topic_x, p.topic_y, hyper, n_emb)
    info = {
        "C": hyper[0],
        "embedding_weight": hyper[1],
        "inner_cv_macro_f1": round(inner_macro, 4),
    }
    return w, b, threshold, info


def fit_prepared(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    folds: int = 5,
    seed: int = 0,
) -> Artefact:
    """:func:`train` on embeddings computed beforehand (the cross-validation uses this)."""
    if len(data.labelled) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} labelled articles, got {len(data.labelled)}")
    with _single_threaded_blas():
        return _fit_prepared(
            data,
            emb_labelled,
            emb_negatives,
            prototypes,
            embedder=embedder,
            embedder_model_id=embedder_model_id,
            rel_grid=rel_grid,
            topic_grid=topic_grid,
            folds=folds,
            seed=seed,
        )


def _fit_prepared(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    rel_grid: Sequence[tuple[float, float]],
    topic_grid: Sequence[tuple[float, float]],
    folds: int,
    seed: int,
) -> Artefact:
    p = _prepare(data, emb_labelled, emb_negatives, prototypes)
    if p.rel_y[: p.n_labelled].sum() < folds or len(p.topic_y) < folds:
        raise ValueError(f"need at least {folds} Covid articles among the labelled ones")
    n_emb = emb_labelled.shape[1]
    rel_w, rel_b, platt, threshold, rel_info = _fit_relevance(p, n_emb, rel_grid, folds, seed)
    topic_w, topic_b, topic_threshold, topic_info = _fit_topics(p, n_emb, topic_grid, folds, seed)
    topic_ids = [t["id"] for t in data.taxonomy]
    counts = p.topic_y.sum(axis=0)
    meta: dict[str, Any] = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "features": {
            "relevance": [
                f"{embedder_model_id} passage embedding of title + first 2000 body chars "
                f"({n_emb} dims)",
                "covid keyword stats, es+en (log1p title/lead/body hits, hits per 1000 chars)",
            ],
            "topics": [
                f"{embedder_model_id} passage embedding ({n_emb} dims)",
                "cosine to topic prototypes (taxonomy es name + en name: about, E5 query), "
                "z-scored across topics",
                "per-topic es+en keyword counts (log1p)",
            ],
        },
        "model": {
            "relevance": "L2 logistic regression, class-balanced, Platt-recalibrated on "
            "inner out-of-fold logits of the labelled rows; is_covid = covid_score >= threshold",
            "topics": "one-vs-rest L2 logistic regressions, class-balanced; topics with fewer "
            f"than {MIN_TOPIC_POSITIVES} examples use a zero-shot model shared by all topics "
            "(prototype similarity + keyword count); set = best topic + next ones (max "
            f"{MAX_TOPICS}) with score >= topic_threshold",
            "tuning": "(C, embedding weight) from a grid, the Platt parameters and both "
            f"thresholds by {folds}-fold inner CV "
            f"on the training data only (seed {seed})",
            "relevance_tuning": rel_info,
            "topic_tuning": topic_info,
        },
        "training_data": {
            "description": data.description,
            "labelled": len(data.labelled),
            "labelled_covid": int(p.rel_y[: p.n_labelled].sum()),
            "extra_negatives": len(data.negatives),
            "topic_counts": {t: int(c) for t, c in zip(topic_ids, counts, strict=True)},
            "zero_shot_topics": [
                t for t, c in zip(topic_ids, counts, strict=True) if c < MIN_TOPIC_POSITIVES
            ],
        },
    }
    return Artefact(
        embedder=embedder,
        embedder_model_id=embedder_model_id,
        topic_ids=topic_ids,
        prototypes=prototypes,
        rel_w=rel_w,
        rel_b=rel_b,
        platt=platt,
        threshold=threshold,
        topic_w=topic_w,
        topic_b=topic_b,
        topic_threshold=topic_threshold,
        meta=meta,
    )


def embed_training_data(
    data: TrainingData,
    embedder: Embedder,
    progress: Callable[[str], None] | None = None,
    encode: Encoder | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelled, negatives, prototypes) embeddings with ``embedder`` (through ``encode`` when
    given, e.g. a cache)."""
    enc = encode or _encoder(embedder)

    def docs(rows: Sequence[ArticleFields], what: str) -> np.ndarray:
        if not rows:
            return np.zeros((0, int(embedder.dims)), dtype=np.float32)
        start = time.perf_counter()
        out = enc([document_text(r.get("title"), r.get("text")) for r in rows], "passage")
        if progress:
            progress(
                f"embedded {len(rows)} {what} with {embedder.model_id} "
                f"({time.perf_counter() - start:.0f} s)"
            )
        return out

    return (
        docs(data.labelled, "labelled articles"),
        docs(data.negatives, "extra negatives"),
        embed_prototypes(embedder, data.taxonomy, enc),
    )


def train(
    data: TrainingData,
    *,
    embedder: str = "e5",
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> Artefact:
    """Build an artefact from ``data`` (see :func:`load_training_data`) with the embedder
    registered as ``embedder``; save it with :meth:`Artefact.save`."""
    from covidnews.embed import get_embedder

    emb = get_embedder(embedder)
    lab, neg, proto = embed_training_data(data, emb, progress)
    return fit_prepared(
        data,
        lab,
        neg,
        proto,
        embedder=embedder,
        embedder_model_id=emb.model_id,
        rel_grid=rel_grid,
        topic_grid=topic_grid,
        folds=folds,
        seed=seed,
    )
