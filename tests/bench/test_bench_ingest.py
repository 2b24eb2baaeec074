"""The ingest benchmark runs and reports sane figures (timings are not asserted: speed lives in
bench/, not in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_ingest_prints_one_json_object(shared_data: object) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/bench_ingest.py", "--articles", "300", "--batch-size", "50"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ),
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["benchmark"] == "ingest"
    assert out["articles"] == 300
    assert set(out["results"]) == {"sqlite", "postgresql"}
    for figures in out["results"].values():
        assert figures["ingest_articles_per_s"] > 0
        assert figures["raw_insert_articles_per_s"] > 0
        assert figures["reingest_articles_per_s"] > 0
