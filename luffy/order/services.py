"""Course orders: created at the server's price, paid only on a verified notification, closed when left unpaid.

Every change of an order's status is one conditional ``UPDATE``, so concurrent and repeated
notifications (Alipay retries until it reads ``success``) and the timeout sweep can race freely:
an order becomes paid exactly once, and a valid payment always ends paid, even for an order the
sweep had already closed (the money is real; it is logged for a person to look at).
"""

from __future__ import annotations

import datetime
import logging
import re
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.course.models import Course
from luffy.errors import InvalidInput, NotFound
from luffy.order.models import Order, OrderDetail, OrderStatus, PayType
from luffy.order.providers import PaymentProvider, parse_alipay_time
from luffy.order.schemas import (
    OUT_TRADE_NO_MAX_LENGTH,
    OUT_TRADE_NO_PATTERN,
    STATUS_NAMES,
    CourseRef,
    CreateOrderRequest,
    OrderCourseItem,
    OrderItem,
    money,
)
from luffy.user.models import User

logger = logging.getLogger("luffy.order")

# JavaScript's largest safe integer, as the catalogue's ids.
MAX_ID = 2**53 - 1
# numeric(10,2): the largest total an order can hold.
MAX_TOTAL = Decimal("99999999.99")
SUBJECT_MAX_LENGTH = 150
PAID_STATUSES = ("TRADE_SUCCESS", "TRADE_FINISHED")
NOTIFICATION_FIELDS = ("sign", "sign_type", "app_id", "out_trade_no", "trade_status", "total_amount")
NOTIFICATION_MAX_FIELDS = 100
NOT_PAID = "订单未支付"
PAGE_NOT_FOUND = "无效页面"
LOGGED_ORDER_NUMBERS = 20


class PaymentOutcome(StrEnum):
    """What a notification did. Everything but ``refused`` is answered ``success``."""

    PAID = "paid"
    PAID_AFTER_CLOSE = "paid_after_close"
    ALREADY_PAID = "already_paid"
    ACKNOWLEDGED = "acknowledged"
    REFUSED = "refused"


class OperatorOrder(msgspec.Struct, kw_only=True):
    """An order as the CLI shows it: the buyer and Alipay's trade number beside the public fields."""

    order: OrderItem
    user_id: int
    username: str | None
    trade_no: str | None


def new_out_trade_no(now: datetime.datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def parse_course_ids(refs: Sequence[CourseRef]) -> list[int]:
    """The course ids of a request (numbers or their decimal text), refusing an empty or repeated list."""
    ids: list[int] = []
    for ref in refs:
        if isinstance(ref, str):
            text = ref.strip()
            if not (text.isascii() and text.isdigit()):
                raise InvalidInput("课程编号无效", field="courses")
            ref = int(text)
        if not 1 <= ref <= MAX_ID:
            raise InvalidInput("课程编号无效", field="courses")
        ids.append(ref)
    if not ids:
        raise InvalidInput("请选择要购买的课程", field="courses")
    if len(set(ids)) != len(ids):
        raise InvalidInput("课程重复", field="courses")
    return ids


def _check_amount(amount: Decimal) -> Decimal:
    if not amount.is_finite() or not Decimal(0) <= amount <= MAX_TOTAL:
        raise InvalidInput("金额无效", field="total_amount")
    return amount


def _subject(names: list[str]) -> str:
    subject = names[0] if len(names) == 1 else f"{names[0]} 等 {len(names)} 门课程"
    return subject[:SUBJECT_MAX_LENGTH]


async def create_order(
    session: AsyncSession,
    provider: PaymentProvider,
    request: CreateOrderRequest,
    *,
    user_id: int,
    timeout_seconds: int,
    now: datetime.datetime,
) -> str:
    """Write the order and one detail row per course in one transaction; the signed pay URL."""
    if request.pay_type == PayType.WECHAT:
        raise InvalidInput("暂不支持微信支付，请选择支付宝", field="pay_type")
    if request.pay_type != PayType.ALIPAY:
        raise InvalidInput("不支持的支付方式", field="pay_type")
    course_ids = parse_course_ids(request.courses)
    requested = _check_amount(request.total_amount)
    rows = await session.execute(
        select(Course.id, Course.name, Course.price).where(
            Course.id.in_(course_ids), Course.is_show.is_(True), Course.is_delete.is_(False)
        )
    )
    courses = {row.id: row for row in rows}
    if len(courses) != len(course_ids):
        raise InvalidInput("课程不存在或已下架", field="courses")
    total = sum((courses[course_id].price for course_id in course_ids), Decimal("0.00"))
    if total <= 0:
        raise InvalidInput("免费课程无需购买", field="courses")
    if requested != total:
        raise InvalidInput("价格不一致", field="total_amount")
    paid = await session.scalar(
        select(OrderDetail.course_id)
        .join(Order, Order.id == OrderDetail.order_id)
        .where(
            Order.user_id == user_id,
            Order.order_status == OrderStatus.PAID,
            OrderDetail.course_id.in_(course_ids),
        )
        .limit(1)
    )
    if paid is not None:
        raise InvalidInput("已购买该课程", field="courses")

    order = Order(
        subject=_subject([courses[course_id].name for course_id in course_ids]),
        total_amount=total,
        out_trade_no=new_out_trade_no(now),
        order_status=OrderStatus.UNPAID,
        pay_type=PayType.ALIPAY,
        created_time=now,
        user_id=user_id,
    )
    session.add(order)
    await session.flush()
    session.add_all(
        OrderDetail(order_id=order.id, course_id=course.id, price=course.price, real_price=course.price)
        for course in (courses[course_id] for course_id in course_ids)
    )
    await session.commit()
    logger.info("order %s created: user %d, %s, courses %s", order.out_trade_no, user_id, money(total), course_ids)
    return provider.pay_url(
        out_trade_no=order.out_trade_no,
        total_amount=total,
        subject=order.subject,
        expires_at=now + datetime.timedelta(seconds=timeout_seconds),
        now=now,
    )


def parse_notification(body: bytes) -> dict[str, str] | None:
    """The parameters of a form-encoded notification; ``None`` when it is not one (or repeats a key)."""
    try:
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=NOTIFICATION_MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    return params if len(params) == len(pairs) else None


def _refused(reason: str, params: Mapping[str, str]) -> PaymentOutcome:
    out_trade_no = params.get("out_trade_no", "")[:OUT_TRADE_NO_MAX_LENGTH]
    logger.warning("payment notification refused (%s): out_trade_no %r", reason, out_trade_no)
    return PaymentOutcome.REFUSED


async def handle_notification(
    session: AsyncSession, provider: PaymentProvider, body: bytes, *, now: datetime.datetime
) -> PaymentOutcome:
    """Check a notification as Alipay's rules say, and mark its order paid once."""
    params = parse_notification(body)
    if params is None:
        return _refused("not a form-encoded notification", {})
    if any(not params.get(name) for name in NOTIFICATION_FIELDS):
        return _refused("missing fields", params)
    if not provider.verify(params):
        return _refused("bad signature", params)
    if params["app_id"] != provider.app_id:
        return _refused("another app id", params)
    out_trade_no = params["out_trade_no"]
    if not re.fullmatch(OUT_TRADE_NO_PATTERN, out_trade_no):
        return _refused("unknown order", params)
    order = (
        await session.execute(select(Order.id, Order.total_amount).where(Order.out_trade_no == out_trade_no))
    ).one_or_none()
    if order is None:
        return _refused("unknown order", params)
    try:
        amount = Decimal(params["total_amount"])
    except InvalidOperation:
        return _refused("bad amount", params)
    if not amount.is_finite() or amount != order.total_amount:
        return _refused("another amount", params)
    if params["trade_status"] not in PAID_STATUSES:
        logger.info("order %s: notification %s acknowledged", out_trade_no, params["trade_status"])
        return PaymentOutcome.ACKNOWLEDGED
    trade_no = params.get("trade_no", "")[:64] or None
    pay_time = parse_alipay_time(params.get("gmt_payment")) or now
    outcome = await _mark_paid(session, order.id, trade_no=trade_no, pay_time=pay_time)
    await session.commit()
    if outcome is PaymentOutcome.PAID:
        logger.info("order %s paid (trade %s)", out_trade_no, trade_no)
    elif outcome is PaymentOutcome.PAID_AFTER_CLOSE:
        logger.warning("order %s was paid after it was closed (trade %s): recorded as paid", out_trade_no, trade_no)
    return outcome


async def _mark_paid(
    session: AsyncSession, order_id: int, *, trade_no: str | None, pay_time: datetime.datetime
) -> PaymentOutcome:
    """Unpaid → paid, else closed → paid, else it was paid already: each step one conditional UPDATE."""
    for from_statuses, outcome in (
        ((OrderStatus.UNPAID,), PaymentOutcome.PAID),
        ((OrderStatus.CANCELLED, OrderStatus.TIMED_OUT), PaymentOutcome.PAID_AFTER_CLOSE),
    ):
        result = await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.order_status.in_(from_statuses))
            .values(order_status=OrderStatus.PAID, trade_no=trade_no, pay_time=pay_time)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return outcome
    return PaymentOutcome.ALREADY_PAID


async def is_paid(session: AsyncSession, out_trade_no: str) -> bool:
    status = await session.scalar(select(Order.order_status).where(Order.out_trade_no == out_trade_no))
    return status == OrderStatus.PAID


async def close_expired_orders(session: AsyncSession, *, timeout_seconds: int, now: datetime.datetime) -> list[str]:
    """Close (超时取消) every order unpaid for longer than the timeout; their numbers."""
    cutoff = now - datetime.timedelta(seconds=timeout_seconds)
    result = await session.execute(
        update(Order)
        .where(Order.order_status == OrderStatus.UNPAID, Order.created_time < cutoff)
        .values(order_status=OrderStatus.TIMED_OUT)
        .returning(Order.out_trade_no)
        .execution_options(synchronize_session=False)
    )
    closed = list(result.scalars())
    await session.commit()
    if closed:
        logger.info(
            "closed %d unpaid order(s) older than %d s: %s%s",
            len(closed),
            timeout_seconds,
            ", ".join(closed[:LOGGED_ORDER_NUMBERS]),
            " ..." if len(closed) > LOGGED_ORDER_NUMBERS else "",
        )
    return closed


_ORDER_COLUMNS = (
    Order.id,
    Order.out_trade_no,
    Order.subject,
    Order.total_amount,
    Order.order_status,
    Order.pay_type,
    Order.pay_time,
    Order.created_time,
)


async def _courses_of(session: AsyncSession, order_ids: list[int]) -> dict[int, list[OrderCourseItem]]:
    rows = await session.execute(
        select(OrderDetail.order_id, OrderDetail.course_id, OrderDetail.price, OrderDetail.real_price, Course.name)
        .outerjoin(Course, Course.id == OrderDetail.course_id)
        .where(OrderDetail.order_id.in_(order_ids))
        .order_by(OrderDetail.id)
    )
    courses: dict[int, list[OrderCourseItem]] = defaultdict(list)
    for row in rows:
        courses[row.order_id].append(
            OrderCourseItem(id=row.course_id, name=row.name, price=money(row.price), real_price=money(row.real_price))
        )
    return courses


def _item(row: Row[*tuple[Any, ...]], courses: dict[int, list[OrderCourseItem]]) -> OrderItem:
    return OrderItem(
        id=row.id,
        out_trade_no=row.out_trade_no,
        subject=row.subject,
        total_amount=money(row.total_amount),
        order_status=row.order_status,
        order_status_name=STATUS_NAMES.get(row.order_status, str(row.order_status)),
        pay_type=row.pay_type,
        pay_time=row.pay_time,
        created_time=row.created_time,
        courses=courses.get(row.id, []),
    )


async def order_page(session: AsyncSession, user_id: int, *, page: int, page_size: int) -> tuple[int, list[OrderItem]]:
    """One page of the user's orders, newest first, and how many there are in all."""
    count = await session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user_id)) or 0
    if page > 1 and (page - 1) * page_size >= count:
        raise NotFound(PAGE_NOT_FOUND)
    rows = list(
        await session.execute(
            select(*_ORDER_COLUMNS)
            .where(Order.user_id == user_id)
            .order_by(Order.created_time.desc(), Order.id.desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    courses = await _courses_of(session, [row.id for row in rows])
    return count, [_item(row, courses) for row in rows]


async def operator_orders(
    session: AsyncSession,
    *,
    user: str | None = None,
    status: int | None = None,
    out_trade_no: str | None = None,
    limit: int = 50,
) -> list[OperatorOrder]:
    """Orders newest first for the CLI: of one user (id, username or mobile), in one status, or one number."""
    statement = (
        select(*_ORDER_COLUMNS, Order.user_id, Order.trade_no, User.username)
        .outerjoin(User, User.id == Order.user_id)
        .order_by(Order.created_time.desc(), Order.id.desc())
        .limit(limit)
    )
    if user is not None:
        matches = [User.username == user, User.mobile == user]
        if user.isascii() and user.isdigit() and int(user) <= MAX_ID:
            matches.append(User.id == int(user))
        user_ids = list(await session.scalars(select(User.id).where(or_(*matches))))
        if not user_ids:
            raise NotFound(f"没有用户 {user}")
        statement = statement.where(Order.user_id.in_(user_ids))
    if status is not None:
        statement = statement.where(Order.order_status == status)
    if out_trade_no is not None:
        statement = statement.where(Order.out_trade_no == out_trade_no)
    rows = list(await session.execute(statement))
    courses = await _courses_of(session, [row.id for row in rows])
    return [
        OperatorOrder(order=_item(row, courses), user_id=row.user_id, username=row.username, trade_no=row.trade_no)
        for row in rows
    ]
