"""``luffy sms ...`` and ``luffy user ...``: what the SMS workers sent; accounts, passwords and tokens.

The user commands call the same services as the API (password rules, Django-format hashes,
``set_user_active``), so a rule is never re-implemented here. Passwords come from standard input
(one line, for scripts) or an interactive prompt, never from an argument: arguments end up in
shell history and in every ``ps`` listing.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, fail, run
from luffy.settings import get_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from luffy.user.models import SmsLog, User

T = TypeVar("T")

sms_app = typer.Typer(help="SMS verification codes: what the workers sent.", no_args_is_help=True)
user_app = typer.Typer(help="Users: accounts, passwords, tokens for operators and load tests.", no_args_is_help=True)

# The user services are imported inside the commands: they load SQLAlchemy and Litestar, which
# `luffy --help` should not wait for (see luffy/cli_runtime.py).


@sms_app.command("outbox")
def sms_outbox(
    mobile: Annotated[str | None, typer.Option(help="Only this mobile's messages.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many rows, newest first.")] = 20,
) -> None:
    """The SMS log, newest first: each send's status, tries and errors; the text of console messages."""
    from luffy.user.services import SmsLogService

    async def work(ctx: CommandContext) -> list[SmsLog]:
        async with ctx.session() as session:
            return list(await SmsLogService(session=session).recent(mobile, limit))

    table = Table("id", "created", "mobile", "provider", "status", "tries", "message / error", title="SMS outbox")
    for row in run(work):
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
    from luffy.user.auth import issue_token, make_jwt_auth
    from luffy.user.services import MOBILE_RE, UserService

    malformed = [mobile for mobile in mobiles if not MOBILE_RE.fullmatch(mobile)]
    if malformed:
        fail(f"not a mobile number: {', '.join(malformed[:10])}")

    async def work(ctx: CommandContext) -> dict[str, tuple[int, str]]:
        async with ctx.session() as session:
            return await UserService(session=session).ensure_users(mobiles)

    users = run(work)
    missing = [mobile for mobile in mobiles if mobile not in users]
    if missing:
        fail(f"no user could be created for {', '.join(missing[:10])} (username taken)", 1)
    jwt_auth = make_jwt_auth(get_settings())
    sys.stdout.write("".join(issue_token(jwt_auth, *users[mobile]) + "\n" for mobile in mobiles))


def _in_transaction(work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """``work(session)`` in one transaction; a service's refusal becomes one line and exit status 2."""
    from luffy.errors import DomainError

    async def run_work(ctx: CommandContext) -> T:
        async with ctx.session() as session:
            return await work(session)

    try:
        return run(run_work)
    except DomainError as exc:
        fail(exc.message)


def _read_password() -> str:
    """A prompt (asked twice) on a terminal; else the first line of standard input."""
    if sys.stdin.isatty():
        return typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    if not line:
        fail("no password on standard input (pipe one line, or run in a terminal to be asked)")
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
    user_id = _in_transaction(
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

    async def work(session: AsyncSession) -> None:
        await set_password(session, await user_id_by_username(session, username), password)

    _in_transaction(work)
    console.print(f"password of {username} changed", highlight=False)


def _set_active(username: str, active: bool) -> None:
    from luffy.user.services import set_user_active, user_id_by_username

    async def work(session: AsyncSession) -> None:
        await set_user_active(session, await user_id_by_username(session, username), active)

    _in_transaction(work)
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

    users: list[User] = list(_in_transaction(lambda session: list_users(session, limit)))
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
