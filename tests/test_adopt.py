"""``luffy db adopt`` on a database made the way the original project made it, then served by Luffy.

The original database comes from Django itself: ``migrate`` of models with the original table
definitions (``tests/support/original_django``), ``create_user`` for users with Django's own
password hashes, the catalogue and a paid course order. Adoption must change no row, do nothing
the second time, and leave a database the API serves: password login with the Django password,
SMS login, the catalogue, a flash-sale buy.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.db import VERSION_TABLE, make_sqlalchemy_config
from luffy.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.processes import luffy_env, run_luffy
from tests.support.seckill_support import create_goods
from tests.support.services import throwaway_database
from tests.support.user_helpers import delivered_code
from tests.test_accounts_api import FAILED, LOGIN, ME
from tests.test_user_api import running

CONSOLE_SMS = {"LUFFY_SMS_PROVIDER": "console"}
REPOSITORY = Path(__file__).resolve().parent.parent
LUFFY_TABLES = {"luffy_sms_log", "luffy_seckill_goods", "luffy_seckill_order", VERSION_TABLE}


@pytest.fixture(params=["sqlite", "postgresql"])
def original_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """An empty database: ``(Luffy's URL, Django's URL)``."""
    if request.param == "sqlite":
        path = tmp_path / "original.sqlite3"
        yield f"sqlite+aiosqlite:///{path}", f"sqlite:///{path}"
        return
    with throwaway_database(request.getfixturevalue("postgres_admin")) as url:
        yield url, url.replace("postgresql+asyncpg://", "postgresql://")


def django(django_url: str, *args: str) -> None:
    env = luffy_env(
        {"ORIGINAL_DATABASE": django_url, "DJANGO_SETTINGS_MODULE": "tests.support.original_django.settings"}
    )
    env["PYTHONPATH"] = str(REPOSITORY)
    result = subprocess.run(
        [sys.executable, *args], env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr


def build_original(django_url: str) -> None:
    django(django_url, "-m", "django", "migrate", "-v0")
    django(django_url, "-m", "tests.support.original_django.populate")


async def snapshot(database_url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
            return {
                table: [tuple(row) for row in await connection.execute(text(f'SELECT * FROM "{table}" ORDER BY 1'))]
                for table in tables
            }
    finally:
        await engine.dispose()


async def test_an_original_database_is_adopted_without_changing_a_row_and_then_served(
    original_database: tuple[str, str], make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    url, django_url = original_database
    build_original(django_url)
    before = await snapshot(url)
    assert {"luffy_user", "luffy_order", "luffy_order_detail", "luffy_user_groups", "django_migrations"} <= set(before)
    assert len(before["luffy_user"]) == 4
    assert len(before["luffy_order"]) == 1
    env = {
        "LUFFY_DATABASE_URL": url,
        "LUFFY_DATA_DIR": str(tmp_path / "cli"),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        **CONSOLE_SMS,
    }

    first = run_luffy(env, "db", "adopt")
    assert first.returncode == 0, first.stderr
    assert "adopted" in first.stdout
    adopted = await snapshot(url)
    assert {table: adopted[table] for table in before} == before
    assert set(adopted) - set(before) == LUFFY_TABLES
    assert adopted[VERSION_TABLE] != []
    assert ("ix_luffy_course_name_trgm" in first.stdout) == url.startswith("postgresql")

    second = run_luffy(env, "db", "adopt")
    assert second.returncode == 0, second.stderr
    assert "nothing to do" in second.stdout
    assert (upgrade := run_luffy(env, "db", "upgrade")).returncode == 0, upgrade.stderr
    assert await snapshot(url) == adopted

    settings = make_settings(url)
    config = make_sqlalchemy_config(settings)
    try:
        goods_id = await create_goods(config, stock=1)
    finally:
        await config.get_engine().dispose()
    async with running(settings) as client:
        login = await client.post(LOGIN, json={"username": "luffy", "password": "original-pass-1"})
        assert login.status_code == 200, login.text
        me = (await client.get(ME, headers={"Authorization": f"Bearer {login.json()['token']}"})).json()
        assert (me["id"], me["mobile"], me["email"]) == (1, "13800138000", "luffy@example.com")
        assert me["icon"] == "http://testserver.local/media/icon/default.png"

        zoro = await client.post(LOGIN, json={"username": "13900139000", "password": "original-pass-2"})
        assert zoro.status_code == 200
        assert zoro.json()["icon"] == "http://testserver.local/media/icon/zoro.png"
        nami = await client.post(LOGIN, json={"username": "nami", "password": "original-pass-3"})
        assert (nami.status_code, nami.json()) == (400, FAILED)

        assert (await client.post("/api/v1/user/mobile/send_sms/", json={"mobile": "13800138000"})).status_code == 200
        code = await delivered_code(url, "13800138000")
        sms = await client.post("/api/v1/user/mobile/login/", json={"mobile": "13800138000", "code": code})
        assert sms.status_code == 200
        assert sms.json()["username"] == "luffy"

        courses = (await client.get("/api/v1/course/actual/")).json()
        assert [(course["name"], course["price"]) for course in courses["results"]] == [("Python开发21天入门", "99.00")]
        assert courses["results"][0]["teacher"]["name"] == "Alex"
        assert (await client.get("/api/v1/course/category/")).json()["result"] == [{"id": 1, "name": "Python"}]
        chapters = (await client.get("/api/v1/course/chapter/", params={"course": 1})).json()
        assert [section["name"] for section in chapters[0]["coursesections"]] == ["计算机原理上"]
        banners = (await client.get("/api/v1/home/banner/")).json()["result"]
        assert [banner["title"] for banner in banners] == ["轮播图1"]

        bearer = {"Authorization": f"Bearer {zoro.json()['token']}"}
        queued = await client.post("/api/v1/user/sckill/", json={"goods_id": goods_id}, headers=bearer)
        assert queued.status_code == 200, queued.text
        poll = {"task_id": queued.json()["task_id"]}
        async with asyncio.timeout(20):
            while True:
                result = (await client.get("/api/v1/user/sckill/", params=poll, headers=bearer)).json()
                if result["code"] != 103:
                    break
                await asyncio.sleep(0.05)
        assert result["msg"] == "秒杀成功"

    served = await snapshot(url)
    for table in ("luffy_order", "luffy_order_detail", "luffy_course", "luffy_banner"):
        assert served[table] == before[table]
    assert [(row[0], row[3], row[4]) for row in served["luffy_seckill_order"]] == [(1, 2, goods_id)]


async def test_adopt_says_so_and_changes_nothing_on_an_empty_or_a_luffy_database(
    original_database: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = original_database
    env = {
        "LUFFY_DATABASE_URL": url,
        "LUFFY_DATA_DIR": str(tmp_path / "cli"),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        **CONSOLE_SMS,
    }
    empty = run_luffy(env, "db", "adopt")
    assert empty.returncode == 0, empty.stderr
    assert "no Luffy tables" in empty.stdout
    assert await snapshot(url) == {}

    assert (upgrade := run_luffy(env, "db", "upgrade")).returncode == 0, upgrade.stderr
    migrated = await snapshot(url)
    again = run_luffy(env, "db", "adopt")
    assert again.returncode == 0, again.stderr
    assert "already a Luffy database" in again.stdout
    assert await snapshot(url) == migrated


async def test_a_database_with_luffy_tables_in_another_shape_is_refused_untouched(
    original_database: tuple[str, str], tmp_path: Path
) -> None:
    url, _ = original_database
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE luffy_user (id integer PRIMARY KEY, username varchar(150))"))
    finally:
        await engine.dispose()
    env = {
        "LUFFY_DATABASE_URL": url,
        "LUFFY_DATA_DIR": str(tmp_path / "cli"),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        **CONSOLE_SMS,
    }
    refused = run_luffy(env, "db", "adopt")
    assert refused.returncode == 1
    assert "luffy_user has no column password" in refused.stderr
    assert set(await snapshot(url)) == {"luffy_user"}
