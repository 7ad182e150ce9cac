"""What the home page endpoints answer, and what operators may write."""

from __future__ import annotations

from typing import Annotated

import msgspec


class BannerItem(msgspec.Struct, frozen=True):
    """One banner as the front end shows it (``image`` is an absolute URL)."""

    id: int
    title: str
    image: str | None
    link: str
    info: str


class BannerChanges(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Fields an operator sets on a banner; ``None`` leaves one unchanged. Lengths are the columns'."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] | None = None
    image: Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^/:][^:]*$")] | None = None
    link: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    info: str | None = None
    orders: int | None = None
    is_show: bool | None = None
