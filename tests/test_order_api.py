"""Course orders and Alipay payment over HTTP (in-process), on SQLite and PostgreSQL.

Stand-in key pairs play the app and Alipay (``tests.support.order_support``): Luffy signs pay
requests with the app's key and must accept only notifications signed with "Alipay's".
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import httpx
import pytest
from litestar import Litestar

from luffy.app import create_app
from luffy.db import session_scope
from luffy.order.providers import PaymentProvider, make_provider
from luffy.order.services import PaymentOutcome, close_expired_orders, handle_notification
from luffy.settings import Settings
from luffy.user.auth import issue_token
from tests.support.order_support import (
    ALIPAY_KEYS,
    APP_ID,
    APP_KEYS,
    FORM,
    alipay_env,
    create_courses,
    key_pair,
    notification_params,
    orders,
    query_of,
    set_order,
    signed_notification,
    verifies,
)
from tests.support.seckill_support import create_users, running
from tests.support.waiting import eventually

BUY = "/api/v1/order/alipay/"
NOTIFY = "/api/v1/order/success/"
MINE = "/api/v1/order/orders/"
PRODUCTION_GATEWAY = "https://openapi.alipay.com/gateway.do"
SANDBOX_GATEWAY = "https://openapi-sandbox.dl.alipaydev.com/gateway.do"


class Shop:
    """A running app, a client on the test's own loop, two buyers and three courses (one hidden)."""

    def __init__(self, app: Litestar, client: httpx.AsyncClient, users: list[int], courses: list[int]) -> None:
        self.app = app
        self.client = client
        self.config = app.state.sqlalchemy_config
        self.settings: Settings = app.state.settings
        self.users = users
        self.python, self.linux, self.hidden = courses

    def auth(self, user_id: int | None = None) -> dict[str, str]:
        user_id = self.users[0] if user_id is None else user_id
        return {"Authorization": f"Bearer {issue_token(self.app.state.jwt_auth, user_id, str(user_id))}"}

    async def buy(self, body: object, user_id: int | None = None) -> httpx.Response:
        return await self.client.post(BUY, json=body, headers=self.auth(user_id))

    async def order(self, courses: list[object], total: object, user_id: int | None = None) -> str:
        """A new order's out_trade_no."""
        reply = await self.buy({"courses": courses, "total_amount": total, "subject": "x", "pay_type": 1}, user_id)
        assert reply.status_code == 200, reply.text
        return json.loads(query_of(reply.json()["pay_url"])["biz_content"])["out_trade_no"]

    @property
    def provider(self) -> PaymentProvider:
        return make_provider(self.settings)

    async def notify(self, body: bytes) -> httpx.Response:
        return await self.client.post(NOTIFY, content=body, headers=FORM)


@pytest.fixture
async def shop_factory(
    clean_database: str, make_settings: Callable[..., Settings]
) -> AsyncIterator[Callable[..., object]]:
    holders: list[object] = []

    async def build(**overrides: str) -> Shop:
        settings = make_settings(clean_database, **{**alipay_env(), **overrides})
        app = create_app(settings)
        context = running(app)
        await context.__aenter__()
        holders.append(context)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local")
        holders.append(client)
        config = app.state.sqlalchemy_config
        users = await create_users(config, 2)
        courses = await create_courses(
            config, ("Python项目实战", "99.00", True), ("Linux系统基础", "39.00", True), ("隐藏课程", "10.00", False)
        )
        return Shop(app, client, users, courses)

    yield build
    for holder in reversed(holders):
        if isinstance(holder, httpx.AsyncClient):
            await holder.aclose()
        else:
            await holder.__aexit__(None, None, None)  # type: ignore[attr-defined]


@pytest.fixture
async def shop(shop_factory: Callable[..., object]) -> Shop:
    return await shop_factory()  # type: ignore[misc]


# --- create -----------------------------------------------------------------------------------------


async def test_an_order_is_written_at_the_server_price_with_one_detail_row_per_course(shop: Shop) -> None:
    reply = await shop.buy(
        {"courses": [shop.python, str(shop.linux)], "total_amount": "138.00", "subject": "任意", "pay_type": 1}
    )
    assert reply.status_code == 200
    body = reply.json()
    assert (body["code"], body["msg"]) == (100, "成功")
    [order] = await orders(shop.config)
    assert order.order_status == 0
    assert order.total_amount == Decimal("138.00")
    assert order.user_id == shop.users[0]
    assert order.subject == "Python项目实战 等 2 门课程"
    assert order.trade_no is None
    assert order.pay_time is None
    assert order.details == [
        (shop.python, Decimal("99.00"), Decimal("99.00")),
        (shop.linux, Decimal("39.00"), Decimal("39.00")),
    ]


async def test_the_total_may_be_a_number_and_the_pay_type_may_be_left_out(shop: Shop) -> None:
    reply = await shop.buy({"courses": [str(shop.python)], "total_amount": 99})
    assert reply.status_code == 200, reply.text
    [order] = await orders(shop.config)
    assert order.subject == "Python项目实战"


async def test_the_pay_url_is_a_page_pay_request_signed_with_the_app_key(shop: Shop) -> None:
    reply = await shop.buy({"courses": [shop.python], "total_amount": "99.00", "subject": "x", "pay_type": 1})
    pay_url = reply.json()["pay_url"]
    assert pay_url.startswith(PRODUCTION_GATEWAY + "?")
    params = query_of(pay_url)
    assert set(params) == {
        "app_id",
        "method",
        "charset",
        "sign_type",
        "timestamp",
        "version",
        "notify_url",
        "return_url",
        "biz_content",
        "sign",
    }
    signature = params.pop("sign")
    assert verifies(key_pair(APP_KEYS), params, signature)
    assert not verifies(key_pair(ALIPAY_KEYS), params, signature)
    assert params["app_id"] == APP_ID
    assert params["method"] == "alipay.trade.page.pay"
    assert (params["charset"], params["sign_type"], params["version"]) == ("utf-8", "RSA2", "1.0")
    assert params["notify_url"] == "http://testserver.local/api/v1/order/success/"
    assert params["return_url"] == "http://127.0.0.1:8080/pay/success"
    beijing = datetime.datetime.strptime(params["timestamp"], "%Y-%m-%d %H:%M:%S")
    utc_now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
    assert abs((beijing - datetime.timedelta(hours=8) - utc_now).total_seconds()) < 60
    biz = json.loads(params["biz_content"])
    [order] = await orders(shop.config)
    assert biz["out_trade_no"] == order.out_trade_no
    assert biz["total_amount"] == "99.00"
    assert biz["subject"] == "Python项目实战"
    assert biz["product_code"] == "FAST_INSTANT_TRADE_PAY"
    expires = datetime.datetime.strptime(biz["time_expire"], "%Y-%m-%d %H:%M:%S")
    assert abs((expires - beijing).total_seconds() - shop.settings.order_timeout_seconds) <= 1


async def test_the_sandbox_gateway_and_urls_come_from_the_settings(shop_factory: Callable[..., object]) -> None:
    shop: Shop = await shop_factory(  # type: ignore[misc]
        LUFFY_ALIPAY_GATEWAY=SANDBOX_GATEWAY,
        LUFFY_PAY_RETURN_URL="https://www.example.com/pay/success",
        LUFFY_PAY_NOTIFY_URL="https://api.example.com/api/v1/order/success/",
    )
    reply = await shop.buy({"courses": [shop.linux], "total_amount": "39.00"})
    pay_url = reply.json()["pay_url"]
    assert pay_url.startswith(SANDBOX_GATEWAY + "?")
    params = query_of(pay_url)
    assert params["return_url"] == "https://www.example.com/pay/success"
    assert params["notify_url"] == "https://api.example.com/api/v1/order/success/"


async def _refusal(shop: Shop, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    reply = await shop.client.post(BUY, json=body, headers=shop.auth() if headers is None else headers)
    assert await orders(shop.config) == [], "a refused order must write nothing"
    return reply


async def test_a_total_that_is_not_the_server_price_is_refused(shop: Shop) -> None:
    for total in ("98.99", "0.01", 138, "99.001"):
        reply = await _refusal(shop, {"courses": [shop.python], "total_amount": total})
        assert reply.status_code == 400
        assert reply.json()["msg"] == "价格不一致"


async def test_unknown_and_hidden_courses_are_refused(shop: Shop) -> None:
    for courses in ([shop.hidden], [shop.python, shop.hidden], [shop.linux + 1000], [2**53 - 1]):
        reply = await _refusal(shop, {"courses": courses, "total_amount": "99.00"})
        assert reply.status_code == 400, courses
        assert reply.json()["msg"] == "课程不存在或已下架"


async def test_an_empty_or_repeated_course_list_is_refused(shop: Shop) -> None:
    empty = await _refusal(shop, {"courses": [], "total_amount": "0.00"})
    repeated = await _refusal(shop, {"courses": [shop.python, str(shop.python)], "total_amount": "198.00"})
    assert (empty.status_code, repeated.status_code) == (400, 400)
    assert repeated.json()["msg"] == "课程重复"


async def test_wechat_pay_is_refused(shop: Shop) -> None:
    reply = await _refusal(shop, {"courses": [shop.python], "total_amount": "99.00", "pay_type": 2})
    assert reply.status_code == 400
    assert "微信" in reply.json()["msg"]


async def test_a_free_course_alone_is_refused(shop: Shop) -> None:
    [free] = await create_courses(shop.config, ("免费课", "0.00", True))
    reply = await _refusal(shop, {"courses": [free], "total_amount": "0.00"})
    assert reply.status_code == 400


async def test_no_token_is_a_401(shop: Shop) -> None:
    body = {"courses": [shop.python], "total_amount": "99.00"}
    assert (await _refusal(shop, body, headers={})).status_code == 401
    assert (await _refusal(shop, body, headers={"Authorization": "Bearer nope"})).status_code == 401
    assert (await shop.client.get(MINE)).status_code == 401


async def test_a_course_already_paid_for_is_refused_but_others_may_buy_it(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    assert (await shop.notify(signed_notification(notification_params(out_trade_no, "99.00")))).text == "success"
    again = await shop.buy({"courses": [shop.linux, shop.python], "total_amount": "138.00"})
    assert again.status_code == 400
    assert again.json()["msg"] == "已购买该课程"
    assert (await shop.buy({"courses": [shop.python], "total_amount": "99.00"}, shop.users[1])).status_code == 200
    assert (await shop.buy({"courses": [shop.linux], "total_amount": "39.00"})).status_code == 200


# --- the notification ---------------------------------------------------------------------------------


async def test_a_notification_signed_by_alipay_pays_the_order_once(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    params = notification_params(out_trade_no, "99.00", trade_no="2026113022001400000000000042")
    reply = await shop.notify(signed_notification(params))
    assert (reply.status_code, reply.text) == (200, "success")
    assert reply.headers["content-type"].startswith("text/plain")
    [order] = await orders(shop.config)
    assert order.order_status == 1
    assert order.trade_no == "2026113022001400000000000042"
    assert order.pay_time is not None
    assert abs((order.pay_time - datetime.datetime.now(datetime.UTC)).total_seconds()) < 60
    repeated = await shop.notify(signed_notification(notification_params(out_trade_no, "99.00", trade_no="other")))
    assert repeated.text == "success"
    assert await orders(shop.config) == [order]


async def test_trade_finished_pays_and_other_statuses_are_acknowledged_without_change(shop: Shop) -> None:
    waiting = await shop.order([shop.python], "99.00")
    reply = await shop.notify(signed_notification(notification_params(waiting, "99.00", trade_status="WAIT_BUYER_PAY")))
    assert reply.text == "success"
    assert (await orders(shop.config))[0].order_status == 0
    reply = await shop.notify(signed_notification(notification_params(waiting, "99.00", trade_status="TRADE_FINISHED")))
    assert reply.text == "success"
    assert (await orders(shop.config))[0].order_status == 1


def _forged(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "99.00"), key_pair("someone else"))


def _app_signed(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "99.00"), key_pair(APP_KEYS))


def _other_app(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "99.00", app_id="2021000000009999"))


def _other_amount(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "0.01"))


def _unknown_order(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no + "0", "99.00"))


def _tampered(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "99.00")).replace(b"trade_no=2026", b"trade_no=2027")


def _rsa1(out_trade_no: str) -> bytes:
    return signed_notification(notification_params(out_trade_no, "99.00")).replace(b"sign_type=RSA2", b"sign_type=RSA")


def _unsigned(out_trade_no: str) -> bytes:
    body = signed_notification(notification_params(out_trade_no, "99.00")).decode()
    return "&".join(part for part in body.split("&") if not part.startswith("sign=")).encode()


@pytest.mark.parametrize(
    "make_body",
    [_forged, _app_signed, _other_app, _other_amount, _unknown_order, _tampered, _rsa1, _unsigned],
    ids=lambda make: make.__name__.strip("_"),
)
async def test_a_notification_that_does_not_check_out_is_a_failure_and_changes_nothing(
    shop: Shop, make_body: Callable[[str], bytes]
) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    before = await orders(shop.config)
    reply = await shop.notify(make_body(out_trade_no))
    assert (reply.status_code, reply.text) == (200, "failure")
    assert await orders(shop.config) == before


async def test_twenty_concurrent_copies_of_a_notification_make_one_transition(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    body = signed_notification(notification_params(out_trade_no, "99.00"))

    async def handle() -> PaymentOutcome:
        async with session_scope(shop.config) as session:
            return await handle_notification(session, shop.provider, body, now=datetime.datetime.now(datetime.UTC))

    outcomes = Counter(await asyncio.gather(*(handle() for _ in range(20))))
    assert outcomes == {PaymentOutcome.PAID: 1, PaymentOutcome.ALREADY_PAID: 19}
    assert (await orders(shop.config))[0].order_status == 1


async def test_twenty_concurrent_copies_over_http_all_answer_success(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    body = signed_notification(notification_params(out_trade_no, "99.00"))
    replies = await asyncio.gather(*(shop.notify(body) for _ in range(20)))
    assert {(reply.status_code, reply.text) for reply in replies} == {(200, "success")}
    [order] = await orders(shop.config)
    assert (order.order_status, order.trade_no) == (1, "2026113022001400000000000001")


# --- timeout ----------------------------------------------------------------------------------------


async def _close(shop: Shop) -> list[str]:
    async with session_scope(shop.config) as session:
        return await close_expired_orders(
            session, timeout_seconds=shop.settings.order_timeout_seconds, now=datetime.datetime.now(datetime.UTC)
        )


async def test_the_sweep_closes_only_orders_unpaid_past_the_timeout(shop: Shop) -> None:
    old = await shop.order([shop.python], "99.00")
    paid = await shop.order([shop.linux], "39.00")
    fresh = await shop.order([shop.python], "99.00", shop.users[1])
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=shop.settings.order_timeout_seconds + 5)
    await set_order(shop.config, old, created_time=past)
    await set_order(shop.config, paid, created_time=past)
    assert (await shop.notify(signed_notification(notification_params(paid, "39.00")))).text == "success"
    assert await _close(shop) == [old]
    assert {row.out_trade_no: row.order_status for row in await orders(shop.config)} == {old: 3, paid: 1, fresh: 0}
    assert await _close(shop) == []


async def test_a_valid_payment_after_the_timeout_is_still_recorded(
    shop: Shop, caplog: pytest.LogCaptureFixture
) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    await set_order(shop.config, out_trade_no, order_status=3)
    body = signed_notification(notification_params(out_trade_no, "99.00"))
    with caplog.at_level(logging.WARNING, logger="luffy.order"):
        async with session_scope(shop.config) as session:
            outcome = await handle_notification(session, shop.provider, body, now=datetime.datetime.now(datetime.UTC))
    assert outcome is PaymentOutcome.PAID_AFTER_CLOSE
    assert f"order {out_trade_no} was paid after it was closed" in caplog.text
    assert (await orders(shop.config))[0].order_status == 1
    assert (await shop.client.get(NOTIFY, params={"out_trade_no": out_trade_no})).json()["code"] == 100


async def test_a_notification_racing_the_timeout_ends_paid(shop: Shop) -> None:
    for _ in range(5):
        out_trade_no = await shop.order([shop.python], "99.00", shop.users[1])
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
        await set_order(shop.config, out_trade_no, created_time=past)
        body = signed_notification(notification_params(out_trade_no, "99.00"))
        replies = await asyncio.gather(shop.notify(body), _close(shop), shop.notify(body))
        assert replies[0].text == replies[2].text == "success"  # type: ignore[union-attr]
        final = {row.out_trade_no: row.order_status for row in await orders(shop.config)}
        assert final[out_trade_no] == 1
        await set_order(shop.config, out_trade_no, order_status=2)  # the next round may buy the course again


async def test_the_scheduler_closes_an_unpaid_order_and_a_late_payment_still_counts(
    shop_factory: Callable[..., object],
) -> None:
    shop: Shop = await shop_factory(LUFFY_ORDER_TIMEOUT_SECONDS="1", LUFFY_ORDER_SWEEP_SECONDS="1")  # type: ignore[misc]
    out_trade_no = await shop.order([shop.python], "99.00")

    async def closed() -> bool:
        return (await orders(shop.config))[0].order_status == 3

    await eventually(closed, what="the scheduled sweep to close the order")
    assert (await shop.client.get(NOTIFY, params={"out_trade_no": out_trade_no})).status_code == 400
    assert (await shop.notify(signed_notification(notification_params(out_trade_no, "99.00")))).text == "success"
    assert (await orders(shop.config))[0].order_status == 1


# --- the return check and the user's orders -------------------------------------------------------------


async def test_the_return_check_says_paid_only_for_a_paid_order(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    returned = {"charset": "utf-8", "out_trade_no": out_trade_no, "method": "alipay.trade.page.pay.return"}
    unpaid = await shop.client.get(NOTIFY, params=returned)
    assert (unpaid.status_code, unpaid.json()) == (400, {"code": 999, "msg": "订单未支付"})
    unknown = await shop.client.get(NOTIFY, params={"out_trade_no": "nope"})
    assert unknown.status_code == 400
    await shop.notify(signed_notification(notification_params(out_trade_no, "99.00")))
    paid = await shop.client.get(NOTIFY, params=returned)
    assert (paid.status_code, paid.json()) == (200, {"code": 100, "msg": "支付成功"})


async def test_my_orders_are_a_page_newest_first_with_their_courses(shop: Shop) -> None:
    first = await shop.order([shop.python, shop.linux], "138.00")
    second = await shop.order([shop.linux], "39.00")
    await shop.order([shop.python], "99.00", shop.users[1])
    await shop.notify(signed_notification(notification_params(first, "138.00")))
    reply = await shop.client.get(MINE, headers=shop.auth())
    assert reply.status_code == 200
    page = reply.json()
    assert (page["code"], page["count"], page["next"], page["previous"]) == (100, 2, None, None)
    assert [item["out_trade_no"] for item in page["results"]] == [second, first]
    paid = page["results"][1]
    assert set(paid) == {
        "id",
        "out_trade_no",
        "subject",
        "total_amount",
        "order_status",
        "order_status_name",
        "pay_type",
        "pay_time",
        "created_time",
        "courses",
    }
    assert (paid["total_amount"], paid["order_status"], paid["order_status_name"]) == ("138.00", 1, "已支付")
    assert paid["pay_type"] == 1
    assert paid["pay_time"] is not None
    assert paid["courses"] == [
        {"id": shop.python, "name": "Python项目实战", "price": "99.00", "real_price": "99.00"},
        {"id": shop.linux, "name": "Linux系统基础", "price": "39.00", "real_price": "39.00"},
    ]
    assert page["results"][0]["order_status_name"] == "未支付"
    one = (await shop.client.get(MINE, params={"page_size": 1}, headers=shop.auth())).json()
    assert one["next"] == "http://testserver.local/api/v1/order/orders/?page_size=1&page=2"
    assert [item["out_trade_no"] for item in one["results"]] == [second]
    past = await shop.client.get(MINE, params={"page": 3, "page_size": 1}, headers=shop.auth())
    assert past.status_code == 404


# --- hostile input ------------------------------------------------------------------------------------

HOSTILE_BODIES: list[object] = [
    None,
    [],
    "courses",
    {},
    {"courses": "1", "total_amount": "99.00"},
    {"courses": [1], "total_amount": None},
    {"courses": [None], "total_amount": "99.00"},
    {"courses": [True], "total_amount": "99.00"},
    {"courses": [1.5], "total_amount": "99.00"},
    {"courses": [-1], "total_amount": "99.00"},
    {"courses": [0], "total_amount": "99.00"},
    {"courses": [2**64], "total_amount": "99.00"},
    {"courses": ["1e3"], "total_amount": "99.00"},
    {"courses": ["١"], "total_amount": "99.00"},
    {"courses": ["x" * 10_000], "total_amount": "99.00"},
    {"courses": [{"id": 1}], "total_amount": "99.00"},
    {"courses": list(range(1, 60)), "total_amount": "99.00"},
    {"courses": [1], "total_amount": "NaN"},
    {"courses": [1], "total_amount": "sNaN"},
    {"courses": [1], "total_amount": "Infinity"},
    {"courses": [1], "total_amount": "-99.00"},
    {"courses": [1], "total_amount": "1e999999999"},
    {"courses": [1], "total_amount": "九十九"},
    {"courses": [1], "total_amount": "9" * 5000},
    {"courses": [1], "total_amount": [99]},
    {"courses": [1], "total_amount": "99.00", "pay_type": 3},
    {"courses": [1], "total_amount": "99.00", "pay_type": 2**70},
    {"courses": [1], "total_amount": "99.00", "subject": "😀" * 300},
    {"courses": [1], "total_amount": "99.00", "subject": 5},
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=lambda body: repr(body)[:40])
async def test_hostile_order_bodies_are_4xx_and_write_nothing(shop: Shop, body: object) -> None:
    reply = await _refusal(shop, body)
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.json()["code"] == 999


async def test_hostile_raw_order_bodies_are_4xx(shop: Shop) -> None:
    for content in (
        b"\xff\xfe",
        b"{",
        b"courses=1",
        b"[" * 100_000,
        b'{"courses":[1],"total_amount":"' + b"9" * 20_000,
    ):
        reply = await shop.client.post(
            BUY, content=content, headers={**shop.auth(), "Content-Type": "application/json"}
        )
        assert 400 <= reply.status_code < 500, (content[:20], reply.status_code)
    assert await orders(shop.config) == []


def _with_duplicate(body: bytes, key: bytes) -> bytes:
    first = next(part for part in body.split(b"&") if part.startswith(key + b"="))
    return body + b"&" + first


async def test_hostile_notifications_are_failures_or_4xx_and_change_nothing(shop: Shop) -> None:
    out_trade_no = await shop.order([shop.python], "99.00")
    valid = signed_notification(notification_params(out_trade_no, "99.00"))
    duplicate_amount = signed_notification(notification_params(out_trade_no, "99.00")) + b"&total_amount=0.01"
    params = notification_params(out_trade_no, "99.00")
    bodies = [
        b"",
        b"=",
        b"&&&",
        b"sign",
        b"\xff\xfe\x00",
        "subject=课程".encode(),
        b"out_trade_no=%FF%FE&sign=x&sign_type=RSA2",
        b'{"out_trade_no": "' + out_trade_no.encode() + b'"}',
        valid.replace(b"sign=", b"sign=AAAA"),
        valid.replace(b"sign=", b"sign=" + b"A" * 5000),
        _with_duplicate(valid, b"out_trade_no"),
        _with_duplicate(valid, b"sign"),
        duplicate_amount,
        signed_notification({key: value for key, value in params.items() if key != "total_amount"}),
        signed_notification({key: value for key, value in params.items() if key != "app_id"}),
        signed_notification({**params, "out_trade_no": "x" * 10_000}),
        signed_notification({**params, "total_amount": "sNaN"}),
        signed_notification({**params, "total_amount": "九十九"}),
        b"a=1&" * 200 + valid,
        valid + b"&" + b"x" * 70_000,
    ]
    for body in bodies:
        reply = await shop.notify(body)
        assert reply.status_code < 500, (body[:60], reply.status_code)
        if reply.status_code == 200:
            assert reply.text == "failure", body[:60]
        else:
            assert reply.status_code == 413, (body[:60], reply.status_code)
    json_reply = await shop.client.post(NOTIFY, json=dict(params))
    assert json_reply.text == "failure"
    assert [row.order_status for row in await orders(shop.config)] == [0]
    unicode = await shop.notify(signed_notification({**params, "subject": "课程😀\u202e" * 1000}))
    assert unicode.text == "success", "a genuine notification with any subject pays"
    assert [row.order_status for row in await orders(shop.config)] == [1]


async def test_hostile_queries_are_4xx(shop: Shop) -> None:
    for params in ({}, {"out_trade_no": ""}, {"out_trade_no": "x" * 100}):
        assert (await shop.client.get(NOTIFY, params=params)).status_code == 400
    assert (await shop.client.get(NOTIFY, params={"out_trade_no": "订单😀\x00"})).status_code == 400
    for params in ({"page": 0}, {"page": "x"}, {"page": 2**40}, {"page_size": 0}, {"page_size": -1}):
        reply = await shop.client.get(MINE, params=params, headers=shop.auth())
        assert 400 <= reply.status_code < 500, params
