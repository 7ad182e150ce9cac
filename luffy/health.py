"""``GET /health``: is every part this process depends on reachable?"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy.ext.asyncio import AsyncEngine

from luffy.cache import CACHE_STORE
from luffy.db import ping
from luffy.tasks.broker import BROKERS

logger = logging.getLogger("luffy.health")
CHECK_TIMEOUT_SECONDS = 2.0


async def _check(name: str, probe: Any) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("health check: %s is down: %s", name, type(exc).__name__)
        return "down"
    return "ok"


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get("/", summary="Health of the API and its database, cache and broker", cache=False)
    async def health(self, request: Request, probe_engine: NamedDependency[AsyncEngine]) -> Response[dict[str, str]]:
        store = request.app.stores.get(CACHE_STORE)
        database, cache, broker = await asyncio.gather(
            _check("database", ping(probe_engine)),
            _check("cache", store.exists("health_probe")),
            _check("broker", asyncio.gather(*(queue_broker.ping() for queue_broker in BROKERS.values()))),
        )
        parts = {"database": database, "cache": cache, "broker": broker}
        healthy = all(value == "ok" for value in parts.values())
        body = {"status": "ok" if healthy else "down", **parts}
        return Response(body, status_code=HTTP_200_OK if healthy else HTTP_503_SERVICE_UNAVAILABLE)
