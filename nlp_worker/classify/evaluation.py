"""Evaluating the whole training procedure by repeated outer cross-validation
(``bench/eval_classifier.py``). Never imported by workers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nlp_worker.classify.model import CovidClassifier, select_topics
from nlp_worker.classify.training import (
    REL_GRID,
    TOPIC_GRID,
    TrainingData,
    _f1,
    _kfold,
    fit_prepared,
    topic_set_f1,
)

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------- cross-validation


def _subset(data: TrainingData, rows: np.ndarray) -> TrainingData:
    return TrainingData(
        [data.labelled[i] for i in rows], data.negatives, data.taxonomy, data.description
    )


def outer_folds(y: np.ndarray, folds: int, repeat: int, seed: int = 0) -> list[np.ndarray]:
    """Test folds of repeat number ``repeat`` of the outer CV (stratified by ``y``)."""
    return _kfold(len(y), folds, seed + 1000 * (repeat + 1), np.asarray(y))


def cross_validate(
    data: TrainingData,
    emb_labelled: np.ndarray,
    emb_negatives: np.ndarray,
    prototypes: np.ndarray,
    *,
    embedder: str,
    embedder_model_id: str,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    rel_grid: Sequence[tuple[float, float]] = REL_GRID,
    topic_grid: Sequence[tuple[float, float]] = TOPIC_GRID,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Repeated stratified k-fold CV of the whole training procedure on the labelled articles.

    Each outer fold trains with :func:`fit_prepared` on the other folds' labelled articles plus
    all extra negatives (never in a test fold) and predicts its own fold. Relevance is scored on
    every test article; topics on the test fold's (gold) Covid articles, with the predicted set
    chosen by the trained rule (best topic + next ones up to 3 above the inner-CV threshold).
    Predictions are pooled over the folds of a repeat; figures are the mean over repeats (±
    standard deviation).
    """
    n = len(data.labelled)
    y = np.array([int(bool(r.get("covid"))) for r in data.labelled])
    topic_ids = [t["id"] for t in data.taxonomy]
    truth = np.zeros((n, len(topic_ids)), dtype=np.int64)
    for i, r in enumerate(data.labelled):
        for t in r.get("topics") or []:
            truth[i, topic_ids.index(t)] = 1
    covid_rows = np.flatnonzero(y == 1)
    support = [int(v) for v in truth[covid_rows].sum(axis=0)]
    per_repeat: list[dict[str, Any]] = []
    for rep in range(repeats):
        score = np.zeros(n)
        pred = np.zeros(n, dtype=bool)
        topics = np.zeros(truth.shape, dtype=np.int64)
        for f, test in enumerate(outer_folds(y, folds, rep, seed)):
            if progress:
                progress(f"repeat {rep + 1}/{repeats}, fold {f + 1}/{folds}")
            train_rows = np.setdiff1d(np.arange(n), test)
            artefact = fit_prepared(
                _subset(data, train_rows),
                emb_labelled[train_rows],
                emb_negatives,
                prototypes,
                embedder=embedder,
                embedder_model_id=embedder_model_id,
                rel_grid=rel_grid,
                topic_grid=topic_grid,
                folds=folds,
                seed=seed,
            )
            clf = CovidClassifier(artefact)
            items = [data.labelled[i] for i in test]
            covid, topic_scores = clf.scores(items, emb_labelled[test])
            score[test] = covid
            pred[test] = covid >= artefact.threshold
            for j, i in enumerate(test):
                topics[i, select_topics(topic_scores[j], artefact.topic_threshold)] = 1
        tp = float((pred & (y == 1)).sum())
        precision = tp / max(float(pred.sum()), 1.0)
        recall = tp / max(float(y.sum()), 1.0)
        macro, micro, per = topic_set_f1(truth[covid_rows], topics[covid_rows])
        frequent = [f for f, n in zip(per, support, strict=True) if n >= 5 and f is not None]
        per_repeat.append(
            {
                "precision": precision,
                "recall": recall,
                "f1": _f1(tp, float(pred.sum()), float(y.sum())),
                "macro": macro,
                "macro5": float(np.mean(frequent)) if frequent else 0.0,
                "micro": micro,
                "per": per,
            }
        )

    def stat(key: str) -> dict[str, float]:
        values = np.array([r[key] for r in per_repeat], dtype=np.float64)
        return {"mean": round(float(values.mean()), 4), "std": round(float(values.std()), 4)}

    per_topic: dict[str, float | None] = {}
    for k, t in enumerate(topic_ids):
        values = [r["per"][k] for r in per_repeat if r["per"][k] is not None]
        per_topic[t] = round(float(np.mean(values)), 4) if values else None
    return {
        "protocol": (
            f"{repeats}x repeated stratified {folds}-fold CV on the {n} labelled 2020-21 "
            f"articles; the {len(data.negatives)} extra 2018 negatives only in training folds; "
            "all tuning (C, embedding weight, Platt scaling, thresholds) by inner CV inside each "
            "training fold; topics scored on "
            f"the {len(covid_rows)} gold Covid articles, macro-F1 over topics occurring in the "
            "gold labels or the predictions"
        ),
        "relevance": {"precision": stat("precision"), "recall": stat("recall"), "f1": stat("f1")},
        "topics": {
            "macro_f1": stat("macro"),
            "micro_f1": stat("micro"),
            "macro_f1_topics_with_5_or_more": stat("macro5"),
            "per_topic_f1": per_topic,
            "support": dict(zip(topic_ids, support, strict=True)),
        },
    }
