"""``/api/v1/user/sckill/``: queue a purchase, then poll its outcome (the original front end's path)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
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
from luffy.seckill.services import (
    Restore,
    SeckillGate,
    make_gate,
    order_of_task,
    publish_goods,
    purchase_status,
    request_purchase,
    restore_lost_state,
)
from luffy.tasks.seckill import purchase
from luffy.user.auth import AuthUser

logger = logging.getLogger("luffy.seckill")


async def _enqueue(task_id: str, goods_id: int, user_id: int) -> None:
    await purchase.kicker().with_task_id(task_id).kiq(goods_id=goods_id, user_id=user_id)


def _gate(state: State) -> SeckillGate:
    return state.seckill_gate


class SeckillController(Controller):
    path = "/user/sckill"
    tags = ["seckill"]
    dependencies = {"gate": Provide(_gate, sync_to_thread=False)}

    @post(
        "/",
        status_code=200,
        summary="Queue a flash-sale purchase",
        description="Answers 您正在排队 with a task_id once the order task is enqueued, or 101 with a reason at once.",
    )
    async def purchase(
        self,
        request: Request[AuthUser, Token, Any],
        data: JSONBody[PurchaseRequest],
        gate: NamedDependency[SeckillGate],
    ) -> QueuedReply | FailedReply:
        state = request.app.state
        restore: Restore | None = None
        if isinstance(gate, RedisReservations):
            restore = partial(restore_lost_state, gate, state.sqlalchemy_config)
        return await request_purchase(gate, data, request.user.id, _enqueue, restore)

    @get("/", summary="Poll a purchase: 100 ordered, 101 failed, 103 still queued, 102 unknown", cache=False)
    async def outcome(
        self,
        request: Request[AuthUser, Token, Any],
        gate: NamedDependency[SeckillGate],
        task_id: Annotated[str, Parameter(min_length=1, max_length=TASK_ID_MAX_LENGTH)],
    ) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
        find_order = partial(order_of_task, request.app.state.sqlalchemy_config)
        return await purchase_status(gate, purchase.broker.result_backend, task_id, request.user.id, find_order)


@asynccontextmanager
async def seckill_lifespan(app: Litestar) -> AsyncIterator[None]:
    """Builds the gate; in production also copies goods Redis has not seen yet from the database."""
    state = app.state
    gate = make_gate(
        redis=state.redis,
        sqlalchemy_config=state.sqlalchemy_config,
        store=app.stores.get(CACHE_STORE),
        owner_ttl_seconds=state.settings.result_ttl_seconds,
    )
    state.seckill_gate = gate
    if isinstance(gate, RedisReservations):
        try:
            async with session_scope(state.sqlalchemy_config) as session:
                await publish_goods(session, gate, only_if_missing=True)
        except (SQLAlchemyError, RedisError, OSError) as exc:
            logger.warning("seckill goods not copied to Redis at start-up: %s", type(exc).__name__)
    yield
