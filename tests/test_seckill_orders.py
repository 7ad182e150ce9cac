"""The order transaction on SQLite and PostgreSQL: no oversell, one order per user, idempotent per task."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import select, update

from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seckill.models import SeckillGoods, SeckillOrder
from luffy.seckill.schemas import DUPLICATE, NOT_ACTIVE, ORDERED, SOLD_OUT, PurchaseOutcome
from luffy.seckill.services import (
    OrderBatcher,
    SeckillError,
    load_goods,
    new_task_id,
    place_order,
    stock_report,
)
from luffy.seed import load_seed
from luffy.settings import Settings
from tests.conftest import truncate_all
from tests.support.seckill_support import HAT, create_goods, create_users, sale_state
from tests.support.sqlcount import count_statements

NOW = datetime.datetime.now(datetime.UTC)


@pytest.fixture
async def config(settings: Settings) -> AsyncIterator[SQLAlchemyAsyncConfig]:
    config = make_sqlalchemy_config(settings)
    yield config
    await config.get_engine().dispose()


async def buy(
    config: SQLAlchemyAsyncConfig, goods_id: int, user_id: int, task_id: str | None = None
) -> PurchaseOutcome:
    async with session_scope(config) as session:
        return await place_order(
            session,
            task_id=task_id or new_task_id(),
            goods_id=goods_id,
            user_id=user_id,
            now=datetime.datetime.now(datetime.UTC),
        )


async def test_an_order_takes_one_unit_at_the_goods_price(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=3, price="12.50")
    [user] = await create_users(config, 1)

    outcome = await buy(config, goods_id, user)

    assert outcome.outcome == ORDERED
    assert outcome.order_no
    async with session_scope(config) as session:
        order = await session.scalar(select(SeckillOrder))
    assert order is not None
    assert (order.user_id, order.goods_id, order.price, order.order_no) == (
        user,
        goods_id,
        Decimal("12.50"),
        outcome.order_no,
    )
    assert (await sale_state(config, goods_id)).stock == 2


async def test_the_happy_path_is_one_statement_on_postgresql_two_on_sqlite(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=3)
    [user] = await create_users(config, 1)
    engine = config.get_engine()

    with count_statements(engine) as statements:
        await buy(config, goods_id, user)

    verbs = [statement.split()[0].upper() for statement in statements if not statement.upper().startswith("PRAGMA")]
    if engine.dialect.name == "postgresql":
        assert verbs == ["WITH"]
        assert "UPDATE luffy_seckill_goods" in statements[0]
        assert "INSERT INTO luffy_seckill_order" in statements[0]
    else:
        assert verbs == ["UPDATE", "INSERT"]


async def test_a_redelivered_task_reports_its_order_and_buys_nothing_more(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=5)
    [user] = await create_users(config, 1)
    task_id = new_task_id()

    first = await buy(config, goods_id, user, task_id)
    again = await buy(config, goods_id, user, task_id)

    assert first.outcome == again.outcome == ORDERED
    assert again.order_no == first.order_no
    state = await sale_state(config, goods_id)
    assert (state.stock, state.orders) == (4, 1)


async def test_a_redelivered_task_finds_its_order_even_after_the_last_unit(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=1)
    [user] = await create_users(config, 1)
    task_id = new_task_id()

    first = await buy(config, goods_id, user, task_id)
    again = await buy(config, goods_id, user, task_id)

    assert again == first
    assert (await sale_state(config, goods_id)).stock == 0


async def test_a_second_purchase_by_the_same_user_is_a_duplicate(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=5)
    [user] = await create_users(config, 1)

    await buy(config, goods_id, user)
    second = await buy(config, goods_id, user)

    assert second == PurchaseOutcome(outcome=DUPLICATE)
    state = await sale_state(config, goods_id)
    assert (state.stock, state.orders) == (4, 1)


async def test_no_unit_left_is_sold_out(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=1)
    first, second = await create_users(config, 2)

    await buy(config, goods_id, first)

    assert await buy(config, goods_id, second) == PurchaseOutcome(outcome=SOLD_OUT)


@pytest.mark.parametrize(
    ("start", "end", "visible"),
    [
        (NOW + datetime.timedelta(hours=1), None, True),
        (NOW - datetime.timedelta(hours=2), NOW - datetime.timedelta(hours=1), True),
        (NOW - datetime.timedelta(hours=1), None, False),
    ],
    ids=["before-start", "after-end", "hidden"],
)
async def test_goods_off_sale_is_not_active(
    config: SQLAlchemyAsyncConfig, start: datetime.datetime, end: datetime.datetime | None, visible: bool
) -> None:
    goods_id = await create_goods(config, stock=5, start=start, end=end)
    async with session_scope(config) as session:
        await session.execute(update(SeckillGoods).values(is_show=visible))
    [user] = await create_users(config, 1)

    assert await buy(config, goods_id, user) == PurchaseOutcome(outcome=NOT_ACTIVE)
    assert (await sale_state(config, goods_id)).stock == 5


async def test_concurrent_buyers_never_oversell(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=10)
    users = await create_users(config, 60)

    outcomes = await asyncio.gather(*(buy(config, goods_id, user) for user in users))

    assert Counter(outcome.outcome for outcome in outcomes) == {ORDERED: 10, SOLD_OUT: 50}
    state = await sale_state(config, goods_id)
    assert (state.stock, state.orders, state.buyers_with_two_orders) == (0, 10, 0)


async def test_one_user_racing_themselves_gets_one_order(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=10)
    [user] = await create_users(config, 1)

    outcomes = await asyncio.gather(*(buy(config, goods_id, user) for _ in range(20)))

    assert Counter(outcome.outcome for outcome in outcomes) == {ORDERED: 1, DUPLICATE: 19}
    state = await sale_state(config, goods_id)
    assert (state.stock, state.orders) == (9, 1)


async def test_load_creates_then_updates_by_name(config: SQLAlchemyAsyncConfig) -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    async with session_scope(config) as session:
        created = await load_goods(session, name=HAT, stock=100, price=Decimal("99.00"), start=start)
    async with session_scope(config) as session:
        updated = await load_goods(session, name=HAT, stock=40, end=start + datetime.timedelta(hours=1))
    async with session_scope(config) as session:
        reopened = await load_goods(session, name=HAT, stock=40, open_ended=True)

    assert updated.id == created.id == reopened.id
    assert (updated.stock, updated.price, updated.start_time) == (40, Decimal("99.00"), start)
    assert updated.end_time == start + datetime.timedelta(hours=1)
    assert reopened.end_time is None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"stock": -1}, "negative"),
        ({"price": Decimal("1000000")}, "price"),
        ({"name": " "}, "name"),
        ({"end": datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)}, "end after it starts"),
    ],
)
async def test_load_refuses_bad_goods(config: SQLAlchemyAsyncConfig, changes: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {"name": HAT, "stock": 1, **changes}
    async with session_scope(config) as session:
        with pytest.raises(SeckillError, match=problem):
            await load_goods(session, **arguments)  # type: ignore[arg-type]


async def test_stock_report_counts_orders_per_goods(config: SQLAlchemyAsyncConfig) -> None:
    goods_id = await create_goods(config, stock=5)
    await create_goods(config, name="other", stock=2)
    users = await create_users(config, 3)
    for user in users:
        await buy(config, goods_id, user)

    async with session_scope(config) as session:
        report = await stock_report(session, None)

    assert [(row.name, row.database_stock, row.orders, row.redis) for row in report] == [
        (HAT, 2, 3, None),
        ("other", 2, 0, None),
    ]


async def test_seeding_again_keeps_a_running_sales_stock(config: SQLAlchemyAsyncConfig, settings: Settings) -> None:
    async with session_scope(config) as session:
        await load_seed(session, settings.media_root)
    async with session_scope(config) as session:
        goods = await load_goods(session, name=HAT, stock=7)
    async with session_scope(config) as session:
        await load_seed(session, settings.media_root)

    assert (await sale_state(config, goods.id)).stock == 7


@pytest.fixture
async def postgres_config(
    postgres_url: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[SQLAlchemyAsyncConfig]:
    """The order batcher's database: PostgreSQL only (SQLite has one writer and no data-modifying CTE)."""
    await truncate_all(postgres_url)
    config = make_sqlalchemy_config(make_settings(postgres_url))
    yield config
    await config.get_engine().dispose()


async def test_orders_placed_together_are_one_statement_and_hand_out_exactly_the_stock(
    postgres_config: SQLAlchemyAsyncConfig,
) -> None:
    goods_id = await create_goods(postgres_config, stock=3)
    users = await create_users(postgres_config, 6)
    batcher = OrderBatcher(postgres_config)

    with count_statements(postgres_config.get_engine()) as statements:
        outcomes = await asyncio.gather(
            *(
                batcher.place(
                    task_id=new_task_id(), goods_id=goods_id, user_id=user, now=datetime.datetime.now(datetime.UTC)
                )
                for user in users
            )
        )

    assert Counter(outcome.outcome for outcome in outcomes) == {ORDERED: 3, SOLD_OUT: 3}
    assert sum("INSERT INTO luffy_seckill_order" in statement for statement in statements) == 1
    async with session_scope(postgres_config) as session:
        orders = {order.order_no: order.user_id for order in await session.scalars(select(SeckillOrder))}
        stock = await session.scalar(select(SeckillGoods.stock).where(SeckillGoods.id == goods_id))
    assert stock == 0
    assert orders == {o.order_no: user for o, user in zip(outcomes, users, strict=True) if o.outcome == ORDERED}


async def test_a_batch_answers_a_redelivered_task_and_a_second_buyer_as_one_order_at_a_time_would(
    postgres_config: SQLAlchemyAsyncConfig,
) -> None:
    goods_id = await create_goods(postgres_config, stock=5)
    redelivered, new, holder = await create_users(postgres_config, 3)
    first_task = new_task_id()
    first = await buy(postgres_config, goods_id, redelivered, first_task)
    await buy(postgres_config, goods_id, holder)
    batcher = OrderBatcher(postgres_config)

    again, fresh, second = await asyncio.gather(
        batcher.place(
            task_id=first_task, goods_id=goods_id, user_id=redelivered, now=datetime.datetime.now(datetime.UTC)
        ),
        batcher.place(task_id=new_task_id(), goods_id=goods_id, user_id=new, now=datetime.datetime.now(datetime.UTC)),
        batcher.place(
            task_id=new_task_id(), goods_id=goods_id, user_id=holder, now=datetime.datetime.now(datetime.UTC)
        ),
    )

    assert again == first
    assert fresh.outcome == ORDERED
    assert second == PurchaseOutcome(outcome=DUPLICATE)
    assert (await sale_state(postgres_config, goods_id)).stock == 2


async def test_batches_racing_other_writers_for_the_same_buyers_give_each_one_order_and_keep_the_stock_exact(
    postgres_config: SQLAlchemyAsyncConfig,
) -> None:
    goods_id = await create_goods(postgres_config, stock=5)
    users = await create_users(postgres_config, 4)
    batcher = OrderBatcher(postgres_config)
    tasks = [new_task_id() for _ in users]

    # A batch and other writers (as other worker processes) for the same buyers at once.
    outcomes = await asyncio.gather(
        *(
            batcher.place(task_id=task, goods_id=goods_id, user_id=user, now=datetime.datetime.now(datetime.UTC))
            for task, user in zip(tasks, users, strict=True)
        ),
        *(
            OrderBatcher(postgres_config).place(
                task_id=new_task_id(), goods_id=goods_id, user_id=user, now=datetime.datetime.now(datetime.UTC)
            )
            for user in users
        ),
    )

    assert Counter(outcome.outcome for outcome in outcomes) == {ORDERED: 4, DUPLICATE: 4}
    assert (await sale_state(postgres_config, goods_id)).stock == 1
