"""Users in the original ``luffy_user`` shape (Django ``AbstractUser`` + ``mobile``, ``icon``) and the SMS log.

The columns are Django's, with no database defaults (Django sets every value itself), so an
original deployment can keep writing the same table; the Python-side defaults below do the same
for Luffy's inserts. A user is "gone" when ``is_active`` is false: there is no soft delete.
"""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ColumnElement, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from luffy.db import Base, IdMixin, utcnow
from luffy.user.passwords import unusable_password


class User(IdMixin, Base):
    __tablename__ = "luffy_user"

    password: Mapped[str] = mapped_column(String(128), default=unusable_password)
    last_login: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC)
    is_superuser: Mapped[bool] = mapped_column(default=False)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    first_name: Mapped[str] = mapped_column(String(150), default="")
    last_name: Mapped[str] = mapped_column(String(150), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    is_staff: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    date_joined: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=utcnow)
    mobile: Mapped[str] = mapped_column(String(11), unique=True)
    # A media path; empty means none (the reply's ``icon`` is then null).
    icon: Mapped[str] = mapped_column(String(100), default="")


def account_enabled() -> ColumnElement[bool]:
    """The users whose tokens work: the one definition shared by logins, ``/me`` and the revocation list."""
    return User.is_active.is_(True)


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
