"""Home banners: the database is the truth, the cache key ``home_banner_list`` serves the reads.

Writes go to the database first; the cache is rewritten after the commit by the writer (the
``luffy banner`` commands, ``luffy seed``) and every ``LUFFY_BANNER_REFRESH_SECONDS`` by the
``update_banner`` task, which catches changes made directly in the database. The cached value
expires after two intervals, so a missed refresh heals itself on the next read.
"""

from __future__ import annotations

import logging

import msgspec
from advanced_alchemy.filters import LimitOffset
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from litestar.stores.base import Store
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.cache import CACHE_ERRORS, CacheOutage
from luffy.home.models import Banner
from luffy.home.schemas import BannerChanges, BannerItem
from luffy.settings import Settings

BANNER_CACHE_KEY = "home_banner_list"

logger = logging.getLogger("luffy.home")
_decode_banners = msgspec.json.Decoder(list[BannerItem]).decode


class BannerRepository(SQLAlchemyAsyncRepository[Banner]):
    model_type = Banner


VISIBLE = (Banner.is_show.is_(True), Banner.is_delete.is_(False))


def cache_seconds(settings: Settings) -> int:
    return 2 * settings.banner_refresh_seconds


async def read_banners(session: AsyncSession, settings: Settings) -> list[BannerItem]:
    """The visible banners from the database: at most ``LUFFY_BANNER_COUNT``, by ``orders`` then ``id``."""
    rows = await BannerRepository(session=session).get_many(
        *VISIBLE,
        LimitOffset(limit=settings.banner_count, offset=0),
        order_by=[(Banner.orders, False), (Banner.id, False)],
    )
    return [
        BannerItem(id=row.id, title=row.title, image=settings.media_url(row.image), link=row.link, info=row.info)
        for row in rows
    ]


async def _store(cache: Store, banners: list[BannerItem], settings: Settings) -> None:
    await cache.set(BANNER_CACHE_KEY, msgspec.json.encode(banners), expires_in=cache_seconds(settings))


async def refresh_banner_cache(session: AsyncSession, cache: Store, settings: Settings) -> list[BannerItem]:
    """Rewrite the cached list from the database; raises one of ``CACHE_ERRORS`` when the cache is down."""
    banners = await read_banners(session, settings)
    await _store(cache, banners, settings)
    return banners


async def cached_banners(
    cache: Store, session: AsyncSession, settings: Settings, outage: CacheOutage
) -> list[BannerItem]:
    """The banner list for the home page: from the cache, else from the database (filling the cache).

    A hit touches no database (a session connects on its first statement). An unreachable cache
    costs a warning, never the answer.
    """
    if outage.ongoing:
        return await read_banners(session, settings)
    try:
        cached = await cache.get(BANNER_CACHE_KEY)
    except CACHE_ERRORS as exc:
        outage.record(exc)
        return await read_banners(session, settings)
    if cached is not None:
        try:
            return _decode_banners(cached)
        except msgspec.DecodeError:
            logger.warning("banner cache holds an unreadable value; rebuilding it")
    banners = await read_banners(session, settings)
    try:
        await _store(cache, banners, settings)
    except CACHE_ERRORS as exc:
        outage.record(exc)
    return banners


# --- operator writes (``luffy banner ...``); the caller refreshes the cache after the commit ----------


async def all_banners(session: AsyncSession, *, include_deleted: bool = False) -> list[Banner]:
    filters = () if include_deleted else (Banner.is_delete.is_(False),)
    return await BannerRepository(session=session).get_many(
        *filters, order_by=[(Banner.orders, False), (Banner.id, False)]
    )


async def add_banner(session: AsyncSession, fields: BannerChanges) -> Banner:
    """A new banner; title, image, link and info are required. Raises ``DuplicateKeyError`` on a taken title."""
    missing = [name for name in ("title", "image", "link", "info") if getattr(fields, name) is None]
    if missing:
        raise ValueError(f"a new banner needs {', '.join(missing)}")
    values = {name: value for name, value in msgspec.structs.asdict(fields).items() if value is not None}
    return await BannerRepository(session=session).add(Banner(**values), auto_refresh=True)


async def change_banner(session: AsyncSession, banner_id: int, changes: BannerChanges) -> Banner:
    """Apply ``changes`` to a banner that is not deleted; raises ``NotFoundError`` when there is none."""
    repository = BannerRepository(session=session)
    banner = await repository.get_one(Banner.id == banner_id, Banner.is_delete.is_(False))
    for name, value in msgspec.structs.asdict(changes).items():
        if value is not None:
            setattr(banner, name, value)
    return await repository.update(banner, auto_refresh=True)


async def delete_banner(session: AsyncSession, banner_id: int) -> Banner:
    """Soft delete, as the original ``is_delete`` column intends: the row stays, invisible everywhere."""
    repository = BannerRepository(session=session)
    banner = await repository.get_one(Banner.id == banner_id, Banner.is_delete.is_(False))
    banner.is_delete = True
    return await repository.update(banner, auto_refresh=True)
