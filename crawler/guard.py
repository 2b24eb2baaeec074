"""What the crawler may fetch: registry domains only, and never a non-public address.

Two layers, so neither a link, a redirect nor DNS can lead the crawler astray:

- :class:`GuardMiddleware` (downloader middleware) refuses any request whose host is not owned by
  a registry source, and any literal IP address that is not public (169.254.169.254, 10.x, ::1…);
- :class:`GuardedResolver` (Scrapy ``DNS_RESOLVER``) refuses names that resolve to non-public
  addresses (DNS rebinding, internal names), and resolves ``*.localhost`` to 127.0.0.1 as RFC 6761
  says (the demo site's outlets live there).

Non-public addresses are allowed only when listed in ``COVIDNEWS_CRAWL_ALLOW_PRIVATE`` (tests and
the demo allow 127.0.0.1 explicitly).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scrapy.exceptions import IgnoreRequest
from scrapy.resolver import CachingThreadedResolver
from twisted.internet import defer
from twisted.internet.error import DNSLookupError

from covidnews.urls import IPNetwork, address_allowed, parse_networks

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Request
    from twisted.internet.base import ReactorBase


log = logging.getLogger(__name__)


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


class GuardedResolver(CachingThreadedResolver):
    """Scrapy's caching resolver, refusing non-public answers and mapping ``*.localhost``."""

    allowed: list[IPNetwork]

    @classmethod
    def from_crawler(cls, crawler: Crawler, reactor: ReactorBase) -> GuardedResolver:
        resolver = super().from_crawler(crawler, reactor)
        resolver.allowed = parse_networks(crawler.settings.getlist("COVIDNEWS_ALLOW_PRIVATE"))
        return resolver

    def getHostByName(self, name: str, timeout: Sequence[int] = ()) -> defer.Deferred[str]:
        lowered = name.lower().rstrip(".")
        if lowered == "localhost" or lowered.endswith(".localhost"):
            result: defer.Deferred[str] = defer.succeed("127.0.0.1")
        else:
            result = super().getHostByName(name, timeout)
        return result.addCallback(self._check, name)

    def _check(self, address: str, name: str) -> str:
        if not address_allowed(address, getattr(self, "allowed", [])):
            # Twisted reports this to the request as "no results"; say why here.
            log.warning("refused %s: resolves to non-public address %s", name, address)
            raise DNSLookupError(f"{name} resolves to non-public address {address}: refused")
        return address


class GuardMiddleware:
    """Downloader middleware: only registry domains, never a non-public literal address."""

    def __init__(self, allowed: list[IPNetwork], crawler: Crawler | None = None) -> None:
        self.allowed = allowed
        self.crawler = crawler
        self.stats = getattr(crawler, "stats", None)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GuardMiddleware:
        return cls(parse_networks(crawler.settings.getlist("COVIDNEWS_ALLOW_PRIVATE")), crawler)

    def process_request(self, request: Request, spider: Spider | None = None) -> None:
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in {"http", "https"} or not host:
            self._refuse("scheme", request, f"not an http(s) URL: {request.url}")
        if is_ip_literal(host) and not address_allowed(host, self.allowed):
            self._refuse("private_address", request, f"non-public address {host}")
        spider = spider or getattr(self.crawler, "spider", None)
        registry = getattr(spider, "registry", None)
        if registry is not None and registry.by_domain(host) is None:
            self._refuse("offsite", request, f"{host} is not a registry domain")

    def _refuse(self, reason: str, request: Request, message: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"covidnews/refused/{reason}")
        raise IgnoreRequest(f"refused {request.url}: {message}")
