"""Migrations build the schema the models describe, forwards and backwards, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from advanced_alchemy.alembic.commands import AlembicCommands
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.db import VERSION_TABLE, include_on, make_sqlalchemy_config
from luffy.models import metadata
from luffy.settings import Settings


def _diff(database_url: str) -> list[object]:
    async def run() -> list[object]:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync,
                            opts={
                                "compare_type": True,
                                "version_table": VERSION_TABLE,
                                "include_object": include_on(sync.dialect.name),
                            },
                        ),
                        metadata,
                    )
                )
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _tables(database_url: str) -> set[str]:
    async def run() -> set[str]:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_models_and_migrations_agree_on_postgresql(postgres_url: str) -> None:
    assert _diff(postgres_url) == []


def test_models_and_migrations_agree_on_sqlite(sqlite_url: str) -> None:
    assert _diff(sqlite_url) == []


def test_downgrade_to_base_and_upgrade_to_head(database_url: str, make_settings: Callable[..., Settings]) -> None:
    commands = AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url)))
    commands.downgrade("base")
    assert _tables(database_url) <= {VERSION_TABLE}
    commands = AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url)))
    commands.upgrade("head")
    assert {table.name for table in metadata.sorted_tables} <= _tables(database_url)
    assert _diff(database_url) == []
