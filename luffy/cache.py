"""The cache and limits store: Redis in production, a file store in the data dir when embedded.

The file store is shared by every ``luffy`` process on the machine, so ``luffy cache
refresh-banner`` run from a shell changes what a running ``luffy serve`` answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.driver_info import DriverInfo
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from luffy.settings import Settings

CACHE_STORE = "cache"
REDIS_MAX_CONNECTIONS = 64
REDIS_POOL_WAIT_SECONDS = 2.0
# A cached reply read from Redis takes well under a millisecond; one that has not come within this
# is a slow or hung Redis, and the database answers instead (for CACHE_RETRY_SECONDS, see CacheOutage).
CACHE_READ_TIMEOUT_SECONDS = 0.25
# What a cache raises when its backend is down: Redis errors, or the file system's.
CACHE_ERRORS = (RedisError, OSError, TimeoutError)
CACHE_RETRY_SECONDS = 5.0

logger = logging.getLogger("luffy.cache")


class CacheOutage:
    """Remembers that a cache just failed: it is skipped for ``CACHE_RETRY_SECONDS``.

    During an outage a request then costs no connection attempt, and the warning is logged once
    per pause instead of once per request. One per cache per application (``app.state``).
    """

    def __init__(self, cache_name: str) -> None:
        self.cache_name = cache_name
        self._skip_until = 0.0

    @property
    def ongoing(self) -> bool:
        return time.monotonic() < self._skip_until

    def record(self, exc: BaseException) -> None:
        logger.warning(
            "%s unreachable (%s: %s); answering from the database for the next %.0f s",
            self.cache_name,
            type(exc).__name__,
            exc,
            CACHE_RETRY_SECONDS,
        )
        self._skip_until = time.monotonic() + CACHE_RETRY_SECONDS


# What each new connection tells Redis (CLIENT SETINFO) about redis-py, resolved once: by default
# every connection looks its version up in the installed package's metadata again, which made
# opening a pool's connections in a sale's first burst a sixth of the API's time.
DRIVER_INFO = DriverInfo()


def reconnect_once() -> dict[str, Any]:
    """Client options that retry a command once, on a new connection, when its connection turns out dead.

    After Redis restarts, every pooled connection is dead; without this each would fail one
    request (503) before the pool replaced it. The retry can re-run a command whose reply was
    lost, so Luffy's scripts are written to be safe to run twice. (Every pool gets these, so the
    connections' ``DRIVER_INFO`` rides along.)
    """
    return {"retry": Retry(NoBackoff(), 1), "retry_on_error": [RedisConnectionError], "driver_info": DRIVER_INFO}


def make_redis(settings: Settings, *, decode_responses: bool = False) -> Redis:
    """A Redis client that fails fast, so an unreachable server degrades a request instead of hanging it.

    Its pool makes a burst of concurrent requests wait briefly for a connection instead of failing.
    """
    return _redis_client(settings, decode_responses=decode_responses, timeout=2.0, **reconnect_once())


def make_cache_reader(settings: Settings) -> Redis:
    """The client the cached replies are read with: a read slower than ``CACHE_READ_TIMEOUT_SECONDS`` fails.

    A cache only saves work, so waiting seconds for a hung Redis would cost far more than the
    database it spares; and a timeout is not retried (a dead connection still is, once).
    """
    return _redis_client(
        settings,
        decode_responses=False,
        timeout=CACHE_READ_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
    )


def _redis_client(settings: Settings, *, decode_responses: bool, timeout: float, **retries: Any) -> Redis:
    assert settings.redis_url is not None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_SECONDS,
        socket_connect_timeout=min(timeout, 1.0),
        socket_timeout=timeout,
        health_check_interval=30,
        decode_responses=decode_responses,
        **retries,
    )
    return Redis.from_pool(pool)


def make_cache_store(settings: Settings) -> Store:
    if settings.redis_url is None:
        return FileStore(settings.data_dir / "cache", create_directories=True)
    # No namespace: keys are the contract's own (``home_banner_list``, ``send_sms_code_<mobile>``).
    return RedisStore(make_redis(settings), namespace=None, handle_client_shutdown=True)
