"""Whose tokens no longer work: a disabled or deleted user is refused within seconds, not at token expiry.

A JWT is checked by its signature alone, so turning a user off must reach every place that admits
a token. In production the ids of users whose tokens are refused live in the Redis set
``luffy:auth:revoked``: the auth middleware asks it once per authenticated request (no database
query), and the flash-sale admission script reads the same set inside its own round trip, so the
sale's POST still never touches the database. The set follows the database through
``revoke_user`` / ``restore_user`` (``set_user_active`` calls them after its commit) and is
rebuilt from the database when an API process starts and every ``REBUILD_SECONDS``, so a change
made around those hooks (directly in SQL, or while Redis was away) cannot drift for long.

Embedded mode has its database on the same machine: the check reads the user row itself, the
database is the list, and there is nothing to keep in step.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Protocol

from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.cache import make_redis
from luffy.errors import Unavailable
from luffy.settings import get_settings
from luffy.user.models import User, account_enabled

REVOKED_KEY = "luffy:auth:revoked"
REVOKED_MSG = "用户不存在或已停用"
REBUILD_SECONDS = 60.0
REBUILD_TRIES = 5
IDS_PER_QUERY = 1_000

logger = logging.getLogger("luffy.auth")


class Revocations(Protocol):
    """Where the authentication check learns that a user's tokens must be refused."""

    async def is_revoked(self, user_id: int) -> bool: ...

    async def revoke(self, user_id: int) -> None: ...

    async def restore(self, user_id: int) -> None: ...


class RedisRevocations:
    """Production: the set ``REVOKED_KEY``, shared by every API process and the admission script."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def is_revoked(self, user_id: int) -> bool:
        return bool(await self.redis.sismember(REVOKED_KEY, str(user_id)))

    async def revoke(self, user_id: int) -> None:
        await self.redis.sadd(REVOKED_KEY, str(user_id))

    async def restore(self, user_id: int) -> None:
        await self.redis.srem(REVOKED_KEY, str(user_id))

    async def rebuild(self, session: AsyncSession) -> int:
        """Replace the set with the database's view; returns how many ids it holds.

        The set is watched while the database is read: a ``revoke``/``restore`` landing in between
        makes the replacement fail and start over, so a hook's change is never overwritten by an
        older read. Ids already in the set whose users were deleted stay in it.
        """
        for _ in range(REBUILD_TRIES):
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(REVOKED_KEY)
                members = {int(member) for member in await pipe.smembers(REVOKED_KEY)}
                revoked = await revoked_user_ids(session, members)
                pipe.multi()
                pipe.delete(REVOKED_KEY)
                if revoked:
                    pipe.sadd(REVOKED_KEY, *(str(user_id) for user_id in sorted(revoked)))
                try:
                    await pipe.execute()
                except WatchError:
                    continue
                return len(revoked)
        raise Unavailable("撤销列表正在频繁变动，请稍后再试")


class DatabaseRevocations:
    """Embedded mode: the user row decides; revoking and restoring have nothing to add."""

    def __init__(self, sqlalchemy_config: SQLAlchemyAsyncConfig) -> None:
        self.sqlalchemy_config = sqlalchemy_config

    async def is_revoked(self, user_id: int) -> bool:
        async with self.sqlalchemy_config.get_session() as session:
            return not await user_enabled(session, user_id)

    async def revoke(self, user_id: int) -> None:
        """The database change itself refuses the user's tokens."""

    async def restore(self, user_id: int) -> None:
        """The database change itself lets the user's tokens in again."""


async def user_enabled(session: AsyncSession, user_id: int) -> bool:
    return await session.scalar(select(User.id).where(User.id == user_id, account_enabled())) is not None


async def revoked_user_ids(session: AsyncSession, known: set[int]) -> set[int]:
    """Users that exist and are not enabled, plus those of ``known`` that no longer exist."""
    revoked = set(await session.scalars(select(User.id).where(~account_enabled())))
    ordered = sorted(known)
    existing: set[int] = set()
    for start in range(0, len(ordered), IDS_PER_QUERY):
        chunk = ordered[start : start + IDS_PER_QUERY]
        existing.update(await session.scalars(select(User.id).where(User.id.in_(chunk))))
    return revoked | (known - existing)


# --- the hooks account changes call ----------------------------------------------------------------

_in_use: Revocations | None = None


@contextmanager
def revocations_in_use(revocations: Revocations) -> Iterator[None]:
    """Make ``revoke_user`` / ``restore_user`` in this process go to ``revocations`` (the API's own client)."""
    global _in_use
    previous, _in_use = _in_use, revocations
    try:
        yield
    finally:
        _in_use = previous


@asynccontextmanager
async def _current() -> AsyncIterator[Revocations | None]:
    """The revocations in use, else (a CLI process) one made from the environment's settings for this call."""
    if _in_use is not None:
        yield _in_use
        return
    settings = get_settings()
    if settings.redis_url is None:
        yield None
        return
    redis = make_redis(settings)
    try:
        yield RedisRevocations(redis)
    finally:
        await redis.aclose()


async def _apply(user_id: int, *, revoked: bool) -> None:
    async with _current() as revocations:
        if revocations is None:
            return
        try:
            await (revocations.revoke(user_id) if revoked else revocations.restore(user_id))
        except (RedisError, OSError) as exc:
            logger.warning("user %d: revocation list not updated (%s)", user_id, type(exc).__name__)
            raise Unavailable(
                f"已写入数据库，但 Redis 不可达：{int(REBUILD_SECONDS)} 秒内由 API 重建撤销列表后生效"
            ) from exc


async def revoke_user(user_id: int) -> None:
    """Refuse ``user_id``'s tokens everywhere at once; call after the database change is committed."""
    await _apply(user_id, revoked=True)


async def restore_user(user_id: int) -> None:
    """Accept ``user_id``'s tokens again; call after the database change is committed."""
    await _apply(user_id, revoked=False)


async def rebuild_now(revocations: RedisRevocations, sqlalchemy_config: SQLAlchemyAsyncConfig) -> None:
    """One rebuild from the database; a failure is logged (the hooks and the next rebuild still apply)."""
    try:
        async with sqlalchemy_config.get_session() as session:
            await revocations.rebuild(session)
    except (RedisError, SQLAlchemyError, OSError, Unavailable) as exc:
        logger.warning("revocation list not rebuilt: %s", type(exc).__name__)


async def keep_rebuilding(revocations: RedisRevocations, sqlalchemy_config: SQLAlchemyAsyncConfig) -> None:
    """Rebuild the set every ``REBUILD_SECONDS`` (an API process's background task)."""
    while True:
        await asyncio.sleep(REBUILD_SECONDS)
        await rebuild_now(revocations, sqlalchemy_config)
