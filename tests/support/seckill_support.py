"""Helpers shared by the seckill tests: buyers, goods and the sale's invariants read from the database."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal

import httpx
import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar import Litestar
from sqlalchemy import func, insert, select

from luffy.db import session_scope
from luffy.seckill.models import SeckillGoods, SeckillOrder
from luffy.seckill.services import load_goods
from luffy.user.auth import issue_token
from luffy.user.models import User

HAT = "性感帽子"


class AppClient:
    """A running app, a client on the test's loop, and tokens the app accepts."""

    def __init__(self, app: Litestar, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client
        self.config: SQLAlchemyAsyncConfig = app.state.sqlalchemy_config

    def token(self, user_id: int) -> str:
        return issue_token(self.app.state.jwt_auth, user_id, str(user_id))


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """The app's lifespan, held by one task (its cancel scopes must be left by the task that entered them)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait([holder, asyncio.create_task(started.wait())], return_when=asyncio.FIRST_COMPLETED)
    if holder.done():
        holder.result()
    try:
        yield
    finally:
        stop.set()
        await holder


async def create_users(config: SQLAlchemyAsyncConfig, count: int, *, first_mobile: int = 13_000_000_000) -> list[int]:
    """``count`` buyers inserted in one statement; their ids in mobile order."""
    mobiles = [str(first_mobile + index) for index in range(count)]
    async with session_scope(config) as session:
        await session.execute(insert(User), [{"username": mobile, "mobile": mobile} for mobile in mobiles])
        rows = await session.execute(select(User.mobile, User.id).where(User.mobile.in_(mobiles)))
        ids = {mobile: user_id for mobile, user_id in rows}
    return [ids[mobile] for mobile in mobiles]


async def create_goods(
    config: SQLAlchemyAsyncConfig,
    *,
    name: str = HAT,
    stock: int = 10,
    price: str = "99.00",
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
) -> int:
    async with session_scope(config) as session:
        goods = await load_goods(
            session,
            name=name,
            stock=stock,
            price=Decimal(price),
            start=start or datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1),
            end=end,
        )
        return goods.id


class SaleState(msgspec.Struct, frozen=True):
    stock: int
    orders: int
    buyers_with_two_orders: int
    order_users: list[int]


async def sale_state(config: SQLAlchemyAsyncConfig, goods_id: int) -> SaleState:
    async with session_scope(config) as session:
        stock = await session.scalar(select(SeckillGoods.stock).where(SeckillGoods.id == goods_id))
        users = list(await session.scalars(select(SeckillOrder.user_id).where(SeckillOrder.goods_id == goods_id)))
        doubles = await session.scalar(
            select(func.count()).select_from(
                select(SeckillOrder.user_id)
                .where(SeckillOrder.goods_id == goods_id)
                .group_by(SeckillOrder.user_id)
                .having(func.count() > 1)
                .subquery()
            )
        )
    assert stock is not None
    return SaleState(stock=stock, orders=len(users), buyers_with_two_orders=int(doubles or 0), order_users=users)
