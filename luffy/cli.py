"""The ``luffy`` command: migrations, seeding, serving, workers, scheduler and operator tools."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from luffy.settings import Settings, SettingsError, get_settings

app = typer.Typer(
    name="luffy",
    help="Operate Luffy: migrate and seed the database, run the API, task workers and scheduler.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (Alembic, through advanced-alchemy).", no_args_is_help=True)
app.add_typer(db_app, name="db")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


@app.callback()
def main() -> None:
    """Every command starts by validating the configuration, so a bad value stops it at once."""
    try:
        get_settings()
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def settings() -> Settings:
    return get_settings()


def run_async(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(factory())


def _alembic() -> Any:
    from advanced_alchemy.alembic.commands import AlembicCommands

    from luffy.db import make_sqlalchemy_config

    return AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(settings()))


# --- db ------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    _alembic().upgrade(revision=revision)
    console.print(f"database upgraded to [bold]{revision}[/bold]")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")]) -> None:
    """Revert migrations down to REVISION ([bold]base[/bold] empties the schema)."""
    _alembic().downgrade(revision=revision)
    console.print(f"database downgraded to [bold]{revision}[/bold]")


@db_app.command("revision")
def db_revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision changes.")],
    autogenerate: Annotated[bool, typer.Option(help="Diff the models against the database.")] = False,
) -> None:
    """Create a new migration script in db/versions."""
    _alembic().revision(message=message, autogenerate=autogenerate)


@db_app.command("current")
def db_current(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Show the revision the database is at."""
    _alembic().current(verbose=verbose)


@db_app.command("history")
def db_history(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """List the migrations, newest first."""
    _alembic().history(verbose=verbose)


@db_app.command("stamp")
def db_stamp(revision: Annotated[str, typer.Argument(help="Revision to record, e.g. head.")]) -> None:
    """Record REVISION as applied without running it (to adopt an existing Luffy database)."""
    _alembic().stamp(revision=revision)
    console.print(f"database stamped at [bold]{revision}[/bold]")


# --- seed ----------------------------------------------------------------------------------------


@app.command()
def seed(
    demo: Annotated[
        int | None,
        typer.Option(min=1, max=1_000_000, help="Also add a synthetic catalogue of N courses (for benchmarks)."),
    ] = None,
    random_seed: Annotated[int, typer.Option(help="Seed of the synthetic catalogue's generator.")] = 42,
) -> None:
    """Load the original Luffy rows and banners (idempotent), copy their media; optionally a demo catalogue."""
    from luffy.db import make_sqlalchemy_config, session_scope
    from luffy.seed import count_rows, load_demo, load_seed

    current = settings()
    config = make_sqlalchemy_config(current)

    async def work() -> dict[str, int]:
        try:
            async with session_scope(config) as session:
                report = await load_seed(session, current.media_root)
            console.print(
                f"seed rows upserted: {sum(report.rows_by_table.values())} in {len(report.rows_by_table)} tables; "
                f"{report.media_files} media files copied to {current.media_root}"
            )
            if demo:
                with Progress(
                    TextColumn("{task.description:<22}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bar:
                    total = demo * (1 + 5 + 20) + 120
                    task = bar.add_task("demo catalogue", total=total)
                    async with session_scope(config) as session:
                        await load_demo(
                            session,
                            demo,
                            random_seed,
                            lambda table, n: bar.update(task, advance=n, description=table),
                        )
                    bar.update(task, completed=total, description="demo catalogue")
            async with session_scope(config) as session:
                return await count_rows(session)
        finally:
            await config.get_engine().dispose()

    counts = run_async(work)
    table = Table("table", "rows", title="rows in the database")
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    console.print(table)


# --- serve ---------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
) -> None:
    """Serve the API with Granian. Embedded mode runs tasks and the scheduler inside this process."""
    from granian.constants import Interfaces
    from granian.server import Server

    current = settings()
    if workers > 1 and current.is_embedded:
        err_console.print(
            "[yellow]note:[/yellow] embedded mode runs tasks in-process; with several workers each has its own "
            "task queue. Set LUFFY_REDIS_URL for a shared broker."
        )
    console.print(f"Luffy API on http://{host}:{port}  (OpenAPI: /schema, health: /health)")
    Server(
        "luffy.asgi:app",
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        reload=reload,
        log_access=False,
        respawn_failed_workers=True,
    ).serve()


# --- seckill -------------------------------------------------------------------------------------

seckill_app = typer.Typer(
    help="Flash sales: load goods, compare the database's stock with Redis's, rebuild Redis.", no_args_is_help=True
)
app.add_typer(seckill_app, name="seckill")


def _moment(value: str | None, option: str) -> Any:
    """``now`` or an ISO 8601 time (UTC unless it names an offset); ``None`` when not given."""
    import datetime

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


def _stock_table(reports: list[Any], *, embedded: bool) -> Table:
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


def _seckill_run(work: Callable[[Any, Any], Coroutine[Any, Any, T]]) -> T:
    """Runs ``work(session_config, reservations_or_None)``; Redis only in production."""
    from redis.exceptions import RedisError
    from sqlalchemy.exc import SQLAlchemyError

    from luffy.cache import make_redis
    from luffy.db import make_sqlalchemy_config
    from luffy.seckill.reservations import RedisReservations

    current = settings()
    config = make_sqlalchemy_config(current)

    async def run() -> T:
        redis = None if current.is_embedded else make_redis(current)
        try:
            reservations = (
                None if redis is None else RedisReservations(redis, owner_ttl_seconds=current.result_ttl_seconds)
            )
            return await work(config, reservations)
        finally:
            if redis is not None:
                await redis.aclose()
            await config.get_engine().dispose()

    try:
        return run_async(run)
    except (RedisError, SQLAlchemyError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@seckill_app.command("load")
def seckill_load(
    name: Annotated[str, typer.Argument(help="The goods' name (created when new, else updated).")],
    stock: Annotated[int, typer.Option(min=0, max=2_000_000_000, help="Units left to sell.")],
    price: Annotated[str | None, typer.Option(help="Price, e.g. 99.00 (new goods: 0.00).")] = None,
    start: Annotated[str | None, typer.Option(help="Sale start, ISO 8601 or 'now' (new goods: now).")] = None,
    end: Annotated[str | None, typer.Option(help="Sale end, ISO 8601, or 'none' for open-ended.")] = None,
) -> None:
    """Create or update flash-sale goods in the database, then copy them to Redis (production)."""
    from decimal import Decimal, InvalidOperation

    from redis.exceptions import RedisError

    from luffy.db import session_scope
    from luffy.seckill.services import SeckillError, load_goods, publish_goods, stock_report

    try:
        amount = None if price is None else Decimal(price).quantize(Decimal("0.01"))
    except InvalidOperation:
        raise typer.BadParameter(f"{price!r} is not a price, e.g. 99.00", param_hint="--price") from None
    open_ended = end is not None and end.strip().lower() == "none"
    starts, ends = _moment(start, "--start"), None if open_ended else _moment(end, "--end")

    async def work(config: Any, reservations: Any) -> list[Any]:
        async with session_scope(config) as session:
            goods = await load_goods(
                session, name=name, stock=stock, price=amount, start=starts, end=ends, open_ended=open_ended
            )
            goods_id = goods.id
        async with session_scope(config) as session:
            if reservations is not None:
                try:
                    await publish_goods(session, reservations, goods_ids=[goods_id])
                except (RedisError, OSError) as exc:
                    err_console.print(
                        f"[red]error:[/red] saved in the database, but Redis was not updated ({type(exc).__name__}); "
                        "run `luffy seckill reconcile` once Redis is reachable",
                        highlight=False,
                        soft_wrap=True,
                    )
                    raise typer.Exit(1) from None
            return await stock_report(session, reservations, name=name.strip())

    try:
        reports = _seckill_run(work)
    except SeckillError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    console.print(_stock_table(reports, embedded=settings().is_embedded))


@seckill_app.command("status")
def seckill_status(
    name: Annotated[str | None, typer.Argument(help="Only this goods.")] = None,
) -> None:
    """Stock in the database and in Redis, orders, and whether they agree (exit 1 when they don't)."""
    from luffy.db import session_scope
    from luffy.seckill.services import stock_report

    async def work(config: Any, reservations: Any) -> list[Any]:
        async with session_scope(config) as session:
            return await stock_report(session, reservations, name=name)

    reports = _seckill_run(work)
    if name is not None and not reports:
        err_console.print(f"[red]error:[/red] no goods on sale is named {name!r}", highlight=False)
        raise typer.Exit(1)
    embedded = settings().is_embedded
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
    from luffy.db import session_scope
    from luffy.seckill.services import reconcile, stock_report

    if settings().is_embedded:
        console.print("embedded mode: no Redis to reconcile; the database is the only stock")
        return

    async def work(config: Any, reservations: Any) -> tuple[list[int], list[Any]]:
        async with session_scope(config) as session:
            removed = await reconcile(session, reservations, stale_after_seconds=stale_after)
        async with session_scope(config) as session:
            return removed, await stock_report(session, reservations)

    removed, reports = _seckill_run(work)
    if removed:
        console.print(f"removed from Redis (no longer on sale): {', '.join(map(str, removed))}")
    console.print(_stock_table(reports, embedded=False))
