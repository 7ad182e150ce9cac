"""``luffy order ...``: operators look at course orders (read-only; payment changes them, never a command)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.errors import DomainError
from luffy.order.models import OrderStatus
from luffy.order.schemas import PAY_TYPE_NAMES
from luffy.order.services import OperatorOrder, operator_orders
from luffy.settings import get_settings

app = typer.Typer(help="Course orders: list and inspect them (read-only).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
STATUS_WORDS = {"unpaid": 0, "paid": 1, "cancelled": 2, "canceled": 2, "timeout": 3, "timed-out": 3}


def _status(value: str | None) -> int | None:
    if value is None:
        return None
    word = value.strip().lower()
    if word in {str(status.value) for status in OrderStatus}:
        return int(word)
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    raise typer.BadParameter(f"{value!r}: use 0-3 or unpaid, paid, cancelled, timeout", param_hint="--status")


def _query(work: Callable[[AsyncSession], Coroutine[Any, Any, T]]) -> T:
    from luffy.db import make_sqlalchemy_config, session_scope

    config = make_sqlalchemy_config(get_settings())

    async def run() -> T:
        try:
            async with session_scope(config) as session:
                return await work(session)
        finally:
            await config.get_engine().dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        err_console.print(f"[red]error:[/red] {exc.message}", highlight=False)
        raise typer.Exit(1) from None


def _time(value: Any) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


@app.command("list")
def list_orders(
    user: Annotated[str | None, typer.Option(help="Only this user's orders: id, username or mobile.")] = None,
    status: Annotated[str | None, typer.Option(help="0 unpaid, 1 paid, 2 cancelled, 3 timeout (or the word).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many orders, newest first.")] = 50,
) -> None:
    """Orders newest first, with their buyer, amount and status."""
    wanted = _status(status)
    rows = _query(lambda session: operator_orders(session, user=user, status=wanted, limit=limit))
    table = Table("id", "out_trade_no", "user", "subject", "amount", "status", "created", "paid", title="Course orders")
    for row in rows:
        order = row.order
        table.add_row(
            str(order.id),
            order.out_trade_no,
            f"{row.user_id} {row.username or ''}".strip(),
            order.subject,
            order.total_amount,
            f"{order.order_status} {order.order_status_name}",
            _time(order.created_time),
            _time(order.pay_time),
        )
    console.print(table)


def _print_order(row: OperatorOrder) -> None:
    order = row.order
    fields = {
        "id": str(order.id),
        "out_trade_no": order.out_trade_no,
        "trade_no": row.trade_no or "-",
        "user": f"{row.user_id} {row.username or ''}".strip(),
        "subject": order.subject,
        "total_amount": order.total_amount,
        "status": f"{order.order_status} {order.order_status_name}",
        "pay_type": f"{order.pay_type} {PAY_TYPE_NAMES.get(order.pay_type, '')}".strip(),
        "created": _time(order.created_time),
        "paid": _time(order.pay_time),
    }
    for name, value in fields.items():
        console.print(f"[bold]{name:>12}[/bold]  {value}", highlight=False)
    table = Table("course id", "name", "price", "real price", title="Courses")
    for course in order.courses:
        table.add_row(str(course.id), course.name or "-", course.price, course.real_price)
    console.print(table)


@app.command("show")
def show_order(out_trade_no: Annotated[str, typer.Argument(help="The order number (out_trade_no).")]) -> None:
    """One order with its courses and payment."""
    rows = _query(lambda session: operator_orders(session, out_trade_no=out_trade_no, limit=1))
    if not rows:
        err_console.print(f"[red]error:[/red] no order {out_trade_no}", highlight=False)
        raise typer.Exit(1)
    _print_order(rows[0])
