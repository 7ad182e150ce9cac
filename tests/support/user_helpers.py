"""Shared by the SMS and login tests: read what the send tasks sent."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.user.models import SmsLog
from luffy.user.services import SmsStatus

CODE_IN_MESSAGE = re.compile(r"验证码是([0-9]+)")
FINAL = SmsStatus.FINAL


async def sms_rows(database_url: str, mobile: str | None = None) -> list[SmsLog]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            statement = select(*SmsLog.__table__.c).order_by(SmsLog.id)
            if mobile is not None:
                statement = statement.where(SmsLog.mobile == mobile)
            return [SmsLog(**row._mapping) for row in await connection.execute(statement)]
    finally:
        await engine.dispose()


async def settled_sms(database_url: str, mobile: str, count: int = 1, wait: float = 15.0) -> list[SmsLog]:
    """``mobile``'s SMS log rows once ``count`` of them have a final status (the tasks run in the app's loop)."""
    deadline = time.monotonic() + wait
    while True:
        rows = await sms_rows(database_url, mobile)
        if sum(row.status in FINAL for row in rows) >= count:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"SMS to {mobile} did not settle: {[(row.status, row.error) for row in rows]}")
        await asyncio.sleep(0.05)


async def delivered_code(database_url: str, mobile: str) -> str:
    """The code in the newest message the console provider sent to ``mobile``."""
    rows = [row for row in await settled_sms(database_url, mobile) if row.status == "sent"]
    assert rows, f"no SMS was sent to {mobile}"
    match = CODE_IN_MESSAGE.search(rows[-1].message or "")
    assert match, rows[-1].message
    return match.group(1)


async def me_after_login(client: httpx.AsyncClient, login: httpx.Response, username: str) -> httpx.Response:
    """Asserts ``login`` answered 登录成功 for ``username`` (no icon yet); ``/user/me`` with its token, asserted 200."""
    assert login.status_code == 200, login.text
    body = login.json()
    assert {key: body[key] for key in ("code", "msg", "username", "icon")} == {
        "code": 100,
        "msg": "登录成功",
        "username": username,
        "icon": None,
    }
    me = await client.get("/api/v1/user/me/", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200
    return me
