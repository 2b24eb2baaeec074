"""`covidnews serve`: a real gunicorn server in a subprocess."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.api.test_ops import _sample
from tests.conftest import ROOT
from tests.servers import free_port as _free_port


def _lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)


@pytest.mark.slow
def test_serve_answers_and_stops_cleanly_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = _free_port()
    env = dict(cli_env, TMPDIR=str(tmp_path))
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "covidnews", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stdout, out), daemon=True).start()
    err: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = out.get(timeout=0.5)
            except queue.Empty:
                continue
            if "listening on" in line:
                url = line.split("listening on ", 1)[1].split("/ ", 1)[0]
        assert url == f"http://127.0.0.1:{port}", list(err.queue)

        for _ in range(6):
            with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
                assert response.status == 200
                assert json.load(response) == {"status": "ok"}
                assert response.headers["X-Request-ID"]
        # Ready once the node's follower has built its (empty) indexes from the store.
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=10) as response:
                    status, body = response.status, json.load(response)
            except urllib.error.HTTPError as exc:
                status, body = exc.code, json.load(exc)
            if status == 200:
                assert body["checks"]["indexes"] == "caught up"
                break
            assert status == 503 and time.monotonic() < deadline, body
            time.sleep(0.2)
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            text = response.read().decode()
        # Both workers' counts are in one answer (multi-process collector).
        count = _sample(text, "covidnews_http_requests_total", endpoint="/healthz", status="200")
        assert count == 6
        metrics_dirs = list(tmp_path.glob("covidnews-metrics-*"))
        assert len(metrics_dirs) == 1

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not list(tmp_path.glob("covidnews-metrics-*"))  # cleaned up
    stderr = "".join(err.queue)
    assert "Traceback" not in stderr
    assert "Shutting down" in stderr
