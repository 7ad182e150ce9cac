"""The seckill endpoints with the production gate (Redis) in-process: answers and query budget.

Each test runs twice: against the Litestar app, and against what ``luffy serve`` serves
(``luffy.asgi.build``: the purchase lane answers the POSTs before the framework).
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis

from luffy.app import create_app
from luffy.asgi import build
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seckill.reservations import RedisGoods
from luffy.seckill.services import publish_goods
from luffy.settings import Settings
from luffy.tasks.broker import seckill_broker
from luffy.tasks.seckill import PURCHASE_TASK
from luffy.user.auth import issue_token
from luffy.user.services import set_user_active
from tests.support.seckill_support import HAT, create_goods, create_users, running
from tests.support.sqlcount import count_statements

URL = "/api/v1/user/sckill/"
NOW = datetime.datetime.now(datetime.UTC)


class Shop:
    def __init__(self, app: object, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.config = app.state.sqlalchemy_config  # type: ignore[attr-defined]

    def headers(self, user_id: int) -> dict[str, str]:
        token = issue_token(self.app.state.jwt_auth, user_id, str(user_id))  # type: ignore[attr-defined]
        return {"Authorization": f"Bearer {token}"}

    async def buy(self, user_id: int, body: dict[str, object] | None = None) -> httpx.Response:
        return await self.client.post(URL, json=body or {"name": HAT}, headers=self.headers(user_id))

    async def publish(self) -> None:
        """What ``luffy seckill load`` does after writing the database."""
        async with session_scope(self.config) as session:
            await publish_goods(session, self.app.state.seckill_gate)  # type: ignore[attr-defined]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(params=["app", "served"])
async def shop(
    request: pytest.FixtureRequest,
    redis: Redis,
    clean_database: str,
    make_settings: Callable[..., Settings],
    redis_url: str,
) -> AsyncIterator[Shop]:
    settings = make_settings(clean_database, redis_url)
    served = build(settings) if request.param == "served" else None
    app = create_app(settings) if served is None else served.litestar  # type: ignore[attr-defined]
    async with running(app):
        transport = httpx.ASGITransport(app=served or app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Shop(app, client)


async def test_post_and_poll_make_no_database_query(shop: Shop) -> None:
    await create_goods(shop.config, stock=2)
    await shop.publish()
    first, second, third = await create_users(shop.config, 3)

    with count_statements(shop.config.get_engine()) as statements:
        queued = await shop.buy(first)
        await shop.buy(second)
        sold_out = await shop.buy(third)
        duplicate = await shop.buy(first)
        polled = await shop.client.get(URL, params={"task_id": queued.json()["task_id"]}, headers=shop.headers(first))

    assert statements == []
    assert queued.json()["code"] == 100
    assert sold_out.json() == {"code": 101, "msg": "秒杀失败", "reason": "sold_out"}
    assert duplicate.json() == {"code": 101, "msg": "秒杀失败", "reason": "duplicate"}
    assert polled.json() == {"code": 103, "msg": "还在排队"}, "no worker runs in this test: the task waits"


async def test_a_disabled_buyer_is_refused_by_the_admission_script_without_a_database_query(shop: Shop) -> None:
    goods_id = await create_goods(shop.config, stock=2)
    await shop.publish()
    disabled, other = await create_users(shop.config, 2)
    async with session_scope(shop.config) as session:
        await set_user_active(session, disabled, False)

    with count_statements(shop.config.get_engine()) as statements:
        refused = await shop.buy(disabled)
        queued = await shop.buy(other)

    assert statements == []
    assert (refused.status_code, refused.json()) == (401, {"code": 999, "msg": "用户不存在或已停用"})
    assert queued.json()["code"] == 100
    reservations = shop.app.state.seckill_gate  # type: ignore[attr-defined]
    assert (await reservations.state([goods_id]))[goods_id] == RedisGoods(stock=1, pending=1, buyers=1)


async def test_goods_and_window_checks_come_from_redis(shop: Shop) -> None:
    await create_goods(shop.config, name="later", start=NOW + datetime.timedelta(hours=1))
    await create_goods(shop.config, name="over", start=NOW - datetime.timedelta(hours=2), end=NOW)
    await shop.publish()
    [user] = await create_users(shop.config, 1)

    later = await shop.buy(user, {"name": "later"})
    over = await shop.buy(user, {"name": "over"})
    unknown = await shop.buy(user, {"name": "nothing"})

    assert (later.status_code, later.json()["msg"]) == (400, "秒杀尚未开始")
    assert (over.status_code, over.json()["msg"]) == (400, "秒杀已结束")
    assert (unknown.status_code, unknown.json()["msg"]) == (404, "秒杀商品不存在")


async def test_another_users_task_is_102(shop: Shop) -> None:
    await create_goods(shop.config, stock=2)
    await shop.publish()
    owner, stranger = await create_users(shop.config, 2)
    task_id = (await shop.buy(owner)).json()["task_id"]

    reply = await shop.client.get(URL, params={"task_id": task_id}, headers=shop.headers(stranger))

    assert reply.json() == {"code": 102, "msg": "没成功"}


async def test_redis_down_is_a_503_not_a_500(clean_database: str, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(clean_database, "redis://127.0.0.1:1/0")
    config = make_sqlalchemy_config(settings)
    [user] = await create_users(config, 1)
    await config.get_engine().dispose()
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            shop = Shop(app, client)
            bought = await shop.buy(user)
            polled = await client.get(URL, params={"task_id": "0" * 32}, headers=shop.headers(user))

    assert (bought.status_code, bought.json()["code"]) == (503, 888)
    assert (polled.status_code, polled.json()["code"]) == (503, 888)


async def test_a_queued_purchase_is_enqueued_by_the_admission_script_not_by_a_second_send(
    shop: Shop, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    goods_id = await create_goods(shop.config, stock=1)
    await shop.publish()
    buyer, late = await create_users(shop.config, 2)

    async def no_second_send(_message: object) -> None:
        raise AssertionError("the order task was sent apart from its admission")

    monkeypatch.setattr(seckill_broker, "kick", no_second_send)
    task_id = (await shop.buy(buyer)).json()["task_id"]
    sold_out = await shop.buy(late)

    [(_entry_id, fields)] = await redis.xrange(seckill_broker.stream_name)
    message = seckill_broker.formatter.loads(fields[b"data"])
    assert (message.task_id, message.task_name) == (task_id, PURCHASE_TASK)
    assert message.kwargs == {"goods_id": goods_id, "user_id": buyer}
    assert sold_out.json()["reason"] == "sold_out"
