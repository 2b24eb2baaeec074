"""Extraction throughput (docs/s): covidnews' extractor next to bare trafilatura on the same pages.

Pages: the real publisher pages of ../shared/data/extraction (fundus, newspaper4k) and every
article page of the local demo site. ``covidnews_extract`` is ``crawler.extract.extract`` (decode,
JSON-LD/OpenGraph/meta/byline metadata, body, cleaning); ``bare_trafilatura`` is
``trafilatura.extract(html)`` alone on the same decoded text.

Prints one JSON object. Usage: python bench/bench_extract.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import SHARED
from crawler.demo_site import DemoSite
from crawler.extract import decode_html, extract


def pages() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted((SHARED / "extraction" / "fundus").glob("*.html.gz")):
        out.append((f"https://example.org/{path.stem}", gzip.decompress(path.read_bytes())))
    np4k = SHARED / "extraction" / "newspaper4k" / "spanish_article.html"
    out.append(("http://ultimahora.es/x.html", np4k.read_bytes()))
    with DemoSite() as site:
        for article in site.expected_articles():
            parts = urlsplit(article["url"])
            conn = http.client.HTTPConnection("127.0.0.1", site.port)
            conn.request("GET", parts.path, headers={"Host": parts.netloc})
            out.append((article["url"], conn.getresponse().read()))
            conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import trafilatura

    docs = pages()
    texts = [(url, decode_html(body)) for url, body in docs]
    for url, body in docs[:3]:  # warm caches and imports
        extract(body, url)
    started = time.perf_counter()
    for _ in range(args.rounds):
        for url, body in docs:
            extract(body, url)
    ours = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(args.rounds):
        for url, text in texts:
            trafilatura.extract(text, url=url)
    bare = time.perf_counter() - started
    n = len(docs) * args.rounds
    print(
        json.dumps(
            {
                "benchmark": "extract",
                "pages": len(docs),
                "rounds": args.rounds,
                "covidnews_extract_docs_per_s": round(n / ours, 1),
                "bare_trafilatura_docs_per_s": round(n / bare, 1),
                "covidnews_ms_per_doc": round(1000 * ours / n, 2),
                "bare_trafilatura_ms_per_doc": round(1000 * bare / n, 2),
                "overhead_ratio": round(ours / bare, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
