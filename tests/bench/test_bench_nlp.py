"""The NLP pipeline benchmark runs and reports sane figures (timings are not asserted: speed
lives in bench/, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT

STAGES = {"langid", "classify", "summarize", "translate", "embed"}


def _run(*args: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert isinstance(out, dict)
    return out


def test_bench_nlp(shared_data: object) -> None:
    out = _run("bench/bench_nlp.py", "--n", "4", "--batch-size", "2")
    assert out["benchmark"] == "nlp" and out["articles"] == 4
    assert out["translated_articles"] >= 1 and out["translated_chars"] > 0
    pipeline = out["pipeline"]
    assert pipeline["docs_per_s"] > 0 and pipeline["ms_per_doc"] > 0
    assert pipeline["texts_embedded_per_article"] == 1.0  # the classifier's vector is reused
    assert set(pipeline["stages_ms_per_doc"]) == STAGES
    assert all(v >= 0 for v in pipeline["stages_ms_per_doc"].values())
    assert pipeline["stages_ms_per_doc"]["translate"] > 0
    bare = out["bare_ms_per_doc"]
    assert {"langid", "embed", "classify_predict", "summarize", "apertium_cli"} <= set(bare)
    assert all(v > 0 for v in bare.values())
    assert {"translate_vs_apertium_cli", "classify_embed_vs_encode_predict"} <= set(out["overhead"])
    assert all(v > -1 for v in out["overhead"].values())
    rss = out["rss_mib"]
    assert rss["peak_ru_maxrss"] >= rss["backends_loaded"]["VmRSS"] > 50
