"""The flash sale's pure rules, without Redis or a database: the sale window and stock agreement."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest

from luffy.seckill.reservations import ENDED, NOT_STARTED, RedisGoods
from luffy.seckill.services import StockReport, new_order_no, window_status


@pytest.mark.parametrize(
    ("start", "end", "now", "status"),
    [
        (100.0, 200.0, 99.9, NOT_STARTED),
        (100.0, 200.0, 100.0, None),
        (100.0, 200.0, 200.0, None),
        (100.0, 200.0, 200.1, ENDED),
        (100.0, None, 1e12, None),
        (100.0, None, 50.0, NOT_STARTED),
    ],
)
def test_a_sale_is_open_from_its_start_to_its_end_inclusive(
    start: float, end: float | None, now: float, status: str | None
) -> None:
    assert window_status(start, end, now) == status


def _report(database_stock: int, orders: int, redis: RedisGoods | None) -> StockReport:
    moment = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    return StockReport(
        id=1,
        name="帽子",
        price=Decimal("9.90"),
        start=moment,
        end=None,
        database_stock=database_stock,
        orders=orders,
        redis=redis,
    )


def test_redis_agrees_when_its_stock_and_reservations_add_up_to_the_database() -> None:
    # 10 units in the database, 3 sold; Redis: 8 free, 2 reserved but not yet ordered, 5 buyers.
    assert _report(10, 3, RedisGoods(stock=8, pending=2, buyers=5)).agrees


@pytest.mark.parametrize(
    "redis",
    [RedisGoods(stock=9, pending=2, buyers=5), RedisGoods(stock=8, pending=2, buyers=4), None],
    ids=["a unit too many", "a buyer missing", "missing in redis"],
)
def test_redis_disagrees_on_any_unit_or_buyer_unaccounted_for(redis: RedisGoods | None) -> None:
    assert not _report(10, 3, redis).agrees


def test_an_order_number_starts_with_its_time_and_is_unique() -> None:
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    numbers = {new_order_no(now) for _ in range(1_000)}
    assert len(numbers) == 1_000
    assert all(re.fullmatch(r"20300102030405[0-9a-f]{12}", number) for number in numbers)
