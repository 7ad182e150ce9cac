"""The original project's course order tables, ``luffy_order`` and ``luffy_order_detail``, as Django made them.

No database foreign keys (the original declared ``db_constraint=False``), so an original database
is served as it is and a Django deployment could keep writing beside Luffy.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from enum import IntEnum

from advanced_alchemy.types import BigIntIdentity, DateTimeUTC
from sqlalchemy import Index, Numeric, SmallInteger, String, text
from sqlalchemy.orm import Mapped, mapped_column

from luffy.db import Base, IdMixin, utcnow


class OrderStatus(IntEnum):
    UNPAID = 0
    PAID = 1
    CANCELLED = 2
    TIMED_OUT = 3


class PayType(IntEnum):
    ALIPAY = 1
    WECHAT = 2


UNPAID = text("order_status = 0")


class Order(IdMixin, Base):
    __tablename__ = "luffy_order"
    __table_args__ = (
        Index("ix_luffy_order_user_created", "user_id", "created_time"),
        # The timeout sweep reads only the unpaid orders, oldest first.
        Index("ix_luffy_order_unpaid_created", "created_time", postgresql_where=UNPAID, sqlite_where=UNPAID),
    )

    subject: Mapped[str] = mapped_column(String(150))
    total_amount: Mapped[Decimal] = mapped_column(Numeric(10, 2), default=Decimal("0.00"))
    out_trade_no: Mapped[str] = mapped_column(String(64), unique=True)
    trade_no: Mapped[str | None] = mapped_column(String(64))
    order_status: Mapped[int] = mapped_column(SmallInteger, default=OrderStatus.UNPAID)
    pay_type: Mapped[int] = mapped_column(SmallInteger, default=PayType.ALIPAY)
    pay_time: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC)
    created_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    user_id: Mapped[int] = mapped_column(BigIntIdentity)


class OrderDetail(IdMixin, Base):
    __tablename__ = "luffy_order_detail"
    __table_args__ = (
        Index("ix_luffy_order_detail_order_id", "order_id"),
        Index("ix_luffy_order_detail_course_id", "course_id"),
    )

    price: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    real_price: Mapped[Decimal] = mapped_column(Numeric(6, 2))
    course_id: Mapped[int] = mapped_column(BigIntIdentity)
    order_id: Mapped[int] = mapped_column(BigIntIdentity)
