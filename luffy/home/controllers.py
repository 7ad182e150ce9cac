"""``GET /api/v1/home/banner/``: the home page carousel."""

from __future__ import annotations

import msgspec
from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.cache import CACHE_STORE
from luffy.home.schemas import BannerItem
from luffy.home.services import BANNER_CACHE_KEY, cached_banners
from luffy.responses import ListResult, error_responses

# The reply's envelope around the cached list, as the endpoint encodes it: ``{"code":100,...,"result":`` + list + ``}``.
_REPLY_HEAD, _, _REPLY_TAIL = msgspec.json.encode(ListResult[BannerItem](result=[])).rpartition(b"[]")


async def cached_banner_reply(redis: Redis) -> bytes | None:
    """The endpoint's whole reply around the cached list, without decoding it; ``None`` on a miss.

    A value that is not a JSON array is left to the endpoint, which rebuilds it.
    """
    cached = await redis.get(BANNER_CACHE_KEY)
    if not isinstance(cached, bytes) or not (cached.startswith(b"[") and cached.endswith(b"]")):
        return None
    return _REPLY_HEAD + cached + _REPLY_TAIL


class HomeController(Controller):
    path = "/home"
    tags = ["home"]

    @get(
        "/banner/",
        summary="The home page banners",
        description="At most LUFFY_BANNER_COUNT visible banners, by display order then id. Served from the cache.",
        responses=error_responses(400),
    )
    async def banner_list(
        self, request: Request, state: State, db_session: NamedDependency[AsyncSession]
    ) -> ListResult[BannerItem]:
        banners = await cached_banners(
            request.app.stores.get(CACHE_STORE), db_session, state.settings, state.cache_outage
        )
        return ListResult(result=banners)
