"""The vector index benchmark runs and reports sane figures (timings are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT


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


def test_bench_index() -> None:
    out = _run("bench/bench_index.py", "--sizes", "1000", "--queries", "20", "--add-rounds", "2")
    assert out["benchmark"] == "index" and out["dims"] == 384
    (result,) = out["results"]
    assert result["vectors"] == 1000
    for kind in ("exact", "hnsw"):
        figures = result[kind]
        assert figures["build_seconds"] > 0 and figures["add_batch_32_ms"] > 0
        assert 0 < figures["search_api"]["p50_ms"] <= figures["search_api"]["p99_ms"]
        assert figures["search_bare_faiss"]["p50_ms"] > 0
        assert figures["file_vs_raw_vectors"] >= 1.0
    assert result["hnsw"]["recall_at_10_near_queries"] >= 0.9
    assert 0 < result["hnsw"]["recall_at_10_random_queries"] <= 1
