"""``covidnews sources check``: is each feed/sitemap/start URL alive? Bounded in time, no hangs."""

from __future__ import annotations

import concurrent.futures
import urllib.error
import urllib.request
from typing import Any


def check_url(url: str, *, timeout: float, user_agent: str) -> tuple[bool, int | None, str | None]:
    request = urllib.request.Request(url, headers={"User-Agent": user_agent, "Accept": "*/*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(2048)
            return 200 <= response.status < 400, response.status, None
    except urllib.error.HTTPError as exc:
        return False, exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, None, f"unreachable: {reason}"


def check_urls(
    targets: list[tuple[str, str, str]], *, timeout: float, user_agent: str, workers: int = 16
) -> list[dict[str, Any]]:
    """Check (source, kind, url) triples concurrently; each URL gets at most ``timeout`` s."""
    results: list[dict[str, Any]] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(check_url, url, timeout=timeout, user_agent=user_agent): (source, kind, url)
            for source, kind, url in targets
        }
        for future in concurrent.futures.as_completed(futures):
            source, kind, url = futures[future]
            ok, status, error = future.result()
            results.append(
                {
                    "source": source,
                    "kind": kind,
                    "url": url,
                    "ok": ok,
                    "status": status,
                    "error": error,
                }
            )
    results.sort(key=lambda r: (r["source"], r["kind"], r["url"]))
    return results
