"""The end-to-end benchmark's harness runs (one NLP worker, one crawler, light models: a smoke
test of the harness, not a measurement; tests/test_distributed.py covers correctness)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_bench_e2e_smoke(shared_data: object, pg_admin: object) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/bench_e2e.py", "--workers", "1", "--crawlers", "1",
         "--latency-runs", "1", "--batch-size", "16", "--fast-models", "--redis-db", "12"],
        cwd=ROOT, capture_output=True, text=True, timeout=840,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    (run,) = out["runs"]
    assert run["nlp_workers"] == 1 and run["articles"] == 64
    assert 0 < run["crawl_seconds"] <= run["all_searchable_seconds"]
    assert run["articles_per_minute"] > 0
    (sample,) = run["latency"]["runs"]
    assert 0 < sample["crawl_seconds"] <= sample["searchable_seconds"]
