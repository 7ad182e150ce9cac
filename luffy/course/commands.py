"""``luffy catalogue ...``: the cached catalogue replies (production), cleared after catalogue writes.

Luffy's own writers clear the cache themselves (the admin, ``luffy seed``); the command is for a
change made straight in the database, which the API would otherwise show only when the cache
expires (``LUFFY_CATALOGUE_CACHE_SECONDS``).
"""

from __future__ import annotations

import typer

from luffy.cli_runtime import CommandContext, console, err_console, run

catalogue_app = typer.Typer(help="The course catalogue's cached replies (Redis, production).", no_args_is_help=True)


async def clear_catalogue_cache(ctx: CommandContext) -> bool:
    """Clear the API's catalogue cache after a committed write; ``False`` (and a message) when Redis is down."""
    from luffy.cache import CACHE_ERRORS
    from luffy.course.cache import make_catalogue_cache

    try:
        await make_catalogue_cache(ctx.redis, ctx.settings).invalidate()
    except CACHE_ERRORS as exc:
        err_console.print(
            f"[red]error:[/red] the database is up to date, but the catalogue cache could not be cleared ({exc}); "
            f"the API may show the old catalogue for up to {ctx.settings.catalogue_cache_seconds} s",
            highlight=False,
            soft_wrap=True,
        )
        return False
    return True


@catalogue_app.command("clear-cache")
def clear_cache() -> None:
    """Clear the cached categories, courses and chapters now (after editing them directly in the database)."""

    async def work(ctx: CommandContext) -> bool:
        if ctx.settings.is_embedded:
            console.print("embedded mode keeps no catalogue cache: the API reads the database every time")
            return True
        if not await clear_catalogue_cache(ctx):
            return False
        console.print("catalogue cache cleared: the API reads the catalogue from the database again")
        return True

    if not run(work):
        raise typer.Exit(1)
