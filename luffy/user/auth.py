"""JWT authentication (Litestar's ``JWTAuth``), signed with ``LUFFY_SECRET_KEY``.

Authentication is declared where it applies: ``luffy/app.py`` puts the protected controllers on a
router that carries ``jwt_auth.middleware`` and its OpenAPI security requirement, and the public
ones on routers without it. How a request presents its token is decided in one place,
:func:`encoded_token`; who the token stands for, in :func:`_user_from_token`.

The authenticated user is read from the token alone: protected hot paths (the seckill POST)
make no database query to learn who is calling.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.middleware.authentication import AuthenticationResult
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token

from luffy.settings import Settings

MAX_USER_ID = 2**63 - 1  # the id column is a signed 64-bit integer
AUTH_HEADER = "Authorization"


class AuthUser(msgspec.Struct, frozen=True):
    id: int
    username: str


def encoded_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token a request presents: the word after the scheme in ``Authorization``, or none."""
    header = connection.headers.get(AUTH_HEADER)
    if not header:
        return None
    return header.partition(" ")[-1]


class TokenAuthenticationMiddleware(JWTAuthenticationMiddleware):
    """Litestar's JWT middleware, reading the token through :func:`encoded_token`."""

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        token = encoded_token(connection)
        if token is None:
            raise NotAuthorizedException("No JWT token found in request header")
        return await self.authenticate_token(encoded_token=token, connection=connection)


async def _user_from_token(token: Token, _connection: ASGIConnection[Any, Any, Any, Any]) -> AuthUser | None:
    try:
        user_id = int(token.sub)
    except ValueError:
        return None
    if not 1 <= user_id <= MAX_USER_ID:
        return None  # correctly signed yet no user can have it: a 401, not a bigint overflow in SQL
    return AuthUser(id=user_id, username=str(token.extras.get("username", "")))


def make_jwt_auth(settings: Settings) -> JWTAuth[AuthUser, Token]:
    return JWTAuth[AuthUser, Token](
        retrieve_user_handler=_user_from_token,
        token_secret=settings.secret_key,
        default_token_expiration=timedelta(seconds=settings.jwt_expiry_seconds),
        auth_header=AUTH_HEADER,
        authentication_middleware_class=TokenAuthenticationMiddleware,
        description="Authorization: Bearer <token from /api/v1/user/mobile/login/>",
    )


def issue_token(jwt_auth: JWTAuth[AuthUser, Token], user_id: int, username: str) -> str:
    return jwt_auth.create_token(identifier=str(user_id), token_extras={"username": username})
