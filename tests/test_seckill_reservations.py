"""The Redis gate on a real Redis: one atomic script admits, settles and rebuilds."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError
from taskiq.exceptions import SendTaskError

from luffy.app import create_app
from luffy.db import make_sqlalchemy_config
from luffy.errors import Unavailable
from luffy.seckill.reservations import (
    ABANDONED,
    ENDED,
    NOT_STARTED,
    PREFIX,
    QUEUED,
    UNKNOWN,
    Admission,
    GoodsState,
    RedisGoods,
    RedisReservations,
    TaskEntry,
)
from luffy.seckill.schemas import DUPLICATE, NOT_ACTIVE, ORDERED, SOLD_OUT, PurchaseRequest
from luffy.seckill.services import new_task_id, request_purchase
from luffy.settings import Settings
from tests.support.seckill_support import HAT, create_goods, running

HAT_ID = 7


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_pool(BlockingConnectionPool.from_url(redis_url, max_connections=20))
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def reservations(redis: Redis) -> RedisReservations:
    """Reservations in a Redis whose sale state is complete (what a full publish leaves behind)."""
    reservations = RedisReservations(redis, owner_ttl_seconds=60)
    await reservations.mark_loaded(time.time())
    return reservations


def hat(
    stock: int = 3, *, start: float | None = None, end: float | None = None, buyers: list[int] | None = None
) -> GoodsState:
    return GoodsState(
        id=HAT_ID,
        name=HAT,
        price=Decimal("99.00"),
        stock=stock,
        start=time.time() - 60 if start is None else start,
        end=end,
        buyers=buyers or [],
    )


async def admit(reservations: RedisReservations, user_id: int, *, by_name: bool = True, task_id: str = "") -> Admission:
    return await reservations.admit(
        name=HAT if by_name else None,
        goods_id=None if by_name else HAT_ID,
        user_id=user_id,
        task_id=task_id or new_task_id(),
        now=time.time(),
    )


async def test_admission_takes_a_unit_and_records_the_owner(reservations: RedisReservations, redis: Redis) -> None:
    await reservations.sync(hat(stock=3))
    task_id = new_task_id()

    admission = await admit(reservations, 41, task_id=task_id)

    assert admission == Admission(status=QUEUED, goods_id=HAT_ID)
    assert await reservations.owner(task_id) == 41
    assert 0 < await redis.ttl(f"{PREFIX}task:{task_id}") <= 60
    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=2, pending=1, buyers=1)


STREAM = "luffy:queue:test-seckill"


def entry(maxlen: int | None = 100) -> TaskEntry:
    return TaskEntry(stream=STREAM, head=b'{"goods_id":', tail=b',"user":1}', maxlen=maxlen, approximate=True)


async def test_admission_given_the_task_entry_enqueues_it_with_the_goods_id_in_the_same_script(
    reservations: RedisReservations, redis: Redis
) -> None:
    await reservations.sync(hat(stock=1))

    queued = await reservations.admit(
        name=HAT, goods_id=None, user_id=1, task_id=new_task_id(), now=time.time(), entry=entry()
    )
    refused = await reservations.admit(
        name=HAT, goods_id=None, user_id=2, task_id=new_task_id(), now=time.time(), entry=entry(maxlen=None)
    )

    assert queued == Admission(status=QUEUED, goods_id=HAT_ID, enqueued=True)
    assert refused == Admission(status=SOLD_OUT, goods_id=HAT_ID, enqueued=False)
    assert [fields for _id, fields in await redis.xrange(STREAM)] == [{b"data": b'{"goods_id":7,"user":1}'}]


async def test_an_entry_that_cannot_be_added_takes_nothing(reservations: RedisReservations, redis: Redis) -> None:
    await reservations.sync(hat(stock=1))
    await redis.set(STREAM, "not a stream")

    with pytest.raises(ResponseError):
        await reservations.admit(name=HAT, goods_id=None, user_id=1, task_id="t", now=time.time(), entry=entry())

    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=1, pending=0, buyers=0)
    assert await reservations.owner("t") is None


async def test_admission_by_id_works_like_by_name(reservations: RedisReservations) -> None:
    await reservations.sync(hat())
    assert (await admit(reservations, 1, by_name=False)).status == QUEUED


async def test_unknown_goods(reservations: RedisReservations) -> None:
    await reservations.sync(hat())
    assert (await reservations.admit(name="nope", goods_id=None, user_id=1, task_id="t", now=time.time())).status == (
        UNKNOWN
    )
    assert (await reservations.admit(name=None, goods_id=999, user_id=1, task_id="t", now=time.time())).status == (
        UNKNOWN
    )


async def test_the_sale_window_is_checked_first(reservations: RedisReservations) -> None:
    await reservations.sync(hat(start=time.time() + 3600))
    assert (await admit(reservations, 1)).status == NOT_STARTED
    await reservations.sync(hat(start=time.time() - 7200, end=time.time() - 3600))
    assert (await admit(reservations, 1)).status == ENDED
    assert (await reservations.state([HAT_ID]))[HAT_ID].stock == 3


async def test_one_unit_per_user_then_sold_out(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=1))

    assert (await admit(reservations, 1)).status == QUEUED
    assert (await admit(reservations, 1)).status == DUPLICATE
    assert (await admit(reservations, 2)).status == SOLD_OUT


async def test_concurrent_admissions_hand_out_exactly_the_stock(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=20))

    distinct = await asyncio.gather(*(admit(reservations, user) for user in range(1, 201)))
    same_user = await asyncio.gather(*(admit(reservations, 500) for _ in range(20)))

    assert Counter(a.status for a in distinct) == {QUEUED: 20, SOLD_OUT: 180}
    assert Counter(a.status for a in same_user) == {SOLD_OUT: 20}
    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=0, pending=20, buyers=20)


async def test_one_user_racing_gets_one_reservation(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=20))

    outcomes = await asyncio.gather(*(admit(reservations, 500) for _ in range(20)))

    assert Counter(a.status for a in outcomes) == {QUEUED: 1, DUPLICATE: 19}


@pytest.mark.parametrize(
    ("outcome", "stock", "buyers"),
    [
        (ORDERED, 1, 1),  # the unit became an order
        (DUPLICATE, 2, 1),  # the user already had an order: unit back, still a buyer
        (SOLD_OUT, 1, 0),  # the database had no unit: nothing to give back, the user may retry
        (NOT_ACTIVE, 2, 0),
        (ABANDONED, 2, 0),
    ],
)
async def test_settling_a_reservation(reservations: RedisReservations, outcome: str, stock: int, buyers: int) -> None:
    await reservations.sync(hat(stock=2))
    task_id = new_task_id()
    await admit(reservations, 9, task_id=task_id)

    await reservations.settle(HAT_ID, task_id, outcome)
    await reservations.settle(HAT_ID, task_id, outcome)  # a redelivered task settles again: no effect

    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=stock, pending=0, buyers=buyers)


async def test_sync_keeps_reservations_in_flight(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=5))
    await admit(reservations, 1)
    await admit(reservations, 2)

    # The database now says 5 units, 3 earlier orders (users 7, 8, 9): two of the 5 are reserved.
    stock = await reservations.sync(hat(stock=5, buyers=[7, 8, 9]))

    assert stock == 3
    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=3, pending=2, buyers=5)
    assert (await admit(reservations, 8)).status == DUPLICATE


async def test_sync_drops_stale_reservations(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=5))
    await admit(reservations, 1)

    stock = await reservations.sync(hat(stock=5), stale_before=time.time() + 1)

    assert stock == 5
    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=5, pending=0, buyers=0)
    assert (await admit(reservations, 1)).status == QUEUED


async def test_sync_only_if_missing_leaves_a_live_sale_alone(reservations: RedisReservations) -> None:
    assert await reservations.sync(hat(stock=5), only_if_missing=True) == 5
    await admit(reservations, 1)

    assert await reservations.sync(hat(stock=5), only_if_missing=True) is None
    assert (await reservations.state([HAT_ID]))[HAT_ID].stock == 4


async def test_a_renamed_goods_answers_to_its_new_name_only(reservations: RedisReservations) -> None:
    await reservations.sync(hat())
    renamed = GoodsState(
        id=HAT_ID, name="新帽子", price=Decimal("1.00"), stock=3, start=time.time() - 60, end=None, buyers=[]
    )
    await reservations.sync(renamed)

    assert (await admit(reservations, 1)).status == UNKNOWN
    assert (await reservations.admit(name="新帽子", goods_id=None, user_id=1, task_id="t", now=time.time())).status == (
        QUEUED
    )


async def test_remove_forgets_the_goods(reservations: RedisReservations) -> None:
    await reservations.sync(hat())
    assert await reservations.goods_ids() == [HAT_ID]

    await reservations.remove(HAT_ID)

    assert await reservations.goods_ids() == []
    assert (await admit(reservations, 1)).status == UNKNOWN
    assert await reservations.state([HAT_ID]) == {}


async def test_many_buyers_fit_in_one_sync(reservations: RedisReservations) -> None:
    buyers = list(range(1, 25_001))
    await reservations.sync(hat(stock=0, buyers=buyers))
    assert (await reservations.state([HAT_ID]))[HAT_ID].buyers == 25_000


async def test_app_start_up_copies_goods_redis_lacks_and_leaves_live_ones_alone(
    redis: Redis, clean_database: str, make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings(clean_database, redis_url)
    config = make_sqlalchemy_config(settings)
    goods_id = await create_goods(config, stock=5)
    await config.get_engine().dispose()
    reservations = RedisReservations(redis, owner_ttl_seconds=60)

    async with running(create_app(settings)):
        assert (await reservations.state([goods_id]))[goods_id] == RedisGoods(stock=5, pending=0, buyers=0)
        await reservations.admit(name=HAT, goods_id=None, user_id=1, task_id=new_task_id(), now=time.time())
    async with running(create_app(settings)):
        assert (await reservations.state([goods_id]))[goods_id] == RedisGoods(stock=4, pending=1, buyers=1)


async def test_a_reservation_whose_task_cannot_be_enqueued_is_given_back(reservations: RedisReservations) -> None:
    await reservations.sync(hat(stock=1))

    async def broken_queue(_task_id: str, _goods_id: int, _user_id: int) -> None:
        raise SendTaskError

    with pytest.raises(Unavailable):
        await request_purchase(reservations, PurchaseRequest(name=HAT), 5, broken_queue)

    assert (await reservations.state([HAT_ID]))[HAT_ID] == RedisGoods(stock=1, pending=0, buyers=0)
    assert (await admit(reservations, 5)).status == QUEUED
