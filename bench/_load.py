"""Loading an HTTP server in the benchmarks: free ports, waiting for a server, ``wrk`` with a
JSON summary (or a Python thread client when ``wrk`` is missing), a bare Flask app to compare
against, and the memory of a process tree (RSS, PSS, anonymous)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench._common import stats_ms

BARE_APP = """
from flask import Flask

app = Flask(__name__)


@app.get("/")
def ok():
    return "ok"
"""


WRK_SCRIPT = """
local paths = {%s}
local i = math.random(#paths)
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRKJSON {"requests": %%d, "seconds": %%f, "errors": %%d, "non_2xx": %%d, '
    .. '"p50_us": %%.1f, "p90_us": %%.1f, "p99_us": %%.1f}\\n',
    summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50), latency:percentile(90),
    latency:percentile(99)))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen[Any], timeout: float = 40) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(
    base: str, paths: list[str], seconds: float, connections: int, tmp: Path
) -> dict[str, Any]:
    """requests/s and latency of GETs cycling through ``paths`` (wrk, else Python threads)."""
    wrk = shutil.which("wrk")
    if wrk:
        script = tmp / "paths.lua"
        script.write_text(WRK_SCRIPT % ", ".join(json.dumps(p) for p in paths))
        proc = subprocess.run(
            [
                wrk,
                "-t2",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                str(script),
                base,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON "))
        raw = json.loads(line.removeprefix("WRKJSON "))
        return {
            "client": "wrk",
            "requests_per_s": round(raw["requests"] / raw["seconds"], 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p90_ms": round(raw["p90_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "requests": raw["requests"],
            "errors": raw["errors"] + raw["non_2xx"],
        }
    return python_load(base, paths, seconds, connections)


def python_load(base: str, paths: list[str], seconds: float, connections: int) -> dict[str, Any]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(base)
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def worker(offset: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        mine = []
        i = offset
        while time.monotonic() < end:
            i = (i + 1) % len(paths)
            start = time.perf_counter()
            conn.request("GET", paths[i])
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - start)
            if resp.status != 200:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(k * 7,)) for k in range(connections)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - started
    return {
        "client": "python-threads",
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **stats_ms(latencies),
        "requests": len(latencies),
        "errors": errors[0],
    }


def tree_memory(pid: int) -> dict[str, Any]:
    """RSS and PSS of a process and its descendants (the node: server master, workers and the
    index follower). RSS counts pages shared between them (the mapped indexes, the preloaded
    models) once per process; PSS divides them among the processes sharing them, so its sum is
    the node's real footprint."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    rss = pss = anon = 0
    each = []
    for p in tree:
        try:
            fields = {}
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                name, _, rest = line.partition(":")
                if name in ("Rss", "Pss", "Anonymous"):
                    fields[name] = int(rest.split()[0])
            cmd = Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        rss += fields.get("Rss", 0)
        pss += fields.get("Pss", 0)
        anon += fields.get("Anonymous", 0)
        each.append(
            {
                "command": " ".join(cmd.split()[1:4])[:60],
                "rss_mb": round(fields.get("Rss", 0) / 1024),
                "pss_mb": round(fields.get("Pss", 0) / 1024),
                "anonymous_mb": round(fields.get("Anonymous", 0) / 1024),
            }
        )
    return {
        "processes": len(tree),
        "rss_sum_mb": round(rss / 1024),
        "pss_sum_mb": round(pss / 1024),
        "anonymous_sum_mb": round(anon / 1024),
        "per_process": each,
    }
