"""Archive page render times at 10k/100k articles, next to a bare Flask template in the same run.

Reuses the deployments of ``bench/bench_search.py`` (same corpus, same ``--cache-dir``; built
there when missing). Every page is rendered through the real app (`create_app`, Flask test
client: routing, engine, store, Jinja, security headers, ETag), cold caches excluded by a
warm-up round; the baseline is a bare Flask app rendering a small template with a 20-item
loop, which is what any server-rendered page costs at least.

    .venv/bin/python bench/bench_archive.py --sizes 100000 --cache-dir /tmp/bench-search-cache
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import search_corpus
from bench._common import stats_ms
from bench.search_corpus import ensure_corpus


def pages(client: Any) -> dict[str, str]:
    """The archive's page kinds, with real ids/dates/slugs of this deployment."""
    api = client.get("/api/v1/search?q=&per_page=1&covid=all").get_json()
    article = api["results"][0]
    day = (article["published_at"] or "2021-03-15")[:10]
    yyyy, mm, dd = day.split("-")
    source = article["source"]["slug"] if article["source"] else "none"
    country = (article["country"] or "mx").lower()
    return {
        "home": "/",
        "topic": "/tema/vaccines",
        "source": f"/fuente/{source}",
        "country": f"/pais/{country}",
        "month": f"/archivo/{yyyy}/{mm}/",
        "day": f"/archivo/{yyyy}/{mm}/{dd}/",
        "article": f"/articulo/{article['id']}",
        "article_en": f"/articulo/{article['id']}?lang=en&ver=ambos",
        "search_keyword": "/buscar?q=vacunas&mode=keyword",
        "search_hybrid": "/buscar?q=vacunas+contra+covid",
        "stats": "/estadisticas",
        "feed_topic": "/feeds/tema/vaccines.rss",
    }


def bare_app() -> Any:
    from flask import Flask, render_template_string

    app = Flask("bare")
    template = (
        "<!doctype html><html lang=es><title>{{ t }}</title><main><ul>"
        "{% for i in items %}<li><a href='/a/{{ i }}'>{{ t }} {{ i }}</a></li>{% endfor %}"
        "</ul></main></html>"
    )

    @app.get("/")
    def index() -> str:
        return render_template_string(template, t="Noticia <b>", items=range(20))

    return app


def measure(client: Any, path: str, rounds: int) -> dict[str, Any]:
    for _ in range(2):  # warm-up: first use of a page kind loads templates, vectors, models
        client.get(path)
    samples = []
    status = 0
    for _ in range(rounds):
        t = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - t)
        status = response.status_code
    return {**stats_ms(samples), "status": status, "kb": round(len(response.data) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--embed", type=int, default=3000)
    parser.add_argument("--noise", type=float, default=0.012)
    args = parser.parse_args()
    root = args.cache_dir or Path(os.environ.get("TMPDIR", "/tmp")) / "bench-search-cache"
    root.mkdir(parents=True, exist_ok=True)

    from api import create_app

    bare = bare_app().test_client()
    out: dict[str, Any] = {
        "benchmark": "archive",
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "baseline_bare_flask_template": measure(bare, "/", args.rounds),
        "results": [],
    }
    for n in [int(s) for s in args.sizes.split(",")]:
        data_dir, info = ensure_corpus(root, n, args)
        settings = search_corpus._settings(data_dir)
        app = create_app({"SETTINGS": settings, "RATELIMIT_ENABLED": False})
        client = app.test_client()
        result = {"articles": n, "cached_corpus": info.get("cached", False), "pages": {}}
        for name, path in pages(client).items():
            result["pages"][name] = {"path": path, **measure(client, path, args.rounds)}
        p50s = sorted(v["p50_ms"] for v in result["pages"].values())
        result["median_page_p50_ms"] = p50s[len(p50s) // 2]
        out["results"].append(result)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
