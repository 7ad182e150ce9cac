"""Authentication applies to the routes declared on the authenticated router, and to no others."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.db import make_sqlalchemy_config
from luffy.settings import Settings
from luffy.user.auth import issue_token
from tests.support.seckill_support import create_users

GARBAGE = {"Authorization": "Bearer not-a-token"}
PUBLIC = ("/health", "/api/v1/home/banner/", "/api/v1/course/category/", "/api/v1/course/actual/")
PROTECTED = (
    "/api/v1/user/me/",
    "/api/v1/user/sckill/?task_id=x",
    "/api/v1/user/seckill/",
    "/api/v1/user/get_result/?id=x",
)


async def test_public_routes_ignore_a_bad_token_and_protected_ones_refuse_it(
    client: AsyncTestClient[Litestar],
) -> None:
    for path in PUBLIC:
        assert (await client.get(path, headers=GARBAGE)).status_code == 200, path
    for path in PROTECTED:
        refused = await client.get(path, headers=GARBAGE)
        assert refused.status_code == 401, path
        assert refused.json() == {"code": 999, "msg": "未登录或登录已过期"}


async def test_the_token_is_the_word_after_a_bearer_or_jwt_scheme(
    client: AsyncTestClient[Litestar], app: Litestar, settings: Settings
) -> None:
    config = make_sqlalchemy_config(settings)  # the test's own engine: the client runs the app on another loop
    [user] = await create_users(config, 1)
    await config.get_engine().dispose()
    token = issue_token(app.state.jwt_auth, user, "someone")
    for header in (f"Bearer {token}", f"jwt {token}"):
        reply = await client.get("/api/v1/user/sckill/", params={"task_id": "x"}, headers={"Authorization": header})
        assert reply.status_code == 200, header
    for header in (f"Token {token}", token):
        refused = await client.get("/api/v1/user/sckill/", params={"task_id": "x"}, headers={"Authorization": header})
        assert refused.status_code == 401, header


def test_the_openapi_document_asks_for_a_token_exactly_where_the_router_does(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    secured = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert secured == {
        ("/api/v1/user/me", "get"),
        ("/api/v1/user/sckill", "get"),
        ("/api/v1/user/sckill", "post"),
        ("/api/v1/user/seckill", "get"),
        ("/api/v1/user/get_result", "get"),
        ("/api/v1/order/alipay", "post"),
        ("/api/v1/order/orders", "get"),
    }
    assert app.openapi_schema.to_schema()["components"]["securitySchemes"]["BearerToken"]["scheme"] == "Bearer"
