"""``/api/v1/order/...`` (create, Alipay's notification, the return check, my orders) and the simulator's cashier.

Thin: parse, call ``luffy.order.services``, shape the reply. The notification answers Alipay in
plain text (``success`` / ``failure``); the cashier (``/pay/simulator/``) answers a browser in HTML.
"""

from __future__ import annotations

import asyncio
import datetime
import html
import logging
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

from litestar import Controller, MediaType, Request, Response, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import JSONBody, QueryParameter, RawBody
from litestar.response import Redirect
from litestar.security.jwt import Token
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.errors import InvalidInput
from luffy.order.providers import (
    SIMULATOR_APP_ID,
    SIMULATOR_PATH,
    PaymentProvider,
    SimulatorKeys,
    load_simulator_keys,
    make_provider,
)
from luffy.order.schemas import (
    OUT_TRADE_NO_MAX_LENGTH,
    OUT_TRADE_NO_PATTERN,
    CreateOrderRequest,
    OrderPage,
    PaidReply,
    PayUrlReply,
)
from luffy.order.services import NOT_PAID, PaymentOutcome, create_order, handle_notification, is_paid, order_page
from luffy.order.simulator import CashierOrder, CashierRefusal, SimulatedAlipay
from luffy.responses import error_responses, page_url
from luffy.settings import Settings
from luffy.user.auth import AuthUser

logger = logging.getLogger("luffy.order")

# Alipay's notifications are a few kilobytes; anything far larger is not one.
NOTIFICATION_MAX_BODY_BYTES = 65_536
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
PageParameter = Annotated[int, QueryParameter(ge=1, le=2**31, description="1-based page number.")]
PageSizeParameter = Annotated[
    int | None, QueryParameter(ge=1, le=2**31, description="Orders per page, default 10; above 50 is clamped to 50.")
]


@dataclass
class FormNotificationOperation(Operation):
    """Documents the form-encoded body the handler parses itself (raw, so repeated keys can be refused)."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/x-www-form-urlencoded": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.OBJECT, additional_properties=Schema(type=OpenAPIType.STRING))
                )
            },
            # Anything else, no body included, is answered `failure` (200) as Alipay expects, not a 4xx.
            required=False,
        )


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


async def _simulator_keys(state: State, settings: Settings) -> SimulatorKeys:
    keys: SimulatorKeys | None = state.get("simulator_keys")
    if keys is None:
        keys = await asyncio.to_thread(load_simulator_keys, settings.data_dir)
        state.simulator_keys = keys
    return keys


async def provide_payment(state: State) -> PaymentProvider:
    """The app's payment provider, made on first use (the simulator's keys may have to be generated)."""
    provider: PaymentProvider | None = state.get("payment")
    if provider is None:
        settings: Settings = state.settings
        keys = await _simulator_keys(state, settings) if settings.payment_provider == "simulator" else None
        provider = make_provider(settings, keys)
        state.payment = provider
    return provider


async def provide_cashier(state: State) -> SimulatedAlipay:
    cashier: SimulatedAlipay | None = state.get("cashier")
    if cashier is None:
        cashier = SimulatedAlipay(await _simulator_keys(state, state.settings), app_id=SIMULATOR_APP_ID)
        state.cashier = cashier
    return cashier


PaymentDep = NamedDependency[PaymentProvider]
SessionDep = NamedDependency[AsyncSession]


class OrderController(Controller):
    """The buyer's side (authenticated): create an order, list one's orders."""

    path = "/order"
    tags = ["orders"]
    dependencies = {"payment": Provide(provide_payment)}

    @post(
        "/alipay/",
        status_code=200,
        summary="Create an order for courses and get its Alipay pay URL",
        description="The total is computed from the courses' prices; a different total_amount is a 400 价格不一致.",
        responses=error_responses(400, 401),
    )
    async def create(
        self,
        request: Request[AuthUser, Token, Any],
        data: JSONBody[CreateOrderRequest],
        db_session: SessionDep,
        payment: PaymentDep,
        settings: NamedDependency[Settings],
    ) -> PayUrlReply:
        pay_url = await create_order(
            db_session,
            payment,
            data,
            user_id=request.user.id,
            timeout_seconds=settings.order_timeout_seconds,
            now=_now(),
        )
        return PayUrlReply(pay_url=pay_url)

    @get(
        "/orders/",
        summary="The user's orders, newest first",
        cache=False,
        responses=error_responses(400, 401, 404),
    )
    async def orders(
        self,
        request: Request[AuthUser, Token, Any],
        db_session: SessionDep,
        page: PageParameter = 1,
        page_size: PageSizeParameter = None,
    ) -> OrderPage:
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        count, items = await order_page(db_session, request.user.id, page=page, page_size=size)
        return OrderPage(
            count=count,
            next=page_url(request, page + 1) if page * size < count else None,
            previous=page_url(request, page - 1) if page > 1 else None,
            results=items,
        )


class PaymentController(Controller):
    """Alipay's side (public, proven by signature): the notification, and the browser's return check."""

    path = "/order"
    tags = ["orders"]
    dependencies = {"payment": Provide(provide_payment)}

    @post(
        "/success/",
        status_code=200,
        media_type=MediaType.TEXT,
        summary="Alipay's asynchronous notification (form-encoded); answers success or failure",
        description="Verified with Alipay's public key (RSA2); app_id and total_amount must match the order.",
        request_max_body_size=NOTIFICATION_MAX_BODY_BYTES,
        operation_class=FormNotificationOperation,
        responses=error_responses(400, 413),
    )
    async def notification(self, body: RawBody, db_session: SessionDep, payment: PaymentDep) -> Response[str]:
        try:
            outcome = await handle_notification(db_session, payment, body, now=_now())
        except SQLAlchemyError as exc:
            # Alipay retries a notification until it reads success: nothing is lost by refusing now.
            logger.error("payment notification not processed, the database failed: %s", type(exc).__name__)
            return Response("failure", status_code=503, media_type=MediaType.TEXT)
        return Response("failure" if outcome is PaymentOutcome.REFUSED else "success", media_type=MediaType.TEXT)

    @get(
        "/success/",
        summary="Has this order been paid? (the front end's pay-return page asks)",
        cache=False,
        responses=error_responses(400),
    )
    async def paid(
        self,
        db_session: SessionDep,
        out_trade_no: Annotated[
            str, QueryParameter(min_length=1, max_length=OUT_TRADE_NO_MAX_LENGTH, pattern=OUT_TRADE_NO_PATTERN)
        ],
    ) -> PaidReply:
        if not await is_paid(db_session, out_trade_no):
            raise InvalidInput(NOT_PAID)
        return PaidReply()


_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:32em;margin:4em auto;color:#333}}
.amount{{font-size:2em;color:#f60}}button{{font-size:1.2em;padding:.4em 2em;background:#1677ff;color:#fff;border:0}}
.note{{color:#999;font-size:.9em}}</style></head>
<body><h1>{title}</h1>{body}<p class="note">Luffy 支付模拟器：不连接支付宝，不产生真实扣款。</p></body></html>"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _html(title: str, body: str, status: int = 200) -> Response[str]:
    return Response(
        _PAGE.format(title=html.escape(title), body=body),
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Content-Security-Policy": _CSP, "Cache-Control": "no-store"},
    )


def _refusal(refusal: CashierRefusal) -> Response[str]:
    return _html("无法支付", f"<p>{html.escape(refusal.message)}</p>", refusal.status)


def _pay_request(request: Request[Any, Any, Any]) -> list[tuple[str, str]]:
    query: bytes = request.scope.get("query_string", b"")
    try:
        return parse_qsl(query.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise CashierRefusal("请求参数无效") from None


def _checked(request: Request[Any, Any, Any], cashier: SimulatedAlipay) -> CashierOrder:
    return cashier.read_request(_pay_request(request), _now())


class CashierController(Controller):
    """The simulator's cashier, at the gateway URL the simulator provider hands out."""

    path = SIMULATOR_PATH
    include_in_schema = False
    dependencies = {"cashier": Provide(provide_cashier)}

    @get("/", cache=False)
    async def show(self, request: Request[Any, Any, Any], cashier: NamedDependency[SimulatedAlipay]) -> Response[str]:
        try:
            order = _checked(request, cashier)
        except CashierRefusal as refusal:
            return _refusal(refusal)
        query = request.scope.get("query_string", b"").decode("ascii")
        expires = f"<p>请在 {order.expires_at:%Y-%m-%d %H:%M:%S} (北京时间) 前支付</p>" if order.expires_at else ""
        body = (
            f"<p>{html.escape(order.subject)}</p>"
            f'<p class="amount">¥ {html.escape(order.total_amount)}</p>'
            f"<p>订单号 {html.escape(order.out_trade_no)}</p>{expires}"
            f'<form method="post" action="{html.escape(SIMULATOR_PATH + "?" + query)}">'
            '<button type="submit">支付</button></form>'
        )
        return _html("Luffy 收银台", body)

    @post("/", status_code=303)
    async def pay(
        self, request: Request[Any, Any, Any], cashier: NamedDependency[SimulatedAlipay]
    ) -> Response[str] | Redirect:
        try:
            order = _checked(request, cashier)
            return_url = await cashier.pay(order, _now())
        except CashierRefusal as refusal:
            return _refusal(refusal)
        return Redirect(path=return_url, status_code=303)
