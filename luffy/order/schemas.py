"""What the order endpoints read and answer (the contract's "Orders and payment")."""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from luffy.responses import Envelope, Page

STATUS_NAMES = {0: "未支付", 1: "已支付", 2: "已取消", 3: "超时取消"}
PAY_TYPE_NAMES = {1: "支付宝", 2: "微信支付"}
MAX_COURSES_PER_ORDER = 50
OUT_TRADE_NO_MAX_LENGTH = 64
# Order numbers are printable ASCII (Alipay allows letters, digits and underscores; the original used uuid4).
OUT_TRADE_NO_PATTERN = r"^[\x21-\x7e]{1,64}$"
# A course id as the front end may send it: a number, or its decimal text (a route parameter).
CourseRef = int | Annotated[str, msgspec.Meta(max_length=20)]


class CreateOrderRequest(msgspec.Struct, kw_only=True):
    """``{"courses":[1,"3"],"total_amount":"99.00","subject":"...","pay_type":1}``.

    ``total_amount`` is the price the buyer saw; the server computes its own and refuses a different
    one. ``subject`` is accepted for the original front end's sake; the order's title is made from
    the course names on the server, like its price.
    """

    courses: Annotated[list[CourseRef], msgspec.Meta(max_length=MAX_COURSES_PER_ORDER)]
    total_amount: Decimal
    subject: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    pay_type: int = 1


class PayUrlReply(Envelope, kw_only=True):
    pay_url: str


class PaidReply(Envelope, kw_only=True):
    msg: str = "支付成功"


class OrderCourseItem(msgspec.Struct, kw_only=True):
    id: int
    name: str | None
    price: str
    real_price: str


class OrderItem(msgspec.Struct, kw_only=True):
    id: int
    out_trade_no: str
    subject: str
    total_amount: str
    order_status: int
    order_status_name: str
    pay_type: int
    pay_time: datetime.datetime | None
    created_time: datetime.datetime
    courses: list[OrderCourseItem]


OrderPage = Page[OrderItem]


def money(amount: Decimal) -> str:
    """The contract's money: a string with two decimals."""
    return f"{amount:.2f}"
