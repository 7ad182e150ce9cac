"""The ASGI entry point for servers (``luffy serve`` runs Granian on it)."""

from __future__ import annotations

from granian.utils.proxies import wrap_asgi_with_proxy_headers
from litestar.types import ASGIApp

from luffy.app import create_app
from luffy.settings import Settings, get_settings


def build(settings: Settings) -> ASGIApp:
    app: ASGIApp = create_app(settings)
    if settings.trusted_proxies:
        # Behind a reverse proxy the client address (per-IP limits) comes from X-Forwarded-For,
        # believed only on connections from these hosts or networks.
        app = wrap_asgi_with_proxy_headers(app, list(settings.trusted_proxies))
    return app


app = build(get_settings())
