from __future__ import annotations

import datetime
from decimal import Decimal

from advanced_alchemy.types import BigIntIdentity, DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from luffy.db import Base, IdMixin, LuffyBase, utcnow


class SeckillGoods(LuffyBase):
    __tablename__ = "luffy_seckill_goods"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_non_negative"),)

    name: Mapped[str] = mapped_column(String(64), unique=True)
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2), default=Decimal("0.00"))
    stock: Mapped[int] = mapped_column(Integer, default=0)
    start_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    end_time: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC)


class SeckillOrder(IdMixin, Base):
    """One flash-sale purchase. (The original's `luffy_order` holds course orders: a different table.)"""

    __tablename__ = "luffy_seckill_order"
    __table_args__ = (UniqueConstraint("user_id", "goods_id", name="uq_luffy_seckill_order_user_goods"),)

    order_no: Mapped[str] = mapped_column(String(32), unique=True)
    # The task that bought it: a redelivered task finds its order instead of buying again.
    task_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigIntIdentity, ForeignKey("luffy_user.id"))
    goods_id: Mapped[int] = mapped_column(BigIntIdentity, ForeignKey("luffy_seckill_goods.id"), index=True)
    price: Mapped[Decimal] = mapped_column(Numeric(8, 2))
    status: Mapped[str] = mapped_column(String(16), default="created")
    created_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    updated_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow, onupdate=utcnow)
