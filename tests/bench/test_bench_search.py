"""The search benchmark runs at a tiny size and reports sane figures (timings are not asserted:
speed lives in bench/, not in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def test_bench_search_prints_one_json_object(shared_data: object, tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "bench/bench_search.py",
            "--sizes",
            "400",
            "--embed",
            "40",
            "--queries",
            "30",
            "--load-seconds",
            "1",
            "--follow-rounds",
            "2",
            "--cache-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["benchmark"] == "search" and out["sizes"] == [400]
    (result,) = out["results"]
    assert result["articles"] == 400
    build = result["build"]
    assert build["embedded_texts"] == 40
    assert 0.9 < build["vector_cos_to_lead_mean"] < 1.0
    # A new node's follower built both indexes from the store.
    assert build["bootstrap_seconds"] > 0 and build["keyword_index_docs_per_s"] > 0
    assert build["vector_index_vectors_per_s"] > 0
    follow = result["follow"]
    assert follow["add_32_poll"]["rounds"] == 2 and follow["add_32_poll"]["p50_ms"] > 0
    assert follow["delete_poll"]["articles"] == 64  # the added articles, removed again
    assert follow["snapshot_mb"] > 0 and follow["snapshot_node_catch_up_seconds"] >= 0
    assert 0 < result["embed_query"]["p50_ms"] <= result["embed_query"]["p99_ms"]
    for side in ("engine", "api"):
        assert set(result[side]) == {"keyword", "semantic", "hybrid"}
        for figures in result[side].values():
            assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"]
    assert result["engine"]["hybrid"]["median_total_hits"] > 0
    memory = result["memory"]
    assert memory["vector_index_kind"] == "exact" and memory["node_documents"] == 400
    assert memory["raw_float32_vectors_mb"] > 0
    assert 0.5 < memory["vector_index_vs_raw_float32"] < 1.0  # float16 rows + records
    assert memory["keyword_index_mb"] > 0
    assert memory["rss_after_hybrid_query_mb"] >= memory["rss_after_imports_mb"] > 0
    for fmt in ("jsonl", "csv"):
        export = result["export"][fmt]
        # Browsing with collapse: one row per story (the syndicated copies are folded in).
        assert 300 < export["rows"] < 400
        assert export["rows_per_s"] > 0 and export["rss_peak_during_mb"] > 0
    server = result["server"]
    for name in (
        "bare_flask",
        "healthz",
        "search_keyword",
        "search_hybrid",
        "search_keyword_unique",
        "search_hybrid_unique",
    ):
        assert server[name]["requests_per_s"] > 0, name
        assert server[name]["errors"] == 0, name
    assert server["node_memory"]["processes"] >= 4  # master, 2 workers, the follower
    assert 0 < server["node_memory"]["pss_sum_mb"] <= server["node_memory"]["rss_sum_mb"]

    # A rerun reuses the cached corpus.
    again = subprocess.run(
        [
            sys.executable,
            "bench/bench_search.py",
            "--sizes",
            "400",
            "--embed",
            "40",
            "--queries",
            "5",
            "--skip-server",
            "--cache-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    (cached,) = json.loads(again.stdout)["results"]
    assert cached["build"]["cached"] is True and "server" not in cached
