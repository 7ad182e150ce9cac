"""Staff login for the admin: the API's password login (same hashes, same lockout), then ``is_staff``.

The session is Starlette's signed cookie (itsdangerous, keyed by the settings' secret key): HttpOnly,
SameSite=Strict, Secure outside local http, and readable by every API process. Each request re-reads
the user, so a staff user disabled or demoted is out at their next click.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqladmin.authentication import AuthenticationBackend
from sqlalchemy import select
from starlette.middleware import Middleware
from starlette.requests import Request

from luffy.admin.csrf import CSRFMiddleware
from luffy.admin.uploads import MAX_IMAGE_BYTES
from luffy.errors import DomainError
from luffy.user.models import User

if TYPE_CHECKING:
    from luffy.settings import Settings

PATH = "/admin"
SESSION_COOKIE = "luffy_admin"
SESSION_SECONDS = 8 * 3600
USER_KEY = "user_id"


class StaffLogin(AuthenticationBackend):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_SECONDS,
            same_site="strict",
            path=PATH,
            https_only=settings.backend_url.startswith("https://"),
        )
        # Inside the session middleware: the CSRF check reads the session's token.
        self.middlewares.append(Middleware(CSRFMiddleware, max_body_bytes=MAX_IMAGE_BYTES * 4 + 64 * 1024))

    async def login(self, request: Request) -> bool:
        from luffy.admin.site import admin_context

        form = await request.form()
        identifier, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        context = admin_context(request)
        try:
            async with context.session() as session:
                user_id, _, _ = await context.password_login.log_in(
                    session, identifier, password, request.client.host if request.client else "unknown"
                )
                is_staff = await session.scalar(select(User.is_staff).where(User.id == user_id))
        except DomainError:
            return False
        if not is_staff:
            return False
        request.session.clear()
        request.session[USER_KEY] = user_id
        return True

    async def logout(self, request: Request) -> bool:
        request.session.clear()
        return True

    async def authenticate(self, request: Request) -> bool:
        from luffy.admin.site import admin_context

        user_id = request.session.get(USER_KEY)
        if not isinstance(user_id, int):
            return False
        async with admin_context(request).session() as session:
            allowed = await session.scalar(select(User.is_staff & User.is_active).where(User.id == user_id))
        if not allowed:
            request.session.pop(USER_KEY, None)
        return bool(allowed)
