"""``luffy user create|set-password|disable|enable|list``: operators manage accounts.

The commands call the same services as the API (password rules, Django-format hashes,
``set_user_active``), so a rule is never re-implemented here. Passwords come from standard input
(one line, for scripts) or an interactive prompt, never from an argument: arguments end up in
shell history and in every ``ps`` listing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from luffy.errors import DomainError
from luffy.settings import get_settings

user_app = typer.Typer(help="Users: accounts, passwords, tokens for operators and load tests.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def _fail(message: str, status: int = 2) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(status)


def _on_database(work: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    """``work(session)`` in one transaction; a service's refusal becomes one line and exit status 2."""
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
        raise _fail(exc.message) from None


def _read_password() -> str:
    """A prompt (asked twice) on a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        raise _fail("no password on standard input (pipe one line, or run in a terminal to be asked)")
    return line.rstrip("\r\n")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="Letters, digits and @.+-_, up to 150 characters.")],
    mobile: Annotated[str, typer.Option(help="Mainland China mobile number (unique).")],
    email: Annotated[str, typer.Option(help="Email address (optional).")] = "",
    staff: Annotated[bool, typer.Option("--staff", help="May log into the admin.")] = False,
    superuser: Annotated[bool, typer.Option("--superuser", help="Every permission (implies --staff).")] = False,
) -> None:
    """Create a user; the password is read from standard input or prompted for."""
    from luffy.user.services import create_user

    password = _read_password()
    user_id = _on_database(
        lambda session: create_user(
            session,
            username=username,
            mobile=mobile,
            password=password,
            email=email,
            is_staff=staff,
            is_superuser=superuser,
        )
    )
    console.print(f"created user {user_id} ({username})", highlight=False)


@user_app.command("set-password")
def user_set_password(username: Annotated[str, typer.Argument(help="The user's username.")]) -> None:
    """Set a user's password (read from standard input or prompted for)."""
    from luffy.user.services import set_password, user_id_by_username

    password = _read_password()

    async def work(session: Any) -> None:
        await set_password(session, await user_id_by_username(session, username), password)

    _on_database(work)
    console.print(f"password of {username} changed", highlight=False)


def _set_active(username: str, active: bool) -> None:
    from luffy.user.services import set_user_active, user_id_by_username

    async def work(session: Any) -> None:
        await set_user_active(session, await user_id_by_username(session, username), active)

    _on_database(work)
    console.print(f"{username} {'enabled' if active else 'disabled'}", highlight=False)


@user_app.command("disable")
def user_disable(username: Annotated[str, typer.Argument(help="The user's username.")]) -> None:
    """Disable a user: logins are refused and the user's tokens stop working."""
    _set_active(username, False)


@user_app.command("enable")
def user_enable(username: Annotated[str, typer.Argument(help="The user's username.")]) -> None:
    """Enable a disabled user again."""
    _set_active(username, True)


@user_app.command("list")
def user_list(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many users, oldest first.")] = 1000,
) -> None:
    """Every user: id, username, mobile, email, flags, whether a password is set, dates."""
    from luffy.user.services import list_users

    users = _on_database(lambda session: list_users(session, limit))
    table = Table(
        "id", "username", "mobile", "email", "active", "staff", "superuser", "password", "joined", "last login"
    )
    for user in users:
        table.add_row(
            str(user.id),
            user.username,
            user.mobile,
            user.email,
            "yes" if user.is_active else "no",
            "yes" if user.is_staff else "no",
            "yes" if user.is_superuser else "no",
            "no" if user.password.startswith("!") else "yes",
            user.date_joined.strftime("%Y-%m-%d %H:%M"),
            user.last_login.strftime("%Y-%m-%d %H:%M") if user.last_login else "",
        )
    console.print(table)
