"""``luffy seckill load|status|reconcile`` in embedded mode and against PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from typer.testing import CliRunner, Result

from luffy.cli import app as cli
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seckill.models import SeckillGoods
from luffy.seckill.reservations import PREFIX
from luffy.settings import get_settings, load_settings
from tests.conftest import TEST_SECRET, truncate_all

Invoke = Callable[..., Result]


def _invoker(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], command: str = "seckill") -> Invoke:
    """Runs ``luffy COMMAND ...`` in-process with ``env`` as its configuration."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            return runner.invoke(cli, [command, *args], env={"COLUMNS": "200"})
        finally:
            get_settings.cache_clear()

    return invoke


@pytest.fixture
def embedded(sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    asyncio.run(truncate_all(sqlite_url))
    env = {
        "LUFFY_DATABASE_URL": sqlite_url,
        "LUFFY_DATA_DIR": str(tmp_path),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }
    return _invoker(monkeypatch, env)


@pytest.fixture
def production_env(postgres_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    asyncio.run(truncate_all(postgres_url))
    redis.Redis.from_url(redis_url).flushdb()
    return {
        "LUFFY_DATABASE_URL": postgres_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_DATA_DIR": str(tmp_path),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }


@pytest.fixture
def production(production_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Invoke:
    return _invoker(monkeypatch, production_env)


def _hide(env: dict[str, str], name: str) -> None:
    async def run() -> None:
        config = make_sqlalchemy_config(load_settings(env))
        async with session_scope(config) as session:
            await session.execute(update(SeckillGoods).where(SeckillGoods.name == name).values(is_show=False))
        await config.get_engine().dispose()

    asyncio.run(run())


def test_embedded_load_creates_then_updates(embedded: Invoke) -> None:
    created = embedded("load", "性感帽子", "--stock", "100", "--price", "99", "--start", "2020-01-01T00:00")
    updated = embedded("load", "性感帽子", "--stock", "40", "--end", "2099-01-01T00:00+08:00")
    status = embedded("status")

    assert created.exit_code == 0, created.output
    assert "99.00" in created.output
    assert "100" in created.output
    assert updated.exit_code == 0, updated.output
    assert "2020-01-01 00:00 → 2098-12-31 16:00" in updated.output
    assert status.exit_code == 0
    assert "40" in status.output
    assert "embedded mode" in status.output


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--stock", "-1"], "--stock"),
        (["--stock", "1", "--price", "abc"], "--price"),
        (["--stock", "1", "--price", "1000000"], "price"),
        (["--stock", "1", "--start", "tomorrow"], "--start"),
        (["--stock", "1", "--start", "2030-01-01", "--end", "2029-01-01"], "end after it starts"),
    ],
)
def test_load_rejects_bad_values_in_one_line(embedded: Invoke, args: list[str], problem: str) -> None:
    result = embedded("load", "性感帽子", *args)
    assert result.exit_code == 2
    assert problem in result.output
    assert "Traceback" not in result.output


def test_embedded_reconcile_has_nothing_to_do(embedded: Invoke) -> None:
    result = embedded("reconcile")
    assert result.exit_code == 0
    assert "embedded mode" in result.output


def test_status_of_an_unknown_name_fails(embedded: Invoke) -> None:
    result = embedded("status", "nothing")
    assert result.exit_code == 1
    assert "no goods on sale" in result.output


def test_production_load_writes_redis_and_status_agrees(production: Invoke, redis_url: str) -> None:
    loaded = production("load", "性感帽子", "--stock", "100", "--price", "99.00")
    status = production("status", "性感帽子")

    assert loaded.exit_code == 0, loaded.output
    client = redis.Redis.from_url(redis_url)
    goods_id = client.hget(f"{PREFIX}names", "性感帽子")
    assert goods_id is not None
    assert client.hget(f"{PREFIX}goods:{goods_id.decode()}", "stock") == b"100"
    assert status.exit_code == 0, status.output
    assert "yes" in status.output


def test_status_spots_a_disagreement_and_reconcile_repairs_it(production: Invoke, redis_url: str) -> None:
    production("load", "性感帽子", "--stock", "100")
    client = redis.Redis.from_url(redis_url)
    goods_id = client.hget(f"{PREFIX}names", "性感帽子").decode()  # type: ignore[union-attr]
    client.hset(f"{PREFIX}goods:{goods_id}", "stock", 7)

    drifted = production("status")
    repaired = production("reconcile")
    after = production("status")

    assert drifted.exit_code == 1
    assert "no" in drifted.output
    assert repaired.exit_code == 0, repaired.output
    assert client.hget(f"{PREFIX}goods:{goods_id}", "stock") == b"100"
    assert after.exit_code == 0, after.output


def test_reconcile_removes_goods_no_longer_on_sale(
    production: Invoke, production_env: dict[str, str], redis_url: str
) -> None:
    production("load", "old hat", "--stock", "5")
    production("load", "new hat", "--stock", "5")
    _hide(production_env, "old hat")

    result = production("reconcile")

    assert result.exit_code == 0, result.output
    assert "removed from Redis" in result.output
    names = redis.Redis.from_url(redis_url).hkeys(f"{PREFIX}names")
    assert [name.decode() for name in names] == ["new hat"]


def test_redis_unreachable_is_a_one_line_error(
    production: Invoke, production_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    production("load", "性感帽子", "--stock", "5")
    invoke = _invoker(monkeypatch, {**production_env, "LUFFY_REDIS_URL": "redis://127.0.0.1:1/0"})

    status = invoke("status")
    load = invoke("load", "性感帽子", "--stock", "6")
    after = production("status")

    for result in (status, load):
        assert result.exit_code == 1
        assert result.output.startswith("error: ")
        assert "Traceback" not in result.output
    assert "luffy seckill reconcile" in load.output
    assert after.exit_code == 1, "the database took the new stock, Redis did not: they disagree"


def test_seed_makes_the_seed_goods_buyable_in_redis(
    production: Invoke, production_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    seed = _invoker(monkeypatch, production_env, command="seed")

    seeded = seed()
    status = production("status", "性感帽子")

    assert seeded.exit_code == 0, seeded.output
    assert redis.Redis.from_url(redis_url).hget(f"{PREFIX}names", "性感帽子") == b"1"
    assert status.exit_code == 0, status.output
