"""The seckill endpoints in embedded mode (in-process tasks), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import update

from luffy.app import create_app
from luffy.seckill.models import SeckillGoods
from luffy.settings import Settings
from luffy.user.auth import issue_token
from tests.support.seckill_support import HAT, create_goods, create_users, running, sale_state

URL = "/api/v1/user/sckill/"
NOW = datetime.datetime.now(datetime.UTC)
FINAL_WITHIN_SECONDS = 20


class Sale:
    """A running app and an HTTP client on the test's own event loop, so requests really overlap."""

    def __init__(self, app: Litestar, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.config = app.state.sqlalchemy_config

    def token(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.app.state.jwt_auth, user_id, str(user_id))}"}

    async def buy(self, user_id: int, body: dict[str, object] | None = None) -> httpx.Response:
        return await self.client.post(URL, json=body or {"name": HAT}, headers=self.token(user_id))

    async def poll(self, user_id: int, task_id: str) -> httpx.Response:
        return await self.client.get(URL, params={"task_id": task_id}, headers=self.token(user_id))

    async def final(self, user_id: int, task_id: str) -> dict[str, object]:
        """The poll answer once it is no longer 103 (still queued)."""
        async with asyncio.timeout(FINAL_WITHIN_SECONDS):
            while True:
                reply = (await self.poll(user_id, task_id)).json()
                if reply["code"] != 103:
                    return reply
                await asyncio.sleep(0.02)

    async def finals(self, tasks: list[tuple[int, str]]) -> list[dict[str, object]]:
        """Final answers of many tasks, polled in rounds like patient clients (not a flood that starves them)."""
        answers: dict[str, dict[str, object]] = {}
        async with asyncio.timeout(FINAL_WITHIN_SECONDS):
            while len(answers) < len(tasks):
                for user_id, task_id in tasks:
                    if task_id not in answers:
                        reply = (await self.poll(user_id, task_id)).json()
                        if reply["code"] != 103:
                            answers[task_id] = reply
                await asyncio.sleep(0.05)
        return [answers[task_id] for _, task_id in tasks]


@pytest.fixture
async def sale(settings: Settings) -> AsyncIterator[Sale]:
    app = create_app(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Sale(app, client)


async def test_no_token_is_a_401(sale: Sale) -> None:
    post = await sale.client.post(URL, json={"name": HAT})
    get = await sale.client.get(URL, params={"task_id": "x"})
    bad = await sale.client.post(URL, json={"name": HAT}, headers={"Authorization": "Bearer not-a-token"})
    assert (post.status_code, get.status_code, bad.status_code) == (401, 401, 401)
    assert post.json()["code"] == 999


async def test_a_purchase_is_queued_then_ordered(sale: Sale) -> None:
    goods_id = await create_goods(sale.config, stock=5, price="99.00")
    [user] = await create_users(sale.config, 1)

    response = await sale.buy(user)

    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["msg"]) == (100, "您正在排队")
    final = await sale.final(user, body["task_id"])
    assert (final["code"], final["msg"]) == (100, "秒杀成功")
    assert isinstance(final["order_no"], str)
    assert len(final["order_no"]) > 10
    state = await sale_state(sale.config, goods_id)
    assert (state.stock, state.orders) == (4, 1)


async def test_by_goods_id_and_without_the_trailing_slash(sale: Sale) -> None:
    goods_id = await create_goods(sale.config, stock=5)
    [user] = await create_users(sale.config, 1)

    response = await sale.client.post(URL.rstrip("/"), json={"goods_id": goods_id}, headers=sale.token(user))

    assert response.json()["code"] == 100
    assert (await sale.final(user, response.json()["task_id"]))["code"] == 100


async def test_a_second_purchase_is_a_duplicate(sale: Sale) -> None:
    await create_goods(sale.config, stock=5)
    [user] = await create_users(sale.config, 1)
    first = (await sale.buy(user)).json()
    await sale.final(user, first["task_id"])

    second = (await sale.buy(user)).json()

    assert await sale.final(user, second["task_id"]) == {"code": 101, "msg": "秒杀失败", "reason": "duplicate"}


async def test_sold_out_is_answered_at_once(sale: Sale) -> None:
    await create_goods(sale.config, stock=0)
    [user] = await create_users(sale.config, 1)

    response = await sale.buy(user)

    assert response.status_code == 200
    assert response.json() == {"code": 101, "msg": "秒杀失败", "reason": "sold_out"}


async def test_unknown_goods_is_a_404(sale: Sale) -> None:
    await create_goods(sale.config, stock=5)
    [user] = await create_users(sale.config, 1)

    by_name = await sale.buy(user, {"name": "不存在的商品"})
    by_id = await sale.buy(user, {"goods_id": 999_999})

    assert (by_name.status_code, by_id.status_code) == (404, 404)
    assert by_name.json() == {"code": 999, "msg": "秒杀商品不存在"}


async def test_hidden_goods_is_a_404(sale: Sale) -> None:
    await create_goods(sale.config, stock=5)
    async with sale.config.get_session() as session:
        await session.execute(update(SeckillGoods).values(is_show=False))
        await session.commit()
    [user] = await create_users(sale.config, 1)

    assert (await sale.buy(user)).status_code == 404


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (NOW + datetime.timedelta(hours=1), None, "秒杀尚未开始"),
        (NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1), "秒杀已结束"),
    ],
    ids=["before-start", "after-end"],
)
async def test_outside_the_sale_window_is_a_400(
    sale: Sale, start: datetime.datetime, end: datetime.datetime | None, message: str
) -> None:
    goods_id = await create_goods(sale.config, stock=5, start=start, end=end)
    [user] = await create_users(sale.config, 1)

    response = await sale.buy(user)

    assert response.status_code == 400
    assert response.json() == {"code": 999, "msg": message}
    assert (await sale_state(sale.config, goods_id)).stock == 5


@pytest.mark.parametrize(
    "body",
    [{}, {"name": HAT, "goods_id": 1}, {"name": ""}, {"name": "x" * 65}, {"goods_id": 0}, {"goods_id": "one"}, [1]],
)
async def test_malformed_requests_are_a_400(sale: Sale, body: object) -> None:
    await create_goods(sale.config, stock=5)
    [user] = await create_users(sale.config, 1)

    response = await sale.client.post(URL, json=body, headers=sale.token(user))

    assert response.status_code == 400
    assert response.json()["code"] == 999


async def test_a_body_that_is_not_json_is_a_400(sale: Sale) -> None:
    [user] = await create_users(sale.config, 1)
    headers = {**sale.token(user), "Content-Type": "application/json"}
    response = await sale.client.post(URL, content=b"{not json", headers=headers)
    assert response.status_code == 400


async def test_another_users_task_is_102(sale: Sale) -> None:
    await create_goods(sale.config, stock=5)
    owner, stranger = await create_users(sale.config, 2)
    task_id = (await sale.buy(owner)).json()["task_id"]
    await sale.final(owner, task_id)

    reply = (await sale.poll(stranger, task_id)).json()

    assert reply == {"code": 102, "msg": "没成功"}


async def test_unknown_task_ids(sale: Sale) -> None:
    [user] = await create_users(sale.config, 1)

    unknown = await sale.poll(user, "0" * 32)
    too_long = await sale.poll(user, "x" * 65)
    missing = await sale.client.get(URL, headers=sale.token(user))

    assert (unknown.status_code, unknown.json()) == (200, {"code": 102, "msg": "没成功"})
    assert (too_long.status_code, missing.status_code) == (400, 400)


async def test_embedded_sale_keeps_every_invariant(sale: Sale) -> None:
    goods_id = await create_goods(sale.config, stock=20)
    users = await create_users(sale.config, 200)

    replies = await asyncio.gather(*(sale.buy(user) for user in users))
    tasks = [(user, reply.json()) for user, reply in zip(users, replies, strict=True)]
    finals = await sale.finals([(user, body["task_id"]) for user, body in tasks if body["code"] == 100])

    outcomes = Counter(
        (final["code"], final.get("reason")) for final in [*finals, *(b for _, b in tasks if b["code"] == 101)]
    )
    assert outcomes == {(100, None): 20, (101, "sold_out"): 180}
    state = await sale_state(sale.config, goods_id)
    assert (state.stock, state.orders, state.buyers_with_two_orders) == (0, 20, 0)


async def test_embedded_one_user_racing_gets_one_order(sale: Sale) -> None:
    goods_id = await create_goods(sale.config, stock=20)
    [user] = await create_users(sale.config, 1)

    replies = await asyncio.gather(*(sale.buy(user) for _ in range(20)))
    finals = await sale.finals([(user, reply.json()["task_id"]) for reply in replies])

    assert Counter((final["code"], final.get("reason")) for final in finals) == {
        (100, None): 1,
        (101, "duplicate"): 19,
    }
    state = await sale_state(sale.config, goods_id)
    assert (state.stock, state.orders) == (19, 1)


async def test_openapi_documents_both_operations(sale: Sale) -> None:
    paths = (await sale.client.get("/schema/openapi.json")).json()["paths"]
    operation = paths["/api/v1/user/sckill"]
    assert set(operation) >= {"get", "post"}
    assert any(parameter["name"] == "task_id" for parameter in operation["get"]["parameters"])
