"""The thumbnail of a link card: the article's ``og:image``, fetched once, size-capped, guarded.

The image URL comes from a crawled page, so it is untrusted: only ``http(s)``, only image types
Bluesky takes, at most :data:`MAX_BYTES` (the ``thumb`` limit of ``app.bsky.embed.external``),
at most :data:`MAX_REDIRECTS` redirects, and never a non-public address (loopback, private,
link-local, e.g. 169.254.169.254) unless listed in ``COVIDNEWS_CRAWL_ALLOW_PRIVATE`` — the same
rule as the crawler's guard (``covidnews.urls.address_allowed``). Every hop's host is resolved
and checked before it is fetched (a name re-resolved between the check and the fetch is a
narrow window; the answer must still be an image under the cap to be used at all).

Nothing here raises: an image that cannot be had makes a card without a thumbnail, never a
failed post.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from covidnews.urls import IPNetwork, address_allowed

log = logging.getLogger(__name__)

MAX_BYTES = 1_000_000
MAX_REDIRECTS = 3
TIMEOUT = (5.0, 10.0)  # connect, read
TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


@dataclass(frozen=True)
class Image:
    data: bytes
    mime: str


def _host_allowed(url: str, allowed: Sequence[IPNetwork]) -> str | None:
    """Why ``url`` may not be fetched, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an http(s) URL"
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        return f"cannot resolve {parts.hostname}: {exc}"
    for info in infos:
        address = str(info[4][0])
        if not address_allowed(address, allowed):
            return f"{parts.hostname} is a non-public address ({address})"
    return None


def fetch_image(url: str, allowed: Sequence[IPNetwork], user_agent: str) -> Image | None:
    """The image at ``url`` when it is one, small enough and allowed; else None (logged)."""
    import requests

    current = url
    try:
        for _ in range(MAX_REDIRECTS + 1):
            refused = _host_allowed(current, allowed)
            if refused:
                log.info("card image %s not fetched: %s", url, refused)
                return None
            with requests.get(
                current,
                stream=True,
                timeout=TIMEOUT,
                allow_redirects=False,
                headers={"User-Agent": user_agent, "Accept": ", ".join(sorted(TYPES))},
            ) as response:
                if response.is_redirect and response.headers.get("Location"):
                    current = urljoin(current, response.headers["Location"])
                    continue
                if response.status_code != 200:
                    log.info("card image %s: HTTP %s", url, response.status_code)
                    return None
                mime = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if mime not in TYPES:
                    log.info("card image %s is not an image Bluesky takes (%r)", url, mime)
                    return None
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > MAX_BYTES:
                    log.info("card image %s is over %d bytes", url, MAX_BYTES)
                    return None
                data = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    data += chunk
                    if len(data) > MAX_BYTES:
                        log.info("card image %s is over %d bytes", url, MAX_BYTES)
                        return None
                return Image(bytes(data), mime) if data else None
        log.info("card image %s: more than %d redirects", url, MAX_REDIRECTS)
    except requests.RequestException as exc:
        log.info("card image %s not fetched: %s", url, exc)
    return None
