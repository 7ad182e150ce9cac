"""``luffy order ...``: operators look at course orders (read-only; payments change them, never a command)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, fail, run

if TYPE_CHECKING:
    from luffy.order.services import OperatorOrder

order_app = typer.Typer(help="Course orders: list and inspect them (read-only).", no_args_is_help=True)

# The order services are imported inside the commands: they load SQLAlchemy and Litestar, which
# `luffy --help` should not wait for (see luffy/cli_runtime.py).
STATUSES = {"0": 0, "1": 1, "2": 2, "3": 3, "unpaid": 0, "paid": 1, "cancelled": 2, "canceled": 2, "timeout": 3}
PAY_TYPES = {1: "支付宝", 2: "微信支付"}


def _status(value: str | None) -> int | None:
    if value is None:
        return None
    status = STATUSES.get(value.strip().lower())
    if status is None:
        raise typer.BadParameter(f"{value!r}: use 0-3 or unpaid, paid, cancelled, timeout", param_hint="--status")
    return status


def _time(value: datetime.datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def _orders(**filters: object) -> list[OperatorOrder]:
    from luffy.errors import DomainError
    from luffy.order.services import operator_orders

    async def work(ctx: CommandContext) -> list[OperatorOrder]:
        async with ctx.session() as session:
            return await operator_orders(session, **filters)  # type: ignore[arg-type]

    try:
        return run(work)
    except DomainError as exc:
        fail(exc.message)


@order_app.command("list")
def order_list(
    user: Annotated[str | None, typer.Option(help="Only this user's orders: id, username or mobile.")] = None,
    status: Annotated[str | None, typer.Option(help="0 unpaid, 1 paid, 2 cancelled, 3 timeout (or the word).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="How many orders, newest first.")] = 50,
) -> None:
    """Orders newest first, with their buyer, amount and status."""
    rows = _orders(user=user, status=_status(status), limit=limit)
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


@order_app.command("show")
def order_show(out_trade_no: Annotated[str, typer.Argument(help="The order number (out_trade_no).")]) -> None:
    """One order with its courses and payment."""
    rows = _orders(out_trade_no=out_trade_no, limit=1)
    if not rows:
        fail(f"no order {out_trade_no}")
    row = rows[0]
    order = row.order
    fields = {
        "id": str(order.id),
        "out_trade_no": order.out_trade_no,
        "trade_no": row.trade_no or "-",
        "user": f"{row.user_id} {row.username or ''}".strip(),
        "subject": order.subject,
        "total_amount": order.total_amount,
        "status": f"{order.order_status} {order.order_status_name}",
        "pay_type": f"{order.pay_type} {PAY_TYPES.get(order.pay_type, '')}".strip(),
        "created": _time(order.created_time),
        "paid": _time(order.pay_time),
    }
    for name, value in fields.items():
        console.print(f"[bold]{name:>12}[/bold]  {value}", highlight=False)
    table = Table("course id", "name", "price", "real price", title="Courses")
    for course in order.courses:
        table.add_row(str(course.id), course.name or "-", course.price, course.real_price)
    console.print(table)
