"""The Litestar application factory: plugins, controllers, lifespan and the contract's errors."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from sqlalchemy.ext.asyncio import AsyncEngine

from luffy import __version__
from luffy.admin.site import admin_mount
from luffy.cache import CACHE_STORE, CacheOutage, make_cache_reader, make_cache_store, make_redis
from luffy.course.cache import make_catalogue_cache
from luffy.course.controllers import CourseController
from luffy.db import make_probe_engine, make_sqlalchemy_config
from luffy.health import HealthController
from luffy.home.controllers import HomeController
from luffy.http import API_MAX_BODY_BYTES, LuffyRequest, security_headers
from luffy.media import media_router
from luffy.order.controllers import CashierController, OrderController, PaymentController
from luffy.responses import exception_handlers
from luffy.seckill.controllers import SeckillController, SeckillPageController, seckill_lifespan
from luffy.settings import Settings, get_settings
from luffy.tasks.seckill import PurchaseTaskQueue
from luffy.tasks.sms import sms_enqueuer
from luffy.user.auth import auth_lifespan, make_jwt_auth
from luffy.user.controllers import CurrentUserController, UserController

API_PREFIX = "/api/v1"
logger = logging.getLogger("luffy")


def _lifespan(settings: Settings, probe_engine: AsyncEngine):
    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from luffy.tasks.broker import configure_brokers, start_brokers, stop_brokers
        from luffy.tasks.scheduler import run_embedded_scheduler
        from luffy.tasks.worker import import_task_modules

        app.state.redis = make_redis(settings) if settings.redis_url else None
        app.state.cache_reader = make_cache_reader(settings) if settings.redis_url else None
        app.state.catalogue_cache = make_catalogue_cache(app.state.cache_reader, settings, app.state.cache_outage)
        # Embedded tasks share the API's database engine and cache store.
        configure_brokers(
            settings, sqlalchemy_config=app.state.sqlalchemy_config, cache_store=app.stores.get(CACHE_STORE)
        )
        import_task_modules()
        await start_brokers()
        scheduler = asyncio.create_task(run_embedded_scheduler(settings)) if settings.is_embedded else None
        logger.info(
            "luffy %s up: database %s, %s",
            __version__,
            "PostgreSQL" if settings.is_postgres else "SQLite",
            "embedded tasks and cache" if settings.is_embedded else "Redis broker and cache",
        )
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.cancel()
                with suppress(asyncio.CancelledError):
                    await scheduler
            await stop_brokers()
            await probe_engine.dispose()
            for client in (app.state.redis, app.state.cache_reader):
                if client is not None:
                    await client.aclose()

    return lifespan


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    sqlalchemy_config = make_sqlalchemy_config(settings)
    settings.media_root.mkdir(parents=True, exist_ok=True)

    probe_engine = make_probe_engine(settings)
    jwt_auth = make_jwt_auth(settings)
    # Authentication is declared here, where it applies: only this router's routes need a token.
    authenticated = Router(
        path="/",
        route_handlers=[CurrentUserController, SeckillController, SeckillPageController, OrderController],
        middleware=[jwt_auth.middleware],
        security=[jwt_auth.security_requirement],
    )
    api = Router(
        path=API_PREFIX,
        route_handlers=[HomeController, CourseController, UserController, PaymentController, authenticated],
        request_max_body_size=API_MAX_BODY_BYTES,
    )
    cashier = [CashierController] if settings.payment_provider == "simulator" else []
    if cashier and not settings.is_embedded:
        logger.warning("payments go to the simulator: anyone can pay an order without paying; set LUFFY_ALIPAY_*")
    media = media_router(settings.media_prefix, settings.media_root)
    cache_store = make_cache_store(settings)
    state = State(
        {
            "settings": settings,
            "sqlalchemy_config": sqlalchemy_config,
            "jwt_auth": jwt_auth,
            # One for every cache read (banners, catalogue, the cached replies before the app): a
            # Redis that failed one of them is skipped by all for a few seconds.
            "cache_outage": CacheOutage("cache"),
            # The task queues the domains' services are given (domains never import luffy.tasks).
            "enqueue_sms": sms_enqueuer(settings),
            "purchase_queue": PurchaseTaskQueue(),
        }
    )
    admin = admin_mount(settings, sqlalchemy_config, state, cache_store)
    return Litestar(
        route_handlers=[HealthController, api, media, admin, *cashier],
        plugins=[SQLAlchemyPlugin(config=sqlalchemy_config)],
        # Besides these, the SQLAlchemy plugin provides ``db_session`` (see ``luffy.db``).
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "probe_engine": Provide(lambda: probe_engine, use_cache=True, sync_to_thread=False),
        },
        stores={CACHE_STORE: cache_store},
        state=state,
        lifespan=[_lifespan(settings, probe_engine), auth_lifespan, seckill_lifespan],
        exception_handlers=exception_handlers,
        request_class=LuffyRequest,
        before_send=[security_headers(settings)],
        cors_config=CORSConfig(
            allow_origins=list(settings.cors_origins),
            allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        ),
        openapi_config=OpenAPIConfig(
            title="Luffy API",
            version=__version__,
            description="The Luffy online course platform: catalogue, banners, SMS login, flash sales, course orders.",
            path="/schema",
            render_plugins=[JsonRenderPlugin(), SwaggerRenderPlugin()],
            components=[jwt_auth.openapi_components],
        ),
        logging_config=LoggingConfig(
            root={"level": settings.log_level, "handlers": ["queue_listener"]},
            log_exceptions="never",
            disable_stack_trace={404, 405, 400, 401, 403, 429},
        ),
    )
