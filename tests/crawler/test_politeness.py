"""Politeness (crawler/politeness.py): robots.txt Crawl-delay, Retry-After, backoff on 429/503.

Real Scrapy crawls (a minimal spider in a subprocess, with the project's ``scrapy_settings``)
of a real HTTP server on 127.0.0.1 that records the time of every request it receives. The
assertions are about spacing (never closer than asked), not about speed.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from scrapy.core.downloader import Downloader
from scrapy.http import Response

from crawler.politeness import parse_retry_after, retry_after
from tests.conftest import ROOT

HOST = "polite.localhost"  # resolved to 127.0.0.1 by crawler.guard.GuardedResolver

# A minimal spider, run with the project's Scrapy settings (guard, robots.txt, politeness…);
# no item pipelines: it stores nothing. Prints the crawl's stats as its last line.
RUNNER = """
import json, logging, sys
from scrapy import Spider
from scrapy.crawler import CrawlerProcess
from covidnews.settings import Settings
from crawler.settings import scrapy_settings

class Probe(Spider):
    name = "probe"

    def parse(self, response):
        pass

urls, overrides = json.loads(sys.argv[1]), json.loads(sys.argv[2])
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s [%(name)s] %(levelname)s: %(message)s")
values = scrapy_settings(Settings(crawl_allow_private=["127.0.0.1"]), overrides)
process = CrawlerProcess(values, install_root_handler=False)
crawler = process.create_crawler(Probe)
process.crawl(crawler, start_urls=urls)
process.start()
stats = {k: v for k, v in crawler.stats.get_stats().items() if isinstance(v, (int, float, str))}
print(json.dumps(stats))
"""

# Everything as fast as Scrapy allows, so that any spacing seen comes from politeness: no
# download delay, AutoThrottle on (it must not lower a floor) but aiming at no delay at all.
FAST = {
    "DOWNLOAD_DELAY": 0,
    "AUTOTHROTTLE_START_DELAY": 0.0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 8.0,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
    "ITEM_PIPELINES": {},
    "LOG_LEVEL": "INFO",
}


@dataclass
class Hit:
    at: float  # time.monotonic() when the request arrived
    path: str
    status: int


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    #: seconds to add to the server's clock in ``Date`` and in ``{date+N}`` Retry-After values
    skew: float = 0.0


class Site:
    """An HTTP server answering per path from a script (the last reply repeats)."""

    def __init__(self, robots: str = "", script: dict[str, list[Reply]] | None = None) -> None:
        self.robots = robots
        self.script = script or {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://{HOST}:{self.port}{path}"

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        path = handler.path
        with self.lock:
            seen = sum(1 for h in self.hits if h.path == path)
            if path == "/robots.txt":
                reply = Reply(200 if self.robots else 404)
                body = self.robots.encode()
            else:
                replies = self.script.get(path, [Reply()])
                reply = replies[min(seen, len(replies) - 1)]
                body = f"<html><body><p>{path}</p></body></html>".encode()
            self.hits.append(Hit(arrived, path, reply.status))
        now = math.floor(time.time() + reply.skew)
        handler.send_response_only(reply.status)
        handler.send_header("Date", formatdate(now, usegmt=True))
        for name, value in reply.headers.items():
            if value.startswith("{date+"):
                value = formatdate(now + int(value[6:-1]), usegmt=True)
            handler.send_header(name, value)
        handler.send_header("Content-Type", "text/plain" if path == "/robots.txt" else "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def times(self, path: str | None = None) -> list[float]:
        return [h.at for h in self.hits if path is None or h.path == path]

    def statuses(self, path: str) -> list[int]:
        return [h.status for h in self.hits if h.path == path]

    def __enter__(self) -> Site:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def crawl(
    site: Site, paths: list[str], tmp_path: Path, **overrides: Any
) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVIDNEWS_")}
    env.update(PYTHONPATH=str(ROOT), COVIDNEWS_DATA_DIR=str(tmp_path / "var"))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RUNNER,
            json.dumps([site.url(p) for p in paths]),
            json.dumps({**FAST, **overrides}),
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


def gaps(times: list[float]) -> list[float]:
    ordered = sorted(times)
    return [b - a for a, b in itertools.pairwise(ordered)]


# -- Retry-After, parsed ----------------------------------------------------------------------

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 120 ", 120.0),
        (b"0", 0.0),
        ("1.5", 1.5),
        ("3600", 3600.0),
        (formatdate(NOW + 60, usegmt=True), 60.0),  # IMF-fixdate
        ("Tuesday, 14-Nov-23 22:14:20 GMT", 60.0),  # obsolete RFC 850
        ("Tue Nov 14 22:14:20 2023", 60.0),  # obsolete asctime
        (formatdate(NOW - 3600, usegmt=True), 0.0),  # in the past: no wait
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1e3", None),
        ("2 minutes", None),
        ("Tue, 99 Nov 2023 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after(value: str | bytes | None, seconds: float | None) -> None:
    got = parse_retry_after(value, now=NOW)
    assert got == (None if seconds is None else pytest.approx(seconds))


def test_parse_retry_after_defaults_to_this_clock() -> None:
    got = parse_retry_after(formatdate(time.time() + 100, usegmt=True))
    assert got is not None and 98 <= got <= 100


def test_retry_after_reads_a_date_against_the_servers_clock() -> None:
    server_now = time.time() - 3600  # the server's clock is an hour behind ours
    response = Response(
        "https://diario.example/",
        status=503,
        headers={
            "Date": formatdate(server_now, usegmt=True),
            "Retry-After": formatdate(server_now + 30, usegmt=True),
        },
    )
    assert retry_after(response) == pytest.approx(30, abs=1)
    assert retry_after(Response("https://diario.example/", status=503)) is None
    no_date = Response("https://diario.example/", status=429, headers={"Retry-After": "7"})
    assert retry_after(no_date) == 7.0


def test_the_private_scrapy_method_a_hold_release_uses_exists() -> None:
    # crawler.politeness.Politeness._wake: after a Retry-After hold, the slot's queue is
    # processed again at once (else a wake-up scheduled with the hold's long delay stands).
    assert callable(getattr(Downloader, "_process_queue", None))


# -- real crawls ------------------------------------------------------------------------------


@pytest.mark.slow
def test_crawl_delay_spaces_every_request_to_the_host(tmp_path: Path) -> None:
    pages = ["/a", "/b", "/c", "/d"]
    with Site(robots="User-agent: *\nCrawl-delay: 1\n") as site:
        stats, _ = crawl(site, pages, tmp_path)
    assert sorted(h.path for h in site.hits) == sorted(["/robots.txt", *pages])
    spacing = gaps(site.times())
    assert min(spacing) >= 0.95, spacing  # robots.txt included: the first page waits too
    assert stats["covidnews/crawl_delay/hosts"] == 1
    assert stats["downloader/response_status_count/200"] == 5


@pytest.mark.slow
def test_an_absurd_crawl_delay_is_capped(tmp_path: Path) -> None:
    pages = ["/a", "/b"]
    with Site(robots="User-agent: covidnews\nCrawl-delay: 86400\n") as site:
        started = time.monotonic()
        stats, log = crawl(site, pages, tmp_path, COVIDNEWS_CRAWL_DELAY_MAX=1.5)
        elapsed = time.monotonic() - started
    assert len(site.hits) == 3
    assert min(gaps(site.times())) >= 1.45
    assert elapsed < 120  # not a day
    assert stats["covidnews/crawl_delay/capped"] == 1
    assert "Crawl-delay 86400.0 s: using 1.5 s" in log


@pytest.mark.slow
@pytest.mark.parametrize(
    ("retry_after_value", "skew"),
    [
        ("2", 0.0),  # delta-seconds
        ("{date+3}", 0.0),  # an HTTP-date, 3 s after the response's Date
        ("{date+3}", -3600.0),  # the same from a server whose clock is an hour behind
    ],
    ids=["seconds", "http-date", "http-date-server-clock-behind"],
)
def test_retry_after_holds_the_host_then_the_page_is_fetched(
    tmp_path: Path, retry_after_value: str, skew: float
) -> None:
    first = Reply(429, {"Retry-After": retry_after_value}, skew=skew)
    with Site(script={"/page": [first, Reply(200, skew=skew)]}) as site:
        stats, _ = crawl(site, ["/page"], tmp_path)
    assert site.statuses("/page") == [429, 200]
    limited, retried = site.times("/page")
    assert retried - limited >= 1.9
    assert stats["retry/count"] == 1
    assert stats["covidnews/retry_after/honoured"] == 1
    assert "covidnews/retry_after/too_long" not in stats


@pytest.mark.slow
def test_retry_after_too_far_away_gives_the_page_up_without_waiting(tmp_path: Path) -> None:
    too_long = [Reply(429, {"Retry-After": "3600"})]
    with Site(script={"/one": too_long, "/two": too_long}) as site:
        stats, log = crawl(site, ["/one", "/two"], tmp_path)
    assert site.statuses("/one") == [429] and site.statuses("/two") == [429]  # never retried
    assert stats["covidnews/retry_after/too_long"] == 2
    assert "retry/count" not in stats and "covidnews/retry_after/honoured" not in stats
    assert stats["elapsed_time_seconds"] < 60  # it did not wait an hour (nor 300 s)
    assert stats["finish_reason"] == "finished"
    assert log.count("Retry-After 3600 s") == 1, log  # one warning for the host


@pytest.mark.slow
def test_503_without_retry_after_backs_off_with_a_growing_delay(tmp_path: Path) -> None:
    script = {"/page": [Reply(503), Reply(503), Reply(200)]}
    with Site(script=script) as site:
        stats, _ = crawl(site, ["/page"], tmp_path)
    assert site.statuses("/page") == [503, 503, 200]  # retried within RETRY_TIMES (2)
    first, second = gaps(site.times("/page"))
    assert first >= 0.95  # COVIDNEWS_BACKOFF_START
    assert second >= 1.9 and second > first  # doubled
    assert stats["covidnews/backoff/count"] == 2
    assert stats["retry/count"] == 2


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The crawl must reach 127.0.0.1 directly, whatever proxy the environment names.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
