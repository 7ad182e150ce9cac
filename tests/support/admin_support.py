"""Helpers for the admin tests: staff users, the CSRF token a page carries, logging in over HTTP."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from luffy.db import make_sqlalchemy_config, session_scope
from luffy.user.services import create_user

if TYPE_CHECKING:
    import httpx

    from luffy.settings import Settings

STAFF = ("boss", "13800000001", "Staff-pass-123")
PLAIN = ("joe", "13800000002", "Plain-pass-123")
TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


async def make_users(settings: Settings) -> dict[str, int]:
    """A staff user (``boss``) and a plain user (``joe``), created as ``luffy user create`` does."""
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            staff = await create_user(session, username=STAFF[0], mobile=STAFF[1], password=STAFF[2], is_staff=True)
            plain = await create_user(session, username=PLAIN[0], mobile=PLAIN[1], password=PLAIN[2])
    finally:
        await config.get_engine().dispose()
    return {"staff": staff, "plain": plain}


def page_token(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


async def log_in(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    page = await client.get("/admin/login")
    token = page_token(page.text)
    return await client.post(
        "/admin/login", data={"username": username, "password": password, "csrf_token": token}, follow_redirects=False
    )
