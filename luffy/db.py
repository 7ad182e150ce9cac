"""Database plumbing shared by the API, the task workers and the CLI.

``LuffyBase`` carries the original Django ``BaseModel`` columns, so the tables of an existing
Luffy database can be served as they are.

How code reaches the database, one way per kind of caller:

- A request handler names a Litestar dependency. ``db_session`` is advanced-alchemy's
  request-scoped ``AsyncSession`` (its plugin provides it; committed when the reply is 2xx, rolled
  back otherwise), used directly or through ``create_service_provider(SomeService)``. The
  catalogue's replies are cached (``luffy.course.cache``): on a miss they open a
  :func:`read_connection`, one autocommit connection, no transaction, so a hit opens none.
  ``/health`` pings ``probe_engine``, a small engine of its own (:func:`make_probe_engine`).
- A task function takes ``SessionDep`` from ``luffy.tasks.deps`` (one transaction per task).
- The CLI and long-lived objects (the embedded seckill gate) use :func:`session_scope`.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from advanced_alchemy.base import BasicAttributes, orm_registry
from advanced_alchemy.extensions.litestar import (
    AlembicAsyncConfig,
    AsyncSessionConfig,
    EngineConfig,
    SQLAlchemyAsyncConfig,
)
from advanced_alchemy.types import BigIntIdentity, DateTimeUTC
from sqlalchemy import Boolean, Integer, event, make_url, text
from sqlalchemy.ext.asyncio import AsyncAttrs, AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from luffy.paths import resource_dir
from luffy.settings import Settings, create_private

MIGRATIONS_DIR = resource_dir("db")
VERSION_TABLE = "luffy_alembic_version"
# A database that does not answer a connection attempt within this is treated as down (asyncpg's own default is 60 s).
CONNECT_TIMEOUT_SECONDS = 5
# ``info`` key of a schema object that exists on one dialect only (with the matching ``ddl_if``).
ONLY_ON = "only_on"


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Base(BasicAttributes, AsyncAttrs, DeclarativeBase):
    """Declarative base on advanced-alchemy's registry (its Alembic env reads that metadata)."""

    registry = orm_registry
    __abstract__ = True


class IdMixin:
    id: Mapped[int] = mapped_column(BigIntIdentity, primary_key=True, autoincrement=True, sort_order=-10)


class LuffyBase(IdMixin, Base):
    """The original project's abstract ``BaseModel``: display order, visibility, soft delete, times."""

    __abstract__ = True

    orders: Mapped[int] = mapped_column(Integer, default=0)
    is_show: Mapped[bool] = mapped_column(Boolean, default=True)
    is_delete: Mapped[bool] = mapped_column(Boolean, default=False)
    created_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    updated_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow, onupdate=utcnow)


def include_on(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for ``dialect``: leave out the objects marked for another one."""

    def include(obj: object, _name: str | None, _type: str, _reflected: bool, _compare_to: object) -> bool:
        info = getattr(obj, "info", None) or {}
        return info.get(ONLY_ON, dialect) == dialect

    return include


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the API, the CLI and in-process tasks read while one of them writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _forget_earlier_configs() -> None:
    """Let a new config use the plain state keys again.

    advanced-alchemy renames the state keys of every config made in a process (``key_1``,
    ``key_2``, ...), recursing once per earlier config, so a process that builds many apps (the
    test suite) ends in ``RecursionError``. Each Luffy app has exactly one config, so its keys
    never need to differ from another app's.
    """
    for registry in (
        SQLAlchemyAsyncConfig._SESSION_SCOPE_KEY_REGISTRY,
        SQLAlchemyAsyncConfig._ENGINE_APP_STATE_KEY_REGISTRY,
        SQLAlchemyAsyncConfig._SESSIONMAKER_APP_STATE_KEY_REGISTRY,
    ):
        registry.clear()


def _create_sqlite_file(url: str) -> None:
    """The SQLite file holds mobiles: create it owner-only before SQLite would create it 0644.

    SQLite gives its ``-wal`` and ``-shm`` files the permissions of the database file.
    """
    database = make_url(url).database
    if not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private(path)


def make_sqlalchemy_config(settings: Settings) -> SQLAlchemyAsyncConfig:
    """One config for app, tasks and CLI; it also drives Alembic (``db/``)."""
    _forget_earlier_configs()
    if settings.is_postgres:
        engine_config = EngineConfig(
            pool_size=settings.db_pool_size,
            # No overflow: an overflow connection is closed when it is returned, so a burst above the
            # pool size would open (and PostgreSQL fork) a new connection per request. Past the pool
            # size, requests wait for a connection instead.
            max_overflow=0,
            # Bounded waits: an exhausted pool or an unreachable database is an error (503), never a hang.
            pool_timeout=settings.db_pool_timeout_seconds,
            connect_args={"timeout": CONNECT_TIMEOUT_SECONDS},
            pool_pre_ping=False,
            echo=settings.db_echo,
        )
    else:
        _create_sqlite_file(settings.database_url)
        engine_config = EngineConfig(echo=settings.db_echo)
    config = SQLAlchemyAsyncConfig(
        connection_string=settings.database_url,
        engine_config=engine_config,
        session_config=AsyncSessionConfig(expire_on_commit=False),
        alembic_config=AlembicAsyncConfig(
            script_location=str(MIGRATIONS_DIR),
            version_table_name=VERSION_TABLE,
            render_as_batch=True,
            compare_type=True,
            user_module_prefix="",
        ),
        before_send_handler="autocommit",
        create_all=False,
    )
    if not settings.is_postgres:
        event.listen(config.get_engine().sync_engine, "connect", _sqlite_pragmas)
    return config


@asynccontextmanager
async def session_scope(config: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncSession]:
    """A session outside a request (CLI, tasks): committed on success, rolled back on error."""
    async with config.get_session() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def make_probe_engine(settings: Settings) -> AsyncEngine:
    """A tiny engine of its own for ``/health``: its check never queues behind the requests' pool.

    Under load every connection of the main pool can be busy with slow queries; a health check
    waiting for one would time out and report a healthy database as down.
    """
    return create_async_engine(settings.database_url, pool_size=1, max_overflow=1, pool_timeout=1)


@asynccontextmanager
async def read_connection(config: SQLAlchemyAsyncConfig) -> AsyncIterator[AsyncConnection]:
    """A connection for reads only, so no transaction: AUTOCOMMIT spares a BEGIN and a COMMIT round trip
    (under READ COMMITTED a page's statements see separate snapshots either way)."""
    async with config.get_engine().connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
