"""Outages with real processes: PostgreSQL stopped and Redis restarted empty under a running sale.

Each test has its own PostgreSQL cluster and redis-server (``tests.support.private_servers``),
because it takes them away; the suite's shared servers are never touched.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import httpx
import pytest
from redis.asyncio import Redis

from luffy.cache import make_redis
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seckill.reservations import RedisGoods, RedisReservations
from luffy.seckill.services import publish_goods
from luffy.settings import load_settings
from luffy.user.codes import code_key, new_record
from tests.support.private_servers import PrivatePostgres, PrivateRedis
from tests.support.processes import run_luffy, wait_until
from tests.support.seckill_processes import URL, SaleStack, Stack, poll_all, post_all, production_env
from tests.support.seckill_support import create_goods, create_users, sale_state

pytestmark = pytest.mark.slow
RECOVERY_SECONDS = 5
COURSE_LIST = "/api/v1/course/actual/"
COURSE_DETAIL = "/api/v1/course/actual/1/"
LOGIN = "/api/v1/user/mobile/login/"
LOGIN_MOBILE = "13900000001"


class Outage(SaleStack):
    postgres: PrivatePostgres
    redis_server: PrivateRedis

    async def load(self, name: str, stock: int) -> int:
        goods_id = await create_goods(self.config, name=name, stock=stock)
        async with session_scope(self.config) as session:
            await publish_goods(session, RedisReservations(self.redis, owner_ttl_seconds=60))
        return goods_id

    async def database_back(self) -> None:
        """Start PostgreSQL again; this test process's own pool drops the connections that died."""
        self.postgres.start()
        await self.config.get_engine().dispose()

    def status_agrees(self) -> bool:
        return run_luffy(self.stack.env, "seckill", "status").returncode == 0


MakeOutage = Callable[..., Awaitable[Outage]]


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[MakeOutage]:
    """Make the private servers and stack with the given ``LUFFY_*`` overrides; everything is torn down."""
    made: list[Outage] = []

    async def make(*, seed: bool = False, **overrides: str) -> Outage:
        postgres = PrivatePostgres()
        redis_server = PrivateRedis()
        env = production_env(postgres.url, redis_server.url, tmp_path / "data", **overrides)
        settings = load_settings(env)
        outage = Outage(
            postgres=postgres,
            redis_server=redis_server,
            stack=Stack(env, tmp_path),
            settings=settings,
            config=make_sqlalchemy_config(settings),
            redis=make_redis(settings),
        )
        made.append(outage)
        migrated = run_luffy(env, "db", "upgrade")
        assert migrated.returncode == 0, migrated.stderr
        if seed:
            seeded = run_luffy(env, "seed")
            assert seeded.returncode == 0, seeded.stderr
        return outage

    try:
        yield make
    finally:
        for outage in made:
            outage.stack.stop_all()
            await outage.config.get_engine().dispose()
            await outage.redis.aclose()
            outage.postgres.destroy()
            outage.redis_server.destroy()


def queued_tasks(tokens: list[str], replies: list[dict[str, object]]) -> list[tuple[str, str]]:
    """``(token, task_id)`` of every buyer whose purchase was queued."""
    return [(token, str(reply["task_id"])) for token, reply in zip(tokens, replies, strict=True) if "task_id" in reply]


async def login(base_url: str, redis: Redis) -> httpx.Response:
    """Log in with a code put where the SMS step would have (the SMS path is tested elsewhere)."""
    await redis.set(code_key(LOGIN_MOBILE), new_record("1234", uuid.uuid4().hex, 300), ex=300)
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await client.post(LOGIN, json={"mobile": LOGIN_MOBILE, "code": "1234"})


async def get(base_url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        return await client.get(path)


async def answers_within(
    seconds: float, request: Callable[[], Awaitable[httpx.Response]], status: int
) -> httpx.Response:
    """Repeat ``request`` until it answers ``status``; fail if that takes longer than ``seconds``."""
    started = time.monotonic()
    while True:
        response = await request()
        if response.status_code == status:
            return response
        assert time.monotonic() - started < seconds, f"{response.status_code} {response.text} after {seconds} s"
        await asyncio.sleep(0.2)


@asynccontextmanager
async def timed(limit: float) -> AsyncIterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < limit


async def test_a_database_outage_shorter_than_the_budget_costs_no_buyer_and_the_api_says_503_meanwhile(
    outage: MakeOutage,
) -> None:
    sale: Outage = await outage(seed=True, LUFFY_TASK_REDELIVERY_SECONDS="30", LUFFY_TASK_OUTAGE_SECONDS="25")
    goods_id = await sale.load("outage-15s", 8)
    base_url = sale.stack.start_api()
    users = await create_users(sale.config, 16)
    tokens = sale.tokens(users)
    replies = await post_all(base_url, tokens, {"goods_id": goods_id})
    queued = queued_tasks(tokens, replies)
    assert len(queued) == 8

    sale.postgres.stop()
    stopped_at = time.monotonic()
    worker = sale.stack.start_worker()
    worker.wait_for_log("database unavailable", timeout=30)
    for request in (
        lambda: get(base_url, COURSE_LIST),
        lambda: get(base_url, COURSE_DETAIL),
        lambda: login(base_url, sale.redis),
    ):
        async with timed(RECOVERY_SECONDS):
            response = await answers_within(RECOVERY_SECONDS, request, 503)
        assert response.headers["Retry-After"].isdigit()
        assert response.json()["code"] == 888

    await asyncio.sleep(max(0.0, 15 - (time.monotonic() - stopped_at)))
    await sale.database_back()
    for request in (
        lambda: get(base_url, COURSE_LIST),
        lambda: get(base_url, COURSE_DETAIL),
        lambda: login(base_url, sale.redis),
    ):
        await answers_within(RECOVERY_SECONDS, request, 200)

    finals = await poll_all(base_url, queued, within_seconds=30)
    assert [reply["code"] for reply in finals] == [100] * 8
    state = await sale_state(sale.config, goods_id)
    assert (state.orders, state.stock, state.buyers_with_two_orders) == (8, 0, 0)
    assert sale.status_agrees()
    # One line per change of the worker's state, not one per waiting task.
    assert worker.log.count("database unavailable") == 1, worker.log
    assert worker.log.count("database reachable again") == 1, worker.log


async def test_an_outage_longer_than_the_budget_ends_the_buyers_left_at_102_and_gives_their_units_back(
    outage: MakeOutage,
) -> None:
    sale: Outage = await outage(LUFFY_TASK_REDELIVERY_SECONDS="8", LUFFY_TASK_OUTAGE_SECONDS="2")
    goods_id = await sale.load("outage-long", 5)
    base_url = sale.stack.start_api()
    users = await create_users(sale.config, 8)
    tokens = sale.tokens(users)
    replies = await post_all(base_url, tokens, {"goods_id": goods_id})
    queued = queued_tasks(tokens, replies)
    assert len(queued) == 5

    sale.postgres.stop()
    worker = sale.stack.start_worker()
    finals = await poll_all(base_url, queued, within_seconds=30)
    assert [reply["code"] for reply in finals] == [102] * 5
    assert await sale.in_redis(goods_id) == RedisGoods(stock=5, pending=0, buyers=0)
    assert "outage budget" in worker.log

    await sale.database_back()
    state = await sale_state(sale.config, goods_id)
    assert (state.orders, state.stock) == (0, 5)
    assert sale.status_agrees()


async def test_a_worker_killed_while_waiting_out_an_outage_loses_no_buyer(outage: MakeOutage) -> None:
    sale: Outage = await outage(LUFFY_TASK_REDELIVERY_SECONDS="8", LUFFY_TASK_OUTAGE_SECONDS="3")
    goods_id = await sale.load("outage-kill", 4)
    base_url = sale.stack.start_api()
    users = await create_users(sale.config, 4)
    tokens = sale.tokens(users)
    replies = await post_all(base_url, tokens, {"goods_id": goods_id})
    queued = queued_tasks(tokens, replies)

    sale.postgres.stop()
    first = sale.stack.start_worker()
    first.wait_for_log("database unavailable", timeout=30)
    first.kill_all()
    await sale.database_back()
    sale.stack.start_worker()

    finals = await poll_all(base_url, queued, within_seconds=40)
    assert [reply["code"] for reply in finals] == [100] * 4
    state = await sale_state(sale.config, goods_id)
    assert (state.orders, state.stock, state.buyers_with_two_orders) == (4, 0, 0)
    assert sale.status_agrees()


async def post_through_recovery(base_url: str, tokens: list[str], goods_id: int) -> list[dict[str, object]]:
    """One purchase per token, repeated while the answer is 503 (the sale state being rebuilt)."""
    async with aiohttp.ClientSession(base_url) as client:

        async def one(token: str) -> dict[str, object]:
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(100):
                async with client.post(URL, json={"goods_id": goods_id}, headers=headers) as response:
                    if response.status != 503:
                        assert response.status == 200, await response.text()
                        return await response.json()
                    assert response.headers["Retry-After"].isdigit()
                await asyncio.sleep(0.1)
            raise AssertionError("the sale never came back")

        return await asyncio.gather(*(one(token) for token in tokens))


async def test_redis_restarted_empty_mid_sale_resumes_by_itself_without_oversell_or_duplicate(
    outage: MakeOutage,
) -> None:
    sale: Outage = await outage()
    goods_id = await sale.load("redis-empty", 10)
    sale.stack.start_worker()
    base_url = sale.stack.start_api()
    users = await create_users(sale.config, 30)
    tokens = sale.tokens(users)
    early = await post_all(base_url, tokens[:4], {"goods_id": goods_id})
    early_tasks = queued_tasks(tokens[:4], early)
    assert [reply["code"] for reply in await poll_all(base_url, early_tasks, within_seconds=30)] == [100] * 4

    sale.redis_server.stop()
    sale.redis_server.start()
    await sale.redis.connection_pool.disconnect()
    assert await sale.redis.dbsize() == 0

    late = await post_through_recovery(base_url, tokens, goods_id)
    assert [reply.get("reason") for reply in late[:4]] == ["duplicate"] * 4
    late_tasks = queued_tasks(tokens, late)
    assert len(late_tasks) == 6
    assert sum(reply.get("reason") == "sold_out" for reply in late) == 20

    # Connections pooled before the restart fail once each (503): writes are not retried blindly.
    finals = await poll_all(base_url, early_tasks + late_tasks, within_seconds=30, retry_unavailable=True)
    assert [reply["code"] for reply in finals] == [100] * 10
    state = await sale_state(sale.config, goods_id)
    assert (state.orders, state.stock, state.buyers_with_two_orders) == (10, 0, 0)
    wait_until(sale.status_agrees, timeout=10, what="`luffy seckill status` to agree")
