"""The original app's flash-sale page (``user/seckill/`` + ``user/get_result/``) and the seed's
``Sckill.vue``, driven as a same-origin browser drives them.

Whole call sequences run in embedded mode (tasks in-process) on SQLite and PostgreSQL; which goods
``user/seckill/`` buys is checked against the Redis admission script too. ``test_seckill_production``
runs both pages through real worker processes.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from luffy.app import create_app
from luffy.db import session_scope
from luffy.seckill.models import SeckillOrder
from luffy.seckill.reservations import RedisReservations
from luffy.seckill.services import publish_goods
from luffy.settings import Settings
from tests.support.front_end import GET_RESULT, SECKILL, Browser, same_origin
from tests.support.seckill_support import HAT, AppClient, create_goods, create_users, running, sale_state
from tests.support.sqlcount import count_statements

NOW = datetime.datetime.now(datetime.UTC)
HOUR = datetime.timedelta(hours=1)


class Shop(AppClient):
    def browser(self, user_id: int) -> Browser:
        return Browser(self.client, self.token(user_id), poll_seconds=0.02)

    async def goods(self, name: str = HAT, **fields: object) -> int:
        """Goods in the database and, in production, in Redis (what ``luffy seckill load`` does)."""
        goods_id = await create_goods(self.config, name=name, **fields)  # type: ignore[arg-type]
        gate = self.app.state.seckill_gate
        if isinstance(gate, RedisReservations):
            async with session_scope(self.config) as session:
                await publish_goods(session, gate)
        return goods_id

    async def buy_now(self, user_id: int, **params: object) -> httpx.Response:
        return await self.client.get(SECKILL, params=params, headers=same_origin(self.token(user_id)))

    async def result(self, user_id: int, task_id: object) -> httpx.Response:
        return await self.client.get(GET_RESULT, params={"id": task_id}, headers=same_origin(self.token(user_id)))


async def _shop(settings: Settings) -> AsyncIterator[Shop]:
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Shop(app, client)


@pytest.fixture
async def shop(settings: Settings) -> AsyncIterator[Shop]:
    """Embedded mode on SQLite and PostgreSQL: the order tasks run in the app."""
    async for value in _shop(settings):
        yield value


@pytest.fixture(params=["embedded", "redis"])
async def either_gate(
    request: pytest.FixtureRequest, clean_database: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Shop]:
    """Both gates: the database (embedded) and the Redis admission script (no worker runs here)."""
    redis_url = None
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")
        client = Redis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
    async for value in _shop(make_settings(clean_database, redis_url)):
        yield value


# --- whole call sequences ------------------------------------------------------------------------


async def test_seckill_vue_buys_what_is_on_sale_and_polls_get_result_until_ordered(shop: Shop) -> None:
    goods_id = await shop.goods(stock=5)
    [user] = await create_users(shop.config, 1)

    bought, final = await shop.browser(user).seckill_vue()

    assert bought["code"] == 100
    assert bought["msg"] == "正在排队"
    assert isinstance(bought["id"], str)
    assert final is not None
    assert (final["code"], final["msg"]) == (100, "秒杀成功")
    assert isinstance(final["order_no"], str)
    state = await sale_state(shop.config, goods_id)
    assert (state.stock, state.order_users) == (4, [user])


async def test_sckill_vue_posts_by_name_and_polls_until_ordered(shop: Shop) -> None:
    goods_id = await shop.goods(stock=5)
    [user] = await create_users(shop.config, 1)

    bought, final = await shop.browser(user).sckill_vue(HAT)

    assert (bought["code"], bought["msg"]) == (100, "您正在排队")
    assert final is not None
    assert (final["code"], final["msg"]) == (100, "秒杀成功")
    assert (await sale_state(shop.config, goods_id)).order_users == [user]


async def test_seckill_vue_a_second_time_is_a_duplicate(shop: Shop) -> None:
    await shop.goods(stock=5)
    [user] = await create_users(shop.config, 1)
    await shop.browser(user).seckill_vue()

    bought, final = await shop.browser(user).seckill_vue()

    assert bought["code"] == 100, "embedded mode: the order task finds the duplicate"
    assert final == {"code": 101, "msg": "秒杀失败", "reason": "duplicate"}


async def test_seckill_vue_on_sold_out_goods_is_101_at_once(shop: Shop) -> None:
    await shop.goods(stock=0)
    [user] = await create_users(shop.config, 1)

    bought, final = await shop.browser(user).seckill_vue()

    assert (bought, final) == ({"code": 101, "msg": "秒杀失败", "reason": "sold_out"}, None)


# --- which goods user/seckill/ buys (both gates) --------------------------------------------------


async def test_with_nothing_on_sale_it_is_a_400(either_gate: Shop) -> None:
    await either_gate.goods(name="later", start=NOW + HOUR)
    await either_gate.goods(name="over", start=NOW - 2 * HOUR, end=NOW - HOUR)
    [user] = await create_users(either_gate.config, 1)

    response = await either_gate.buy_now(user)

    assert response.status_code == 400
    assert response.json() == {"code": 999, "msg": "当前没有秒杀活动"}


async def test_of_several_on_sale_it_buys_the_one_whose_sale_started_last(either_gate: Shop) -> None:
    await either_gate.goods(name="earlier", start=NOW - 2 * HOUR)
    latest = await either_gate.goods(name="latest", start=NOW - HOUR)
    await either_gate.goods(name="not yet", start=NOW + HOUR)
    [user] = await create_users(either_gate.config, 1)

    response = await either_gate.buy_now(user)

    assert response.json()["code"] == 100
    assert await _goods_of_task(either_gate, response.json()["id"]) == latest


async def test_goods_id_picks_the_goods(either_gate: Shop) -> None:
    earlier = await either_gate.goods(name="earlier", start=NOW - 2 * HOUR)
    await either_gate.goods(name="latest", start=NOW - HOUR)
    later = await either_gate.goods(name="not yet", start=NOW + HOUR)
    [user] = await create_users(either_gate.config, 1)

    picked = await either_gate.buy_now(user, goods_id=earlier)
    not_started = await either_gate.buy_now(user, goods_id=later)
    unknown = await either_gate.buy_now(user, goods_id=999_999)

    assert picked.json()["code"] == 100
    assert await _goods_of_task(either_gate, picked.json()["id"]) == earlier
    assert (not_started.status_code, not_started.json()["msg"]) == (400, "秒杀尚未开始")
    assert (unknown.status_code, unknown.json()["msg"]) == (404, "秒杀商品不存在")


async def _goods_of_task(shop: Shop, task_id: str) -> int:
    """The goods a queued task holds: the order once it is placed (embedded), else its Redis reservation."""
    gate = shop.app.state.seckill_gate
    if isinstance(gate, RedisReservations):
        for goods_id in await gate.goods_ids():
            if await gate.redis.hexists(f"luffy:seckill:pending:{goods_id}", task_id):
                return goods_id
        raise AssertionError(f"task {task_id} holds no reservation")
    final = await shop.browser(await gate.owner(task_id)).poll_until_finished(GET_RESULT, {"id": task_id}, 20)
    async with session_scope(shop.config) as session:
        return await session.scalar(select(SeckillOrder.goods_id).where(SeckillOrder.order_no == final["order_no"]))


@pytest.mark.parametrize("either_gate", ["redis"], indirect=True)
async def test_the_page_buy_and_its_polls_make_no_database_query_in_production(either_gate: Shop) -> None:
    await either_gate.goods(stock=5)
    [user] = await create_users(either_gate.config, 1)

    with count_statements(either_gate.config.get_engine()) as statements:
        bought = await either_gate.buy_now(user)
        polled = await either_gate.result(user, bought.json()["id"])

    assert statements == []
    assert bought.json()["code"] == 100
    assert polled.json() == {"code": 102, "msg": "还在排队"}


# --- get_result ----------------------------------------------------------------------------------


@pytest.mark.parametrize("task_id", ["0" * 32, "秒杀", "'; DROP TABLE luffy_user; --", "../../etc/passwd", "%00"])
async def test_get_result_for_an_unknown_id_says_still_queued_so_the_page_keeps_polling(
    either_gate: Shop, task_id: str
) -> None:
    [user] = await create_users(either_gate.config, 1)

    response = await either_gate.result(user, task_id)

    assert response.status_code == 200
    assert response.json() == {"code": 102, "msg": "还在排队"}


async def test_get_result_for_another_users_task_tells_nothing(shop: Shop) -> None:
    await shop.goods(stock=5)
    owner, stranger = await create_users(shop.config, 2)
    bought, final = await shop.browser(owner).seckill_vue()
    assert final is not None
    assert final["code"] == 100

    reply = await shop.result(stranger, bought["id"])

    assert reply.json() == {"code": 102, "msg": "还在排队"}


# --- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize("goods_id", ["0", "-1", "abc", "1.5", "１", "一", str(2**63), "9" * 400, "", "true", "0x10"])
async def test_a_bad_goods_id_is_a_400(either_gate: Shop, goods_id: str) -> None:
    await either_gate.goods(stock=5)
    [user] = await create_users(either_gate.config, 1)

    response = await either_gate.buy_now(user, goods_id=goods_id)

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 999


@pytest.mark.parametrize("params", [{}, {"id": ""}, {"id": "x" * 65}, {"id": "秒" * 1000}])
async def test_a_missing_empty_or_huge_result_id_is_a_400(either_gate: Shop, params: dict[str, str]) -> None:
    [user] = await create_users(either_gate.config, 1)

    response = await either_gate.client.get(GET_RESULT, params=params, headers=same_origin(either_gate.token(user)))

    assert response.status_code == 400, response.text
    assert response.json()["code"] == 999


async def test_the_pages_without_a_token_are_401(either_gate: Shop) -> None:
    seckill = await either_gate.client.get(SECKILL)
    result = await either_gate.client.get(GET_RESULT, params={"id": "x"})
    assert (seckill.status_code, result.status_code) == (401, 401)
