"""URL canonicalisation shared by ingest and the crawler.

One story URL can arrive in many spellings (tracking parameters, fragments, upper-case hosts,
default ports, AMP and mobile variants). :func:`canonical_url` maps them to one key so the store
never holds the same page twice.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Query parameters that only track the reader, never select content.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref",
        "ref_src",
        "ref_url",
        "cmpid",
        "cmp",
        "ocid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "int_campaign",
        "rss",
        "rsscontent",
        "outputtype",
        "amp",
        "utm",
        "s_cid",
        "sref",
        "__twitter_impression",
        "origen",
        "ncid",
        "spm",
        "share",
        "smid",
        "at_medium",
        "at_campaign",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_", "vero_", "at_", "oly_")

_HOST_VARIANT = re.compile(r"^(?:www\d?|m|mobile|amp)\.", re.IGNORECASE)
_AMP_PATH = re.compile(r"(?:/amp/?$|\.amp(?=\.html?$|$)|/amp(?=/)|_amp(?=\.html?$))", re.IGNORECASE)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class InvalidURL(ValueError):
    """Not an absolute http(s) URL."""


def _clean_path(path: str) -> str:
    # Normalise percent-encoding (decode, re-encode consistently) and drop AMP markers.
    path = quote(unquote(path), safe="/:@!$&'()*+,;=-._~%")
    path = _AMP_PATH.sub("", path) or "/"
    path = re.sub(r"/{2,}", "/", path)
    return path


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL.

    Lower-cases scheme and host, removes AMP path markers (``/amp``, ``.amp``), default ports,
    fragments (but not hash-bang routes), tracking and empty parameters, and sorts the remaining
    query. The host is kept (the result must still open the page); :func:`url_key` also folds
    host variants.
    Raises :class:`InvalidURL`.
    """
    if not isinstance(url, str):
        raise InvalidURL("URL must be a string")
    raw = url.strip()
    if any(ch.isspace() for ch in raw):
        raw = re.sub(r"\s+", "", raw)
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidURL(f"not an http(s) URL: {url[:200]!r}")
    host = (parts.hostname or "").rstrip(".")
    if not host or ("." not in host and host != "localhost"):
        raise InvalidURL(f"URL has no valid host: {url[:200]!r}")
    try:
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        host = host.lower()
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid port in {url[:200]!r}") from exc
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=False)
        if key.lower() not in TRACKING_PARAMS and not key.lower().startswith(TRACKING_PREFIXES)
    ]
    query.sort()
    # Fragments are in-page anchors, except hash-bang / client-side routes ("#!/noticias/…",
    # "#/noticias/…") where the fragment *is* the page.
    fragment = parts.fragment if parts.fragment.startswith(("!", "/")) else ""
    return urlunsplit((scheme, netloc, _clean_path(parts.path), urlencode(query), fragment))


def canonical_or_raw(url: str) -> str:
    """:func:`canonical_url`, or the URL unchanged when it cannot be canonicalised."""
    try:
        return canonical_url(url)
    except InvalidURL:
        return url


def url_key(canonical: str) -> str:
    """Identity of a page: the canonical URL with ``www.``, ``m.``, ``mobile.`` and ``amp.``
    host variants folded, so the desktop, mobile and AMP copies of a page are one article."""
    parts = urlsplit(canonical)
    host = parts.netloc
    while True:
        folded = _HOST_VARIANT.sub("", host)
        if folded == host or "." not in folded:
            break
        host = folded
    return urlunsplit(("https" if parts.scheme == "http" else parts.scheme, host, *parts[2:]))


def url_hash(canonical: str) -> str:
    """The store key of a URL: sha256 hex of :func:`url_key` (fits any database index)."""
    return hashlib.sha256(url_key(canonical).encode("utf-8")).hexdigest()


def host_of(url: str) -> str:
    """Host of a URL without ``www.``: ``https://www.elpais.com/x`` → ``elpais.com``."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host
