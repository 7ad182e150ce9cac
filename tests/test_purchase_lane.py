"""The purchase lane (``luffy.purchase_lane``): the sale's POST answered before the framework, as the app answers it.

Every test serves ``luffy.asgi.build`` (what ``luffy serve`` runs) and holds its replies to the
Litestar app's own replies to the same requests on the same sale: same status, bytes and headers.
A request the lane cannot answer exactly as the app would must reach the app.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import msgspec
import pytest
import schemathesis
from litestar import Litestar
from litestar.types import ASGIApp
from redis.asyncio import Redis
from schemathesis.python import asgi

from luffy.app import create_app
from luffy.asgi import build
from luffy.db import session_scope
from luffy.errors import Unavailable
from luffy.http import API_MAX_BODY_BYTES
from luffy.purchase_lane import PurchaseLane, features_the_lane_skips, purchase_route_handler
from luffy.seckill.services import SeckillDesk, publish_goods
from luffy.settings import Settings
from luffy.user.auth import issue_token
from luffy.user.services import set_user_active
from tests.support.fuzz import fuzz
from tests.support.logs import captured_logs
from tests.support.replies import comparable, recording_app_calls
from tests.support.seckill_support import HAT, create_goods, create_users, running
from tests.support.sqlcount import count_statements

BASE_URL = "http://testserver.local"
URL = "/api/v1/user/sckill/"
ALLOWED_ORIGIN = "http://localhost:8080"
ORIGINS: list[dict[str, str]] = [{}, {"Origin": ALLOWED_ORIGIN}, {"Origin": "https://evil.example"}]
JSON = {"Content-Type": "application/json"}
LATER = "还没开始的帽子"
GONE = "只有一顶的帽子"


class Sale(msgspec.Struct):
    """Goods on sale and buyers in every state, made through the app (the lane adds nothing to set up)."""

    settings: Settings
    tokens: dict[str, str]

    def headers(self, buyer: str, **more: str) -> dict[str, str]:
        return {**JSON, "Authorization": f"Bearer {self.tokens[buyer]}", **more}


Request = tuple[bytes, dict[str, str]]


@pytest.fixture
async def sale(clean_database: str, redis_url: str, make_settings: Callable[..., Settings]) -> Sale:
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    await redis.aclose()
    settings = make_settings(clean_database, redis_url, LUFFY_CORS_ORIGINS=ALLOWED_ORIGIN)
    app = create_app(settings)
    config = app.state.sqlalchemy_config
    now = datetime.datetime.now(datetime.UTC)
    await create_goods(config, stock=50)
    await create_goods(config, name=LATER, start=now + datetime.timedelta(hours=1))
    await create_goods(config, name=GONE, stock=1)
    names = ["buyer", "other", "third", "bought", "disabled", "zero"]
    ids = dict(zip(names, await create_users(config, len(names) - 1), strict=False))
    ids["zero"] = 0
    async with running(app):
        async with session_scope(config) as session:
            await publish_goods(session, app.state.seckill_gate)
            await set_user_active(session, ids["disabled"], False)
        tokens = {name: issue_token(app.state.jwt_auth, user_id, name) for name, user_id in ids.items()}
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
            for goods in (HAT, GONE):
                bought = await client.post(
                    URL, json={"name": goods}, headers={"Authorization": f"Bearer {tokens['bought']}"}
                )
                assert bought.json()["code"] == 100
    return Sale(settings=settings, tokens=tokens)


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    with recording_app_calls(monkeypatch) as calls:
        yield calls


async def replies(served: ASGIApp, app: Litestar, requests: list[Request]) -> list[httpx.Response]:
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url=BASE_URL) as client:
        return [await client.post(URL, content=body, headers=headers) for body, headers in requests]


async def app_replies(sale: Sale, requests: list[Request]) -> list[httpx.Response]:
    """The Litestar app's own replies (one app at a time: two lifespans would share the brokers)."""
    app = create_app(sale.settings)
    return await replies(app, app, requests)


def served_and_app(sale: Sale) -> tuple[ASGIApp, Litestar]:
    """What ``luffy serve`` serves (the cached replies, then the purchase lane, then the app) and its app."""
    served = build(sale.settings)
    purchase_lane = served.app  # type: ignore[attr-defined]
    assert isinstance(purchase_lane, PurchaseLane)
    return served, purchase_lane.litestar


async def lane_replies(sale: Sale, requests: list[Request]) -> list[httpx.Response]:
    return await replies(*served_and_app(sale), requests)


def without_task_id(reply: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    status, content, headers = comparable(reply)
    return status, content.replace(reply.json()["task_id"].encode(), b"<task id>"), headers


def body(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


async def test_the_lanes_answers_are_the_apps_byte_for_byte_with_their_headers(
    sale: Sale, app_calls: list[str]
) -> None:
    cases = [
        ("buyer", {"name": "无此商品"}),
        ("buyer", {"name": LATER}),
        ("buyer", {"name": HAT, "goods_id": 1}),
        ("buyer", {}),
        ("bought", {"name": HAT}),
        ("buyer", {"name": GONE}),
        ("disabled", {"name": HAT}),
        ("buyer", {"name": "🎩" * 10}),
        ("buyer", {"name": None, "goods_id": None}),
        ("buyer", {"goods_id": 2**63 - 1}),
        ("buyer", {"name": "' OR 1=1; --"}),
    ]
    requests = [(body(data), sale.headers(buyer, **origin)) for buyer, data in cases for origin in ORIGINS]
    # The original front end's page sends its token as a cookie, on same-origin requests only.
    same_origin_cookie = {**JSON, "Cookie": f"token={sale.tokens['bought']}", "Sec-Fetch-Site": "same-origin"}
    requests.append((body({"name": HAT}), same_origin_cookie))
    # The original front end's djangorestframework-jwt prefix.
    requests.append((body({"name": HAT}), {**JSON, "Authorization": f"jwt {sale.tokens['bought']}"}))
    from_app = await app_replies(sale, requests)
    app_calls.clear()
    from_lane = await lane_replies(sale, requests)

    assert app_calls == [], "the lane answered every one of these itself"
    for request, app_reply, lane_reply in zip(requests, from_app, from_lane, strict=True):
        assert comparable(lane_reply) == comparable(app_reply), request
    answers = {(reply.status_code, reply.json()["msg"], reply.json().get("reason")) for reply in from_lane}
    assert answers == {
        (404, "秒杀商品不存在", None),
        (400, "秒杀尚未开始", None),
        (400, "请提供 name 或 goods_id 其中之一", None),
        (200, "秒杀失败", "duplicate"),
        (200, "秒杀失败", "sold_out"),
        (401, "用户不存在或已停用", None),
    }
    allowed = [reply for (_, headers), reply in zip(requests, from_lane, strict=True) if "Origin" in headers]
    assert {reply.headers.get("access-control-allow-origin") for reply in allowed} == {ALLOWED_ORIGIN, None}
    assert all(reply.headers["x-content-type-options"] == "nosniff" for reply in from_lane)


async def test_a_purchase_is_queued_by_the_lane_without_the_framework_or_a_database_query(
    sale: Sale, app_calls: list[str]
) -> None:
    [from_app] = await app_replies(sale, [(body({"name": HAT}), sale.headers("other", Origin=ALLOWED_ORIGIN))])
    served, app = served_and_app(sale)
    app_calls.clear()
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=served), base_url=BASE_URL) as client:
        with count_statements(app.state.sqlalchemy_config.get_engine()) as statements:
            queued = await client.post(URL, json={"name": HAT}, headers=sale.headers("third", Origin=ALLOWED_ORIGIN))
            # The OpenAPI document's spelling (no trailing slash), which the app routes to the same handler.
            again = await client.post(URL.rstrip("/"), json={"name": HAT}, headers=sale.headers("third"))

    assert app_calls == []
    assert statements == []
    assert queued.json() == {"code": 100, "msg": "您正在排队", "task_id": queued.json()["task_id"]}
    assert again.json() == {"code": 101, "msg": "秒杀失败", "reason": "duplicate"}
    assert queued.json()["task_id"] != from_app.json()["task_id"]
    assert without_task_id(queued) == without_task_id(from_app)


async def test_requests_the_lane_cannot_answer_as_the_app_reach_the_app_and_get_its_answer(
    sale: Sale, app_calls: list[str]
) -> None:
    hat = body({"name": HAT})
    cases: list[Request] = [
        (hat, JSON),  # no token
        (hat, {**JSON, "Authorization": "Bearer not-a-token"}),
        (hat, {**JSON, "Authorization": f"Basic {sale.tokens['buyer']}"}),
        (hat, sale.headers("zero")),  # correctly signed, yet no user has id 0
        (hat, {**JSON, "Cookie": f"token={sale.tokens['buyer']}", "Sec-Fetch-Site": "cross-site"}),
        (body({"goods_id": "999999"}), sale.headers("buyer")),  # the app converts "999999"; strict JSON does not
        (body({"name": 42}), sale.headers("buyer")),
        (b'{"name": "', sale.headers("buyer")),
        (b"[" * 2_000 + b"]" * 2_000, sale.headers("buyer")),
        (b"\xff\xfe", sale.headers("buyer")),
        (body({"name": "无此商品"}), sale.headers("buyer", **{"Content-Type": "text/plain"})),
        (body({"name": "x" * API_MAX_BODY_BYTES}), sale.headers("buyer")),
        (body({"name": "'; DROP TABLE users; --"}), {**JSON, "Authorization": "Bearer ' OR 1=1 --"}),
        (body({"goods_id": 2**64}), sale.headers("buyer")),
        (body({"goods_id": 0}), sale.headers("buyer")),
        (body({"goods_id": 1.5}), sale.headers("buyer")),
        (body({"name": ""}), sale.headers("buyer")),
        (body({"name": "x" * 65}), sale.headers("buyer")),
        (b"[]", sale.headers("buyer")),
        (b"null", sale.headers("buyer")),
        (b"", sale.headers("buyer")),
        # Fields the request does not have: the app decodes (and checks) the whole body.
        (body({"name": "无此商品", "extra": {"nested": [1, 2, {"deep": True}]}}), sale.headers("buyer")),
        (b'{"name": "\xe6\x97\xa0", "x": "\xff"}', sale.headers("buyer")),
        (b'{"\xff": 0, "name": "\xe6\x97\xa0"}', sale.headers("buyer")),
        (b'{"name": "\xe6\x97\xa0", "x": 1e400}', sale.headers("buyer")),
        (b'{"x": ' + b"[" * 1_500 + b"]" * 1_500 + b', "name": "\xe6\x97\xa0"}', sale.headers("buyer")),
        # A Host the app's router refuses before any route.
        (body({"name": "无此商品"}), sale.headers("buyer", Host="shop.example/x")),
    ]
    from_app = await app_replies(sale, cases)
    app_calls.clear()
    from_lane = await lane_replies(sale, cases)

    assert app_calls == [URL] * len(cases)
    for case, app_reply, lane_reply in zip(cases, from_app, from_lane, strict=True):
        assert comparable(lane_reply) == comparable(app_reply), case
    assert {reply.status_code for reply in from_lane} == {400, 401, 404, 413}


@pytest.mark.parametrize(
    ("error", "status", "reply"),
    [
        (RuntimeError("a bug"), 500, {"code": 888, "msg": "服务器错误"}),
        (Unavailable("秒杀服务暂不可用，请稍后再试"), 503, {"code": 888, "msg": "秒杀服务暂不可用，请稍后再试"}),
    ],
)
async def test_an_error_in_the_sale_is_answered_by_the_apps_own_handler(
    sale: Sale,
    monkeypatch: pytest.MonkeyPatch,
    app_calls: list[str],
    error: Exception,
    status: int,
    reply: dict[str, Any],
) -> None:
    calls: list[int] = []

    async def failing(_desk: SeckillDesk, _purchase: object, user_id: int) -> None:
        calls.append(user_id)
        raise error

    monkeypatch.setattr(SeckillDesk, "request", failing)
    request = [(body({"name": HAT}), sale.headers("buyer", Origin=ALLOWED_ORIGIN))]
    [from_app] = await app_replies(sale, request)
    calls.clear()
    app_calls.clear()
    with captured_logs("luffy") as logs:
        [from_lane] = await lane_replies(sale, request)

    assert app_calls == [], "the lane answered the error itself"
    assert len(calls) == 1, "the desk ran once: nothing it did is done again"
    assert comparable(from_lane) == comparable(from_app)
    assert (from_lane.status_code, from_lane.json()) == (status, reply)
    assert from_lane.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert ("unhandled error on POST" in logs.text) == (status == 500)


def test_embedded_mode_serves_the_app_itself(make_settings: Callable[..., Settings], sqlite_url: str) -> None:
    assert isinstance(build(make_settings(sqlite_url)), Litestar)


async def post_in_messages(served: ASGIApp, chunks: list[bytes], authorization: str) -> tuple[int, bytes]:
    """POST a body in these ASGI messages, with no Content-Length (as a server passes a chunked body on)."""
    messages: list[Any] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]
    replies: list[Any] = []

    async def receive() -> Any:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # a server's receive waits for the client

    async def send(message: Any) -> None:
        replies.append(message)

    headers = [(b"host", b"testserver.local"), (b"content-type", b"application/json")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": URL,
        "raw_path": URL.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"authorization", authorization.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver.local", 80),
    }
    await served(scope, receive, send)  # type: ignore[arg-type]
    return replies[0]["status"], b"".join(message.get("body", b"") for message in replies[1:])


async def test_a_body_in_messages_is_read_to_its_end_and_one_over_the_cap_goes_to_the_app_whole(
    sale: Sale, app_calls: list[str]
) -> None:
    authorization = sale.headers("buyer")["Authorization"]
    padded = body({"name": HAT, "padding": "x" * API_MAX_BODY_BYTES})
    over_the_cap_at_the_end = [padded]  # in one last message
    over_the_cap_midway = [padded[:4_000], padded[4_000:4_200], padded[4_200:]]
    unknown_field = [b'{"name": "', "无此".encode(), "商品".encode(), b'", "x": ', b"[1, 2]}"]
    bodies = [over_the_cap_at_the_end, over_the_cap_midway, unknown_field]
    app = create_app(sale.settings)
    async with running(app):
        from_app = [await post_in_messages(app, chunks, authorization) for chunks in bodies]
    served, app = served_and_app(sale)
    app_calls.clear()
    async with running(app):
        from_lane = [await post_in_messages(served, chunks, authorization) for chunks in bodies]
        assert app_calls == [URL] * len(bodies)
        queued = await post_in_messages(served, [b'{"na', b'me": "', HAT.encode(), b'"}'], authorization)
        assert app_calls == [URL] * len(bodies), "the lane answered the purchase in four messages itself"

    assert from_lane == from_app
    assert [status for status, _ in from_lane] == [413, 413, 404]
    assert json.loads(queued[1])["code"] == 100


def test_schemathesis_finds_no_purchase_reply_off_the_contract_with_a_valid_token(
    sale: Sale, app_calls: list[str]
) -> None:
    served = build(sale.settings)
    requests: list[str] = []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            requests.append(scope["path"])
        await served(scope, receive, send)

    schema = schemathesis.openapi.from_asgi("/schema/openapi.json", counting)
    try:
        operations = [result.ok() for result in schema.get_all_operations()]
        [purchase] = [op for op in operations if op.method.upper() == "POST" and op.path == URL.rstrip("/")]
        failures = fuzz([purchase], headers={"Authorization": sale.headers("buyer")["Authorization"]})
    finally:
        asgi.shutdown_lifespans()
    assert not failures, failures
    answered_by_the_lane = len(requests) - len(app_calls)
    assert answered_by_the_lane > 0, "the fuzz reached the lane, not only the app"


def test_the_lane_refuses_to_start_when_the_app_would_do_something_it_skips(
    make_settings: Callable[..., Settings], sqlite_url: str, redis_url: str
) -> None:
    app = create_app(make_settings(sqlite_url, redis_url))
    assert features_the_lane_skips(app, purchase_route_handler(app)) == []
    app.after_exception.append(lambda _exc, _scope: None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="after_exception hooks"):
        PurchaseLane(app, app)
