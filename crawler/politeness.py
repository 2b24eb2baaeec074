"""Politeness per host: robots.txt ``Crawl-delay``, ``Retry-After`` and backoff on 429/503.

Scrapy reads robots.txt only for Allow/Disallow: it ignores ``Crawl-delay``. Its RetryMiddleware
retries a 429 or a 503 after the slot's usual delay, ignoring ``Retry-After``, and AutoThrottle
lowers a slot's delay again as soon as responses come back fast. At a few hundred sites that is
rude, and a sure way to be blocked. The rules here, per download slot (the host, as Scrapy keys
its slots):

- **Crawl-delay** (robots.txt, for our ``ROBOTSTXT_USER_AGENT``): requests to that host are never
  spaced closer than it — not by AutoThrottle (:class:`PoliteThrottle` clamps the delay it sets),
  not by the download delay's random jitter (narrowed so its low end stays on the floor). A delay
  above ``COVIDNEWS_CRAWL_DELAY_MAX`` (60 s) is capped, with a warning: one site must not stall
  the crawl.
- **Retry-After** on a 429 or a 503 (delta-seconds or an HTTP-date, read against the response's
  ``Date`` so that clock skew does not matter): nothing more is sent to that host until that
  time — the slot's delay is raised and kept raised until it passes — and the request is retried
  (within ``RETRY_TIMES``). Beyond ``COVIDNEWS_RETRY_AFTER_MAX`` (300 s) the crawl does not wait:
  the request is given up like an exhausted retry (its page stays queued in the store for the
  next run), counted in ``covidnews/retry_after/too_long``, logged once per host.
- **Backoff**: a 429 or a 503 without a usable ``Retry-After`` (or with one too far away) doubles
  the host's delay (from ``COVIDNEWS_BACKOFF_START``, 1 s, up to ``AUTOTHROTTLE_MAX_DELAY``); each
  other response halves it again. Other retryable codes keep Scrapy's behaviour.

:class:`Politeness` keeps the per-host state (one per crawler, shared by the two components) and
applies it to the downloader's slots: when a request reaches the downloader, when robots.txt is
parsed (Scrapy's ``robots_parsed`` signal, sent by :mod:`crawler.robots`' middleware), on every
response, and when a hold ends. The hold is kept by the slot's own delay arithmetic (Scrapy sends
the next request at ``lastseen + delay``), so it needs no queue of its own. State is per process:
in distributed mode each crawler process keeps its own.
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Self

from scrapy import signals
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import NotConfigured
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.asyncio import call_later
from scrapy.utils.httpobj import urlparse_cached

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.core.downloader import Slot
    from scrapy.crawler import Crawler
    from scrapy.http import Request, Response
    from scrapy.robotstxt import RobotParser
    from scrapy.utils.asyncio import CallLaterResult

log = logging.getLogger(__name__)

#: Longest robots.txt Crawl-delay obeyed, seconds (setting ``COVIDNEWS_CRAWL_DELAY_MAX``).
CRAWL_DELAY_MAX = 60.0
#: Longest Retry-After waited for, seconds (setting ``COVIDNEWS_RETRY_AFTER_MAX``).
RETRY_AFTER_MAX = 300.0
#: First backoff delay after a 429/503 without Retry-After (setting ``COVIDNEWS_BACKOFF_START``).
BACKOFF_START = 1.0
#: The statuses by which a server says "slow down".
SLOW_DOWN = frozenset({429, 503})

_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_ATTRIBUTE = "_covidnews_politeness"


def parse_retry_after(value: str | bytes | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP-date (the three
    formats of RFC 9110), read against ``now`` (epoch seconds; default: this machine's clock).
    A date in the past is 0; anything else (empty, negative, garbage) is ``None``."""
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    if not text:
        return None
    if _SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # asctime format or "-0000": HTTP dates are always GMT
        when = when.replace(tzinfo=UTC)
    reference = time.time() if now is None else now
    return max(0.0, when.timestamp() - reference)


def retry_after(response: Response) -> float | None:
    """The response's ``Retry-After`` in seconds; an HTTP-date is read against the response's
    own ``Date`` when it has one (the server's clock, whatever ours says)."""
    value = response.headers.get(b"Retry-After")
    if value is None:
        return None
    server_now = None
    date = response.headers.get(b"Date")
    if date:
        try:
            sent = parsedate_to_datetime(date.decode("latin-1").strip())
        except (TypeError, ValueError, IndexError, OverflowError):
            sent = None
        if sent is not None:
            server_now = (sent if sent.tzinfo else sent.replace(tzinfo=UTC)).timestamp()
    return parse_retry_after(value, now=server_now)


@dataclass
class HostState:
    """What politeness asks of one download slot."""

    #: the delay the slot would have without us (DOWNLOAD_DELAY, or AutoThrottle's)
    base: float | None = None
    #: the slot's own jitter (DOWNLOAD_DELAY_JITTER), narrowed while a floor applies
    jitter: float = 0.0
    #: robots.txt Crawl-delay, capped
    crawl_delay: float = 0.0
    #: current backoff after 429/503 without Retry-After
    backoff: float = 0.0
    #: nothing is sent before this time (time.monotonic(), as Scrapy's slots)
    hold_until: float = 0.0
    timer: CallLaterResult | None = None


class Politeness:
    """Per-host floors under the slots' delays; one per crawler (:meth:`of`)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        settings = crawler.settings
        self.crawl_delay_max = settings.getfloat("COVIDNEWS_CRAWL_DELAY_MAX", CRAWL_DELAY_MAX)
        self.retry_after_max = settings.getfloat("COVIDNEWS_RETRY_AFTER_MAX", RETRY_AFTER_MAX)
        self.backoff_start = settings.getfloat("COVIDNEWS_BACKOFF_START", BACKOFF_START)
        self.backoff_max = max(settings.getfloat("AUTOTHROTTLE_MAX_DELAY"), self.backoff_start)
        self.user_agent: str = settings.get("ROBOTSTXT_USER_AGENT") or settings.get("USER_AGENT")
        self.hosts: dict[str, HostState] = {}
        crawler.signals.connect(self._robots_parsed, signal=signals.robots_parsed)
        crawler.signals.connect(self._request_reached, signal=signals.request_reached_downloader)
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @classmethod
    def of(cls, crawler: Crawler) -> Politeness:
        """The crawler's instance, made by whichever component asks first."""
        found = getattr(crawler, _ATTRIBUTE, None)
        if not isinstance(found, cls):
            found = cls(crawler)
            setattr(crawler, _ATTRIBUTE, found)
        return found

    # -- the slots ---------------------------------------------------------------------------

    def _slot(self, key: str) -> Slot | None:
        engine = self.crawler.engine
        return engine.downloader.slots.get(key) if engine is not None else None

    def state(self, key: str) -> HostState:
        state = self.hosts.get(key)
        if state is None:
            state = self.hosts[key] = HostState()
            slot = self._slot(key)
            if slot is not None:
                state.base, state.jitter = slot.delay, slot.jitter
        return state

    def floor(self, key: str, slot: Slot, now: float | None = None) -> float:
        """The least delay the slot may have now (0: no floor)."""
        state = self.hosts.get(key)
        if state is None:
            return 0.0
        now = time.monotonic() if now is None else now
        hard = max(state.crawl_delay, state.backoff)
        if state.hold_until > now:
            # Scrapy sends the next request at lastseen + delay: make that the hold's end.
            hard = max(hard, state.hold_until - slot.lastseen)
        return hard

    def apply(self, key: str, slot: Slot | None = None) -> None:
        """Set the slot's delay to its base, raised to the floor, and narrow its jitter so that
        the random variation never goes below the floor."""
        state = self.hosts.get(key)
        slot = slot or self._slot(key)
        if state is None or slot is None:
            return
        if state.base is None:
            state.base, state.jitter = slot.delay, slot.jitter
        hard = self.floor(key, slot)
        delay = max(state.base, hard)
        slot.delay = delay
        if hard > 0 and delay > 0:
            slot.jitter = min(state.jitter, max(0.0, 1.0 - hard / delay))
        else:
            slot.jitter = state.jitter

    def _wake(self, key: str) -> None:
        """After a delay went down: a wake-up already scheduled with the longer delay would keep
        the slot idle (Scrapy does not reschedule it), so process the queue again now."""
        engine = self.crawler.engine
        slot = self._slot(key)
        # Private in Scrapy 2.19 (pinned in constraints.txt); tests/crawler/test_politeness.py
        # fails if a release renames it. Without it the slot still wakes, only later.
        process = getattr(engine.downloader, "_process_queue", None) if engine else None
        if slot is None or process is None:
            return
        if slot.latercall is not None:
            slot.latercall.cancel()
            slot.latercall = None
        process(slot)

    # -- the rules ---------------------------------------------------------------------------

    def set_crawl_delay(self, key: str, delay: float) -> None:
        if math.isnan(delay) or delay <= 0:
            return
        if delay > self.crawl_delay_max:
            log.warning(
                "robots.txt of %s asks for Crawl-delay %s s: using %s s",
                key,
                delay,
                self.crawl_delay_max,
            )
            self.stats.inc_value("covidnews/crawl_delay/capped")
            delay = self.crawl_delay_max
        state = self.state(key)
        if delay > state.crawl_delay:
            if not state.crawl_delay:
                self.stats.inc_value("covidnews/crawl_delay/hosts")
            log.info("%s: Crawl-delay %s s (robots.txt)", key, delay)
            state.crawl_delay = delay
        self.apply(key)

    def hold(self, key: str, seconds: float) -> None:
        """Send nothing to the host for ``seconds`` (a Retry-After)."""
        if seconds <= 0:
            return
        now = time.monotonic()
        state = self.state(key)
        if now + seconds <= state.hold_until:
            return
        state.hold_until = now + seconds
        self.stats.inc_value("covidnews/retry_after/honoured")
        log.info("%s: holding for %.1f s (Retry-After)", key, seconds)
        if state.timer is not None:
            state.timer.cancel()
        state.timer = call_later(seconds, self._release, key)
        self.apply(key)

    def _release(self, key: str) -> None:
        state = self.hosts.get(key)
        if state is None:
            return
        state.timer = None
        self.apply(key)
        self._wake(key)

    def back_off(self, key: str) -> None:
        """Double the host's delay (a 429/503 without a usable Retry-After)."""
        state = self.state(key)
        current = max(state.backoff, state.base or 0.0, state.crawl_delay)
        state.backoff = min(self.backoff_max, max(self.backoff_start, 2 * current))
        self.stats.inc_value("covidnews/backoff/count")
        log.info("%s: backing off, delay %.1f s", key, state.backoff)
        self.apply(key)

    def relax(self, key: str) -> None:
        """A response that is not "slow down": halve the backoff (gone below its start)."""
        state = self.hosts.get(key)
        if state is None or not state.backoff:
            return
        state.backoff = state.backoff / 2 if state.backoff / 2 >= self.backoff_start else 0.0
        self.apply(key)

    # -- signals -----------------------------------------------------------------------------

    def _robots_parsed(self, robotparser: RobotParser, request: Request) -> None:
        engine = self.crawler.engine
        if engine is None:
            return
        try:
            delay = robotparser.crawl_delay(self.user_agent)
        except Exception as exc:  # a parser's failure must not stop the crawl
            log.warning("could not read Crawl-delay for %s: %s", request.url, exc)
            return
        if delay is not None:
            self.set_crawl_delay(engine.downloader.get_slot_key(request), float(delay))

    def _request_reached(self, request: Request, spider: Spider | None = None) -> None:
        key = request.meta.get("download_slot")
        if key in self.hosts:  # a new slot (or one made again after idling) gets its floor
            self.apply(key)

    def _response_downloaded(
        self, response: Response, request: Request, spider: Spider | None = None
    ) -> None:
        # Before the downloader hands the slot its next request: the hold is in place in time.
        key = request.meta.get("download_slot")
        if key is None:
            return
        if response.status not in SLOW_DOWN:
            self.relax(key)
            return
        wait = retry_after(response)
        if wait is not None and wait <= self.retry_after_max:
            self.hold(key, wait)
        else:
            self.back_off(key)

    def _spider_closed(self, spider: Spider | None = None) -> None:
        for state in self.hosts.values():
            if state.timer is not None:
                state.timer.cancel()
                state.timer = None


class PoliteThrottle(AutoThrottle):
    """Scrapy's AutoThrottle, adjusting each slot's delay *above* its politeness floor.

    AutoThrottle computes the host's base delay as usual; the slot gets that base raised to the
    floor (Crawl-delay, a Retry-After hold, a backoff). Enabled always: with
    ``AUTOTHROTTLE_ENABLED`` false it only keeps the floors (through :class:`Politeness`).
    """

    def __init__(self, crawler: Crawler) -> None:  # not super(): it refuses when disabled
        self.crawler = crawler
        self.politeness = Politeness.of(crawler)  # before any refusal: the floors stay
        settings = crawler.settings
        self.enabled = settings.getbool("AUTOTHROTTLE_ENABLED")
        self.debug = settings.getbool("AUTOTHROTTLE_DEBUG")
        self.target_concurrency = settings.getfloat("AUTOTHROTTLE_TARGET_CONCURRENCY")
        if self.enabled and self.target_concurrency <= 0.0:
            raise NotConfigured(
                f"AUTOTHROTTLE_TARGET_CONCURRENCY ({self.target_concurrency!r}) "
                "must be higher than 0."
            )
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._response_downloaded, signal=signals.response_downloaded)

    def _spider_opened(self, spider: Spider) -> None:
        if self.enabled:
            super()._spider_opened(spider)

    def _response_downloaded(self, response: Response, request: Request, spider: Spider) -> None:
        if not self.enabled:
            return
        key, slot = self._get_slot(request, spider)
        state = self.politeness.hosts.get(key) if key is not None else None
        if key is None or slot is None or state is None or state.base is None:
            super()._response_downloaded(response, request, spider)
            return
        slot.delay = state.base  # adjust the host's own delay, not the floor over it
        try:
            super()._response_downloaded(response, request, spider)
        finally:
            state.base = slot.delay
            self.politeness.apply(key, slot)


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's RetryMiddleware, except a 429/503 whose Retry-After is beyond
    ``COVIDNEWS_RETRY_AFTER_MAX``: not retried in this run (the hold or backoff itself is
    :class:`Politeness`' work, done as the response arrives)."""

    politeness: Politeness
    _told: set[str]

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        middleware = super().from_crawler(crawler)
        middleware.politeness = Politeness.of(crawler)
        middleware._told = set()
        return middleware

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if (
            response.status in SLOW_DOWN
            and response.status in self.retry_http_codes
            and not request.meta.get("dont_retry", False)
        ):
            wait = retry_after(response)
            if wait is not None and wait > self.politeness.retry_after_max:
                self._give_up(request, response, wait)
                return response
        return super().process_response(request, response)

    def _give_up(self, request: Request, response: Response, wait: float) -> None:
        self.crawler.stats.inc_value("covidnews/retry_after/too_long")
        host = request.meta.get("download_slot") or urlparse_cached(request).hostname or ""
        args = (host, response.status, wait, self.politeness.retry_after_max, request.url)
        message = "%s answered %d with Retry-After %.0f s (> %.0f s): not waiting, gave up %s"
        if host in self._told:
            log.debug(message, *args)
        else:
            self._told.add(host)
            log.warning(message + " (and any other page of it: queued for the next run)", *args)
