"""Fixed-window rate limiters: in-process memory, or Redis shared by every process.

A window starts with a client's first request and lasts ``window`` seconds; within it at most
``limit`` requests pass. Redis keeps one counter per client (``INCR`` + ``PEXPIRE`` in one Lua
script, so concurrent processes never lose an increment or leave a counter without expiry); the
window is timed by Redis itself, so the processes' clocks do not matter. If Redis fails, the
request passes (fail open) and a warning is logged at most once a minute: rate limiting must
never take the API down.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import redis


log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window ends (≥ 1)

    def headers(self, window: int = WINDOW_SECONDS) -> dict[str, str]:
        headers = {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
            "RateLimit-Policy": f"{self.limit};w={window}",
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset)
        return headers


class RateLimiter(Protocol):
    backend: str

    def hit(self, identity: str, limit: int) -> Decision: ...


def _decide(count: int, limit: int, ttl_ms: int, window: int) -> Decision:
    reset = max(1, math.ceil(ttl_ms / 1000)) if ttl_ms > 0 else window
    return Decision(
        allowed=count <= limit, limit=limit, remaining=max(0, limit - count), reset=reset
    )


class MemoryLimiter:
    """One process's counters (the embedded default: one server process)."""

    backend = "memory"

    def __init__(self, window: int = WINDOW_SECONDS) -> None:
        self.window = window
        self._lock = threading.Lock()
        self._counters: dict[str, tuple[int, float]] = {}  # identity -> (count, window end)
        self._next_purge = time.monotonic() + window

    def hit(self, identity: str, limit: int) -> Decision:
        now = time.monotonic()
        with self._lock:
            if now >= self._next_purge:
                self._counters = {k: v for k, v in self._counters.items() if v[1] > now}
                self._next_purge = now + self.window
            count, end = self._counters.get(identity, (0, 0.0))
            if end <= now:
                count, end = 0, now + self.window
            count += 1
            self._counters[identity] = (count, end)
        return _decide(count, limit, int((end - now) * 1000), self.window)


# KEYS[1] counter; ARGV[1] window in ms. Returns {count, ms left}.
_LUA_HIT = """
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
"""


class RedisLimiter:
    """Counters in Redis, shared by every process and machine using the same Redis."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "covidnews:ratelimit:",
        window: int = WINDOW_SECONDS,
        client: redis.Redis | None = None,
    ) -> None:
        import redis

        self.window = window
        self.prefix = prefix
        self._client = client or redis.Redis.from_url(
            url, socket_connect_timeout=0.5, socket_timeout=0.5, health_check_interval=30
        )
        self._script = self._client.register_script(_LUA_HIT)
        self._warned_at = 0.0

    def hit(self, identity: str, limit: int) -> Decision:
        try:
            count, ttl = self._script(keys=[self.prefix + identity], args=[self.window * 1000])
        except Exception as exc:  # Redis down or slow: let the request through
            now = time.monotonic()
            if now - self._warned_at >= 60:
                self._warned_at = now
                log.warning("rate limiting is off: Redis unavailable (%s)", exc)
            return Decision(allowed=True, limit=limit, remaining=limit, reset=self.window)
        return _decide(int(count), limit, int(ttl), self.window)


def make_limiter(redis_url: str | None, *, prefix: str | None = None) -> RateLimiter:
    if redis_url:
        return RedisLimiter(redis_url, prefix=prefix or "covidnews:ratelimit:")
    return MemoryLimiter()
