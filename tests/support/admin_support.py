"""Helpers for the admin tests: staff users, the CSRF token a page carries, logging in over HTTP."""

from __future__ import annotations

import re
from html.parser import HTMLParser
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


class _FormReader(HTMLParser):
    """The values a browser would submit from a page's first form, as it stands (file inputs left empty)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        name = attributes.get("name", "")
        if tag == "form":
            self._in_form = True
        elif not self._in_form or (not name and tag != "option"):
            return
        elif tag == "input" and attributes.get("type") not in ("submit", "file", "checkbox"):
            self.fields[name] = attributes.get("value", "")
        elif tag == "input" and attributes.get("type") == "checkbox" and "checked" in attributes:
            self.fields[name] = attributes.get("value", "y")
        elif tag == "select":
            self._select = name
        elif tag == "option" and self._select is not None and "selected" in attributes:
            self.fields[self._select] = attributes.get("value", "")
        elif tag == "textarea":
            self._textarea = name
            self.fields[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.fields[self._textarea] += data


def form_values(html: str) -> dict[str, str]:
    """What submitting the page's form unchanged would send (``save`` and the CSRF token added by the caller)."""
    reader = _FormReader()
    reader.feed(html)
    return reader.fields
