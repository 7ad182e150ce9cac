"""``update_banner``: the scheduled refresh that keeps the banner cache in step with the database."""

from __future__ import annotations

import logging

from luffy.home.services import refresh_banner_cache
from luffy.tasks.broker import default_broker
from luffy.tasks.deps import CacheDep, SessionDep, SettingsDep
from luffy.tasks.outage import waits_out_outages

logger = logging.getLogger("luffy.tasks.banner")


@default_broker.task(task_name="update_banner")
@waits_out_outages
async def update_banner(session: SessionDep, cache: CacheDep, settings: SettingsDep) -> list[int]:
    """Rewrite the cache key ``home_banner_list`` from the database; returns the cached banner ids."""
    banners = await refresh_banner_cache(session, cache, settings)
    logger.info("banner cache refreshed: %d banners (ids %s)", len(banners), [banner.id for banner in banners])
    return [banner.id for banner in banners]
