"""Crawl throughput (pages/s) on the local demo news site, next to `scrapy bench` in the same run.

- ``covidnews_crawl``: the real `covidnews crawl` (subprocess, fresh SQLite store) over the demo
  site with politeness delays off (AutoThrottle off, no delay, 8 requests per domain) — so the
  figure is the crawler's own cost: robots, feeds, sitemaps, link listings, extraction, dedup,
  store writes. Pages/s over Scrapy's elapsed time, and over wall time including start-up.
- ``scrapy_bench``: Scrapy's built-in benchmark (a local server of link pages, no item work),
  the raw ceiling of the framework on this machine.

Prints one JSON object. Usage: python bench/bench_crawl.py [--bench-seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawler.demo_site import DemoSite, write_registry

ROOT = Path(__file__).resolve().parents[1]
FAST = [
    "-s", "AUTOTHROTTLE_ENABLED=false", "-s", "DOWNLOAD_DELAY=0",
    "-s", "CONCURRENT_REQUESTS_PER_DOMAIN=8",
]  # fmt: skip


def covidnews_crawl() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, DemoSite() as site:
        registry = Path(tmp) / "sources.yaml"
        write_registry(site.port, registry)
        env = dict(
            os.environ,
            COVIDNEWS_DATA_DIR=tmp,
            COVIDNEWS_SOURCES_FILE=str(registry),
            COVIDNEWS_CRAWL_ALLOW_PRIVATE="127.0.0.1",
            COVIDNEWS_LOG_LEVEL="WARNING",
            COVIDNEWS_PROCESS_ON_INGEST="false",  # measure crawling, not the NLP stages
        )
        env.pop("COVIDNEWS_DATABASE_URL", None)
        env.pop("COVIDNEWS_REDIS_URL", None)
        subprocess.run(
            [sys.executable, "-m", "covidnews", "init"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "covidnews", "crawl", "--json", *FAST],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.perf_counter() - started
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        pages = summary["pages_fetched"]
        return {
            "pages": pages,
            "articles_stored": summary["articles_stored"],
            "elapsed_seconds": summary["elapsed_seconds"],
            "wall_seconds": round(wall, 3),
            "pages_per_s": round(pages / summary["elapsed_seconds"], 1),
            "pages_per_s_wall": round(pages / wall, 1),
        }


def scrapy_bench(seconds: int) -> dict[str, float]:
    scrapy = Path(sys.executable).with_name("scrapy")
    proc = subprocess.run(
        [str(scrapy), "bench", "-s", f"CLOSESPIDER_TIMEOUT={seconds}", "-s", "LOG_LEVEL=INFO"],
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=True,
    )
    pages = int(re.findall(r"'response_received_count': (\d+)", proc.stderr)[-1])
    elapsed = float(re.findall(r"'elapsed_time_seconds': ([\d.]+)", proc.stderr)[-1])
    return {
        "pages": pages,
        "elapsed_seconds": round(elapsed, 3),
        "pages_per_s": round(pages / elapsed, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bench-seconds", type=int, default=10)
    args = parser.parse_args()
    ours = covidnews_crawl()
    raw = scrapy_bench(args.bench_seconds)
    print(
        json.dumps(
            {
                "benchmark": "crawl",
                "covidnews_crawl": ours,
                "scrapy_bench": raw,
                "ratio_vs_scrapy_bench": round(ours["pages_per_s"] / raw["pages_per_s"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
