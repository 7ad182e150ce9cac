"""Which failures are a dependency being away (wait, or answer 503) rather than a bug or bad data.

A database restarting, failing over or refusing connections, and Redis being unreachable, are
outages: they end by themselves, so a task should wait them out and the API should say 503 with
``Retry-After``. A broken constraint or bad data is permanent: retrying cannot help. The
decision is made from exception types and PostgreSQL's SQLSTATE codes, never from message text
(which changes with versions and locales).
"""

from __future__ import annotations

import asyncpg
from redis.exceptions import BusyLoadingError, ReadOnlyError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

# SQLSTATE: 08 connection exceptions (class), 57P01 admin shutdown, 57P02 crash shutdown,
# 57P03 cannot connect now (starting up, recovering), 53300 too many connections, 25006 read-only
# transaction (a failover's old primary or a replica), 40001 serialization failure, 40P01 deadlock.
TRANSIENT_SQLSTATE_CLASSES = frozenset({"08"})
TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "25006", "40001", "40P01"})
# SQLite (embedded mode): SQLITE_BUSY and SQLITE_LOCKED, another writer holds the file.
SQLITE_BUSY_CODES = frozenset({5, 6})


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, getattr(exc, "orig", None), exc.__cause__):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str) and code:
            return code
    return None


def is_transient_database_error(exc: BaseException) -> bool:
    """The database is away or asked for a retry: connection refused/lost, shutdown, failover, conflict."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        code = _sqlstate(exc)
        if code is not None:
            return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
        sqlite_code = getattr(exc.orig, "sqlite_errorcode", None)
        if isinstance(sqlite_code, int):
            return sqlite_code & 0xFF in SQLITE_BUSY_CODES
        # asyncpg's "connection is closed" carries no SQLSTATE; SQLAlchemy raises it as InterfaceError.
        return isinstance(exc, InterfaceError)
    if isinstance(exc, asyncpg.PostgresError):
        code = exc.sqlstate
        return code in TRANSIENT_SQLSTATES or code[:2] in TRANSIENT_SQLSTATE_CLASSES
    if isinstance(exc, asyncpg.InterfaceError | PoolTimeoutError):
        return True
    # asyncpg's connect raises these unwrapped: refused, reset, unreachable host, connect timeout.
    return isinstance(exc, ConnectionError | TimeoutError)


def is_redis_outage(exc: BaseException) -> bool:
    """Redis unreachable, timing out, still loading its data, or a read-only replica after a failover."""
    return isinstance(exc, RedisConnectionError | RedisTimeoutError | BusyLoadingError | ReadOnlyError)


def is_outage(exc: BaseException) -> bool:
    return is_transient_database_error(exc) or is_redis_outage(exc)
