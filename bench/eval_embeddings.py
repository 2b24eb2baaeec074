"""Embedding quality and speed on real data: picks the default embedder (docs/quality.md).

For each embedder (``covidnews.embed`` names):

- **TICO-19 cross-lingual retrieval** (``tico19/tico19_dev.tsv``, 1,471 aligned en / es-419
  sentences about Covid): every Spanish sentence is a query against all English sentences
  (es→en) and the reverse (en→es); acc@1 and MRR. Rows whose text is the ``{NS}`` placeholder
  are left out; a query whose target text occurs more than once counts any copy as the hit.
  Both sides are embedded with ``kind="query"`` (a symmetric task; matters for E5 only).
- **FakeDeS headline → article** (``fakedes/labelled_dev.jsonl``): each non-empty headline
  (``kind="query"``) against the bodies of all 225 articles (``kind="passage"``, headline not
  included; each backend truncates as it does in production); acc@1 and MRR.
- **speed**: sentences/s over the TICO encoding (both languages), documents/s over the FakeDeS
  bodies, each by wall clock and per CPU-second of the process (all its threads: a figure that
  holds up better on a shared machine), model load time; and dims.

Prints one JSON object. Usage:
    python bench/eval_embeddings.py [--embedders e5,use,minilm-onnx,sentence-transformers]
        [--limit N]   (first N TICO pairs, for a quick run)
An embedder spec may carry constructor options: ``e5:max_tokens=256;threads=1``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench._common import SHARED
from covidnews.embed import get_embedder

DEFAULT_EMBEDDERS = "e5,use,minilm-onnx,sentence-transformers"
#: Cross-lingual acc@1 (both directions) the default embedder must reach.
TICO_BAR = 0.95


def tico_pairs(limit: int | None = None) -> tuple[list[str], list[str]]:
    en: list[str] = []
    es: list[str] = []
    with (SHARED / "tico19" / "tico19_dev.tsv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            e, s = row["en"].strip(), row["es_419"].strip()
            if e and s and "{NS}" not in (e, s):
                en.append(e)
                es.append(s)
    return (en[:limit], es[:limit]) if limit else (en, es)


def fakedes_headlines() -> tuple[list[str], list[int], list[str]]:
    """(headlines, index of each headline's article in the corpus, corpus of article bodies)."""
    headlines: list[str] = []
    targets: list[int] = []
    corpus: list[str] = []
    with (SHARED / "fakedes" / "labelled_dev.jsonl").open(encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus.append(row["text"])
            if (row.get("headline") or "").strip():
                headlines.append(row["headline"].strip())
                targets.append(len(corpus) - 1)
    return headlines, targets, corpus


def retrieval(queries: np.ndarray, corpus: np.ndarray, gold: list[set[int]]) -> dict[str, float]:
    """acc@1 and MRR of each query's gold documents among all of ``corpus`` (cosine)."""
    scores = queries @ corpus.T
    ranks = []
    for i, hits in enumerate(gold):
        row = scores[i]
        best_gold = max(row[j] for j in hits)
        others = np.ones(len(row), dtype=bool)
        others[list(hits)] = False
        ranks.append(1 + int(np.count_nonzero(row[others] > best_gold)))
    r = np.asarray(ranks, dtype=np.float64)
    return {"acc@1": round(float(np.mean(r == 1)), 4), "mrr": round(float(np.mean(1 / r)), 4)}


def same_text_gold(targets: list[str]) -> list[set[int]]:
    """For each position, every position holding the same text (duplicates count as hits)."""
    where: dict[str, set[int]] = {}
    for i, text in enumerate(targets):
        where.setdefault(text, set()).add(i)
    return [where[text] for text in targets]


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    name, _, opts = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, opts.split(";")):
        key, _, value = item.partition("=")
        options[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    return name.strip(), options


def evaluate(spec: str, limit: int | None) -> dict[str, Any]:
    name, options = parse_spec(spec)
    embedder = get_embedder(name, **options)
    started = time.perf_counter()
    embedder.encode(["carga"])
    load_s = time.perf_counter() - started

    en, es = tico_pairs(limit)
    started, cpu = time.perf_counter(), time.process_time()
    v_es = embedder.encode(es, kind="query")
    v_en = embedder.encode(en, kind="query")
    tico_s, tico_cpu = time.perf_counter() - started, time.process_time() - cpu

    headlines, targets, corpus = fakedes_headlines()
    started, cpu = time.perf_counter(), time.process_time()
    v_docs = embedder.encode(corpus, kind="passage")
    docs_s, docs_cpu = time.perf_counter() - started, time.process_time() - cpu
    v_heads = embedder.encode(headlines, kind="query")

    es_en = retrieval(v_es, v_en, same_text_gold(en))
    en_es = retrieval(v_en, v_es, same_text_gold(es))
    return {
        "model_id": embedder.model_id,
        "dims": embedder.dims,
        "tico_es_en": es_en,
        "tico_en_es": en_es,
        "meets_tico_bar": min(es_en["acc@1"], en_es["acc@1"]) >= TICO_BAR,
        "fakedes_headline_article": retrieval(v_heads, v_docs, [{t} for t in targets]),
        "sentences_per_s": round(2 * len(en) / tico_s, 1),
        "sentences_per_cpu_s": round(2 * len(en) / tico_cpu, 1),
        "docs_per_s": round(len(corpus) / docs_s, 2),
        "docs_per_cpu_s": round(len(corpus) / docs_cpu, 2),
        "load_s": round(load_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--embedders", default=DEFAULT_EMBEDDERS)
    parser.add_argument("--limit", type=int, default=None, help="first N TICO pairs only")
    args = parser.parse_args()

    en, _ = tico_pairs(args.limit)
    headlines, _, corpus = fakedes_headlines()
    results: dict[str, Any] = {}
    for spec in filter(None, (s.strip() for s in args.embedders.split(","))):
        print(f"# {spec}", file=sys.stderr)
        results[spec] = evaluate(spec, args.limit)
        print(f"#   {json.dumps(results[spec])}", file=sys.stderr)
    qualifying = [s for s, r in results.items() if r["meets_tico_bar"]]
    pick = max(
        qualifying,
        key=lambda s: results[s]["fakedes_headline_article"]["mrr"],
        default=None,
    )
    print(
        json.dumps(
            {
                "benchmark": "eval_embeddings",
                "tico_pairs": len(en),
                "fakedes_headlines": len(headlines),
                "fakedes_articles": len(corpus),
                "tico_bar": TICO_BAR,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "embedders": results,
                "best_meeting_tico_bar": pick,
            }
        )
    )


if __name__ == "__main__":
    main()
