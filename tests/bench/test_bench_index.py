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


def test_bench_index(tmp_path: object) -> None:
    out = _run(
        "bench/bench_index.py",
        "--sizes",
        "6000",
        "--real",
        "400",
        "--queries",
        "20",
        "--add-rounds",
        "3",
        "--cache-dir",
        str(tmp_path),
    )
    assert out["benchmark"] == "index" and out["dims"] == 384
    real = out["real"]
    assert real["vectors"] == 400 and real["queries_report"] == 10
    for figures in real["report_half"].values():
        assert 0 < figures["recall_at_10"] <= 1 and figures["nprobe"] >= 1
    (scale,) = out["scale"]
    assert scale["vectors"] == 6000 and scale["kind"] == "exact"  # below exact_max
    assert scale["build_vectors_per_s"] > 0 and scale["add_32"]["p50_ms"] > 0
    for k in ("query_k10", "query_k1000"):
        assert 0 < scale[k]["index"]["p50_ms"] <= scale[k]["index"]["p99_ms"]
        assert scale[k]["bare_numpy_exact"]["p50_ms"] > 0
    assert scale["recall_at_10_synthetic"] > 0.95  # exact search, float16 rounding only
    assert 0 < scale["memory"]["rss_open_mb"] <= scale["memory"]["rss_after_queries_mb"]
    assert 700 < scale["disk_bytes_per_vector"] < 900  # 768 B of float16 + a 72 B record
