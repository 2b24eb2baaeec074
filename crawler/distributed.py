"""Distributed crawling: several processes share one crawl through Redis (scrapy-redis).

scrapy-redis shares the request queue and the dupefilter. What it does not share is *when the crawl
is over*: a process whose local work runs out would close while another is still finding links.
:class:`SharedIdle` keeps every process of a run alive while any other one is still busy (a
heartbeat key per process in Redis with a short expiry, so a killed process stops counting within
seconds), and lets them all close once the queue is empty and nobody is busy.
:class:`FetchClaims` makes sure an article page is fetched by one live process of a run: a
process that starts late resumes the store's queued pages past the shared dupefilter (they may
be held by a killed process), and without a claim it would fetch again the pages a live peer
has just queued or is fetching.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest, NotConfigured
from twisted.internet import task

if TYPE_CHECKING:
    import redis
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Request


log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 1.0
BUSY_TTL_SECONDS = 5


def _run_redis(crawler: Crawler) -> tuple[Any, str]:
    """(Redis client, key prefix) of this distributed run; NotConfigured when not distributed."""
    url = crawler.settings.get("REDIS_URL")
    prefix = crawler.settings.get("COVIDNEWS_RUN_PREFIX")
    if not url or not prefix:
        raise NotConfigured
    import redis

    return redis.Redis.from_url(url), prefix


class SharedIdle:
    def __init__(self, crawler: Crawler, client: redis.Redis, prefix: str, queue_key: str) -> None:
        self.crawler = crawler
        self.client = client
        self.prefix = prefix
        self.queue_key = queue_key
        self.me = f"{prefix}:busy:{socket.gethostname()}:{os.getpid()}"
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedIdle:
        client, prefix = _run_redis(crawler)
        ext = cls(crawler, client, prefix, crawler.settings.get("SCHEDULER_QUEUE_KEY"))
        crawler.signals.connect(ext.opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.idle, signal=signals.spider_idle)
        crawler.signals.connect(ext.closed, signal=signals.spider_closed)
        return ext

    def _busy_locally(self) -> bool:
        engine = self.crawler.engine
        downloader_active = bool(getattr(engine.downloader, "active", ()))
        scraper_slot = getattr(engine.scraper, "slot", None)
        scraping = bool(getattr(scraper_slot, "active", ())) if scraper_slot else False
        return downloader_active or scraping

    def beat(self) -> None:
        if self._busy_locally():
            self.client.set(self.me, 1, ex=BUSY_TTL_SECONDS)

    def opened(self, spider: Spider) -> None:
        self.client.set(self.me, 1, ex=BUSY_TTL_SECONDS)
        self.loop = task.LoopingCall(self.beat)
        self.loop.start(HEARTBEAT_SECONDS)

    def idle(self, spider: Spider) -> None:
        self.client.delete(self.me)
        others = [
            k for k in self.client.scan_iter(f"{self.prefix}:busy:*") if k.decode() != self.me
        ]
        queued = self.client.zcard(self.queue_key) if self.queue_key else 0
        if others or queued:
            log.debug(
                "idle, but %d other crawler(s) busy and %d requests queued", len(others), queued
            )
            raise DontCloseSpider

    def closed(self, spider: Spider) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        self.client.delete(self.me)


ALIVE_TTL_SECONDS = 5
CLAIM_TTL_SECONDS = 24 * 3600
# Claim a page unless a live process (its alive key exists) holds it — this one included: a page
# can sit twice in the shared queue (queued, and resumed by a late starter), and both copies may
# reach one process. A retry (its fetch failed) is always claimed, by whichever process pops it
# from the shared queue: the failed holder may well be alive, and dropping the retry would lose
# the page for the run. Atomic.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if (not owner) or ARGV[3] == '1' or redis.call('EXISTS', owner) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
  return 1
end
return 0
"""


# Article pages, and the listings that lead to them (home and section pages, feeds, sitemaps):
# listings skip the run's shared duplicate filter, so their claims are what keeps them to one
# fetch per run while their holder lives.
CLAIMED_KINDS = frozenset({"article", "listing", "feed", "sitemap"})


class ClaimedElsewhere(IgnoreRequest):
    """Another live process of this crawl is fetching (or has fetched) this page."""


class FetchClaims:
    """Downloader middleware (distributed crawls): before an article page or a listing is
    fetched, its claim is taken in Redis — unless a live process of the run holds it. A killed
    process's claims are taken over (its alive key expires within seconds), so what it held is
    still fetched."""

    def __init__(self, crawler: Crawler, client: redis.Redis, prefix: str) -> None:
        self.crawler = crawler
        self.client = client
        self.prefix = prefix
        self.me = f"{prefix}:alive:{socket.gethostname()}:{os.getpid()}"
        self.claim = client.register_script(_CLAIM)
        self.stopping = threading.Event()
        self.heart: threading.Thread | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchClaims:
        mw = cls(crawler, *_run_redis(crawler))
        crawler.signals.connect(mw.opened, signal=signals.spider_opened)
        crawler.signals.connect(mw.closed, signal=signals.spider_closed)
        return mw

    def alive(self) -> None:
        self.client.set(self.me, 1, ex=ALIVE_TTL_SECONDS)

    def _beat(self) -> None:
        # A thread, not a reactor timer: "alive" must mean "the process exists". A reactor busy
        # for seconds (a slow parse, a lazy model load on a loaded machine) would otherwise let
        # the key expire, and a peer would fetch again the pages this live process holds.
        while not self.stopping.wait(HEARTBEAT_SECONDS):
            try:
                self.alive()
            except Exception as exc:  # Redis away for a moment: the next beat retries
                log.debug("claims heartbeat failed: %s", exc)

    def opened(self, spider: Spider) -> None:
        self.alive()
        self.heart = threading.Thread(target=self._beat, name="covidnews-claims", daemon=True)
        self.heart.start()

    def closed(self, spider: Spider) -> None:
        self.stopping.set()
        if self.heart is not None:
            self.heart.join(timeout=5)
        # Claims stay (they expire with the run's keys): the pages they name were fetched.

    def process_request(self, request: Request, spider: Spider) -> None:
        if request.meta.get("kind") not in CLAIMED_KINDS:
            return None
        key = f"{self.prefix}:claim:{hashlib.sha1(request.url.encode('utf-8')).hexdigest()}"
        retry = "1" if request.meta.get("retry_times") else "0"
        if not self.claim(keys=[key], args=[self.me, CLAIM_TTL_SECONDS, retry]):
            self.crawler.stats.inc_value("covidnews/articles/claimed_elsewhere")
            raise ClaimedElsewhere(f"fetched by another crawler of this run: {request.url}")
        return None
