"""What task functions receive through TaskIQ dependencies (built at worker start-up, not import)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from litestar.stores.base import Store
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq import Context, TaskiqDepends

from luffy.db import session_scope
from luffy.settings import Settings


def task_settings(context: Annotated[Context, TaskiqDepends()]) -> Settings:
    return context.state.settings


def task_cache(context: Annotated[Context, TaskiqDepends()]) -> Store:
    return context.state.cache_store


async def task_session(context: Annotated[Context, TaskiqDepends()]) -> AsyncIterator[AsyncSession]:
    """One transaction per task: committed when the task returns, rolled back when it raises."""
    async with session_scope(context.state.sqlalchemy_config) as session:
        yield session


SettingsDep = Annotated[Settings, TaskiqDepends(task_settings)]
CacheDep = Annotated[Store, TaskiqDepends(task_cache)]
SessionDep = Annotated[AsyncSession, TaskiqDepends(task_session)]
