"""``luffy sms ...`` and ``luffy user ...``: what the SMS workers sent, and users for operators and load tests."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from luffy.cli_runtime import CommandContext, console, fail, run
from luffy.settings import get_settings

if TYPE_CHECKING:
    from luffy.user.models import SmsLog

sms_app = typer.Typer(help="SMS verification codes: what the workers sent.", no_args_is_help=True)
user_app = typer.Typer(help="Users: tokens for operators and load tests.", no_args_is_help=True)

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
