"""``luffy order list`` and ``luffy order show`` as an operator runs them, on both databases."""

from __future__ import annotations

import asyncio
import datetime
from decimal import Decimal
from pathlib import Path

from luffy.db import make_sqlalchemy_config, session_scope
from luffy.order.models import Order, OrderDetail
from luffy.settings import load_settings
from tests.support.order_support import create_courses
from tests.support.processes import operator_env, run_operator
from tests.support.seckill_support import create_users


async def _orders(database_url: str, data_dir: Path) -> list[int]:
    """Two buyers: the first has a paid order (two courses) and a timed-out one; the second an unpaid one."""
    settings = load_settings(operator_env(database_url, data_dir))
    config = make_sqlalchemy_config(settings)
    try:
        users = await create_users(config, 2)
        python, linux = await create_courses(config, ("Python项目实战", "99.00", True), ("Linux", "39.00", True))
        start = datetime.datetime(2026, 11, 30, 8, 0, tzinfo=datetime.UTC)
        rows = [
            ("PAID0001", users[0], 1, "138.00", [python, linux], "2026113022001400000000000007"),
            ("LATE0002", users[0], 3, "39.00", [linux], None),
            ("OPEN0003", users[1], 0, "99.00", [python], None),
        ]
        async with session_scope(config) as session:
            for minute, (number, user, status, total, courses, trade_no) in enumerate(rows):
                order = Order(
                    subject=f"订单 {number}",
                    total_amount=Decimal(total),
                    out_trade_no=number,
                    trade_no=trade_no,
                    order_status=status,
                    pay_type=1,
                    pay_time=start if status == 1 else None,
                    created_time=start + datetime.timedelta(minutes=minute),
                    user_id=user,
                )
                session.add(order)
                await session.flush()
                prices = {python: Decimal("99.00"), linux: Decimal("39.00")}
                session.add_all(
                    OrderDetail(order_id=order.id, course_id=c, price=prices[c], real_price=prices[c]) for c in courses
                )
        return users
    finally:
        await config.get_engine().dispose()


def test_list_shows_orders_newest_first_and_filters_by_user_and_status(clean_database: str, tmp_path: Path) -> None:
    users = asyncio.run(_orders(clean_database, tmp_path))
    everything = run_operator(clean_database, tmp_path, "order", "list")
    assert everything.returncode == 0, everything.stderr
    out = everything.stdout
    assert out.index("OPEN0003") < out.index("LATE0002") < out.index("PAID0001")
    assert "已支付" in out
    assert "超时取消" in out
    mine = run_operator(clean_database, tmp_path, "order", "list", "--user", "13000000000").stdout
    assert "PAID0001" in mine
    assert "LATE0002" in mine
    assert "OPEN0003" not in mine
    by_id = run_operator(clean_database, tmp_path, "order", "list", "--user", str(users[1])).stdout
    assert "OPEN0003" in by_id
    assert "PAID0001" not in by_id
    for status in ("paid", "1"):
        paid = run_operator(clean_database, tmp_path, "order", "list", "--status", status).stdout
        assert "PAID0001" in paid
        assert "LATE0002" not in paid
        assert "OPEN0003" not in paid


def test_list_refuses_an_unknown_status_or_user(clean_database: str, tmp_path: Path) -> None:
    bad_status = run_operator(clean_database, tmp_path, "order", "list", "--status", "refunded")
    assert bad_status.returncode == 2
    assert "--status" in bad_status.stderr
    nobody = run_operator(clean_database, tmp_path, "order", "list", "--user", "nobody")
    assert nobody.returncode == 2
    assert "nobody" in nobody.stderr


def test_show_prints_one_order_with_its_courses_and_payment(clean_database: str, tmp_path: Path) -> None:
    asyncio.run(_orders(clean_database, tmp_path))
    shown = run_operator(clean_database, tmp_path, "order", "show", "PAID0001")
    assert shown.returncode == 0, shown.stderr
    for text in (
        "PAID0001",
        "2026113022001400000000000007",
        "138.00",
        "1 已支付",
        "1 支付宝",
        "Python项目实战",
        "Linux",
    ):
        assert text in shown.stdout, text
    missing = run_operator(clean_database, tmp_path, "order", "show", "NOPE")
    assert missing.returncode == 2
    assert "NOPE" in missing.stderr
