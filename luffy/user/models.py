from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ColumnElement, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from luffy.db import Base, IdMixin, LuffyBase, utcnow


class User(LuffyBase):
    __tablename__ = "luffy_user"

    username: Mapped[str] = mapped_column(String(150), unique=True)
    mobile: Mapped[str] = mapped_column(String(11), unique=True)
    icon: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    last_login: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC)


def account_enabled() -> ColumnElement[bool]:
    """The users whose tokens work: the one definition shared by logins, ``/me`` and the revocation list."""
    return User.is_active.is_(True) & User.is_delete.is_(False)


class SmsLog(IdMixin, Base):
    """One row per SMS send: every attempt's outcome, never a secret.

    ``send_id`` is the send task's id: its retries update the same row.
    """

    __tablename__ = "luffy_sms_log"
    __table_args__ = (Index("ix_luffy_sms_log_mobile_created", "mobile", "created_time"),)

    send_id: Mapped[str] = mapped_column(String(32), unique=True)
    mobile: Mapped[str] = mapped_column(String(11))
    provider: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    created_time: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    sent_time: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC)
