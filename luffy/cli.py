"""The ``luffy`` command: the process commands (migrations, seeding, serving, workers, scheduler).

Each domain's operator commands live beside it (``luffy/<domain>/commands.py``) and are mounted
here with ``add_typer``; what they share (settings, sessions, Redis, one-line failures) is
``luffy/cli_runtime.py``. A new group: write ``luffy/<domain>/commands.py`` with a ``typer.Typer``
and add one ``app.add_typer(...)`` line below.

The process commands import what they run inside their function: the server, the task runtime
and the database layer take a second or more to import, which ``luffy --help`` should not wait for.
"""

from __future__ import annotations

import asyncio
import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, err_console, fail, run
from luffy.course.commands import catalogue_app, clear_catalogue_cache
from luffy.home.commands import banner_app, cache_app, refresh_banners
from luffy.order.commands import order_app
from luffy.seckill.commands import publish_new_goods, seckill_app
from luffy.settings import Settings, SettingsError, get_settings
from luffy.user.commands import sms_app, user_app

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommands

app = typer.Typer(
    name="luffy",
    help="Operate Luffy: migrate and seed the database, run the API, task workers and scheduler.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations (Alembic, through advanced-alchemy).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(cache_app, name="cache")
app.add_typer(catalogue_app, name="catalogue")
app.add_typer(banner_app, name="banner")
app.add_typer(sms_app, name="sms")
app.add_typer(user_app, name="user")
app.add_typer(seckill_app, name="seckill")
app.add_typer(order_app, name="order")


@app.callback()
def main() -> None:
    """Every command starts by validating the configuration, so a bad value stops it at once."""
    try:
        get_settings()
    except SettingsError as exc:
        fail(str(exc))


def _alembic() -> AlembicCommands:
    from advanced_alchemy.alembic.commands import AlembicCommands

    from luffy.db import make_sqlalchemy_config

    return AlembicCommands(sqlalchemy_config=make_sqlalchemy_config(get_settings()))


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
    """Record REVISION as applied without running it."""
    _alembic().stamp(revision=revision)
    console.print(f"database stamped at [bold]{revision}[/bold]")


@db_app.command("adopt")
def db_adopt() -> None:
    """Make a database created by the original Django project a Luffy database at the newest migration.

    Checks the original tables, creates only Luffy's missing tables and indexes, records the
    migration; changes no row. On a database that is already Luffy's (or empty) it does nothing.
    """
    from luffy.adopt import Adoption, NotAnOriginalDatabase, Outcome, adopt

    async def work(ctx: CommandContext) -> Adoption:
        return await adopt(ctx.database)

    try:
        adoption = run(work)
    except NotAnOriginalDatabase as exc:
        fail(f"not an original Luffy database, nothing changed: {exc}", 1)
    if adoption.outcome is Outcome.ALREADY_LUFFY:
        console.print(f"already a Luffy database (at {adoption.revision}); nothing to do. Use `luffy db upgrade`.")
    elif adoption.outcome is Outcome.EMPTY:
        console.print("the database has no Luffy tables; nothing to adopt. Use `luffy db upgrade` to create them.")
    else:
        console.print(f"adopted: created tables {', '.join(adoption.created_tables) or 'none'}", highlight=False)
        console.print(f"created indexes {', '.join(adoption.created_indexes) or 'none'}", highlight=False)
        console.print(f"database stamped at [bold]{adoption.revision}[/bold]; no existing row was changed")


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
    from luffy.seed import count_rows, load_demo, load_seed

    async def work(ctx: CommandContext) -> tuple[dict[str, int], bool]:
        media_root = ctx.settings.media_root
        async with ctx.session() as session:
            report = await load_seed(session, media_root)
        console.print(
            f"seed rows upserted: {sum(report.rows_by_table.values())} in {len(report.rows_by_table)} tables; "
            f"{report.media_files} media files copied to {media_root}"
        )
        catalogue_cleared = await clear_catalogue_cache(ctx)
        banners = await refresh_banners(ctx)
        if banners is not None:
            console.print(f"banner cache refreshed: {len(banners)} banners")
        await publish_new_goods(ctx)
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
                async with ctx.session() as session:
                    await load_demo(
                        session,
                        demo,
                        random_seed,
                        lambda table, n: bar.update(task, advance=n, description=table),
                    )
                bar.update(task, completed=total, description="demo catalogue")
            catalogue_cleared = await clear_catalogue_cache(ctx) and catalogue_cleared
        async with ctx.session() as session:
            return await count_rows(session), banners is not None and catalogue_cleared

    counts, caches_refreshed = run(work)
    table = Table("table", "rows", title="rows in the database")
    for name, rows in counts.items():
        table.add_row(name, str(rows))
    console.print(table)
    if not caches_refreshed:
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
    current = get_settings()
    if workers > 1 and current.is_embedded:
        # Without Redis the SMS limits and wrong-try counts are kept under one process's lock:
        # several workers would each judge their own guesses (6-12 instead of 5 were seen with 4).
        err_console.print(
            "[red]error:[/red] --workers above 1 needs LUFFY_REDIS_URL: without Redis each worker would keep its own "
            "SMS limits and wrong-try counts, so they would no longer hold; run one worker, or set LUFFY_REDIS_URL",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(2)
    console.print(f"Luffy API on http://{host}:{port}  (OpenAPI: /schema, health: /health)")
    if server is AsgiServer.uvicorn:
        import uvicorn

        uvicorn.run(
            "luffy.asgi:app",
            host=host,
            port=port,
            workers=workers,
            reload=reload,
            access_log=False,
            server_header=False,
        )
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
    current = get_settings()
    if current.is_embedded:
        fail(f"luffy {command} needs LUFFY_REDIS_URL; in embedded mode tasks and the scheduler run inside luffy serve")
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
    from luffy.tasks.scheduler import run_scheduler_process

    current = _production_only("scheduler")
    logging.basicConfig(level=current.log_level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    raise typer.Exit(asyncio.run(run_scheduler_process(current)))
