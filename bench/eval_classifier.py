"""Covid relevance and topic classifier quality, cross-validated (docs/quality.md).

Protocol (``nlp_worker.classify.cross_validate``): repeated stratified k-fold CV on the 225
labelled FakeDeS articles of Nov 2020 - Mar 2021 (``fakedes/labelled_dev.jsonl``). Each outer
fold trains the whole procedure on the other folds (plus the 971 FakeDeS 2018 articles as extra
negatives, which never enter a test fold), tuning C, the embedding weight, the Platt scaling and
both thresholds by an inner CV on that training data only, then predicts the held-out fold.
Relevance: precision / recall / F1 over all test articles. Topics: on the gold Covid articles,
predicted set = best topic + the 2nd/3rd when their score reaches the inner-CV threshold;
macro-F1 over the topics that occur in the gold labels or the predictions, micro-F1, per topic.
Figures are means over repeats (± standard deviation across repeats).

Measured in the same run, on the same folds:

- **keyword rule** (relevance): ``nlp_worker.classify.keyword_rule``, the classifier's es+en Covid
  term list: a term in the title or at least two in the body. Nothing to train.
- **USE + LR top-2** (topics): Universal Sentence Encoder multilingual embeddings of the same
  document text, one-vs-rest logistic regressions (standardised features, C=1, class-balanced),
  always the two best topics.
- **English check** (no labels needed): TICO-19 documents (all about Covid or its medicine) cut
  into 8-sentence passages, in English and in their Spanish translation: the share classified
  as Covid in each language and how often both versions agree (relevance; best topic).

Prints one JSON object. Usage:
    python bench/eval_classifier.py [--repeats 5] [--folds 5] [--embedder e5]
        [--cache DIR | --no-cache]   (embeddings cache; default: the data dir's models/cache)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED
from covidnews.embed import get_embedder
from nlp_worker.classify import (
    CovidClassifier,
    TrainingData,
    cross_validate,
    document_text,
    fit_logistic,
    fit_prepared,
    keyword_rule,
    load_training_data,
    outer_folds,
    topic_set_f1,
)
from nlp_worker.classify_cli import cached_encode, default_cache_dir, embed_data

#: Targets of the classifier issue.
TARGETS = {"relevance_f1": 0.93, "topic_macro_f1": 0.70}


def _prf(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    tp = float((pred & (y == 1)).sum())
    p = tp / max(float(pred.sum()), 1.0)
    r = tp / max(float(y.sum()), 1.0)
    f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4)}


def keyword_baseline(data: TrainingData) -> dict[str, float]:
    y = np.array([int(bool(r.get("covid"))) for r in data.labelled])
    pred = np.array([keyword_rule(r.get("title"), r.get("text")) for r in data.labelled])
    return _prf(pred, y)


def use_top2_baseline(
    data: TrainingData, folds: int, repeats: int, seed: int, cache: Path | None
) -> dict[str, Any]:
    emb = get_embedder("use")
    texts = [document_text(r.get("title"), r.get("text")) for r in data.labelled]
    x = cached_encode(emb, texts, "passage", cache).astype(np.float64)
    y = np.array([int(bool(r.get("covid"))) for r in data.labelled])
    ids = [t["id"] for t in data.taxonomy]
    truth = np.zeros((len(y), len(ids)), dtype=np.int64)
    for i, r in enumerate(data.labelled):
        for t in r.get("topics") or []:
            truth[i, ids.index(t)] = 1
    covid = np.flatnonzero(y == 1)
    macros, micros = [], []
    for rep in range(repeats):
        pred = np.zeros(truth.shape, dtype=np.int64)
        for test in outer_folds(y, folds, rep, seed):
            train = np.setdiff1d(covid, test)
            scores = np.full((len(test), len(ids)), -np.inf)
            for k in range(len(ids)):
                if truth[train, k].any():
                    w, b = fit_logistic(x[train], truth[train, k], 1.0)
                    scores[:, k] = x[test] @ w + b
            for j, i in enumerate(test):
                pred[i, np.argsort(-scores[j], kind="stable")[:2]] = 1
        macro, micro, _ = topic_set_f1(truth[covid], pred[covid])
        macros.append(macro)
        micros.append(micro)
    return {
        "model_id": emb.model_id,
        "macro_f1": round(float(np.mean(macros)), 4),
        "micro_f1": round(float(np.mean(micros)), 4),
    }


def tico_passages(per: int = 8) -> tuple[list[str], list[dict[str, str]], list[dict[str, str]]]:
    docs: dict[str, list[dict[str, str]]] = defaultdict(list)
    with (SHARED / "tico19" / "tico19_dev.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            docs[row["tuid"].split(":")[0]].append(row)
    sources: list[str] = []
    en: list[dict[str, str]] = []
    es: list[dict[str, str]] = []
    for doc, rows in docs.items():
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            if len(chunk) < per // 2:
                continue
            sources.append(doc.rsplit("_", 1)[0])
            en.append({"title": "", "text": " ".join(r["en"] for r in chunk)})
            es.append({"title": "", "text": " ".join(r["es_419"] for r in chunk)})
    return sources, en, es


def english_check(clf: CovidClassifier) -> dict[str, Any]:
    sources, en, es = tico_passages()
    pe, ps = clf.predict(en), clf.predict(es)
    by_source: dict[str, dict[str, float]] = {}
    for src in sorted(set(sources)):
        idx = [i for i, s in enumerate(sources) if s == src]
        by_source[src] = {
            "passages": len(idx),
            "en_covid": round(sum(pe[i]["is_covid"] for i in idx) / len(idx), 3),
            "es_covid": round(sum(ps[i]["is_covid"] for i in idx) / len(idx), 3),
        }
    both = [(a, b) for a, b in zip(pe, ps, strict=True) if a["topics"] and b["topics"]]
    return {
        "passages": len(en),
        "en_covid_share": round(sum(p["is_covid"] for p in pe) / len(pe), 3),
        "es_covid_share": round(sum(p["is_covid"] for p in ps) / len(ps), 3),
        "en_es_relevance_agreement": round(
            sum(a["is_covid"] == b["is_covid"] for a, b in zip(pe, ps, strict=True)) / len(pe), 3
        ),
        "en_es_best_topic_agreement": round(
            sum(a["topics"][0]["id"] == b["topics"][0]["id"] for a, b in both) / max(len(both), 1),
            3,
        ),
        "by_source": by_source,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embedder", default="e5")
    parser.add_argument("--cache", type=Path, default=None, help="embeddings cache directory")
    parser.add_argument("--no-cache", action="store_true")
    args = parser.parse_args(argv)
    cache = None if args.no_cache else (args.cache or default_cache_dir())

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    start = time.perf_counter()
    data = load_training_data(SHARED)
    emb = get_embedder(args.embedder)
    lab, neg, proto = embed_data(data, emb, cache, progress)
    embed_seconds = time.perf_counter() - start
    t0 = time.perf_counter()
    cv = cross_validate(
        data,
        lab,
        neg,
        proto,
        embedder=args.embedder,
        embedder_model_id=emb.model_id,
        folds=args.folds,
        repeats=args.repeats,
        seed=args.seed,
        progress=progress,
    )
    cv_seconds = time.perf_counter() - t0
    progress("baselines")
    keyword = keyword_baseline(data)
    use = use_top2_baseline(data, args.folds, args.repeats, args.seed, cache)
    progress("English check (model trained on all labelled data)")
    artefact = fit_prepared(
        data, lab, neg, proto, embedder=args.embedder, embedder_model_id=emb.model_id
    )
    english = english_check(CovidClassifier(artefact, embedder=emb))
    rel_f1 = cv["relevance"]["f1"]["mean"]
    macro = cv["topics"]["macro_f1"]["mean"]
    result = {
        "benchmark": "eval_classifier",
        "embedder": emb.model_id,
        **cv,
        "baselines": {
            "keyword_rule_relevance": keyword,
            "use_lr_top2_topics": use,
        },
        "english_check": english,
        "targets": {
            **TARGETS,
            "relevance_met": rel_f1 >= TARGETS["relevance_f1"],
            "topics_met": macro >= TARGETS["topic_macro_f1"],
        },
        "seconds": {
            "embedding": round(embed_seconds, 1),
            "cross_validation": round(cv_seconds, 1),
            "total": round(time.perf_counter() - start, 1),
        },
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
