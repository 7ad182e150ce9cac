"""Builds the sqladmin application and mounts it into Litestar at ``/admin``.

sqladmin is a Starlette app: it is built inside a bare Starlette app (sqladmin mounts itself there,
which names its routes ``admin:*``) and that app is mounted into Litestar as an ASGI handler. The
views reach Luffy's settings, database, caches and Redis through ``AdminContext`` (put in the scope by
the mount), never through Litestar's app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litestar import asgi
from litestar.handlers.asgi_handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send
from sqladmin import Admin
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from luffy.admin.auth import StaffLogin
from luffy.admin.csrf import csrf_token

if TYPE_CHECKING:
    from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
    from litestar.datastructures import State
    from litestar.stores.base import Store

    from luffy.course.cache import CatalogueCache
    from luffy.seckill.reservations import RedisReservations
    from luffy.settings import Settings
    from luffy.user.services import PasswordLogin

PATH = "/admin"
SCOPE_KEY = "luffy.admin"
TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class AdminContext:
    """What the admin's views and login need from the running app."""

    settings: Settings
    sqlalchemy_config: SQLAlchemyAsyncConfig
    state: State
    cache: Store
    _password_login: PasswordLogin | None = field(default=None, init=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        from luffy.db import session_scope

        async with session_scope(self.sqlalchemy_config) as session:
            yield session

    @property
    def password_login(self) -> PasswordLogin:
        """The API's password login, with its lockout (built once Redis is open: after the lifespan starts)."""
        from luffy.user.services import make_password_login

        if self._password_login is None:
            self._password_login = make_password_login(self.settings, self.state.get("redis"), self.cache)
        return self._password_login

    @property
    def catalogue_cache(self) -> CatalogueCache:
        """The API's catalogue cache (made when the lifespan starts), which catalogue writes clear."""
        cache: CatalogueCache = self.state.catalogue_cache
        return cache

    @property
    def reservations(self) -> RedisReservations | None:
        """The flash-sale state in Redis (production); ``None`` when embedded."""
        from luffy.seckill.reservations import RedisReservations

        redis = self.state.get("redis")
        if redis is None:
            return None
        return RedisReservations(redis, owner_ttl_seconds=self.settings.result_ttl_seconds)


def admin_context(request: Request) -> AdminContext:
    context: AdminContext = request.scope[SCOPE_KEY]
    return context


class LuffyAdmin(Admin):
    @staticmethod
    async def _handle_form_data(request: Request, obj: Any = None) -> FormData:
        """The form without empty file inputs: an image left unchanged stays as it is.

        (sqladmin's own version expects file columns to be storage objects; Luffy's are media paths.)
        """
        form = await request.form()
        kept: list[tuple[str, str | UploadFile]] = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if not await value.read(1):
                    continue
                await value.seek(0)
            kept.append((key, value))
        return FormData(kept)


def build_admin(settings: Settings, sqlalchemy_config: SQLAlchemyAsyncConfig) -> Starlette:
    from luffy.admin.views import VIEWS

    host = Starlette()
    admin = LuffyAdmin(
        host,
        session_maker=async_sessionmaker(sqlalchemy_config.get_engine(), expire_on_commit=False),
        base_url=PATH,
        title="路飞学城 管理后台",
        templates_dir=str(TEMPLATES),
        authentication_backend=StaffLogin(settings),
    )
    admin.templates.env.globals["csrf_token"] = csrf_token
    for view in VIEWS:
        admin.add_view(view)
    return host


def admin_mount(
    settings: Settings, sqlalchemy_config: SQLAlchemyAsyncConfig, state: State, cache: Store
) -> ASGIRouteHandler:
    """The Litestar handler serving everything under ``/admin``."""
    host = build_admin(settings, sqlalchemy_config)
    context = AdminContext(settings, sqlalchemy_config, state, cache)

    @asgi(PATH, is_mount=True, copy_scope=True, include_in_schema=False)
    async def admin(scope: Scope, receive: Receive, send: Send) -> None:
        # Litestar hands a mount the path below its prefix, with a trailing slash added; the Starlette
        # host routes on the full path as the client sent it.
        path = PATH + scope["path"]
        if not scope.get("raw_path", b"").endswith(b"/"):
            path = path.rstrip("/")
        scope["path"] = path
        scope["root_path"] = ""
        scope[SCOPE_KEY] = context  # type: ignore[literal-required]
        await host(scope, receive, send)  # type: ignore[arg-type]

    return admin
