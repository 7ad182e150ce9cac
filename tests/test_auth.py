"""Authentication applies to the routes declared on the authenticated router, and to no others."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.user.auth import issue_token

GARBAGE = {"Authorization": "Bearer not-a-token"}
PUBLIC = ("/health", "/api/v1/home/banner/", "/api/v1/course/category/", "/api/v1/course/actual/")
PROTECTED = ("/api/v1/user/me/", "/api/v1/user/sckill/?task_id=x")


async def test_public_routes_ignore_a_bad_token_and_protected_ones_refuse_it(
    client: AsyncTestClient[Litestar],
) -> None:
    for path in PUBLIC:
        assert (await client.get(path, headers=GARBAGE)).status_code == 200, path
    for path in PROTECTED:
        refused = await client.get(path, headers=GARBAGE)
        assert refused.status_code == 401, path
        assert refused.json() == {"code": 999, "msg": "未登录或登录已过期"}


async def test_the_token_is_the_word_after_the_scheme(client: AsyncTestClient[Litestar], app: Litestar) -> None:
    token = issue_token(app.state.jwt_auth, 1, "someone")
    for header in (f"Bearer {token}", f"Token {token}"):
        reply = await client.get("/api/v1/user/sckill/", params={"task_id": "x"}, headers={"Authorization": header})
        assert reply.status_code == 200, header
    bare = await client.get("/api/v1/user/sckill/", params={"task_id": "x"}, headers={"Authorization": token})
    assert bare.status_code == 401


def test_the_openapi_document_asks_for_a_token_exactly_where_the_router_does(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    secured = {
        (path, method)
        for path, operations in paths.items()
        for method, operation in operations.items()
        if operation.get("security")
    }
    assert secured == {("/api/v1/user/me", "get"), ("/api/v1/user/sckill", "get"), ("/api/v1/user/sckill", "post")}
    assert app.openapi_schema.to_schema()["components"]["securitySchemes"]["BearerToken"]["scheme"] == "Bearer"
