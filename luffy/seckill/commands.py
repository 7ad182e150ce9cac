"""``luffy seckill ...``: load flash-sale goods, compare the database's stock with Redis's, rebuild Redis.

The database is the truth; Redis (production only) holds the sale state the purchase endpoint
reads. Every command writes the database first, then Redis.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, fail, run, warn
from luffy.settings import get_settings

if TYPE_CHECKING:
    from luffy.seckill.services import StockReport

seckill_app = typer.Typer(
    help="Flash sales: load goods, compare the database's stock with Redis's, rebuild Redis.", no_args_is_help=True
)

# The seckill services are imported inside the commands: they load SQLAlchemy, Litestar and TaskIQ,
# which `luffy --help` should not wait for (see luffy/cli_runtime.py).


def _moment(value: str | None, option: str) -> datetime.datetime | None:
    """``now`` or an ISO 8601 time (UTC unless it names an offset); ``None`` when not given."""
    if value is None:
        return None
    if value.strip().lower() == "now":
        return datetime.datetime.now(datetime.UTC)
    try:
        moment = datetime.datetime.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO 8601 time, e.g. 2030-01-01T12:00", param_hint=option
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _stock_table(reports: list[StockReport], *, embedded: bool) -> Table:
    table = Table("id", "name", "price", "window (UTC)", "db stock", "orders", title="seckill goods")
    if not embedded:
        for column in ("redis stock", "in flight", "buyers", "agree"):
            table.add_column(column)
    for report in reports:
        window = f"{report.start:%Y-%m-%d %H:%M} → {f'{report.end:%Y-%m-%d %H:%M}' if report.end else 'open'}"
        cells = [
            str(report.id),
            report.name,
            f"{report.price:.2f}",
            window,
            str(report.database_stock),
            str(report.orders),
        ]
        if not embedded:
            if report.redis is None:
                cells += ["missing", "-", "-", "[red]no[/red]"]
            else:
                agree = "[green]yes[/green]" if report.agrees else "[red]no[/red]"
                cells += [str(report.redis.stock), str(report.redis.pending), str(report.redis.buyers), agree]
        table.add_row(*cells)
    return table


async def publish_new_goods(ctx: CommandContext) -> None:
    """Production: goods Redis has not seen become buyable; a sale already in Redis is left alone."""
    from redis.exceptions import RedisError

    from luffy.seckill.services import publish_goods

    if ctx.reservations is None:
        return
    try:
        async with ctx.session() as session:
            await publish_goods(session, ctx.reservations, only_if_missing=True)
    except (RedisError, OSError) as exc:
        warn(
            f"seckill goods not copied to Redis ({type(exc).__name__}); "
            "run `luffy seckill reconcile` once Redis is reachable"
        )


@seckill_app.command("load")
def seckill_load(
    name: Annotated[str, typer.Argument(help="The goods' name (created when new, else updated).")],
    stock: Annotated[int, typer.Option(min=0, max=2_000_000_000, help="Units left to sell.")],
    price: Annotated[str | None, typer.Option(help="Price, e.g. 99.00 (new goods: 0.00).")] = None,
    start: Annotated[str | None, typer.Option(help="Sale start, ISO 8601 or 'now' (new goods: now).")] = None,
    end: Annotated[str | None, typer.Option(help="Sale end, ISO 8601, or 'none' for open-ended.")] = None,
) -> None:
    """Create or update flash-sale goods in the database, then copy them to Redis (production)."""
    from redis.exceptions import RedisError

    from luffy.seckill.services import SeckillError, complete_sale_state, load_goods, publish_goods, stock_report

    try:
        amount = None if price is None else Decimal(price).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise typer.BadParameter(f"{price!r} is not a price, e.g. 99.00", param_hint="--price") from None
    open_ended = end is not None and end.strip().lower() == "none"
    starts, ends = _moment(start, "--start"), None if open_ended else _moment(end, "--end")

    async def work(ctx: CommandContext) -> list[StockReport]:
        try:
            async with ctx.session() as session:
                goods = await load_goods(
                    session, name=name, stock=stock, price=amount, start=starts, end=ends, open_ended=open_ended
                )
                goods_id = goods.id
        except SeckillError as exc:
            fail(str(exc))
        reservations = ctx.reservations
        async with ctx.session() as session:
            if reservations is not None:
                try:
                    await publish_goods(session, reservations, goods_ids=[goods_id])
                    await complete_sale_state(session, reservations)
                except (RedisError, OSError) as exc:
                    fail(
                        f"saved in the database, but Redis was not updated ({type(exc).__name__}); "
                        "run `luffy seckill reconcile` once Redis is reachable",
                        1,
                    )
            return await stock_report(session, reservations, name=name.strip())

    reports = run(work)
    console.print(_stock_table(reports, embedded=get_settings().is_embedded))


@seckill_app.command("status")
def seckill_status(
    name: Annotated[str | None, typer.Argument(help="Only this goods.")] = None,
) -> None:
    """Stock in the database and in Redis, orders, and whether they agree (exit 1 when they don't)."""
    from luffy.seckill.services import stock_report

    async def work(ctx: CommandContext) -> list[StockReport]:
        async with ctx.session() as session:
            return await stock_report(session, ctx.reservations, name=name)

    reports = run(work)
    if name is not None and not reports:
        fail(f"no goods on sale is named {name!r}", 1)
    embedded = get_settings().is_embedded
    console.print(_stock_table(reports, embedded=embedded))
    if embedded:
        console.print("embedded mode: the database is the only stock")
    elif not all(report.agrees for report in reports):
        raise typer.Exit(1)


@seckill_app.command("reconcile")
def seckill_reconcile(
    stale_after: Annotated[
        float,
        typer.Option(min=0, help="Reservations older than this many seconds are taken as lost and given back."),
    ] = 600,
) -> None:
    """Rebuild Redis's stock and buyers from the database (production), keeping reservations in flight."""
    from luffy.seckill.services import reconcile, stock_report

    if get_settings().is_embedded:
        console.print("embedded mode: no Redis to reconcile; the database is the only stock")
        return

    async def work(ctx: CommandContext) -> tuple[list[int], list[StockReport]]:
        reservations = ctx.reservations
        assert reservations is not None
        async with ctx.session() as session:
            removed = await reconcile(session, reservations, stale_after_seconds=stale_after)
        async with ctx.session() as session:
            return removed, await stock_report(session, reservations)

    removed, reports = run(work)
    if removed:
        console.print(f"removed from Redis (no longer on sale): {', '.join(map(str, removed))}")
    console.print(_stock_table(reports, embedded=False))
