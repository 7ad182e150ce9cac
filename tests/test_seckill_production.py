"""Production seckill with real processes: ``luffy serve``, seckill task workers, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import text, update

from luffy.cache import make_redis
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seckill.models import SeckillGoods
from luffy.seckill.reservations import RedisGoods, RedisReservations
from luffy.seckill.services import complete_sale_state, publish_goods
from luffy.settings import load_settings
from luffy.user.revocation import RedisRevocations, revocations_in_use
from luffy.user.services import set_user_active
from tests.conftest import truncate_all
from tests.support.front_end import GET_RESULT, SECKILL, Browser, same_origin
from tests.support.processes import run_luffy
from tests.support.seckill_processes import URL, SaleStack, Stack, poll_all, post_all, production_env
from tests.support.seckill_support import HAT, create_goods, create_users, sale_state
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow
FINAL_WITHIN_SECONDS = 60
ME = "/api/v1/user/me/"


class Production(SaleStack):
    async def load(self, name: str, stock: int) -> int:
        """What ``luffy seckill load NAME --stock N`` does (its CLI is tested in test_seckill_cli)."""
        goods_id = await create_goods(self.config, name=name, stock=stock)
        async with session_scope(self.config) as session:
            reservations = RedisReservations(self.redis, owner_ttl_seconds=60)
            await publish_goods(session, reservations, goods_ids=[goods_id])
            await complete_sale_state(session, reservations)
        return goods_id


@pytest.fixture
async def production(postgres_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Production]:
    await truncate_all(postgres_url)
    env = production_env(postgres_url, redis_url, tmp_path / "data")
    settings = load_settings(env)
    redis = make_redis(settings)
    await redis.flushdb()
    config = make_sqlalchemy_config(settings)
    stack = Stack(env, tmp_path)
    try:
        yield Production(stack=stack, settings=settings, config=config, redis=redis)
    finally:
        stack.stop_all()
        await config.get_engine().dispose()
        await redis.aclose()


def outcome(reply: dict[str, object]) -> tuple[object, object]:
    return reply["code"], reply.get("reason")


async def test_500_buyers_for_50_units_with_two_workers(production: Production) -> None:
    goods_id = await production.load("flash-500", 50)
    production.stack.start_worker()
    production.stack.start_worker()
    base_url = production.stack.start_api()
    users = await create_users(production.config, 500)
    tokens = production.tokens(users)

    replies = await post_all(base_url, tokens, {"name": "flash-500"})
    queued = [(token, reply["task_id"]) for token, reply in zip(tokens, replies, strict=True) if reply["code"] == 100]
    finals = await poll_all(base_url, queued, within_seconds=FINAL_WITHIN_SECONDS)

    assert len(queued) == 50, "Redis lets through exactly as many tasks as there are units"
    answers = Counter(outcome(reply) for reply in [*finals, *(r for r in replies if r["code"] != 100)])
    assert answers == {(100, None): 50, (101, "sold_out"): 450}
    state = await sale_state(production.config, goods_id)
    assert (state.stock, state.orders, state.buyers_with_two_orders) == (0, 50, 0)
    assert await production.in_redis(goods_id) == RedisGoods(stock=0, pending=0, buyers=50)
    winners = {user for user, reply in zip(users, replies, strict=True) if reply["code"] == 100}
    assert set(state.order_users) == winners
    status = run_luffy(production.stack.env, "seckill", "status", "flash-500")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "yes" in status.stdout


async def test_one_user_firing_20_requests_gets_one_order(production: Production) -> None:
    goods_id = await production.load("flash-one", 10)
    production.stack.start_worker()
    base_url = production.stack.start_api()
    [user] = await create_users(production.config, 1)
    [token] = production.tokens([user])

    replies = await post_all(base_url, [token] * 20, {"goods_id": goods_id})
    queued = [(token, reply["task_id"]) for reply in replies if reply["code"] == 100]
    finals = await poll_all(base_url, queued, within_seconds=FINAL_WITHIN_SECONDS)

    assert Counter(outcome(reply) for reply in replies) == {(100, None): 1, (101, "duplicate"): 19}
    assert [outcome(reply) for reply in finals] == [(100, None)]
    state = await sale_state(production.config, goods_id)
    assert (state.stock, state.orders) == (9, 1)
    assert await production.in_redis(goods_id) == RedisGoods(stock=9, pending=0, buyers=1)


async def test_the_post_path_needs_no_database(production: Production) -> None:
    """An API process that cannot reach any database still queues purchases and reports their outcome."""
    goods_id = await production.load("flash-nodb", 3)
    production.stack.start_worker()
    base_url = production.stack.start_api(LUFFY_DATABASE_URL="postgresql+asyncpg://luffy:luffy@127.0.0.1:1/nowhere")
    users = await create_users(production.config, 5)
    tokens = production.tokens(users)

    replies = await post_all(base_url, tokens, {"name": "flash-nodb"})
    queued = [(token, reply["task_id"]) for token, reply in zip(tokens, replies, strict=True) if reply["code"] == 100]
    finals = await poll_all(base_url, queued, within_seconds=FINAL_WITHIN_SECONDS)

    assert Counter(outcome(reply) for reply in replies) == {(100, None): 3, (101, "sold_out"): 2}
    assert [outcome(reply) for reply in finals] == [(100, None)] * 3
    assert (await sale_state(production.config, goods_id)).orders == 3


async def test_a_killed_worker_loses_no_accepted_request(production: Production) -> None:
    goods_id = await production.load("flash-kill", 30)
    doomed = production.stack.start_worker()
    base_url = production.stack.start_api()
    users = await create_users(production.config, 100)
    tokens = production.tokens(users)

    # Hold the goods row, so the worker's tasks are stuck in their transactions when it dies.
    async with production.config.get_engine().connect() as blocker:
        await blocker.execute(text("SELECT id FROM luffy_seckill_goods WHERE id = :id FOR UPDATE"), {"id": goods_id})
        replies = await post_all(base_url, tokens, {"name": "flash-kill"})
        await _until_tasks_are_waiting_on_the_row(production.config)
        doomed.kill_all()
        await blocker.rollback()

    production.stack.start_worker()
    queued = [(token, reply["task_id"]) for token, reply in zip(tokens, replies, strict=True) if reply["code"] == 100]
    finals = await poll_all(base_url, queued, within_seconds=FINAL_WITHIN_SECONDS)

    assert len(queued) == 30
    assert "redelivering" in production.stack.logs("worker"), "the dead worker's tasks were claimed again"
    assert [outcome(reply) for reply in finals] == [(100, None)] * 30
    state = await sale_state(production.config, goods_id)
    assert (state.stock, state.orders, state.buyers_with_two_orders) == (0, 30, 0)
    assert state.stock + state.orders == 30
    assert await production.in_redis(goods_id) == RedisGoods(stock=0, pending=0, buyers=30)


async def _until_tasks_are_waiting_on_the_row(config: SQLAlchemyAsyncConfig) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )

    async def waiting() -> int:
        async with config.get_engine().connect() as connection:
            return int(await connection.scalar(query) or 0)

    await eventually(waiting, within=30, what="a task waiting on the goods row")


async def test_a_task_that_fails_for_good_gives_its_unit_back(production: Production) -> None:
    goods_id = await production.load("flash-fail", 5)
    production.stack.start_worker()
    base_url = production.stack.start_api()
    # A valid token for a user the database does not have: the order's foreign key fails every try.
    [token] = production.tokens([987_654])

    [reply] = await post_all(base_url, [token], {"goods_id": goods_id})
    [final] = await poll_all(base_url, [(token, reply["task_id"])], within_seconds=FINAL_WITHIN_SECONDS)

    assert reply["code"] == 100
    assert final == {"code": 102, "msg": "没成功"}
    async with httpx.AsyncClient(base_url=base_url) as client:
        page = await client.get(GET_RESULT, params={"id": reply["task_id"]}, headers={"Authorization": f"jwt {token}"})
    assert page.json() == {"code": 101, "msg": "秒杀失败", "reason": "failed"}, "Seckill.vue stops polling"
    # The unit is given back right after the failure is saved as the task's result.

    async def given_back() -> bool:
        return await production.in_redis(goods_id) == RedisGoods(stock=5, pending=0, buyers=0)

    await eventually(given_back, within=5, what="the unit back in Redis")
    assert (await sale_state(production.config, goods_id)).stock == 5


async def test_a_sale_closed_before_the_task_runs_is_not_active(production: Production) -> None:
    goods_id = await production.load("flash-closed", 5)
    base_url = production.stack.start_api()
    [user] = await create_users(production.config, 1)
    [token] = production.tokens([user])
    [reply] = await post_all(base_url, [token], {"goods_id": goods_id})
    async with session_scope(production.config) as session:
        await session.execute(update(SeckillGoods).values(is_show=False))

    production.stack.start_worker()
    [final] = await poll_all(base_url, [(token, reply["task_id"])], within_seconds=FINAL_WITHIN_SECONDS)

    assert reply["code"] == 100
    assert final == {"code": 101, "msg": "秒杀失败", "reason": "not_active"}
    assert await production.in_redis(goods_id) == RedisGoods(stock=5, pending=0, buyers=0)
    assert (await sale_state(production.config, goods_id)).orders == 0


async def test_both_front_end_pages_buy_through_a_worker_with_the_same_origin_cookie(production: Production) -> None:
    goods_id = await production.load(HAT, 5)
    production.stack.start_worker()
    base_url = production.stack.start_api()
    original_page_user, seed_page_user = await create_users(production.config, 2)
    original_token, seed_token = production.tokens([original_page_user, seed_page_user])

    async with httpx.AsyncClient(base_url=base_url) as client:
        seckill_vue = await Browser(client, original_token).seckill_vue(within_seconds=FINAL_WITHIN_SECONDS)
        sckill_vue = await Browser(client, seed_token).sckill_vue(HAT, within_seconds=FINAL_WITHIN_SECONDS)
        again = await Browser(client, seed_token).seckill_vue()

    (bought, final), (posted, polled) = seckill_vue, sckill_vue
    assert (bought["code"], bought["msg"]) == (100, "正在排队")
    assert final is not None
    assert (final["code"], final["msg"]) == (100, "秒杀成功")
    assert (posted["code"], polled and polled["code"]) == (100, 100)
    assert again == ({"code": 101, "msg": "秒杀失败", "reason": "duplicate"}, None)
    state = await sale_state(production.config, goods_id)
    assert (state.stock, sorted(state.order_users)) == (3, [original_page_user, seed_page_user])
    assert await production.in_redis(goods_id) == RedisGoods(stock=3, pending=0, buyers=2)


async def test_a_disabled_user_is_refused_within_5_seconds_and_orders_nothing(production: Production) -> None:
    goods_id = await production.load("flash-disabled", 5)
    production.stack.start_worker()
    base_url = production.stack.start_api()
    [user] = await create_users(production.config, 1)
    [token] = production.tokens([user])
    bearer = {"Authorization": f"Bearer {token}"}

    async with httpx.AsyncClient(base_url=base_url) as client:
        assert (await client.get(ME, headers=bearer)).status_code == 200
        with revocations_in_use(RedisRevocations(production.redis)):
            async with session_scope(production.config) as session:
                await set_user_active(session, user, False)

        async def refused_everywhere() -> bool:
            answers = [
                (await client.get(ME, headers=bearer)).status_code,
                (await client.post(URL, json={"goods_id": goods_id}, headers=bearer)).status_code,
                (await client.get(SECKILL, headers=same_origin(token))).status_code,
                (await client.post(URL, json={"goods_id": goods_id}, headers=same_origin(token))).status_code,
            ]
            return answers == [401] * 4

        await eventually(refused_everywhere, within=5, what="every endpoint to refuse the disabled user")

    await asyncio.sleep(
        1
    )  # waiting for something not to happen: a purchase wrongly let through would be ordered by now
    assert (await sale_state(production.config, goods_id)).orders == 0
    assert await production.in_redis(goods_id) == RedisGoods(stock=5, pending=0, buyers=0)
