"""`covidnews sources list|check`, live statistics, and `covidnews demo`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from crawler.live import LiveStats
from tests.conftest import ROOT, run_cli


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(COVIDNEWS_DATA_DIR=str(tmp_path / "var"), **extra)
    return env


def test_sources_list_prints_the_registry(tmp_path: Path) -> None:
    proc = run_cli("sources", "list", "--json", env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) >= 60
    assert {"name", "domains", "country", "language", "feeds", "sitemaps"} <= set(rows[0])
    human = run_cli("sources", "list", "--country", "MX", env=_env(tmp_path))
    assert human.returncode == 0
    assert all(line.startswith("MX ") for line in human.stdout.splitlines())
    assert "sources" in human.stderr


def test_sources_check_fails_cleanly_without_network(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    registry = {
        "version": 1,
        "sources": [
            {
                "name": "Inalcanzable", "domains": ["nohost.invalid"], "country": "ES",
                "language": "es", "feeds": ["https://nohost.invalid/rss.xml"],
            },
            {
                "name": "Cerrado", "domains": ["cerrado.localhost"], "country": "ES", "language": "es",
                "feeds": [f"http://cerrado.localhost:{closed}/feed.xml"],
            },
        ],
    }  # fmt: skip
    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(registry), encoding="utf-8")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "covidnews",
            "sources",
            "check",
            "--sources-file",
            str(path),
            "--timeout",
            "3",
            "--json",
        ],
        env=_env(tmp_path),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(rows) == 2
    assert not any(r["ok"] for r in rows)
    assert all(r["error"].startswith("unreachable") for r in rows)
    assert "0 of 2 URLs answered" in proc.stderr


def test_bad_registry_is_a_clean_settings_error(tmp_path: Path) -> None:
    path = tmp_path / "sources.yaml"
    path.write_text(
        "version: 1\nsources:\n  - name: X\n    domains: [x.example]\n    country: Spain\n",
        encoding="utf-8",
    )
    proc = run_cli("sources", "list", env=_env(tmp_path, COVIDNEWS_SOURCES_FILE=str(path)))
    assert proc.returncode == 2
    assert "X" in proc.stderr and "Traceback" not in proc.stderr


def test_live_stats_line() -> None:
    values = {"response_received_count": 1234, "covidnews/articles/stored": 56}
    stats = SimpleNamespace(get_value=lambda key, default=0: values.get(key, default))
    line = LiveStats(stats).line()
    assert "pages 1,234" in line
    assert "stored 56" in line
    assert line.startswith("\r")


@pytest.mark.slow
def test_demo_command_crawls_the_demo_site_and_is_idempotent(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The crawl half of the demo; the NLP stages have their own tests (tests/nlp_worker).
    env = _env(tmp_path, COVIDNEWS_PROCESS_ON_INGEST="false")
    first = run_cli("demo", "--port", str(port), "--json", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    out = json.loads(first.stdout)
    assert out["crawl"]["articles_stored"] == out["store"]["articles"] > 50
    assert out["store"]["sources"] == 7  # six outlets and the fact-checker
    assert out["crawl"]["factchecks_stored"] == 4  # its four reviews, on three pages
    # The fact-checks stored are the demo's ground truth (claims, ratings, claimants, pages,
    # where they appeared), with the fact-checker as their source.
    from sqlalchemy import select

    from covidnews.schema import FactCheck, Source
    from covidnews.store import Store
    from crawler.demo_site import expected_factchecks

    store = Store(f"sqlite:///{tmp_path / 'var' / 'covidnews.db'}")
    with store.session() as s:
        rows = s.execute(select(FactCheck, Source).join(Source)).all()
        got = sorted(
            (f.claim, f.verdict_text, f.claimant, f.url, tuple(f.appearances), src.kind)
            for f, src in rows
        )
    store.close()
    assert got == sorted(
        (
            f["claim"],
            f["verdict_text"],
            f["claimant"],
            f["url"],
            tuple(f["appearances"]),
            "factchecker",
        )
        for f in expected_factchecks(port)
    )
    again = run_cli("demo", "--port", str(port), "--json", env=env)
    assert again.returncode == 0, again.stderr[-2000:]
    out2 = json.loads(again.stdout)
    assert out2["crawl"]["articles_stored"] == 0
    assert out2["store"]["articles"] == out["store"]["articles"]
