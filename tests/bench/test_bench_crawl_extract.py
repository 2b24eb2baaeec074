"""The crawl and extraction benchmarks run and report sane figures (timings not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def _run(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert isinstance(out, dict)
    return out


@pytest.mark.slow
def test_bench_crawl(shared_data: object) -> None:
    out = _run("bench/bench_crawl.py", "--bench-seconds", "2")
    ours, raw = out["covidnews_crawl"], out["scrapy_bench"]
    assert isinstance(ours, dict) and isinstance(raw, dict)
    assert ours["articles_stored"] > 50
    assert ours["pages_per_s"] > 0 and raw["pages_per_s"] > 0


def test_bench_extract(shared_data: object) -> None:
    out = _run("bench/bench_extract.py", "--rounds", "1")
    assert out["pages"] == 73
    assert out["covidnews_extract_docs_per_s"] > 0
    assert out["bare_trafilatura_docs_per_s"] > 0
