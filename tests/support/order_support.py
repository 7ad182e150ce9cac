"""Alipay's side of the payment protocol for the tests, written apart from Luffy's code.

Test-generated RSA key pairs stand in for the app's and Alipay's keys. Signing and verifying here
use ``cryptography`` directly, not python-alipay-sdk (which Luffy uses), so a test passes only if
Luffy speaks Alipay's format, not merely if it agrees with itself.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import insert, select, update

from luffy.course.models import Course
from luffy.db import session_scope
from luffy.order.models import Order, OrderDetail

APP_ID = "2021000000000001"
BEIJING = datetime.timezone(datetime.timedelta(hours=8))


class KeyPair(msgspec.Struct, frozen=True):
    private_pem: str
    public_pem: str

    @property
    def private_key(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.private_pem.encode(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        key = serialization.load_pem_public_key(self.public_pem.encode())
        assert isinstance(key, rsa.RSAPublicKey)
        return key


@lru_cache(maxsize=8)
def key_pair(name: str) -> KeyPair:
    """A 2048-bit RSA key pair, one per ``name`` for the test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(
        private_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode(),
        public_pem=key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    )


APP_KEYS = "app"
ALIPAY_KEYS = "alipay"


def alipay_env(app_id: str = APP_ID, **overrides: str) -> dict[str, str]:
    """Settings for the ``alipay`` provider with the stand-in keys."""
    return {
        "LUFFY_ALIPAY_APP_ID": app_id,
        "LUFFY_ALIPAY_APP_PRIVATE_KEY": key_pair(APP_KEYS).private_pem,
        "LUFFY_ALIPAY_PUBLIC_KEY": key_pair(ALIPAY_KEYS).public_pem,
        **overrides,
    }


def signed_text(params: Mapping[str, str]) -> str:
    return "&".join(f"{key}={value}" for key, value in sorted(params.items()))


def sign(keys: KeyPair, params: Mapping[str, str]) -> str:
    signature = keys.private_key.sign(signed_text(params).encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verifies(keys: KeyPair, params: Mapping[str, str], signature: str) -> bool:
    try:
        keys.public_key.verify(
            base64.b64decode(signature), signed_text(params).encode(), padding.PKCS1v15(), hashes.SHA256()
        )
    except InvalidSignature:
        return False
    return True


def query_of(url: str) -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    params = dict(pairs)
    assert len(params) == len(pairs), f"repeated parameters in {url}"
    return params


def notification_params(
    out_trade_no: str,
    total_amount: str,
    *,
    app_id: str = APP_ID,
    trade_status: str = "TRADE_SUCCESS",
    trade_no: str = "2026113022001400000000000001",
    **extra: str,
) -> dict[str, str]:
    now = datetime.datetime.now(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
    return {
        "gmt_create": now,
        "gmt_payment": now,
        "notify_time": now,
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "charset": "utf-8",
        "version": "1.0",
        "app_id": app_id,
        "auth_app_id": app_id,
        "seller_id": "2088102170208070",
        "buyer_id": "2088102169481075",
        "out_trade_no": out_trade_no,
        "trade_no": trade_no,
        "trade_status": trade_status,
        "subject": "课程",
        "total_amount": total_amount,
        "receipt_amount": total_amount,
        "buyer_pay_amount": total_amount,
        "invoice_amount": total_amount,
        "point_amount": "0.00",
        **extra,
    }


def signed_notification(params: Mapping[str, str], keys: KeyPair | None = None) -> bytes:
    """The form body Alipay posts: signed over every parameter but ``sign`` and ``sign_type``."""
    signature = sign(keys or key_pair(ALIPAY_KEYS), params)
    return urlencode({**params, "sign": signature, "sign_type": "RSA2"}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


async def create_courses(config: SQLAlchemyAsyncConfig, *courses: tuple[str, str, bool]) -> list[int]:
    """Courses ``(name, price, visible)``; their ids in order."""
    ids = []
    async with session_scope(config) as session:
        for name, price, visible in courses:
            ids.append(
                await session.scalar(
                    insert(Course)
                    .values(name=name, price=Decimal(price), is_show=visible, brief="", orders=0)
                    .returning(Course.id)
                )
            )
    return ids


class OrderRow(msgspec.Struct, frozen=True):
    id: int
    out_trade_no: str
    order_status: int
    trade_no: str | None
    pay_time: datetime.datetime | None
    total_amount: Decimal
    subject: str
    user_id: int
    created_time: datetime.datetime
    details: list[tuple[int, Decimal, Decimal]]


async def orders(config: SQLAlchemyAsyncConfig) -> list[OrderRow]:
    """Every course order and its detail rows, straight from the tables."""
    async with session_scope(config) as session:
        rows = list(await session.execute(select(*Order.__table__.c).order_by(Order.id)))
        details = list(await session.execute(select(*OrderDetail.__table__.c).order_by(OrderDetail.id)))
    return [
        OrderRow(
            **{key: value for key, value in row._mapping.items() if key not in ("pay_type",)},
            details=[(d.course_id, d.price, d.real_price) for d in details if d.order_id == row.id],
        )
        for row in rows
    ]


async def set_order(config: SQLAlchemyAsyncConfig, out_trade_no: str, **values: Any) -> None:
    async with session_scope(config) as session:
        await session.execute(update(Order).where(Order.out_trade_no == out_trade_no).values(**values))
