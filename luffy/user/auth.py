"""JWT authentication (Litestar's ``JWTAuth``), signed with ``LUFFY_SECRET_KEY``: every rule about tokens lives here.

Authentication is declared where it applies: ``luffy/app.py`` puts the protected controllers on a
router that carries ``jwt_auth.middleware`` and its OpenAPI security requirement, and the public
ones on routers without it.

How a request presents its token is decided in one place, :func:`encoded_token`:
``Authorization: Bearer <token>`` or ``Authorization: jwt <token>`` (the original front end's
djangorestframework-jwt prefix); without an ``Authorization`` header, the ``token`` cookie, but only
on a request the browser marks ``Sec-Fetch-Site: same-origin``. A browser sends cookies on
cross-site requests too, so a cookie accepted from any other site would let that site act as the
user (CSRF); ``Sec-Fetch-Site`` is set by the browser and cannot be forged by a page's script.

Who the token stands for is decided in :func:`_user_from_token`: the user id in the token, unless
that user's tokens are revoked (``revocation.py``): a disabled or deleted user is refused on every
protected route. A handler that checks the user itself says so with
``REVOCATION_CHECKED_IN_HANDLER`` in its ``opt``, so the check is not made twice: ``/me`` reads the
user row anyway, and the flash-sale purchases check inside the admission script, so that path
keeps one Redis round trip and no database query.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

import msgspec
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from luffy.errors import NotAuthenticated, Unavailable
from luffy.settings import Settings
from luffy.user.revocation import (
    REVOKED_MSG,
    DatabaseRevocations,
    RedisRevocations,
    Revocations,
    keep_rebuilding,
    rebuild_now,
    revocations_in_use,
)

MAX_USER_ID = 2**63 - 1  # the id column is a signed 64-bit integer
AUTH_HEADER = "Authorization"
AUTH_SCHEMES = frozenset({"bearer", "jwt"})
TOKEN_COOKIE = "token"
SAME_ORIGIN = "same-origin"
REVOCATION_CHECKED_IN_HANDLER = "revocation_checked_in_handler"

logger = logging.getLogger("luffy.auth")


class AuthUser(msgspec.Struct, frozen=True):
    id: int
    username: str


def encoded_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token a request presents, by the rules in the module docstring, or none."""
    header = connection.headers.get(AUTH_HEADER)
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        return token if scheme.lower() in AUTH_SCHEMES and token else None
    if connection.headers.get("Sec-Fetch-Site", "").strip().lower() == SAME_ORIGIN:
        return connection.cookies.get(TOKEN_COOKIE, "").strip() or None
    return None


class TokenAuthenticationMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, reading the token through :func:`encoded_token`."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = encoded_token(connection)
        if token is None:
            raise NotAuthorizedException("No JWT token found in the Authorization header or a same-origin cookie")
        return await self.authenticate_token(encoded_token=token, connection=connection)


async def _user_from_token(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthUser | None:
    if not (token.sub.isascii() and token.sub.isdigit()):
        return None  # int() would also read " 5", "+5", "5_0" and other scripts' digits as an id
    user_id = int(token.sub)
    if not 1 <= user_id <= MAX_USER_ID:
        return None  # correctly signed yet no user can have it: a 401, not a bigint overflow in SQL
    if not connection.route_handler.opt.get(REVOCATION_CHECKED_IN_HANDLER):
        revocations: Revocations = connection.app.state.revocations
        try:
            if await revocations.is_revoked(user_id):
                raise NotAuthenticated(REVOKED_MSG)
        except (RedisError, SQLAlchemyError, OSError) as exc:
            logger.warning("revocation check unavailable: %s", type(exc).__name__)
            raise Unavailable("认证服务暂不可用，请稍后再试") from exc
    return AuthUser(id=user_id, username=str(token.extras.get("username", "")))


def make_jwt_auth(settings: Settings) -> JWTAuth[AuthUser, Token]:
    return JWTAuth[AuthUser, Token](
        retrieve_user_handler=_user_from_token,
        token_secret=settings.secret_key,
        default_token_expiration=timedelta(seconds=settings.jwt_expiry_seconds),
        auth_header=AUTH_HEADER,
        authentication_middleware_class=TokenAuthenticationMiddleware,
        description=(
            "Authorization: Bearer <token> (or jwt <token>) from /api/v1/user/mobile/login/; "
            "a same-origin browser request without the header may carry it in the `token` cookie"
        ),
    )


def issue_token(jwt_auth: JWTAuth[AuthUser, Token], user_id: int, username: str) -> str:
    return jwt_auth.create_token(identifier=str(user_id), token_extras={"username": username})


@asynccontextmanager
async def auth_lifespan(app: Litestar) -> AsyncIterator[None]:
    """The revocation list this process checks; in production rebuilt from the database now and periodically."""
    state = app.state
    if state.redis is None:
        state.revocations = DatabaseRevocations(state.sqlalchemy_config)
        with revocations_in_use(state.revocations):
            yield
        return
    revocations = RedisRevocations(state.redis)
    state.revocations = revocations
    await rebuild_now(revocations, state.sqlalchemy_config)
    rebuilding = asyncio.create_task(keep_rebuilding(revocations, state.sqlalchemy_config))
    try:
        with revocations_in_use(revocations):
            yield
    finally:
        rebuilding.cancel()
        with suppress(asyncio.CancelledError):
            await rebuilding
