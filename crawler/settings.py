"""Scrapy settings for covidnews: polite and safe by default.

robots.txt obeyed, its ``Crawl-delay`` too (capped at ``COVIDNEWS_CRAWL_DELAY_MAX``), AutoThrottle
on but never below a host's floor, at most 2 concurrent requests per domain with a delay; a 429 or
503 holds its host for its ``Retry-After`` (up to ``COVIDNEWS_RETRY_AFTER_MAX``; beyond it the page
waits for the next run) or, without one, doubles the host's delay (see :mod:`crawler.politeness`:
Scrapy does neither). A User-Agent with a contact URL, timeouts, a maximum response size (Scrapy
also enforces it after decompression), only registry domains, never non-public addresses (see
:mod:`crawler.guard`).
"""

from __future__ import annotations

from typing import Any

from covidnews.settings import Settings
from crawler.politeness import BACKOFF_START, CRAWL_DELAY_MAX, RETRY_AFTER_MAX

MAX_RESPONSE_BYTES = 10 * 1024 * 1024


def scrapy_settings(settings: Settings, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    # Any: Scrapy setting values are of every kind (ints, dicts of classes, callables).
    values: dict[str, Any] = {
        "BOT_NAME": "covidnews",
        "SPIDER_MODULES": ["crawler.spiders"],
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": True,
        "ROBOTSTXT_USER_AGENT": "covidnews",
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": 1.0,
        "AUTOTHROTTLE_MAX_DELAY": 30.0,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "CONCURRENT_REQUESTS": 16,
        "CONCURRENT_REQUESTS_PER_DOMAIN": 2,
        "DOWNLOAD_DELAY": 0.5,
        "DOWNLOAD_TIMEOUT": 30,
        "DNS_TIMEOUT": 15,
        "DOWNLOAD_MAXSIZE": MAX_RESPONSE_BYTES,
        "DOWNLOAD_WARNSIZE": MAX_RESPONSE_BYTES // 2,
        "RETRY_ENABLED": True,
        "RETRY_TIMES": 2,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408, 429],
        "COVIDNEWS_CRAWL_DELAY_MAX": CRAWL_DELAY_MAX,
        "COVIDNEWS_RETRY_AFTER_MAX": RETRY_AFTER_MAX,
        "COVIDNEWS_BACKOFF_START": BACKOFF_START,
        "REDIRECT_MAX_TIMES": 5,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO" if settings.log_level == "DEBUG" else "WARNING",
        "LOGSTATS_INTERVAL": 60.0,
        "TWISTED_DNS_RESOLVER": "crawler.guard.GuardedResolver",
        "LOG_INSTALL_ROOT_HANDLER": False,
        "DOWNLOADER_MIDDLEWARES": {
            "crawler.guard.GuardMiddleware": 50,
            "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware": None,
            "crawler.robots.RobotsTxtMiddleware": 100,
            # Retry-After on 429/503, backoff without it (crawler/politeness.py)
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.politeness.PoliteRetryMiddleware": 550,
        },
        "ITEM_PIPELINES": {
            "crawler.pipelines.validate.ValidatePipeline": 100,
            "crawler.pipelines.normalise.NormalisePipeline": 200,
            "crawler.pipelines.dedup.DedupPipeline": 300,
            "crawler.pipelines.store.StorePipeline": 400,
            "crawler.pipelines.handoff.HandoffPipeline": 500,
        },
        "EXTENSIONS": {
            # AutoThrottle that respects Crawl-delay and Retry-After holds (crawler/politeness.py);
            # always on: with AUTOTHROTTLE_ENABLED false it keeps only those floors.
            "scrapy.extensions.throttle.AutoThrottle": None,
            "crawler.politeness.PoliteThrottle": 0,
            "crawler.live.LiveStats": 500,
            "crawler.metrics.CrawlMetrics": 510,
        },
        "COVIDNEWS_METRICS": settings.metrics_port is not None,
        "COVIDNEWS_ALLOW_PRIVATE": list(settings.crawl_allow_private),
        "FEED_EXPORT_ENCODING": "utf-8",
    }
    if settings.redis_url:
        # Distributed mode: processes on any machine share one scheduler queue and one
        # dupefilter in Redis, so each request is fetched once by one of them.
        values.update(
            {
                "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
                "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
                "SCHEDULER_PERSIST": True,
                "SCHEDULER_QUEUE_CLASS": "scrapy_redis.queue.PriorityQueue",
                "REDIS_URL": settings.redis_url,
            }
        )
    values.update(overrides or {})
    return values
