"""``GET /api/v1/home/banner/``: the home page carousel."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.cache import CACHE_STORE
from luffy.home.schemas import BannerItem
from luffy.home.services import cached_banners
from luffy.responses import ListResult, error_responses


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
            request.app.stores.get(CACHE_STORE), db_session, state.settings, state.banner_cache_outage
        )
        return ListResult(result=banners)
