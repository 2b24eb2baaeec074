"""robots.txt, obeyed even by requests that arrive together.

Scrapy's RobotsTxtMiddleware makes concurrent requests for one site wait on one Deferred; under
the asyncio reactor only the first waiter receives the parser, the others get ``None`` and are let
through unchecked. A resumed crawl starts with many queued pages per site at once, so without
this fix robots-disallowed pages were fetched (found by ``tests/crawler/test_crawl.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as _Base
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy.http import Request
    from scrapy.robotstxt import RobotParser


class RobotsTxtMiddleware(_Base):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        parser = await super().robot_parser(request)
        if parser is None:
            stored = self._parsers.get(urlparse_cached(request).netloc)
            if stored is not None and not isinstance(stored, Deferred):
                return stored  # parsed while we waited: use it
        return parser
