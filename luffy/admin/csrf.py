"""CSRF protection for the admin: a per-session token that every unsafe request must send back.

sqladmin has none of its own. The token lives in the signed session cookie (so any API process
can check it), pages carry it in a ``<meta>`` tag and in every POST form (``templates/sqladmin/base.html``),
and this middleware refuses a POST, PUT, PATCH or DELETE whose form field ``csrf_token`` or header
``X-CSRF-Token`` does not match. The session cookie is also ``SameSite=Strict``.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(request: Request) -> str:
    """The session's token, made on first use (templates call this)."""
    token: str | None = request.session.get(SESSION_KEY)
    if token is None:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


class CSRFMiddleware:
    """Sits inside the session middleware: it needs ``scope["session"]``."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                await PlainTextResponse("请求体过大", status_code=413)(scope, receive, send)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        request = Request(scope, replay)
        expected = request.session.get(SESSION_KEY)
        given = request.headers.get(HEADER) or await _form_token(request)
        sent = False
        if not expected or not given or not secrets.compare_digest(str(given), str(expected)):
            await PlainTextResponse("CSRF 校验失败，请刷新页面后重试", status_code=403)(scope, replay, send)
            return
        await self.app(scope, replay, send)


async def _form_token(request: Request) -> Any:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        return None
    form = await request.form()
    try:
        return form.get(FORM_FIELD)
    finally:
        await form.close()
