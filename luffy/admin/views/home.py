"""Banners: written through the same services as ``luffy banner …``, then the cache is rewritten at once."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from advanced_alchemy.exceptions import DuplicateKeyError, NotFoundError
from sqladmin.filters import BooleanFilter
from starlette.requests import Request

from luffy.admin.site import admin_context
from luffy.admin.views.base import SoftDeleteView, labels
from luffy.cache import CACHE_ERRORS
from luffy.errors import Conflict, InvalidInput, NotFound
from luffy.home.models import Banner
from luffy.home.schemas import BannerChanges
from luffy.home.services import add_banner, change_banner, delete_banner, refresh_banner_cache

logger = logging.getLogger("luffy.admin")
FIELDS = ("title", "image", "link", "info", "orders", "is_show")


def _changes(data: dict[str, Any]) -> BannerChanges:
    try:
        return msgspec.convert({name: data[name] for name in FIELDS if data.get(name) is not None}, BannerChanges)
    except msgspec.ValidationError as exc:
        raise InvalidInput(str(exc)) from None


class BannerView(SoftDeleteView, model=Banner):
    name = "轮播图"
    name_plural = "轮播图"
    icon = "fa-solid fa-images"
    category = "首页"
    image_folders = {"image": "banner"}
    column_list = [Banner.id, Banner.title, Banner.image, Banner.link, Banner.orders, Banner.is_show]
    column_labels = labels(title="标题", image="图片", link="链接", info="详情")
    column_searchable_list = [Banner.title, Banner.info]
    column_sortable_list = [Banner.id, Banner.orders]
    column_default_sort = [(Banner.orders, False), (Banner.id, False)]
    column_filters = [BooleanFilter(Banner.is_show, title="是否显示")]

    async def _write(self, request: Request, write: Any) -> Banner:
        context = admin_context(request)
        try:
            async with context.session() as session:
                banner: Banner = await write(session)
        except NotFoundError:
            raise NotFound("没有这个轮播图(或已删除)") from None
        except DuplicateKeyError:
            raise Conflict("已有同名的轮播图") from None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        try:
            async with context.session() as session:
                await refresh_banner_cache(session, context.cache, context.settings)
        except CACHE_ERRORS:
            logger.warning(
                "banner %s saved, but the banner cache could not be refreshed; the scheduler refreshes it", banner.id
            )
        return banner

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Banner:
        await self.store_images(request, data)
        changes = _changes(data)
        return await self._write(request, lambda session: add_banner(session, changes))

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Banner:
        await self.store_images(request, data)
        changes = _changes(data)
        return await self._write(request, lambda session: change_banner(session, int(pk), changes))

    async def delete_model(self, request: Request, pk: Any) -> None:
        await self._write(request, lambda session: delete_banner(session, int(pk)))
