"""URL canonicalisation shared by ingest and the crawler.

One story URL can arrive in many spellings (tracking parameters, fragments, upper-case hosts,
default ports, AMP and mobile variants). :func:`canonical_url` maps them to one key so the store
never holds the same page twice.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote_plus, urlsplit, urlunsplit

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
    # AMP markers and repeated slashes go; percent-escapes are w3lib's business (below).
    path = _AMP_PATH.sub("", path) or "/"
    return re.sub(r"/{2,}", "/", path)


def _kept_param(part: str) -> bool:
    """A ``key=value`` of the raw query worth keeping: not empty, not a tracker."""
    key, _, value = part.partition("=")
    key = unquote_plus(key).strip().lower()
    return (
        bool(key and value) and key not in TRACKING_PARAMS and not key.startswith(TRACKING_PREFIXES)
    )


def canonical_url(url: str) -> str:
    """The canonical form of an http(s) URL, which always points where ``url`` points.

    Lower-cases scheme and host, removes AMP path markers (``/amp``, ``.amp``), default ports,
    fragments (but not hash-bang routes), tracking and empty parameters, and sorts the remaining
    query. Percent-escapes are normalised as w3lib's ``canonicalize_url`` does: escapes of
    unreserved characters decoded, others upper-cased, non-ASCII encoded as UTF-8 — while the
    escapes that change what a URL means are kept (``%2F`` is not ``/``, ``%25`` is not ``%``).
    The host is kept (the result must still open the page); :func:`url_key` also folds host
    variants. Raises :class:`InvalidURL`.
    """
    from w3lib.url import canonicalize_url

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
    query = "&".join(part for part in parts.query.split("&") if _kept_param(part))
    # Fragments are in-page anchors, except hash-bang / client-side routes ("#!/noticias/…",
    # "#/noticias/…") where the fragment *is* the page.
    fragment = parts.fragment if parts.fragment.startswith(("!", "/")) else ""
    rebuilt = urlunsplit((scheme, netloc, _clean_path(parts.path), query, fragment))
    return str(canonicalize_url(rebuilt, keep_blank_values=True, keep_fragments=bool(fragment)))


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


# Which addresses may be fetched (the crawler's guard, the bot's image fetch) -------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> list[IPNetwork]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def address_allowed(address: str, allowed: Sequence[IPNetwork]) -> bool:
    """Public addresses always; others only inside an allowed network."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if ip.is_global and not ip.is_multicast:
        return True
    return any(ip.version == net.version and ip in net for net in allowed)
