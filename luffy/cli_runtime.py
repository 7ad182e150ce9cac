"""What every ``luffy`` operator command stands on: settings, database sessions, Redis, the cache.

A command's work is an ``async def work(ctx: CommandContext)`` handed to ``run(work)``: the context
opens the database engine, the Redis client and the cache store on first use and disposes of them
when the work ends, and a database or Redis failure ends the command with one line on stderr and
exit status 1. A refusal the command expects (no such banner, a bad value) is ``fail(message)``:
one line, exit status 2.

Adding a command: write ``work`` with ``ctx.session()`` / ``ctx.reservations`` / ``await
ctx.cache()``, call ``run(work)``, print with ``console``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, NoReturn, Self, TypeVar

import typer
from rich.console import Console

from luffy.settings import Settings, get_settings

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.stores.base import Store
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncSession

    from luffy.seckill.reservations import RedisReservations

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def fail(message: str, status: int = 2) -> NoReturn:
    """End the command with ``error: message`` on stderr and exit ``status``."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(status)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


# The imports below are inside the methods that need them: SQLAlchemy, advanced-alchemy, Litestar
# and redis take about a second to import, which `luffy --help` (and every command that stops on a
# bad argument) would otherwise pay.


class CommandContext:
    """One command's resources, each made on first use and disposed of when the command ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cleanup = AsyncExitStack()
        self._database: SQLAlchemyAsyncConfig | None = None
        self._redis: Redis | None = None
        self._reservations: RedisReservations | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self._cleanup.aclose()

    @property
    def database(self) -> SQLAlchemyAsyncConfig:
        """The command's engine and session configuration (the same one the app and the tasks use)."""
        if self._database is None:
            from luffy.db import make_sqlalchemy_config

            self._database = make_sqlalchemy_config(self.settings)
            self._cleanup.push_async_callback(self._database.get_engine().dispose)
        return self._database

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back when it raises."""
        from luffy.db import session_scope

        return session_scope(self.database)

    @property
    def redis(self) -> Redis | None:
        """Production's Redis client; ``None`` in embedded mode."""
        if self._redis is None and not self.settings.is_embedded:
            from luffy.cache import make_redis

            self._redis = make_redis(self.settings)
            self._cleanup.push_async_callback(self._redis.aclose)
        return self._redis

    @property
    def reservations(self) -> RedisReservations | None:
        """The flash-sale state in Redis (production); ``None`` in embedded mode."""
        if self._reservations is None and self.redis is not None:
            from luffy.seckill.reservations import RedisReservations

            self._reservations = RedisReservations(self.redis, owner_ttl_seconds=self.settings.result_ttl_seconds)
        return self._reservations

    async def cache(self) -> Store:
        """The cache store (Redis in production, the data dir when embedded), opened."""
        from luffy.cache import make_cache_store

        store = make_cache_store(self.settings)
        await self._cleanup.enter_async_context(store)
        return store


def run(work: Callable[[CommandContext], Awaitable[T]]) -> T:
    """``await work(ctx)`` on a fresh event loop; a database or Redis failure ends the command (status 1)."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    async def main() -> T:
        async with CommandContext(get_settings()) as ctx:
            return await work(ctx)

    try:
        return asyncio.run(main())
    except (RedisError, SQLAlchemyError, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}", 1)
