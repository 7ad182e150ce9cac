"""The ASGI entry point for servers (``luffy serve`` runs Granian or uvicorn on it)."""

from __future__ import annotations

import gc

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from litestar.types import ASGIApp

from luffy.app import create_app
from luffy.cached_replies import with_cached_replies
from luffy.purchase_lane import with_purchase_lane
from luffy.settings import Settings, get_settings


def build(settings: Settings) -> ASGIApp:
    # In production the hottest requests are answered before the framework (each layer says how).
    litestar = create_app(settings)
    app = with_cached_replies(with_purchase_lane(litestar, litestar, settings), litestar, settings)
    if settings.trusted_proxies:
        # Behind a reverse proxy the client address (per-IP limits) comes from X-Forwarded-For,
        # believed only on connections from these hosts or networks.
        app = wrap_asgi_with_proxy_headers(app, list(settings.trusted_proxies))
    return app


app = build(get_settings())
# Everything built so far (modules, the app, its OpenAPI and SQL structures) lives as long as the
# process: frozen, it is no longer scanned by every full collection, which otherwise paused each
# worker for up to 230 ms under load (gc callbacks, 10 s of the list at 16 connections).
gc.collect()
gc.freeze()
