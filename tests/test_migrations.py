"""Migrations build the schema the models describe, forwards and backwards, on both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from advanced_alchemy.alembic.commands import AlembicCommands
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.db import VERSION_TABLE, include_on, make_sqlalchemy_config
from luffy.models import metadata
from luffy.settings import Settings
from tests.conftest import truncate_all


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


def _rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    async def run() -> list[tuple[object, ...]]:
        engine = create_async_engine(database_url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(sql))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_migrations_0002_and_0003_keep_every_user_and_flash_sale_order(
    database_url: str, make_settings: Callable[..., Settings]
) -> None:
    """Users (a disabled one, a soft-deleted one, with and without an icon) and their orders survive both moves."""
    asyncio.run(truncate_all(database_url))
    commands = AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url)))
    commands.downgrade("0001")
    joined = "2024-05-01 08:30:00+00:00"
    _rows(
        database_url,
        "INSERT INTO luffy_user (id, username, mobile, icon, is_active, last_login, orders, is_show, is_delete, "
        f"created_time, updated_time) VALUES "
        f"(7, '路飞', '13800138000', 'icon/luffy.png', true, '{joined}', 0, true, false, '{joined}', '{joined}'), "
        f"(8, '13900139000', '13900139000', NULL, false, NULL, 0, true, false, '{joined}', '{joined}'), "
        f"(9, '13700137000', '13700137000', NULL, true, NULL, 0, true, true, '{joined}', '{joined}')",
    )
    _rows(
        database_url,
        "INSERT INTO luffy_seckill_goods (id, name, price, stock, start_time, orders, is_show, is_delete, "
        f"created_time, updated_time) VALUES (3, '帽子', 9.90, 5, '{joined}', 0, true, false, '{joined}', '{joined}')",
    )
    _rows(
        database_url,
        "INSERT INTO luffy_order (id, order_no, task_id, user_id, goods_id, price, status, created_time, updated_time) "
        f"VALUES (11, 'N11', 't11', 7, 3, 9.90, 'created', '{joined}', '{joined}'), "
        f"(12, 'N12', NULL, 9, 3, 9.90, 'created', '{joined}', '{joined}')",
    )

    commands = AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url)))
    commands.upgrade("head")

    users = _rows(
        database_url,
        "SELECT id, username, mobile, icon, is_active, is_staff, is_superuser, first_name, last_name, email, "
        "last_login IS NOT NULL, date_joined, password FROM luffy_user ORDER BY id",
    )
    assert [row[:11] for row in users] == [
        (7, "路飞", "13800138000", "icon/luffy.png", True, False, False, "", "", "", True),
        (8, "13900139000", "13900139000", "", False, False, False, "", "", "", False),
        (9, "13700137000", "13700137000", "", False, False, False, "", "", "", False),
    ]
    assert all(str(row[11]).startswith("2024-05-01 08:30:00") for row in users)
    passwords = [row[12] for row in users]
    assert all(password.startswith("!") and len(password) == 41 for password in passwords)
    assert len(set(passwords)) == 3
    assert _rows(database_url, "SELECT id, order_no, user_id, goods_id FROM luffy_seckill_order ORDER BY id") == [
        (11, "N11", 7, 3),
        (12, "N12", 9, 3),
    ]
    assert _diff(database_url) == []
    asyncio.run(truncate_all(database_url))


def test_0003_goes_back_down_with_users_in_the_table(database_url: str, make_settings: Callable[..., Settings]) -> None:
    asyncio.run(truncate_all(database_url))
    _rows(
        database_url,
        "INSERT INTO luffy_user (id, username, mobile, icon, password, is_active, is_staff, is_superuser, first_name, "
        "last_name, email, date_joined) VALUES (5, 'zoro', '13800138000', '', '!x', true, false, false, '', '', '', "
        "'2024-05-01 08:30:00+00:00'), (6, 'nami', '13900139000', 'icon/nami.png', '!y', false, false, false, '', "
        "'', '', '2024-05-01 08:30:00+00:00')",
    )
    AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url))).downgrade("0002")
    assert _rows(database_url, "SELECT id, username, icon, is_active, is_delete FROM luffy_user ORDER BY id") == [
        (5, "zoro", None, True, False),
        (6, "nami", "icon/nami.png", False, False),
    ]
    AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(make_settings(database_url))).upgrade("head")
    assert _rows(database_url, "SELECT id, username, icon, is_active FROM luffy_user ORDER BY id") == [
        (5, "zoro", "", True),
        (6, "nami", "icon/nami.png", False),
    ]
    assert _diff(database_url) == []
    asyncio.run(truncate_all(database_url))
