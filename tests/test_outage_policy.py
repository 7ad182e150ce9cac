"""Outage rules without processes: what is an outage, the budget's settings, the retry loop, lost Redis state.

The behaviour with real processes and real PostgreSQL/Redis outages is in ``test_outages.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from luffy.outages import is_outage, is_transient_database_error
from luffy.seckill.reservations import LOST, QUEUED, UNKNOWN, GoodsState, RedisReservations
from luffy.settings import Settings, SettingsError, load_settings
from luffy.tasks.outage import outage_breaker, waits_out_outages
from tests.conftest import truncate_all
from tests.support.seckill_support import running

SECRET = "s" * 40


def production(tmp_path: Path, **env: str) -> dict[str, str]:
    return {
        "LUFFY_DATA_DIR": str(tmp_path),
        "LUFFY_REDIS_URL": "redis://localhost:6379/0",
        "LUFFY_SECRET_KEY": SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        **env,
    }


def test_tasks_wait_out_two_minutes_by_default_and_are_redelivered_after_three(tmp_path: Path) -> None:
    settings = load_settings(production(tmp_path))
    assert (settings.task_outage_seconds, settings.task_redelivery_seconds) == (120, 180)


def test_an_outage_budget_that_outlasts_the_redelivery_time_is_refused(tmp_path: Path) -> None:
    env = production(tmp_path, LUFFY_TASK_OUTAGE_SECONDS="120", LUFFY_TASK_REDELIVERY_SECONDS="60")
    with pytest.raises(SettingsError) as refused:
        load_settings(env)
    assert refused.value.variable == "LUFFY_TASK_OUTAGE_SECONDS"
    assert "LUFFY_TASK_REDELIVERY_SECONDS=60" in str(refused.value)


def test_left_unset_the_outage_budget_shrinks_to_fit_the_redelivery_time(tmp_path: Path) -> None:
    assert load_settings(production(tmp_path, LUFFY_TASK_REDELIVERY_SECONDS="60")).task_outage_seconds == 55
    assert load_settings(production(tmp_path, LUFFY_TASK_REDELIVERY_SECONDS="3")).task_outage_seconds == 0


def wrapped(orig: Exception) -> DBAPIError:
    """``orig`` as SQLAlchemy raises it (the asyncpg adapter keeps the SQLSTATE on it)."""
    return OperationalError("SELECT 1", {}, orig)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        wrapped(asyncpg.exceptions.AdminShutdownError("x")),
        wrapped(asyncpg.exceptions.DeadlockDetectedError("x")),
        PoolTimeoutError("QueuePool limit reached"),
    ],
    ids=type,
)
def test_connection_loss_shutdown_failover_and_conflicts_are_transient(error: Exception) -> None:
    assert is_transient_database_error(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.InvalidTextRepresentationError("invalid input syntax"),
        wrapped(asyncpg.exceptions.CheckViolationError("x")),
        IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("x")),
        ValueError("a bug"),
    ],
    ids=type,
)
def test_constraints_bad_data_and_bugs_are_permanent(error: Exception) -> None:
    assert not is_transient_database_error(error)


def test_redis_unreachable_is_an_outage_too() -> None:
    assert is_outage(RedisConnectionError("refused"))


@pytest.fixture
def budget() -> AsyncIterator[None]:
    saved = outage_breaker.budget_seconds
    outage_breaker.budget_seconds = 0.5
    yield
    outage_breaker.budget_seconds = saved


@pytest.mark.usefixtures("budget")
async def test_a_task_runs_again_until_the_database_is_back_and_pauses_intake_meanwhile() -> None:
    calls = 0
    intake_paused: list[bool] = []

    @waits_out_outages
    async def task() -> str:
        nonlocal calls
        calls += 1
        intake_paused.append(outage_breaker.is_open)
        if calls < 3:
            raise asyncpg.exceptions.AdminShutdownError("restarting")
        return "done"

    assert await task() == "done"
    assert intake_paused == [False, True, True]
    assert not outage_breaker.is_open
    await asyncio.wait_for(outage_breaker.wait_for_intake(), 0.1)


@pytest.mark.usefixtures("budget")
async def test_a_permanent_error_ends_the_task_at_once() -> None:
    calls = 0

    @waits_out_outages
    async def task() -> None:
        nonlocal calls
        calls += 1
        raise asyncpg.exceptions.UniqueViolationError("duplicate key")

    with pytest.raises(asyncpg.exceptions.UniqueViolationError):
        await task()
    assert calls == 1


@pytest.mark.usefixtures("budget")
async def test_an_outage_longer_than_the_budget_fails_the_task_and_resumes_intake() -> None:
    @waits_out_outages
    async def task() -> None:
        raise ConnectionRefusedError(111, "refused")

    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        await task()
    assert 0.5 <= time.monotonic() - started < 1.5
    assert not outage_breaker.is_open


@pytest.fixture
async def reservations(redis_url: str) -> AsyncIterator[RedisReservations]:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    yield RedisReservations(redis, owner_ttl_seconds=60)
    await redis.flushdb()
    await redis.aclose()


HAT = GoodsState(id=7, name="hat", price=Decimal("1.00"), stock=3, start=0.0, end=None, buyers=[])


async def admit(reservations: RedisReservations, name: str, user_id: int, task_id: str) -> str:
    admission = await reservations.admit(name=name, goods_id=None, user_id=user_id, task_id=task_id, now=time.time())
    return admission.status


async def test_redis_that_lost_the_sale_state_admits_nobody_until_it_is_rebuilt(
    reservations: RedisReservations,
) -> None:
    await reservations.sync(HAT)
    await reservations.mark_loaded(time.time())
    assert await admit(reservations, "hat", 1, "a") == QUEUED

    await reservations.redis.flushdb()
    assert await admit(reservations, "hat", 2, "b") == LOST
    assert await admit(reservations, "no-such-goods", 2, "b") == LOST

    await reservations.sync(HAT)
    await reservations.mark_loaded(time.time())
    assert await admit(reservations, "hat", 2, "b") == QUEUED
    assert await admit(reservations, "no-such-goods", 2, "c") == UNKNOWN


async def test_admitting_one_task_twice_keeps_its_reservation_and_takes_one_unit(
    reservations: RedisReservations,
) -> None:
    await reservations.sync(HAT)
    await reservations.mark_loaded(time.time())
    for _ in range(2):
        admission = await reservations.admit(name=None, goods_id=7, user_id=1, task_id="t", now=time.time())
        assert admission.status == QUEUED
    assert (await reservations.state([7]))[7].stock == 2


async def test_an_exhausted_database_pool_answers_503_after_the_bounded_wait(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> None:
    from luffy.app import create_app

    await truncate_all(postgres_url)
    app = create_app(make_settings(postgres_url, LUFFY_DB_POOL_SIZE="1", LUFFY_DB_POOL_TIMEOUT_SECONDS="1"))
    transport = httpx.ASGITransport(app=app)
    async with running(app), httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
        async with app.state.sqlalchemy_config.get_engine().connect() as held:
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            response = await client.get("/api/v1/course/actual/")
            assert time.monotonic() - started < 3
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "5"
        assert response.json()["code"] == 888
        assert (await client.get("/api/v1/course/actual/")).status_code == 200
