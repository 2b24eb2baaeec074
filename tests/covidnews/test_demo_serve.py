"""`covidnews demo --serve` (what `make demo` runs), end to end in a subprocess: the demo news
site is crawled, every article processed, and the archive and API answer at the printed URL."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from crawler.demo_site import expected_articles, expected_factchecks
from tests.api.test_serve import _free_port, _lines
from tests.conftest import ROOT, run_cli


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read().decode("utf-8")


def _search(base: str, **params: Any) -> dict[str, Any]:
    status, body = _get(f"{base}/api/v1/search?{urlencode(params)}")
    assert status == 200
    return json.loads(body)  # type: ignore[no-any-return]


def start_demo(
    env: dict[str, str], site_port: int, api_port: int
) -> tuple[subprocess.Popen[str], queue.Queue[str], queue.Queue[str]]:
    """`covidnews demo --serve` in a subprocess; its stdout and stderr lines as they come."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "covidnews", "demo", "--serve", "--port", str(site_port),
         "--api-port", str(api_port)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    return proc, out, err


def wait_listening(
    proc: subprocess.Popen[str], out: queue.Queue[str], timeout: float = 600
) -> tuple[str | None, list[str]]:
    """(the URL the server printed it listens on, or None; every stdout line read until then)."""
    printed: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            line = out.get(timeout=0.5)
        except queue.Empty:
            continue
        printed.append(line)
        if match := re.search(r"listening on (http://\S+?)/? ", line):
            return match.group(1), printed
    return None, printed


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_serve_crawls_processes_and_serves_every_article(tmp_path: Path) -> None:
    site_port, api_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(
        COVIDNEWS_DATA_DIR=str(tmp_path / "var"),
        COVIDNEWS_API_RATE_LIMIT_ANONYMOUS="100000",
        PYTHONUNBUFFERED="1",
        TMPDIR=str(tmp_path),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    started = time.monotonic()
    proc, out, err = start_demo(env, site_port, api_port)
    try:
        url, printed = wait_listening(proc, out)
        assert url == f"http://127.0.0.1:{api_port}", (printed, list(err.queue)[-30:])
        ready_after = time.monotonic() - started

        expected = expected_articles(site_port)
        summary = "".join(printed)
        assert f"{len(expected)} new articles" in summary
        assert f"processed: {len(expected)} articles ready to search, 0 failed, 0 pending" in (
            summary
        )

        # The archive home renders, with stories linking to article pages.
        status, home = _get(url + "/")
        assert status == 200
        assert '<html lang="es">' in home
        assert 'class="story"' in home
        article = re.search(r'href="(/articulo/\d+)"', home)
        assert article
        status, page = _get(url + article.group(1))
        assert status == 200 and 'id="article-title"' in page

        # Every demo article is searchable through the API, each exactly once.
        everything = _search(url, covid="all", collapse="false", per_page=100)
        assert everything["total"] == len(expected)
        urls = {r["url"] for r in everything["results"]}
        assert urls == {a["url"] for a in expected}  # canonical URLs
        covid = sum(1 for a in expected if a["is_covid"])
        assert 0 < covid < len(expected)
        # (The classifier decides what is Covid news; the archive shows those by default.)
        assert _search(url, collapse="false", per_page=1)["total"] > 0

        # The fact-checker's verdicts are linked: the statement's appearances in the three
        # copies of its wire story (exactly), the debunked claim to the three copies of the story
        # that repeats it (by similarity); the fact-checks of claims no demo outlet carried stay
        # unlinked.
        status, body = _get(url + "/api/v1/factchecks?per_page=100")
        assert status == 200
        checks = {f["claim"]: f for f in json.loads(body)["results"]}
        assert len(checks) == len(expected_factchecks(site_port)) == 4
        linked: dict[str, set[tuple[str, str]]] = {claim: set() for claim in checks}
        for r in everything["results"]:
            status, body = _get(f"{url}/api/v1/articles/{r['id']}")
            for f in json.loads(body)["factchecks"]:
                linked[f["claim"]].add((r["url"], f["reason"]))
        group = {
            g: {a["url"] for a in expected if a["syndication_group"] == g}
            for g in ("wire-sip-oms", "wire-aln-gates")
        }
        assert linked['muchos países "han bajado la guardia"'] == {
            (u, "appearance") for u in group["wire-sip-oms"]
        }
        gates = next(c for c in checks if c.startswith("Gates"))
        assert linked[gates] == {(u, "similar") for u in group["wire-aln-gates"]}
        assert sum(1 for v in linked.values() if not v) == 2

        # Nothing left unprocessed in the store.
        stats = run_cli("stats", "--json", env=env)
        assert stats.returncode == 0, stats.stderr
        states = json.loads(stats.stdout)["states"]
        assert states["done"] == len(expected), states
        assert sum(states.values()) == len(expected), states  # none pending, failed, processing

        proc.send_signal(signal.SIGTERM)
        stop = time.monotonic()
        assert proc.wait(timeout=60) == 0
        # Quick: no worker waits for gunicorn's 30 s graceful timeout.
        assert time.monotonic() - stop < 20
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    errors = "".join(err.queue)
    assert "Traceback" not in errors
    print(f"demo served every article after {ready_after:.0f} s")
    for port in (site_port, api_port):  # both ports are free again
        with socket.socket() as sock:
            sock.settimeout(2)
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still open"
