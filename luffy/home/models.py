from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from luffy.db import LuffyBase


class Banner(LuffyBase):
    __tablename__ = "luffy_banner"

    title: Mapped[str] = mapped_column(String(16), unique=True)
    image: Mapped[str] = mapped_column(String(255))
    link: Mapped[str] = mapped_column(String(64))
    info: Mapped[str] = mapped_column(Text)
