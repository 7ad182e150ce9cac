"""The flash-sale endpoints, under both of the original front end's paths.

``user/sckill/`` (POST a purchase, GET its outcome) is the seed's ``Sckill.vue``; ``user/seckill/``
(GET buys the goods on sale now) and ``user/get_result/`` are the original app's ``Seckill.vue``.
The buying handlers leave the revocation check to the admission itself (still one Redis round trip).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from litestar import Controller, Litestar, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody, Parameter, QueryParameter
from litestar.security.jwt import Token
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from luffy.cache import CACHE_STORE
from luffy.db import session_scope
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
from luffy.seckill.services import (
    SeckillGate,
    make_gate,
    publish_goods,
    purchase_result,
    purchase_status,
    request_purchase,
    request_purchase_now,
)
from luffy.tasks.seckill import purchase
from luffy.user.auth import REVOCATION_CHECKED_IN_HANDLER, AuthUser

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
        opt={REVOCATION_CHECKED_IN_HANDLER: True},
    )
    async def purchase(
        self,
        request: Request[AuthUser, Token, Any],
        data: JSONBody[PurchaseRequest],
        gate: NamedDependency[SeckillGate],
    ) -> QueuedReply | FailedReply:
        return await request_purchase(gate, data, request.user.id, _enqueue)

    @get("/", summary="Poll a purchase: 100 ordered, 101 failed, 103 still queued, 102 unknown", cache=False)
    async def outcome(
        self,
        request: Request[AuthUser, Token, Any],
        gate: NamedDependency[SeckillGate],
        task_id: Annotated[str, Parameter(min_length=1, max_length=TASK_ID_MAX_LENGTH)],
    ) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
        return await purchase_status(gate, purchase.broker.result_backend, task_id, request.user.id)


class SeckillPageController(Controller):
    """The original app's ``Seckill.vue``: one click buys what is on sale, then polls every 5 s."""

    path = "/user"
    tags = ["seckill"]
    dependencies = {"gate": Provide(_gate, sync_to_thread=False)}

    @get(
        "/seckill",
        summary="Buy the goods on sale now (the one whose sale started last, or goods_id)",
        description="Answers 正在排队 with the task id in `id`; 400 当前没有秒杀活动 when nothing is on sale.",
        cache=False,
        opt={REVOCATION_CHECKED_IN_HANDLER: True},
    )
    async def buy_now(
        self,
        request: Request[AuthUser, Token, Any],
        gate: NamedDependency[SeckillGate],
        goods_id: Annotated[
            int | None, QueryParameter(ge=1, le=MAX_GOODS_ID, description="Buy this goods instead.")
        ] = None,
    ) -> PageQueuedReply | FailedReply:
        return await request_purchase_now(gate, goods_id, request.user.id, _enqueue)

    @get(
        "/get_result",
        summary="Poll a purchase: 100 ordered, 101 failed, 102 still queued (or unknown: keep polling)",
        cache=False,
    )
    async def result(
        self,
        request: Request[AuthUser, Token, Any],
        gate: NamedDependency[SeckillGate],
        task_id: Annotated[
            str, QueryParameter(name="id", min_length=1, max_length=TASK_ID_MAX_LENGTH, description="The task id.")
        ],
    ) -> OrderedReply | PageFailedReply | PageWaitingReply:
        return await purchase_result(gate, purchase.broker.result_backend, task_id, request.user.id)


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
