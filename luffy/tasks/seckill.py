"""The order task on the ``seckill`` queue; the rules live in ``luffy.seckill.services``."""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec
from redis.exceptions import RedisError
from taskiq import Context, TaskiqDepends, TaskiqEvents, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.abc.result_backend import AsyncResultBackend
from taskiq.state import TaskiqState

from luffy.cache import make_redis
from luffy.seckill.reservations import TaskEntry
from luffy.seckill.services import OrderBatcher, SeckillGate, abandon_purchase, complete_purchase, make_gate
from luffy.tasks.broker import seckill_broker
from luffy.tasks.deps import SessionDep
from luffy.tasks.outage import waits_out_outages

PURCHASE_TASK = "luffy.seckill.purchase"


async def _open_gate(state: TaskiqState) -> None:
    """Where tasks run (a worker, or the API in embedded mode), they settle through their own gate."""
    settings = state.settings
    state.seckill_redis = make_redis(settings) if settings.redis_url else None
    state.seckill_gate = make_gate(
        redis=state.seckill_redis,
        sqlalchemy_config=state.sqlalchemy_config,
        store=state.cache_store,
        owner_ttl_seconds=settings.result_ttl_seconds,
    )
    state.order_batcher = OrderBatcher(state.sqlalchemy_config) if settings.is_postgres else None


async def _close_gate(state: TaskiqState) -> None:
    redis = getattr(state, "seckill_redis", None)
    state.seckill_redis = state.seckill_gate = state.order_batcher = None
    if redis is not None:
        await redis.aclose()


def task_gate(context: Annotated[Context, TaskiqDepends()]) -> SeckillGate:
    return context.state.seckill_gate


GateDep = Annotated[SeckillGate, TaskiqDepends(task_gate)]


# Database outages are waited out in place; a Redis failure settling the reservation is retried.
@seckill_broker.task(task_name=PURCHASE_TASK, retry_on_error=True, max_retries=3, types_of_exceptions=(RedisError,))
@waits_out_outages
async def purchase(
    goods_id: int,
    user_id: int,
    context: Annotated[Context, TaskiqDepends()],
    session: SessionDep,
    gate: GateDep,
) -> dict[str, str | None]:
    outcome = await complete_purchase(
        session,
        gate,
        task_id=context.message.task_id,
        goods_id=goods_id,
        user_id=user_id,
        batcher=context.state.order_batcher,
    )
    return outcome.as_result()


# Stand for the ids in a message prepared before admission (as JSON strings, cut out or replaced).
_GOODS_ID_SLOT = "luffy-goods-id-slot"
_TASK_ID_SLOT = "luffy-task-id-slot"
_USER_ID_SLOT = "luffy-user-id-slot"
_GOODS_ID_SLOT_JSON = msgspec.json.encode(_GOODS_ID_SLOT)
_TASK_ID_SLOT_JSON = msgspec.json.encode(_TASK_ID_SLOT)
_USER_ID_SLOT_JSON = msgspec.json.encode(_USER_ID_SLOT)


class _EntryTemplate(msgspec.Struct, frozen=True):
    """The order task's entry around its ids: ``head = before_task_id + <id> + after_task_id``, the
    same for the tail around the user id (the goods id sits between head and tail)."""

    entry: TaskEntry
    before_task_id: bytes
    after_task_id: bytes
    before_user_id: bytes
    after_user_id: bytes


class PurchaseTaskQueue:
    """``luffy.seckill.services.PurchaseQueue`` on the ``seckill`` broker: the API's way to the order task."""

    def __init__(self) -> None:
        self._template: _EntryTemplate | None = None
        self._template_for: tuple[object, ...] | None = None

    async def enqueue(self, task_id: str, goods_id: int, user_id: int) -> None:
        # The task's other parameters are TaskIQ dependencies, filled where it runs.
        await purchase.kicker().with_task_id(task_id).kiq(goods_id=goods_id, user_id=user_id)  # type: ignore[call-overload]

    def entry(self, task_id: str, user_id: int) -> TaskEntry | None:
        """The order task's stream entry, for the admission script to add when it admits the buyer.

        The message is the one ``enqueue`` sends, with the goods id left out: the script splices
        it in. ``None`` where ``enqueue`` must send it (embedded mode, or a send hook present).
        Messages differ only by their ids, so TaskIQ prepares one per broker run with slots for
        the ids (prepared per purchase, it cost a tenth of the POST's CPU), filled here as
        TaskIQ's JSON would write them.
        """
        template = self._entry_template()
        if template is None:
            return None
        return msgspec.structs.replace(
            template.entry,
            head=template.before_task_id + json.dumps(task_id).encode() + template.after_task_id,
            tail=template.before_user_id + str(user_id).encode() + template.after_user_id,
        )

    def _entry_template(self) -> _EntryTemplate | None:
        run = (
            seckill_broker.redis_stream,
            seckill_broker.started,
            seckill_broker.formatter,
            *seckill_broker.middlewares,
        )
        if run != self._template_for:
            self._template, self._template_for = _prepare_entry_template(), run
        return self._template

    def results(self) -> AsyncResultBackend[Any]:
        return seckill_broker.result_backend


def _prepare_entry_template() -> _EntryTemplate | None:
    """The purchase task's entry as TaskIQ prepares it, cut around its ids; ``None`` unless the task
    id is once in the head, the user id once in the tail and the goods id between them."""
    message = (
        purchase.kicker().with_task_id(_TASK_ID_SLOT)._prepare_message(goods_id=_GOODS_ID_SLOT, user_id=_USER_ID_SLOT)
    )
    entry = seckill_broker.stream_message(message)
    if entry is None or entry.data.count(_GOODS_ID_SLOT_JSON) != 1:
        return None
    head, _, tail = entry.data.partition(_GOODS_ID_SLOT_JSON)
    if (head.count(_TASK_ID_SLOT_JSON), head.count(_USER_ID_SLOT_JSON)) != (1, 0):
        return None
    if (tail.count(_TASK_ID_SLOT_JSON), tail.count(_USER_ID_SLOT_JSON)) != (0, 1):
        return None
    before_task_id, _, after_task_id = head.partition(_TASK_ID_SLOT_JSON)
    before_user_id, _, after_user_id = tail.partition(_USER_ID_SLOT_JSON)
    return _EntryTemplate(
        entry=TaskEntry(stream=entry.stream, head=head, tail=tail, maxlen=entry.maxlen, approximate=entry.approximate),
        before_task_id=before_task_id,
        after_task_id=after_task_id,
        before_user_id=before_user_id,
        after_user_id=after_user_id,
    )


class AbandonFailedPurchases(TaskiqMiddleware):
    """A purchase task that failed for good (its error is the saved result) gives its reservation back."""

    async def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        if message.task_name == PURCHASE_TASK and result.is_err:
            await abandon_purchase(self.broker.state.seckill_gate, int(message.kwargs["goods_id"]), message.task_id)


seckill_broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, _open_gate)
seckill_broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close_gate)
seckill_broker.add_middlewares(AbandonFailedPurchases())
