"""``luffy banner ...`` and ``luffy cache ...``: home page banners as an operator changes them.

Every change is written to the database first, then the cached list is rewritten, so the home
page shows it at once; when the cache is down the command says so and exits 1 (the scheduler's
refresh catches up).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
import typer
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, err_console, fail, run
from luffy.home.schemas import BannerChanges, BannerItem

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from luffy.home.models import Banner

cache_app = typer.Typer(help="The cache (Redis in production, the data dir when embedded).", no_args_is_help=True)
banner_app = typer.Typer(
    help="Home page banners: each change is written to the database, then to the cache.", no_args_is_help=True
)

TitleOption = Annotated[str | None, typer.Option(help="Up to 16 characters, unique.")]
ImageOption = Annotated[str | None, typer.Option(help="Media path, e.g. banner/banner1.png (under LUFFY_MEDIA_ROOT).")]
LinkOption = Annotated[str | None, typer.Option(help="Front end route or URL, up to 64 characters.")]
InfoOption = Annotated[str | None, typer.Option(help="Description.")]
OrdersOption = Annotated[int | None, typer.Option(help="Display order (smaller first).")]

# The banner services are imported inside the commands: they load SQLAlchemy and Litestar, which
# `luffy --help` should not wait for (see luffy/cli_runtime.py).


async def refresh_banners(ctx: CommandContext) -> list[BannerItem] | None:
    """Rewrite the banner cache after a committed write; ``None`` (and a message) when the cache is down."""
    from luffy.cache import CACHE_ERRORS
    from luffy.home.services import refresh_banner_cache

    try:
        cache = await ctx.cache()
        async with ctx.session() as session:
            return await refresh_banner_cache(session, cache, ctx.settings)
    except CACHE_ERRORS as exc:
        err_console.print(
            f"[red]error:[/red] the database is up to date, but the banner cache could not be refreshed ({exc}); "
            f"the scheduler refreshes it within {ctx.settings.banner_refresh_seconds} s",
            highlight=False,
            soft_wrap=True,
        )
        return None


def _show_cached_or_exit(banners: list[BannerItem] | None) -> None:
    if banners is None:
        raise typer.Exit(1)
    table = Table("id", "title", "image", "link", "info", title=f"cached banners ({len(banners)})")
    for banner in banners:
        table.add_row(str(banner.id), banner.title, banner.image or "", banner.link, banner.info)
    console.print(table)


def _write(write: Callable[[AsyncSession], Coroutine[Any, Any, Banner]], done: str) -> None:
    """Run ``write(session)`` in a transaction, then refresh the cache; one line per refusal."""
    from advanced_alchemy.exceptions import DuplicateKeyError, NotFoundError

    async def work(ctx: CommandContext) -> list[BannerItem] | None:
        try:
            async with ctx.session() as session:
                banner = await write(session)
        except NotFoundError:
            fail("no such banner (or it is deleted)")
        except DuplicateKeyError:
            fail("another banner has this title")
        except (ValueError, msgspec.ValidationError) as exc:
            fail(str(exc))
        console.print(done.format(id=banner.id, title=banner.title))
        return await refresh_banners(ctx)

    _show_cached_or_exit(run(work))


def _changes(**fields: Any) -> BannerChanges:
    try:
        return msgspec.convert({name: value for name, value in fields.items() if value is not None}, BannerChanges)
    except msgspec.ValidationError as exc:
        fail(str(exc))


@cache_app.command("refresh-banner")
def cache_refresh_banner() -> None:
    """Rewrite the cached home banners from the database now."""
    _show_cached_or_exit(run(refresh_banners))


@banner_app.command("list")
def banner_list(
    deleted: Annotated[bool, typer.Option("--deleted", help="Include deleted banners.")] = False,
) -> None:
    """Every banner in the database, shown or not."""
    from luffy.home.services import all_banners

    async def work(ctx: CommandContext) -> list[Banner]:
        async with ctx.session() as session:
            return await all_banners(session, include_deleted=deleted)

    table = Table("id", "orders", "shown", "title", "image", "link", "info", title="banners")
    for banner in run(work):
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

    changes = _changes(title=title, image=image, link=link, info=info, orders=orders, is_show=show)
    _write(lambda session: add_banner(session, changes), "added banner {id} ({title})")


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

    changes = _changes(title=title, image=image, link=link, info=info, orders=orders, is_show=show)
    _write(lambda session: change_banner(session, banner_id, changes), "updated banner {id} ({title})")


@banner_app.command("hide")
def banner_hide(banner_id: Annotated[int, typer.Argument(help="Banner id.")]) -> None:
    """Take a banner off the home page (luffy banner update ID --show brings it back)."""
    from luffy.home.services import change_banner

    _write(lambda session: change_banner(session, banner_id, BannerChanges(is_show=False)), "hid banner {id} ({title})")


@banner_app.command("delete")
def banner_delete(banner_id: Annotated[int, typer.Argument(help="Banner id.")]) -> None:
    """Delete a banner (soft: the row stays, marked deleted, invisible everywhere)."""
    from luffy.home.services import delete_banner

    _write(lambda session: delete_banner(session, banner_id), "deleted banner {id} ({title})")
