"""The ``luffy`` command: migrations, seeding, serving, workers, scheduler and operator tools."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from luffy.settings import Settings, SettingsError, get_settings

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from sqlalchemy.ext.asyncio import AsyncSession

    from luffy.home.models import Banner
    from luffy.home.schemas import BannerChanges, BannerItem

app = typer.Typer(
    name="luffy",
    help="Operate Luffy: migrate and seed the database, run the API, task workers and scheduler.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (Alembic, through advanced-alchemy).", no_args_is_help=True)
app.add_typer(db_app, name="db")
cache_app = typer.Typer(help="The cache (Redis in production, the data dir when embedded).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")
banner_app = typer.Typer(
    help="Home page banners: each change is written to the database, then to the cache.", no_args_is_help=True
)
app.add_typer(banner_app, name="banner")

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


def run_on_database(config: SQLAlchemyAsyncConfig, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``run_async(factory)``, then dispose of ``config``'s engine (a command's pool must not outlive it)."""

    async def run() -> T:
        try:
            return await factory()
        finally:
            await config.get_engine().dispose()

    return run_async(run)


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
    """Create a new migration script in the checkout's db/versions."""
    from luffy.paths import BUNDLED_DIR, checkout_dir

    if checkout_dir() is None:
        err_console.print(
            "[red]error:[/red] `luffy db revision` writes a new migration into a source checkout's db/versions, "
            f"and this luffy is an installed wheel (its migrations, read-only, are in {BUNDLED_DIR / 'db'}). "
            "Run it from a clone of the repository with `pip install -e .`, commit the migration, build a new wheel.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
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

    cache_refreshed = False

    async def work() -> dict[str, int]:
        nonlocal cache_refreshed
        async with session_scope(config) as session:
            report = await load_seed(session, current.media_root)
        console.print(
            f"seed rows upserted: {sum(report.rows_by_table.values())} in {len(report.rows_by_table)} tables; "
            f"{report.media_files} media files copied to {current.media_root}"
        )
        banners = await _refresh_banner_cache(current, config)
        if banners is not None:
            cache_refreshed = True
            console.print(f"banner cache refreshed: {len(banners)} banners")
        await _publish_seckill_goods(current, config)
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

    counts = run_on_database(config, work)
    table = Table("table", "rows", title="rows in the database")
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    console.print(table)
    if not cache_refreshed:
        raise typer.Exit(1)


# --- serve ---------------------------------------------------------------------------------------


class AsgiServer(StrEnum):
    granian = "granian"
    uvicorn = "uvicorn"


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to bind.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    server: Annotated[
        AsgiServer, typer.Option(help="ASGI server (bench/results.md measures both on the catalogue).")
    ] = AsgiServer.granian,
) -> None:
    """Serve the API (Granian or uvicorn). Embedded mode runs tasks and the scheduler inside this process."""
    current = settings()
    if workers > 1 and current.is_embedded:
        err_console.print(
            "[yellow]note:[/yellow] embedded mode runs tasks in-process; with several workers each has its own "
            "task queue. Set LUFFY_REDIS_URL for a shared broker."
        )
    console.print(f"Luffy API on http://{host}:{port}  (OpenAPI: /schema, health: /health)")
    if server is AsgiServer.uvicorn:
        import uvicorn

        uvicorn.run("luffy.asgi:app", host=host, port=port, workers=workers, reload=reload, access_log=False)
        return
    from granian.constants import Interfaces
    from granian.server import Server

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


# --- worker, scheduler -----------------------------------------------------------------------------


def _production_only(command: str) -> Settings:
    current = settings()
    if current.is_embedded:
        err_console.print(
            f"[red]error:[/red] luffy {command} needs LUFFY_REDIS_URL; "
            "in embedded mode tasks and the scheduler run inside luffy serve",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    return current


def _check_queues(queues: list[str] | None) -> list[str] | None:
    from luffy.tasks.broker import QUEUES

    unknown = sorted(set(queues or ()) - set(QUEUES))
    if unknown:
        raise typer.BadParameter(f"unknown queue {', '.join(unknown)}; choose among {', '.join(QUEUES)}")
    return queues


@app.command()
def worker(
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue", "-q", callback=_check_queues, help="Queue to serve (repeat for several); default: all."
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, max=64, help="Processes per queue.")] = 1,
) -> None:
    """Run task workers (production). SIGTERM: finish running tasks, then exit; unfinished ones are redelivered."""
    from luffy.tasks.broker import QUEUES
    from luffy.tasks.worker import run_workers

    current = _production_only("worker")
    selected = list(dict.fromkeys(queue)) if queue else list(QUEUES)
    raise typer.Exit(run_workers(selected, workers, current))


@app.command()
def scheduler() -> None:
    """Send the periodic tasks (production); a second instance stands by until the first one stops."""
    import logging

    from luffy.tasks.scheduler import run_scheduler_process

    current = _production_only("scheduler")
    logging.basicConfig(level=current.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise typer.Exit(asyncio.run(run_scheduler_process(current)))


# --- cache, banner ---------------------------------------------------------------------------------


async def _refresh_banner_cache(current: Settings, config: SQLAlchemyAsyncConfig) -> list[BannerItem] | None:
    """Rewrite the banner cache after a committed write; ``None`` (and a message) when the cache is down."""
    from luffy.cache import make_cache_store
    from luffy.db import session_scope
    from luffy.home.services import CACHE_ERRORS, refresh_banner_cache

    store = make_cache_store(current)
    try:
        async with store, session_scope(config) as session:
            return await refresh_banner_cache(session, store, current)
    except CACHE_ERRORS as exc:
        err_console.print(
            f"[red]error:[/red] the database is up to date, but the banner cache could not be refreshed ({exc}); "
            f"the scheduler refreshes it within {current.banner_refresh_seconds} s",
            highlight=False,
            soft_wrap=True,
        )
        return None


def _print_cached_banners(banners: list[BannerItem]) -> None:
    table = Table("id", "title", "image", "link", "info", title=f"cached banners ({len(banners)})")
    for banner in banners:
        table.add_row(str(banner.id), banner.title, banner.image or "", banner.link, banner.info)
    console.print(table)


def _banner_write(write: Callable[[AsyncSession], Coroutine[Any, Any, Banner]], done: str) -> None:
    """Run ``write(session)`` in a transaction, then refresh the cache; one line per failure."""
    import msgspec
    from advanced_alchemy.exceptions import DuplicateKeyError, NotFoundError

    from luffy.db import make_sqlalchemy_config, session_scope

    current = settings()
    config = make_sqlalchemy_config(current)

    async def work() -> list[BannerItem] | None:
        async with session_scope(config) as session:
            banner = await write(session)
        console.print(done.format(id=banner.id, title=banner.title))
        return await _refresh_banner_cache(current, config)

    try:
        banners = run_on_database(config, work)
    except NotFoundError:
        err_console.print("[red]error:[/red] no such banner (or it is deleted)", highlight=False)
        raise typer.Exit(2) from None
    except DuplicateKeyError:
        err_console.print("[red]error:[/red] another banner has this title", highlight=False)
        raise typer.Exit(2) from None
    except (ValueError, msgspec.ValidationError) as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if banners is None:
        raise typer.Exit(1)
    _print_cached_banners(banners)


def _banner_changes(**fields: Any) -> BannerChanges:
    import msgspec

    from luffy.home.schemas import BannerChanges

    try:
        return msgspec.convert({name: value for name, value in fields.items() if value is not None}, BannerChanges)
    except msgspec.ValidationError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


TitleOption = Annotated[str | None, typer.Option(help="Up to 16 characters, unique.")]
ImageOption = Annotated[str | None, typer.Option(help="Media path, e.g. banner/banner1.png (under LUFFY_MEDIA_ROOT).")]
LinkOption = Annotated[str | None, typer.Option(help="Front end route or URL, up to 64 characters.")]
InfoOption = Annotated[str | None, typer.Option(help="Description.")]
OrdersOption = Annotated[int | None, typer.Option(help="Display order (smaller first).")]


@cache_app.command("refresh-banner")
def cache_refresh_banner() -> None:
    """Rewrite the cached home banners from the database now."""
    from luffy.db import make_sqlalchemy_config

    current = settings()
    config = make_sqlalchemy_config(current)

    banners = run_on_database(config, lambda: _refresh_banner_cache(current, config))
    if banners is None:
        raise typer.Exit(1)
    _print_cached_banners(banners)


@banner_app.command("list")
def banner_list(
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted banners.")] = False,
) -> None:
    """Every banner in the database, shown or not."""
    from luffy.db import make_sqlalchemy_config, session_scope
    from luffy.home.services import all_banners

    current = settings()
    config = make_sqlalchemy_config(current)

    async def work() -> list[Banner]:
        async with session_scope(config) as session:
            return await all_banners(session, include_deleted=deleted)

    table = Table("id", "orders", "shown", "title", "image", "link", "info", title="banners")
    for banner in run_on_database(config, work):
        shown = "deleted" if banner.is_delete else ("yes" if banner.is_show else "no")
        table.add_row(str(banner.id), str(banner.orders), shown, banner.title, banner.image, banner.link, banner.info)
    console.print(table)


@banner_app.command("add")
def banner_add(
    title: TitleOption = None,
    image: ImageOption = None,
    link: LinkOption = None,
    info: InfoOption = None,
    orders: OrdersOption = None,
    show: Annotated[bool, typer.Option("--show/--hide", help="Visible on the home page.")] = True,
) -> None:
    """Add a banner (title, image, link and info required)."""
    from luffy.home.services import add_banner

    changes = _banner_changes(title=title, image=image, link=link, info=info, orders=orders, is_show=show)
    _banner_write(lambda session: add_banner(session, changes), "added banner {id} ({title})")


@banner_app.command("update")
def banner_update(
    banner_id: Annotated[int, typer.Argument(help="Banner id (see luffy banner list).")],
    title: TitleOption = None,
    image: ImageOption = None,
    link: LinkOption = None,
    info: InfoOption = None,
    orders: OrdersOption = None,
    show: Annotated[bool | None, typer.Option("--show/--hide", help="Visible on the home page.")] = None,
) -> None:
    """Change the given fields of a banner."""
    from luffy.home.services import change_banner

    changes = _banner_changes(title=title, image=image, link=link, info=info, orders=orders, is_show=show)
    _banner_write(lambda session: change_banner(session, banner_id, changes), "updated banner {id} ({title})")


@banner_app.command("hide")
def banner_hide(banner_id: Annotated[int, typer.Argument(help="Banner id.")]) -> None:
    """Take a banner off the home page (luffy banner update ID --show brings it back)."""
    from luffy.home.schemas import BannerChanges
    from luffy.home.services import change_banner

    _banner_write(
        lambda session: change_banner(session, banner_id, BannerChanges(is_show=False)), "hid banner {id} ({title})"
    )


@banner_app.command("delete")
def banner_delete(banner_id: Annotated[int, typer.Argument(help="Banner id.")]) -> None:
    """Delete a banner (soft: the row stays, marked deleted, invisible everywhere)."""
    from luffy.home.services import delete_banner

    _banner_write(lambda session: delete_banner(session, banner_id), "deleted banner {id} ({title})")


# --- sms and user ----------------------------------------------------------------------------------

sms_app = typer.Typer(help="SMS verification codes: what the workers sent.", no_args_is_help=True)
user_app = typer.Typer(help="Users: tokens for operators and load tests.", no_args_is_help=True)
app.add_typer(sms_app, name="sms")
app.add_typer(user_app, name="user")


@sms_app.command("outbox")
def sms_outbox(
    mobile: Annotated[str | None, typer.Option(help="Only this mobile's messages.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many rows, newest first.")] = 20,
) -> None:
    """The SMS log, newest first: each send's status, tries and errors; the text of console messages."""
    from luffy.db import make_sqlalchemy_config, session_scope
    from luffy.user.services import SmsLogService

    config = make_sqlalchemy_config(settings())

    async def work() -> list[Any]:
        async with session_scope(config) as session:
            return list(await SmsLogService(session=session).recent(mobile, limit))

    rows = run_on_database(config, work)
    table = Table("id", "created", "mobile", "provider", "status", "tries", "message / error", title="SMS outbox")
    for row in rows:
        detail = "\n".join(part for part in (row.message, row.error) if part)
        table.add_row(
            str(row.id),
            row.created_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            row.mobile,
            row.provider,
            row.status,
            str(row.attempts),
            detail,
        )
    console.print(table)


@user_app.command("token")
def user_token(
    mobiles: Annotated[list[str], typer.Argument(help="Mobile numbers; users that do not exist are created.")],
) -> None:
    """Print a login token for each MOBILE, one per line in the order given (creates missing users in bulk)."""
    from luffy.db import make_sqlalchemy_config, session_scope
    from luffy.user.auth import issue_token, make_jwt_auth
    from luffy.user.services import MOBILE_RE, UserService

    malformed = [mobile for mobile in mobiles if not MOBILE_RE.fullmatch(mobile)]
    if malformed:
        err_console.print(f"[red]error:[/red] not a mobile number: {', '.join(malformed[:10])}", highlight=False)
        raise typer.Exit(2)
    current = settings()
    config = make_sqlalchemy_config(current)

    async def work() -> dict[str, tuple[int, str]]:
        async with session_scope(config) as session:
            return await UserService(session=session).ensure_users(mobiles)

    users = run_on_database(config, work)
    missing = [mobile for mobile in mobiles if mobile not in users]
    if missing:
        err_console.print(
            f"[red]error:[/red] no user could be created for {', '.join(missing[:10])} (username taken)",
            highlight=False,
        )
        raise typer.Exit(1)
    jwt_auth = make_jwt_auth(current)
    sys.stdout.write("".join(issue_token(jwt_auth, *users[mobile]) + "\n" for mobile in mobiles))


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

    try:
        return run_on_database(config, run)
    except (RedisError, SQLAlchemyError, OSError) as exc:
        err_console.print(f"[red]error:[/red] {type(exc).__name__}: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


async def _publish_seckill_goods(current: Settings, config: Any) -> None:
    """Production: goods Redis has not seen become buyable; a sale already in Redis is left alone."""
    if current.is_embedded:
        return
    from redis.exceptions import RedisError

    from luffy.cache import make_redis
    from luffy.db import session_scope
    from luffy.seckill.reservations import RedisReservations
    from luffy.seckill.services import publish_goods

    redis = make_redis(current)
    try:
        async with session_scope(config) as session:
            reservations = RedisReservations(redis, owner_ttl_seconds=current.result_ttl_seconds)
            await publish_goods(session, reservations, only_if_missing=True)
    except (RedisError, OSError) as exc:
        err_console.print(
            f"[yellow]warning:[/yellow] seckill goods not copied to Redis ({type(exc).__name__}); "
            "run `luffy seckill reconcile` once Redis is reachable",
            highlight=False,
            soft_wrap=True,
        )
    finally:
        await redis.aclose()


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
