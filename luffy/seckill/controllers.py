"""The flash-sale endpoints, under both of the original front end's paths.

``user/sckill/`` (POST a purchase, GET its outcome) is the seed's ``Sckill.vue``; ``user/seckill/``
(GET buys the goods on sale now) and ``user/get_result/`` are the original app's ``Seckill.vue``.
The buying handlers leave the revocation check to the admission itself (still one Redis round trip).
In production a well-formed purchase POST is answered before the framework by ``luffy/purchase_lane.py``,
with this handler's options and exception handlers; this handler answers the rest, and all of them
in embedded mode.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, get, post
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.security.jwt import Token
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from luffy.cache import CACHE_STORE
from luffy.db import session_scope
from luffy.responses import error_responses
from luffy.seckill.reservations import RedisReservations
from luffy.seckill.schemas import (
    MAX_GOODS_ID,
    TASK_ID_MAX_LENGTH,
    FailedReply,
    NotSucceededReply,
    OrderedReply,
    PageFailedReply,
    PageQueuedReply,
    PageWaitingReply,
    PurchaseRequest,
    QueuedReply,
    WaitingReply,
)
from luffy.seckill.services import SaleDatabase, SeckillDesk, make_gate, publish_goods
from luffy.user.auth import REVOCATION_CHECKED_IN_HANDLER, AuthUser

logger = logging.getLogger("luffy.seckill")


def _desk(request: Request[AuthUser, Token, Any]) -> SeckillDesk:
    """The desk the lifespan built, read from the app's state (no per-request dependency to resolve)."""
    return request.app.state.seckill_desk


class SeckillController(Controller):
    """Mounted on the app's authenticated router: every request carries a token."""

    path = "/user/sckill"
    tags = ["seckill"]

    @post(
        "/",
        status_code=200,
        summary="Queue a flash-sale purchase",
        description="Answers 您正在排队 with a task_id once the order task is enqueued, or 101 with a reason at once.",
        responses=error_responses(400, 401, 404, 413, 503),
        opt={REVOCATION_CHECKED_IN_HANDLER: True},
    )
    async def purchase(
        self,
        request: Request[AuthUser, Token, Any],
        data: JSONBody[PurchaseRequest],
    ) -> QueuedReply | FailedReply:
        # luffy/purchase_lane.py makes this same call for the requests it answers: keep this handler to it.
        return await _desk(request).request(data, request.user.id)

    @get(
        "/",
        summary="Poll a purchase: 100 ordered, 101 failed, 103 still queued, 102 unknown",
        cache=False,
        responses=error_responses(400, 401, 503),
    )
    async def outcome(
        self,
        request: Request[AuthUser, Token, Any],
        task_id: Annotated[str, Parameter(min_length=1, max_length=TASK_ID_MAX_LENGTH)],
    ) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
        return await _desk(request).status(task_id, request.user.id)


class SeckillPageController(Controller):
    """The original app's ``Seckill.vue`` (on the authenticated router): one click buys, then it polls every 5 s."""

    path = "/user"
    tags = ["seckill"]

    @get(
        "/seckill",
        summary="Buy the goods on sale now (the one whose sale started last, or goods_id)",
        description="Answers 正在排队 with the task id in `id`; 400 当前没有秒杀活动 when nothing is on sale.",
        cache=False,
        responses=error_responses(400, 401, 404, 503),
        opt={REVOCATION_CHECKED_IN_HANDLER: True},
    )
    async def buy_now(
        self,
        request: Request[AuthUser, Token, Any],
        goods_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_GOODS_ID, description="Buy this goods instead.")
        ] = None,
    ) -> PageQueuedReply | FailedReply:
        return await _desk(request).request_now(goods_id, request.user.id)

    @get(
        "/get_result",
        summary="Poll a purchase: 100 ordered, 101 failed, 102 still queued (or unknown: keep polling)",
        cache=False,
        responses=error_responses(400, 401, 503),
    )
    async def result(
        self,
        request: Request[AuthUser, Token, Any],
        task_id: Annotated[
            str, QueryParameter(name="id", min_length=1, max_length=TASK_ID_MAX_LENGTH, description="The task id.")
        ],
    ) -> OrderedReply | PageFailedReply | PageWaitingReply:
        return await _desk(request).result(task_id, request.user.id)


@asynccontextmanager
async def seckill_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Builds the gate and the desk (with the order queue ``luffy.app`` put in ``state.purchase_queue``);
    in production also copies goods Redis has not seen yet from the database."""
    state = app.state
    gate = make_gate(
        redis=state.redis,
        sqlalchemy_config=state.sqlalchemy_config,
        store=app.stores.get(CACHE_STORE),
        owner_ttl_seconds=state.settings.result_ttl_seconds,
    )
    state.seckill_gate = gate
    state.seckill_desk = SeckillDesk(gate, state.purchase_queue, SaleDatabase(state.sqlalchemy_config))
    if isinstance(gate, RedisReservations):
        try:
            async with session_scope(state.sqlalchemy_config) as session:
                await publish_goods(session, gate, only_if_missing=True)
        except (SQLAlchemyError, RedisError, OSError) as exc:
            logger.warning("seckill goods not copied to Redis at start-up: %s", type(exc).__name__)
    yield
