"""``/api/v1/user/sckill/``: queue a purchase, then poll its outcome (the original front end's path)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter
from litestar.security.jwt import Token
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from luffy.cache import CACHE_STORE
from luffy.db import session_scope
from luffy.responses import error_responses
from luffy.seckill.reservations import RedisReservations
from luffy.seckill.schemas import (
    TASK_ID_MAX_LENGTH,
    FailedReply,
    NotSucceededReply,
    OrderedReply,
    PurchaseRequest,
    QueuedReply,
    WaitingReply,
)
from luffy.seckill.services import SeckillDesk, make_gate, publish_goods
from luffy.user.auth import AuthUser

logger = logging.getLogger("luffy.seckill")


def _desk(state: State) -> SeckillDesk:
    return state.seckill_desk


class SeckillController(Controller):
    """Mounted on the app's authenticated router: every request carries a token."""

    path = "/user/sckill"
    tags = ["seckill"]
    dependencies = {"desk": Provide(_desk, sync_to_thread=False)}

    @post(
        "/",
        status_code=200,
        summary="Queue a flash-sale purchase",
        description="Answers 您正在排队 with a task_id once the order task is enqueued, or 101 with a reason at once.",
        responses=error_responses(400, 401),
    )
    async def purchase(
        self,
        request: Request[AuthUser, Token, Any],
        data: JSONBody[PurchaseRequest],
        desk: NamedDependency[SeckillDesk],
    ) -> QueuedReply | FailedReply:
        return await desk.request(data, request.user.id)

    @get(
        "/",
        summary="Poll a purchase: 100 ordered, 101 failed, 103 still queued, 102 unknown",
        cache=False,
        responses=error_responses(400, 401),
    )
    async def outcome(
        self,
        request: Request[AuthUser, Token, Any],
        desk: NamedDependency[SeckillDesk],
        task_id: Annotated[str, Parameter(min_length=1, max_length=TASK_ID_MAX_LENGTH)],
    ) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
        return await desk.status(task_id, request.user.id)


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
    state.seckill_desk = SeckillDesk(gate, state.purchase_queue)
    if isinstance(gate, RedisReservations):
        try:
            async with session_scope(state.sqlalchemy_config) as session:
                await publish_goods(session, gate, only_if_missing=True)
        except (SQLAlchemyError, RedisError, OSError) as exc:
            logger.warning("seckill goods not copied to Redis at start-up: %s", type(exc).__name__)
    yield
