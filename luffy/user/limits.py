"""The SMS abuse limits (per mobile: an interval and a daily quota; per client IP: hourly) and the
password-login limits (failures per account, per client IP).

Litestar's ``RateLimitMiddleware`` does not fit these rules: it keys on the client only (not on
the mobile in the request), applies one window per app, and reads then writes its counter
under a lock of one process, so several API workers sharing Redis could each let a request
through. Here every check-and-count is one Lua script on Redis (atomic across workers); the
embedded mode keeps the same counters in the cache store under a lock of its single process.

A request is counted only when every limit lets it through, so a rejected request never
uses up quota. Windows are fixed: the daily one is 24 hours from a mobile's first code.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import time
from typing import Protocol

import msgspec
from litestar.stores.base import Store
from redis.asyncio import Redis

from luffy.settings import Settings

DAY_SECONDS = 86_400
HOUR_SECONDS = 3_600


class LimitExceeded(Exception):
    """A limit rejected the request; ``retry_after`` is whole seconds until it lets one through."""

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(limit)
        self.limit = limit
        self.retry_after = retry_after


class Window(msgspec.Struct, frozen=True):
    """At most ``limit`` requests per ``seconds`` for one key."""

    key: str
    name: str
    limit: int
    seconds: int


def sms_windows(settings: Settings, mobile: str, client_ip: str) -> list[Window]:
    return [
        Window(f"sms_limit:interval:{mobile}", "mobile_interval", 1, settings.sms_mobile_interval_seconds),
        Window(f"sms_limit:daily:{mobile}", "mobile_daily", settings.sms_mobile_daily_limit, DAY_SECONDS),
        ip_window(settings, client_ip),
    ]


def client_key(host: str) -> str:
    """The per-IP limits' key for a client address: the address, or its /64 for IPv6.

    One IPv6 subscriber usually holds a whole /64, so keying on the address would give each of
    them 2^64 quotas. Anything that is not an IP address (a proxy's garbage) shares one key, so
    it can never mint fresh quota.
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "invalid"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def ip_window(settings: Settings, client_ip: str) -> Window:
    return Window(f"sms_limit:ip:{client_ip}", "ip_hourly", settings.sms_ip_hourly_limit, HOUR_SECONDS)


def login_windows(settings: Settings, account: str, client_ip: str) -> list[Window]:
    """Failed password logins: per account (``account`` is a user id or a hash of an unknown name) and per IP.

    A login attempt is counted before its password is checked (so concurrent guesses cannot slip past
    the limit) and given back when it succeeds: only failures stay counted.
    """
    return [
        Window(
            f"login_limit:account:{account}", "login_account", settings.login_max_failures, settings.login_lock_seconds
        ),
        Window(f"login_limit:ip:{client_ip}", "login_ip", settings.login_ip_hourly_limit, HOUR_SECONDS),
    ]


class Limiter(Protocol):
    async def acquire(self, windows: list[Window]) -> None:
        """Count one request in every window, or raise ``LimitExceeded`` and count nothing."""
        ...

    async def release(self, windows: list[Window]) -> None:
        """Give back a request counted by ``acquire`` whose work could not be done."""
        ...


def _seconds(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / 1000))


# KEYS: one per window; ARGV: limit and window (ms) per window, in the same order.
# Returns {} when counted, else {index of the longest-blocking window, its remaining ms}.
_ACQUIRE = """
local worst, worst_ms = 0, 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      ttl = tonumber(ARGV[2 * i])
      redis.call('PEXPIRE', key, ttl)
    end
    if ttl > worst_ms then worst, worst_ms = i, ttl end
  end
end
if worst > 0 then return {worst, worst_ms} end
for i, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, tonumber(ARGV[2 * i])) end
end
return {}
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


class RedisLimiter:
    def __init__(self, redis: Redis) -> None:
        self._acquire = redis.register_script(_ACQUIRE)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, windows: list[Window]) -> None:
        args: list[int] = []
        for window in windows:
            args += [window.limit, window.seconds * 1000]
        blocked = await self._acquire(keys=[window.key for window in windows], args=args)
        if blocked:
            index, remaining_ms = int(blocked[0]), int(blocked[1])
            raise LimitExceeded(windows[index - 1].name, _seconds(remaining_ms))

    async def release(self, windows: list[Window]) -> None:
        await self._release(keys=[window.key for window in windows], args=[])


class _Counter(msgspec.Struct):
    count: int
    resets_at: float


class StoreLimiter:
    """Embedded mode: counters in the cache store, changed under this process's lock."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = asyncio.Lock()

    async def _read(self, window: Window, now: float) -> _Counter:
        raw = await self.store.get(window.key)
        if raw is not None:
            try:
                counter = msgspec.json.decode(raw, type=_Counter)
            except msgspec.DecodeError:
                counter = None
            if counter is not None and counter.resets_at > now:
                return counter
        return _Counter(count=0, resets_at=now + window.seconds)

    async def _write(self, window: Window, counter: _Counter, now: float) -> None:
        await self.store.set(window.key, msgspec.json.encode(counter), expires_in=math.ceil(counter.resets_at - now))

    async def acquire(self, windows: list[Window]) -> None:
        async with self._lock:
            now = time.time()
            counters = [await self._read(window, now) for window in windows]
            blocked = [
                (counter.resets_at - now, window)
                for window, counter in zip(windows, counters, strict=True)
                if counter.count >= window.limit
            ]
            if blocked:
                remaining, window = max(blocked, key=lambda item: item[0])
                raise LimitExceeded(window.name, _seconds(int(remaining * 1000)))
            for window, counter in zip(windows, counters, strict=True):
                counter.count += 1
                await self._write(window, counter, now)

    async def release(self, windows: list[Window]) -> None:
        async with self._lock:
            now = time.time()
            for window in windows:
                counter = await self._read(window, now)
                if counter.count > 0:
                    counter.count -= 1
                    await self._write(window, counter, now)
