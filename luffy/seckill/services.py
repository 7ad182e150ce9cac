"""Flash-sale rules: admit a buyer, settle the order in one transaction, keep Redis and the database agreeing.

The database is the truth: ``UPDATE ... SET stock = stock - 1 WHERE stock > 0`` and the unique
``(user_id, goods_id)`` and ``task_id`` constraints make overselling, double buying and buying
twice for one task impossible whatever happens in front of them. In production a Redis gate
(``reservations.py``) answers sold-out and duplicate requests without touching the database and
lets through only as many order tasks as there are units. Embedded mode has no Redis: the order
task's transaction decides alone (serialised per process on SQLite).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import secrets
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import Any, Final, Protocol, cast, runtime_checkable

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.stores.base import Store
from redis.asyncio import Redis
from redis.exceptions import LockError, RedisError
from sqlalchemy import ColumnElement, Insert, Table, Update, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession
from taskiq.abc.result_backend import AsyncResultBackend
from taskiq.exceptions import SendTaskError
from taskiq_redis.exceptions import ResultIsMissingError

from luffy.db import session_scope
from luffy.errors import InvalidInput, NotAuthenticated, NotFound, Unavailable
from luffy.seckill.models import SeckillGoods, SeckillOrder
from luffy.seckill.reservations import (
    ABANDONED,
    ENDED,
    LOST,
    NONE_ON_SALE,
    NOT_STARTED,
    QUEUED,
    REVOKED,
    UNKNOWN,
    Admission,
    GoodsState,
    RedisGoods,
    RedisReservations,
    TaskEntry,
    owner_key,
)
from luffy.seckill.schemas import (
    DUPLICATE,
    FAILURE_REASONS,
    NOT_ACTIVE,
    ORDERED,
    SOLD_OUT,
    FailedReply,
    NotSucceededReply,
    OrderedReply,
    PageFailedReply,
    PageQueuedReply,
    PageWaitingReply,
    PurchaseOutcome,
    PurchaseRequest,
    QueuedReply,
    WaitingReply,
)
from luffy.user.revocation import REVOKED_MSG, user_enabled

logger = logging.getLogger("luffy.seckill")

ORDER_CREATED = "created"
# Reservations older than this are taken as lost when Redis's state is rebuilt (as ``luffy seckill reconcile``).
RESERVATION_STALE_AFTER_SECONDS = 600
REBUILD_LOCK_SECONDS = 60
MAX_PRICE = Decimal("999999.99")
# ``enqueue(task_id, goods_id, user_id)``: send the order task for an admitted request.
Enqueue = Callable[[str, int, int], Awaitable[Any]]
# ``restore()``: rebuild Redis's lost sale state; ``False`` when another process is doing it.
Restore = Callable[[], Awaitable[bool]]
FindOrder = Callable[[str], Awaitable[SeckillOrder | None]]


class Decide(Protocol):
    """What becomes of one order request, in the given session: ``place_order`` or ``_why_not``."""

    async def __call__(
        self, session: AsyncSession, *, task_id: str, goods_id: int, user_id: int, now: datetime.datetime
    ) -> PurchaseOutcome: ...


# ``entry(task_id, user_id)``: the order task's stream entry, for the gate to enqueue while admitting.
Entry = Callable[[str, int], TaskEntry | None]


class SeckillError(InvalidInput):
    """An operator's request that cannot be carried out (bad goods data)."""


@runtime_checkable
class SeckillGate(Protocol):
    """Where a purchase request is admitted and its reservation settled: Redis, or the database alone."""

    async def admit(
        self,
        *,
        name: str | None,
        goods_id: int | None,
        user_id: int,
        task_id: str,
        now: float,
        entry: TaskEntry | None = None,
    ) -> Admission: ...

    async def settle(self, goods_id: int, task_id: str, outcome: str) -> None: ...

    async def owner(self, task_id: str) -> int | None: ...


class DatabaseGate:
    """Embedded mode: the buyer and the goods are read from the database and the order task alone decides.

    Sold-out is answered at once when the database already says so; a duplicate is found by the
    task (the unique constraint). Task owners are kept in the cache store, with the result's TTL.
    """

    def __init__(self, sqlalchemy_config: SQLAlchemyAsyncConfig, store: Store, *, owner_ttl_seconds: int) -> None:
        self.sqlalchemy_config = sqlalchemy_config
        self.store = store
        self.owner_ttl_seconds = owner_ttl_seconds

    async def admit(
        self,
        *,
        name: str | None,
        goods_id: int | None,
        user_id: int,
        task_id: str,
        now: float,
        entry: TaskEntry | None = None,
    ) -> Admission:
        """``entry`` is not used: the task is enqueued by the caller once this answers ``queued``."""
        now_on_sale = name is None and goods_id is None
        async with session_scope(self.sqlalchemy_config) as session:
            if not await user_enabled(session, user_id):
                return Admission(status=REVOKED, goods_id=None)
            if now_on_sale:
                goods = await goods_on_sale_now(session, datetime.datetime.fromtimestamp(now, datetime.UTC))
            else:
                goods = await find_goods(session, name=name, goods_id=goods_id)
        if goods is None:
            return Admission(status=NONE_ON_SALE if now_on_sale else UNKNOWN, goods_id=None)
        closed = window_status(goods.start_time.timestamp(), _epoch(goods.end_time), now)
        if closed is not None:
            return Admission(status=closed, goods_id=goods.id)
        if goods.stock <= 0:
            return Admission(status=SOLD_OUT, goods_id=goods.id)
        await self.store.set(owner_key(task_id), str(user_id), expires_in=self.owner_ttl_seconds)
        return Admission(status=QUEUED, goods_id=goods.id)

    async def settle(self, goods_id: int, task_id: str, outcome: str) -> None:
        """Nothing is reserved outside the database, so there is nothing to give back."""

    async def owner(self, task_id: str) -> int | None:
        value = await self.store.get(owner_key(task_id))
        return int(value) if value is not None else None


class PurchaseQueue(Protocol):
    """The order task's queue: where admitted requests go and their outcomes come back.

    ``luffy.app`` wires in the TaskIQ one (``luffy.tasks.seckill``); domains never import the tasks.
    """

    async def enqueue(self, task_id: str, goods_id: int, user_id: int) -> None: ...

    def entry(self, task_id: str, user_id: int) -> TaskEntry | None:
        """The task's stream entry for a gate that enqueues it while admitting (else ``None``: ``enqueue``)."""
        ...

    def results(self) -> AsyncResultBackend[Any]: ...


class SaleDatabase:
    """The database behind the desk: where a task's order is found and lost Redis state is rebuilt from."""

    def __init__(self, sqlalchemy_config: SQLAlchemyAsyncConfig) -> None:
        self.sqlalchemy_config = sqlalchemy_config


@dataclass(frozen=True)
class SeckillDesk:
    """What the API's flash-sale endpoints need: the gate that admits buyers and the order queue."""

    gate: SeckillGate
    queue: PurchaseQueue
    database: SaleDatabase

    def _restore(self) -> Restore | None:
        if isinstance(self.gate, RedisReservations):
            return partial(restore_lost_state, self.gate, self.database.sqlalchemy_config)
        return None

    def _entry(self) -> Entry | None:
        return self.queue.entry if isinstance(self.gate, RedisReservations) else None

    def _find_order(self) -> FindOrder:
        return partial(order_of_task, self.database.sqlalchemy_config)

    async def request(self, request: PurchaseRequest, user_id: int) -> QueuedReply | FailedReply:
        return await request_purchase(
            self.gate, request, user_id, self.queue.enqueue, self._restore(), entry=self._entry()
        )

    async def status(self, task_id: str, user_id: int) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
        return await purchase_status(self.gate, self.queue.results(), task_id, user_id, self._find_order())

    async def request_now(self, goods_id: int | None, user_id: int) -> PageQueuedReply | FailedReply:
        return await request_purchase_now(
            self.gate, goods_id, user_id, self.queue.enqueue, self._restore(), entry=self._entry()
        )

    async def result(self, task_id: str, user_id: int) -> OrderedReply | PageFailedReply | PageWaitingReply:
        return await purchase_result(self.gate, self.queue.results(), task_id, user_id, self._find_order())


def make_gate(
    *,
    redis: Redis | None,
    sqlalchemy_config: SQLAlchemyAsyncConfig,
    store: Store,
    owner_ttl_seconds: int,
) -> SeckillGate:
    """The Redis gate when a Redis client is given (production), else the database gate."""
    if redis is not None:
        return RedisReservations(redis, owner_ttl_seconds=owner_ttl_seconds)
    return DatabaseGate(sqlalchemy_config, store, owner_ttl_seconds=owner_ttl_seconds)


def new_task_id() -> str:
    return uuid.uuid4().hex


def new_order_no(now: datetime.datetime) -> str:
    return now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(6)


def window_status(start: float, end: float | None, now: float) -> str | None:
    """``not_started`` / ``ended`` when ``now`` is outside the sale window, else ``None``."""
    if now < start:
        return NOT_STARTED
    if end is not None and now > end:
        return ENDED
    return None


def _epoch(moment: datetime.datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


# --- the API: admit and report -------------------------------------------------------------------

WINDOW_MESSAGES = {NOT_STARTED: "秒杀尚未开始", ENDED: "秒杀已结束"}


async def _admit_and_enqueue(
    gate: SeckillGate,
    *,
    name: str | None,
    goods_id: int | None,
    user_id: int,
    enqueue: Enqueue,
    restore: Restore | None,
    entry: Entry | None = None,
) -> str | FailedReply:
    """Admit the request and enqueue its order task (returns its id), or the outcome already certain.

    When Redis has lost the sale's state, ``restore`` rebuilds it (in one process at a time);
    until it is back every request is 503, never a wrong ``sold_out`` or 404. Given ``entry``,
    the gate enqueues the task while admitting (one Redis round trip); else ``enqueue`` does after.
    """
    task_id = new_task_id()
    task_entry = entry(task_id, user_id) if entry is not None else None

    async def admit() -> Admission:
        return await gate.admit(
            name=name, goods_id=goods_id, user_id=user_id, task_id=task_id, now=time.time(), entry=task_entry
        )

    try:
        admission = await admit()
        if admission.status == LOST and restore is not None and await restore():
            admission = await admit()
    except (RedisError, SQLAlchemyError, OSError) as exc:
        logger.warning("seckill admission unavailable: %s", type(exc).__name__)
        raise Unavailable("秒杀服务暂不可用，请稍后再试") from exc
    if admission.status == LOST:
        raise Unavailable("秒杀服务正在恢复，请稍后再试", retry_after=1)
    if admission.status == REVOKED:
        raise NotAuthenticated(REVOKED_MSG)
    if admission.status == NONE_ON_SALE:
        raise InvalidInput("当前没有秒杀活动")
    if admission.status == UNKNOWN or admission.goods_id is None:
        raise NotFound("秒杀商品不存在")
    if admission.status in WINDOW_MESSAGES:
        raise InvalidInput(WINDOW_MESSAGES[admission.status])
    if admission.status in (SOLD_OUT, DUPLICATE):
        return FailedReply(reason=admission.status)  # type: ignore[arg-type]
    if admission.enqueued:
        return task_id
    try:
        await enqueue(task_id, admission.goods_id, user_id)
    except SendTaskError as exc:
        logger.warning("seckill task %s not enqueued (%s); its reservation is given back", task_id, exc)
        await abandon_purchase(gate, admission.goods_id, task_id)
        raise Unavailable("排队服务暂不可用，请稍后再试") from exc
    return task_id


async def request_purchase(
    gate: SeckillGate,
    request: PurchaseRequest,
    user_id: int,
    enqueue: Enqueue,
    restore: Restore | None = None,
    *,
    entry: Entry | None = None,
) -> QueuedReply | FailedReply:
    """``POST user/sckill/``: the goods named or given by id."""
    if (request.name is None) == (request.goods_id is None):
        raise InvalidInput("请提供 name 或 goods_id 其中之一")
    queued = await _admit_and_enqueue(
        gate,
        name=request.name,
        goods_id=request.goods_id,
        user_id=user_id,
        enqueue=enqueue,
        restore=restore,
        entry=entry,
    )
    return queued if isinstance(queued, FailedReply) else QueuedReply(task_id=queued)


async def request_purchase_now(
    gate: SeckillGate,
    goods_id: int | None,
    user_id: int,
    enqueue: Enqueue,
    restore: Restore | None = None,
    *,
    entry: Entry | None = None,
) -> PageQueuedReply | FailedReply:
    """``GET user/seckill/`` (the original ``Seckill.vue``): the goods on sale now, or ``goods_id``."""
    queued = await _admit_and_enqueue(
        gate, name=None, goods_id=goods_id, user_id=user_id, enqueue=enqueue, restore=restore, entry=entry
    )
    return queued if isinstance(queued, FailedReply) else PageQueuedReply(id=queued)


UNKNOWN_TASK = "unknown_task"
WAITING = "waiting"
TASK_FAILED: Final = "failed"


async def _task_outcome(
    gate: SeckillGate, results: AsyncResultBackend[Any], task_id: str, user_id: int, find_order: FindOrder | None
) -> PurchaseOutcome | str:
    """The settled outcome of ``user_id``'s task, else ``UNKNOWN_TASK``, ``WAITING`` or ``TASK_FAILED``.

    Another user's task is indistinguishable from an unknown one. A task Redis no longer knows
    (its owner or result lost with Redis's data) is looked up in the database through
    ``find_order``: an order that task wrote for this user is still an order.
    """

    async def from_database() -> PurchaseOutcome | str:
        order = await find_order(task_id) if find_order is not None else None
        if order is not None and order.user_id == user_id:
            return PurchaseOutcome(outcome=ORDERED, order_no=order.order_no)
        return UNKNOWN_TASK

    try:
        owner = await gate.owner(task_id)
        if owner is None:
            return await from_database()
        if owner != user_id:
            return UNKNOWN_TASK
        # Asked for at once (no "is it ready?" first: one round trip less per poll). The result
        # outlives the owner key (the same TTL, set later), so an owned task without one is still running.
        result = await results.get_result(task_id)
    except (ResultIsMissingError, KeyError):
        return WAITING
    except (RedisError, OSError) as exc:
        raise Unavailable("秒杀服务暂不可用，请稍后再试") from exc
    value = result.return_value
    if result.is_err or not isinstance(value, dict) or value.get("outcome") not in (ORDERED, *FAILURE_REASONS):
        return TASK_FAILED
    order_no = value.get("order_no")
    return PurchaseOutcome(outcome=value["outcome"], order_no=None if order_no is None else str(order_no))


async def purchase_status(
    gate: SeckillGate,
    results: AsyncResultBackend[Any],
    task_id: str,
    user_id: int,
    find_order: FindOrder | None = None,
) -> OrderedReply | FailedReply | WaitingReply | NotSucceededReply:
    """``GET user/sckill/?task_id=``: the contract's poll answer (102 for unknown, another user's or failed)."""
    outcome = await _task_outcome(gate, results, task_id, user_id, find_order)
    if outcome == WAITING:
        return WaitingReply()
    if not isinstance(outcome, PurchaseOutcome):
        return NotSucceededReply()
    if outcome.outcome == ORDERED:
        return OrderedReply(order_no=str(outcome.order_no))
    return FailedReply(reason=outcome.outcome)  # type: ignore[arg-type]


async def purchase_result(
    gate: SeckillGate,
    results: AsyncResultBackend[Any],
    task_id: str,
    user_id: int,
    find_order: FindOrder | None = None,
) -> OrderedReply | PageFailedReply | PageWaitingReply:
    """``GET user/get_result/?id=`` as ``Seckill.vue`` expects: it polls on 102, so unknown ids are 102 too.

    A task that failed for good is 101 (``reason: failed``): 102 would keep the page polling forever.
    """
    outcome = await _task_outcome(gate, results, task_id, user_id, find_order)
    if outcome in (WAITING, UNKNOWN_TASK):
        return PageWaitingReply()
    if not isinstance(outcome, PurchaseOutcome):
        return PageFailedReply(reason=TASK_FAILED)
    if outcome.outcome == ORDERED:
        return OrderedReply(order_no=str(outcome.order_no))
    return PageFailedReply(reason=outcome.outcome)  # type: ignore[arg-type]


# --- the order task ------------------------------------------------------------------------------


async def complete_purchase(
    session: AsyncSession,
    gate: SeckillGate,
    *,
    task_id: str,
    goods_id: int,
    user_id: int,
    batcher: OrderBatcher | None = None,
) -> PurchaseOutcome:
    """The order task's work: the database transaction, then the Redis reservation settled accordingly.

    With a ``batcher`` the order is written together with the orders of the tasks running beside it.
    """
    now = _utcnow()
    if batcher is not None:
        outcome = await batcher.place(task_id=task_id, goods_id=goods_id, user_id=user_id, now=now)
    else:
        outcome = await place_order(session, task_id=task_id, goods_id=goods_id, user_id=user_id, now=now)
    try:
        await gate.settle(goods_id, task_id, outcome.outcome)
    except (RedisError, OSError):
        if outcome.outcome != ORDERED:
            raise
        # The order is committed: report it. The reservation stays pending until
        # ``luffy seckill reconcile``, which counts it correctly either way.
        logger.warning("seckill task %s ordered, but its reservation could not be settled in Redis", task_id)
    return outcome


async def order_of_task(sqlalchemy_config: SQLAlchemyAsyncConfig, task_id: str) -> SeckillOrder | None:
    """The order written by order task ``task_id``, if any."""
    async with session_scope(sqlalchemy_config) as session:
        return await session.scalar(select(SeckillOrder).where(SeckillOrder.task_id == task_id))


async def restore_lost_state(reservations: RedisReservations, sqlalchemy_config: SQLAlchemyAsyncConfig) -> bool:
    """Rebuild Redis's sale state from the database, as ``reconcile`` does; ``True`` once it is complete.

    One process does it, under a Redis lock; any other returns ``False`` at once (its callers
    answer 503 until the state is back). Reservations still in flight are kept.
    """
    lock = reservations.rebuild_lock(REBUILD_LOCK_SECONDS)
    if not await lock.acquire():
        return False
    try:
        async with session_scope(sqlalchemy_config) as session:
            await reconcile(session, reservations, stale_after_seconds=RESERVATION_STALE_AFTER_SECONDS)
        logger.warning("seckill: Redis had lost the sale state (restarted empty?); rebuilt it from the database")
    finally:
        try:
            await lock.release()
        except LockError:
            logger.warning("seckill: the rebuild outlasted its %d s lock", REBUILD_LOCK_SECONDS)
    return True


async def abandon_purchase(gate: SeckillGate, goods_id: int, task_id: str) -> None:
    """A task that failed for good (or was never enqueued): give its reservation back."""
    try:
        await gate.settle(goods_id, task_id, ABANDONED)
    except (RedisError, OSError) as exc:
        logger.warning(
            "seckill reservation of task %s not given back (%s); run `luffy seckill reconcile`", task_id, exc
        )


_sqlite_writers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@asynccontextmanager
async def _one_writer_on_sqlite(session: AsyncSession) -> AsyncIterator[None]:
    """SQLite has one writer at a time: queue this process's order transactions instead of retrying on BUSY."""
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    lock = _sqlite_writers.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        yield


# Goods on sale at some time: visible and not deleted (their sale window aside).
_LISTED = (SeckillGoods.is_delete.is_(False), SeckillGoods.is_show.is_(True))


def _on_sale(now: datetime.datetime) -> list[ColumnElement[bool]]:
    return [
        *_LISTED,
        SeckillGoods.start_time <= now,
        or_(SeckillGoods.end_time.is_(None), SeckillGoods.end_time >= now),
    ]


async def place_order(
    session: AsyncSession, *, task_id: str, goods_id: int, user_id: int, now: datetime.datetime
) -> PurchaseOutcome:
    """Take one unit and write the order in one transaction; idempotent on ``task_id``.

    The session must not have begun a transaction yet. A redelivered task whose order was
    already committed finds it (through the unique constraints) and reports it again instead
    of buying twice.
    """
    order_no = new_order_no(now)
    order = {
        "order_no": order_no,
        "task_id": task_id,
        "user_id": user_id,
        "goods_id": goods_id,
        "status": ORDER_CREATED,
        "created_time": now,
        "updated_time": now,
    }
    try:
        if session.get_bind().dialect.name == "postgresql":
            ordered = await _take_and_order_in_one_statement(session, order, now)
        else:
            ordered = await _take_then_order(session, order, now)
    except IntegrityError:
        existing = await _existing_order(session, goods_id=goods_id, user_id=user_id, task_id=task_id)
        if existing is None:
            raise
        return existing
    if not ordered:
        return await _why_not(session, task_id=task_id, goods_id=goods_id, user_id=user_id, now=now)
    return PurchaseOutcome(outcome=ORDERED, order_no=order_no)


def _take_one(goods_id: int, now: datetime.datetime) -> Update:
    return (
        update(SeckillGoods)
        .where(SeckillGoods.id == goods_id, SeckillGoods.stock > 0, *_on_sale(now))
        .values(stock=SeckillGoods.stock - 1, updated_time=now)
        .returning(SeckillGoods.price)
    )


def _order_in_one_statement() -> Insert:
    """``INSERT ... SELECT`` from ``UPDATE ... RETURNING price``: built once, run with each order's values.

    Core tables rather than the ORM classes, so running it skips the ORM's bulk-insert machinery,
    and one statement object, so SQLAlchemy's compiled cache is hit without rebuilding its key.
    """
    goods, orders = cast("Table", SeckillGoods.__table__), cast("Table", SeckillOrder.__table__)
    now = bindparam("now", type_=goods.c.updated_time.type)
    taken = (
        update(goods)
        .where(
            goods.c.id == bindparam("goods_id", type_=goods.c.id.type),
            goods.c.stock > 0,
            goods.c.is_delete.is_(False),
            goods.c.is_show.is_(True),
            goods.c.start_time <= now,
            or_(goods.c.end_time.is_(None), goods.c.end_time >= now),
        )
        .values(stock=goods.c.stock - 1, updated_time=now)
        .returning(goods.c.price)
        .cte("taken")
    )
    names = ("order_no", "task_id", "user_id", "goods_id", "status")
    values = [bindparam(name, type_=orders.c[name].type) for name in names]
    return (
        insert(orders)
        .from_select([*names, "created_time", "updated_time", "price"], select(*values, now, now, taken.c.price))
        .returning(orders.c.id)
    )


_ORDER_IN_ONE_STATEMENT = _order_in_one_statement()


async def _take_and_order_in_one_statement(
    session: AsyncSession, order: dict[str, Any], now: datetime.datetime
) -> bool:
    """PostgreSQL: the decrement and the insert in one autocommitted statement.

    Every buyer's transaction updates the same goods row, so its lock is the sale's bottleneck.
    Held only while PostgreSQL runs this one statement (never across a round trip to the
    worker), it lets orders through at the database's pace instead of the worker's.
    """
    connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    params = {name: order[name] for name in ("order_no", "task_id", "user_id", "goods_id", "status")}
    try:
        row = (await connection.execute(_ORDER_IN_ONE_STATEMENT, {**params, "now": now})).first()
    except IntegrityError:
        await session.rollback()
        raise
    await session.commit()
    return row is not None


async def _take_then_order(session: AsyncSession, order: dict[str, Any], now: datetime.datetime) -> bool:
    """SQLite (no data-modifying CTE): decrement, then insert, in one transaction, one writer at a time."""
    async with _one_writer_on_sqlite(session):
        take_one = _take_one(order["goods_id"], now).execution_options(synchronize_session=False)
        price = (await session.execute(take_one)).scalar_one_or_none()
        if price is None:
            await session.rollback()
            return False
        try:
            await session.execute(insert(SeckillOrder).values(**order, price=price))
            await session.commit()
        except IntegrityError:
            await session.rollback()
            raise
    return True


async def _existing_order(
    session: AsyncSession, *, goods_id: int, user_id: int, task_id: str
) -> PurchaseOutcome | None:
    row = (
        await session.execute(
            select(SeckillOrder.task_id, SeckillOrder.order_no).where(
                SeckillOrder.user_id == user_id, SeckillOrder.goods_id == goods_id
            )
        )
    ).first()
    if row is None:
        return None
    if row.task_id == task_id:
        return PurchaseOutcome(outcome=ORDERED, order_no=row.order_no)
    return PurchaseOutcome(outcome=DUPLICATE)


async def _why_not(
    session: AsyncSession, *, task_id: str, goods_id: int, user_id: int, now: datetime.datetime
) -> PurchaseOutcome:
    existing = await _existing_order(session, goods_id=goods_id, user_id=user_id, task_id=task_id)
    if existing is not None:
        return existing
    on_sale = await session.scalar(select(SeckillGoods.id).where(SeckillGoods.id == goods_id, *_on_sale(now)))
    return PurchaseOutcome(outcome=SOLD_OUT if on_sale is not None else NOT_ACTIVE)


@dataclass(frozen=True)
class _OrderRequest:
    task_id: str
    goods_id: int
    user_id: int
    now: datetime.datetime
    answer: asyncio.Future[PurchaseOutcome]


# PostgreSQL: the orders of a batch (one goods) in one autocommitted statement. The goods row is
# locked first, so batches of other processes take turns; a request whose user or task already
# holds an order is left out, and only as many as the stock allows are written.
_ORDERS_IN_ONE_STATEMENT = text(
    """
WITH request AS (
  SELECT * FROM unnest(CAST(:task_ids AS varchar[]), CAST(:user_ids AS bigint[]), CAST(:order_nos AS varchar[]))
    WITH ORDINALITY AS r(task_id, user_id, order_no, position)
), goods AS (
  SELECT id, stock, price FROM luffy_seckill_goods
  WHERE id = :goods_id AND stock > 0 AND NOT is_delete AND is_show
    AND start_time <= :now AND (end_time IS NULL OR end_time >= :now)
  FOR UPDATE
), fresh AS (
  SELECT r.task_id, r.user_id, r.order_no, row_number() OVER (ORDER BY r.position) AS rank FROM request r
  WHERE NOT EXISTS (SELECT 1 FROM luffy_seckill_order o WHERE o.goods_id = :goods_id AND o.user_id = r.user_id)
    AND NOT EXISTS (SELECT 1 FROM luffy_seckill_order o WHERE o.task_id = r.task_id)
), chosen AS (
  SELECT f.task_id, f.user_id, f.order_no, g.price FROM fresh f JOIN goods g ON f.rank <= g.stock
), taken AS (
  UPDATE luffy_seckill_goods SET stock = stock - (SELECT count(*) FROM chosen), updated_time = :now
  WHERE id = :goods_id AND EXISTS (SELECT 1 FROM chosen)
)
INSERT INTO luffy_seckill_order (order_no, task_id, user_id, goods_id, price, status, created_time, updated_time)
SELECT order_no, task_id, user_id, :goods_id, price, :status, :now, :now FROM chosen
RETURNING task_id
"""
).bindparams(
    bindparam("now", type_=SeckillGoods.__table__.c.updated_time.type),
    bindparam("goods_id", type_=SeckillGoods.__table__.c.id.type),
)


class OrderBatcher:
    """Writes the orders of the order tasks running at once in a worker together (PostgreSQL).

    A task's order waits for no timer: the first one is written at once, and the tasks that
    arrive while a write runs go together in the next. One statement and one commit for many
    orders spares the database (and the goods row's lock) a round trip and a WAL flush per order.
    Every outcome is what ``place_order`` would answer: a batch that meets a concurrent write
    (a unique constraint), or holds one user or task twice, is written order by order instead.
    """

    def __init__(self, sqlalchemy_config: SQLAlchemyAsyncConfig, *, max_batch: int = 100) -> None:
        self.sqlalchemy_config = sqlalchemy_config
        self.max_batch = max_batch
        self._waiting: list[_OrderRequest] = []
        self._writer: asyncio.Task[None] | None = None

    async def place(self, *, task_id: str, goods_id: int, user_id: int, now: datetime.datetime) -> PurchaseOutcome:
        answer: asyncio.Future[PurchaseOutcome] = asyncio.get_running_loop().create_future()
        self._waiting.append(_OrderRequest(task_id, goods_id, user_id, now, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_waiting())
        return await asyncio.shield(answer)

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                by_goods: dict[int, list[_OrderRequest]] = {}
                for request in batch:
                    by_goods.setdefault(request.goods_id, []).append(request)
                for requests in by_goods.values():
                    try:
                        outcomes = await self._write(requests)
                    except Exception as exc:  # each task decides (an outage is waited out, then retried)
                        for request in requests:
                            if not request.answer.done():
                                request.answer.set_exception(exc)
                        continue
                    for request, outcome in zip(requests, outcomes, strict=True):
                        if not request.answer.done():
                            request.answer.set_result(outcome)
        finally:
            self._writer = None

    async def _write(self, requests: list[_OrderRequest]) -> list[PurchaseOutcome]:
        users = {request.user_id for request in requests}
        tasks = {request.task_id for request in requests}
        if len(requests) == 1 or len(users) < len(requests) or len(tasks) < len(requests):
            return await self._one_by_one(requests)
        now = max(request.now for request in requests)
        order_nos = [new_order_no(now) for _ in requests]
        try:
            async with session_scope(self.sqlalchemy_config) as session:
                connection = await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                written = await connection.execute(
                    _ORDERS_IN_ONE_STATEMENT,
                    {
                        "task_ids": [request.task_id for request in requests],
                        "user_ids": [request.user_id for request in requests],
                        "order_nos": order_nos,
                        "goods_id": requests[0].goods_id,
                        "now": now,
                        "status": ORDER_CREATED,
                    },
                )
                ordered = {row.task_id for row in written}
        except IntegrityError:
            return await self._one_by_one(requests)
        not_ordered = [request for request in requests if request.task_id not in ordered]
        why_not = dict(
            zip(
                (request.task_id for request in not_ordered), await self._each_alone(not_ordered, _why_not), strict=True
            )
        )
        return [
            PurchaseOutcome(outcome=ORDERED, order_no=order_no)
            if request.task_id in ordered
            else why_not[request.task_id]
            for request, order_no in zip(requests, order_nos, strict=True)
        ]

    async def _one_by_one(self, requests: list[_OrderRequest]) -> list[PurchaseOutcome]:
        return await self._each_alone(requests, place_order)

    async def _each_alone(self, requests: list[_OrderRequest], decide: Decide) -> list[PurchaseOutcome]:
        """``decide`` for each request in a session (one transaction) of its own, in order."""
        outcomes = []
        for request in requests:
            async with session_scope(self.sqlalchemy_config) as session:
                outcomes.append(
                    await decide(
                        session,
                        task_id=request.task_id,
                        goods_id=request.goods_id,
                        user_id=request.user_id,
                        now=request.now,
                    )
                )
        return outcomes


# --- goods: lookup, loading, Redis sync and status -------------------------------------------------


async def find_goods(session: AsyncSession, *, name: str | None, goods_id: int | None) -> SeckillGoods | None:
    """Visible goods by id (when given) or by name."""
    lookup = SeckillGoods.id == goods_id if goods_id is not None else SeckillGoods.name == name
    return await session.scalar(select(SeckillGoods).where(lookup, *_LISTED))


async def goods_on_sale_now(session: AsyncSession, now: datetime.datetime) -> SeckillGoods | None:
    """The goods on sale at ``now`` whose sale started last (then the highest id), as the Redis script picks."""
    query = select(SeckillGoods).where(*_on_sale(now)).order_by(SeckillGoods.start_time.desc(), SeckillGoods.id.desc())
    return await session.scalar(query.limit(1))


async def load_goods(
    session: AsyncSession,
    *,
    name: str,
    stock: int,
    price: Decimal | None = None,
    start: datetime.datetime | None = None,
    end: datetime.datetime | None = None,
    open_ended: bool = False,
) -> SeckillGoods:
    """Create the goods when the name is new, else update it; ``stock`` is the number of units left to sell.

    The goods is put (back) on sale: visible and not deleted. ``open_ended`` removes the end time.
    """
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise SeckillError("the name must have 1 to 64 characters")
    if stock < 0:
        raise SeckillError("the stock cannot be negative")
    if price is not None and not Decimal("0") <= price <= MAX_PRICE:
        raise SeckillError(f"the price must be between 0.00 and {MAX_PRICE}")
    goods = await session.scalar(select(SeckillGoods).where(SeckillGoods.name == name))
    if goods is None:
        goods = SeckillGoods(
            name=name,
            stock=stock,
            price=price if price is not None else Decimal("0.00"),
            start_time=start or _utcnow(),
            end_time=end,
            orders=0,
            is_show=True,
            is_delete=False,
        )
        session.add(goods)
    else:
        goods.stock = stock
        goods.is_show = True
        goods.is_delete = False
        if price is not None:
            goods.price = price
        if start is not None:
            goods.start_time = start
        if end is not None:
            goods.end_time = end
    if open_ended:
        goods.end_time = None
    if goods.end_time is not None and goods.end_time <= goods.start_time:
        raise SeckillError("the sale must end after it starts")
    await session.flush()
    return goods


async def goods_states(session: AsyncSession, goods_ids: Sequence[int] | None = None) -> list[GoodsState]:
    """The goods on sale (visible, not deleted) with the users who hold their orders."""
    query = select(SeckillGoods).where(*_LISTED)
    if goods_ids is not None:
        query = query.where(SeckillGoods.id.in_(goods_ids))
    goods_rows = (await session.scalars(query.order_by(SeckillGoods.id))).all()
    buyers: dict[int, list[int]] = {goods.id: [] for goods in goods_rows}
    if buyers:
        orders = await session.execute(
            select(SeckillOrder.goods_id, SeckillOrder.user_id).where(SeckillOrder.goods_id.in_(list(buyers)))
        )
        for goods_id, user_id in orders:
            buyers[goods_id].append(user_id)
    return [
        GoodsState(
            id=goods.id,
            name=goods.name,
            price=goods.price,
            stock=goods.stock,
            start=goods.start_time.timestamp(),
            end=_epoch(goods.end_time),
            buyers=buyers[goods.id],
        )
        for goods in goods_rows
    ]


async def publish_goods(
    session: AsyncSession,
    reservations: RedisReservations,
    *,
    goods_ids: Sequence[int] | None = None,
    only_if_missing: bool = False,
    stale_before: float = 0.0,
) -> list[GoodsState]:
    """Copy goods from the database to Redis (all on sale, or ``goods_ids``); returns what was read.

    Copying all of them marks Redis's sale state complete, so admissions may go ahead.
    """
    states = await goods_states(session, goods_ids)
    for state in states:
        await reservations.sync(state, only_if_missing=only_if_missing, stale_before=stale_before)
    if goods_ids is None:
        await reservations.mark_loaded(time.time())
    return states


async def reconcile(session: AsyncSession, reservations: RedisReservations, *, stale_after_seconds: float) -> list[int]:
    """Rebuild Redis from the database: every goods on sale, none other.

    Reservations younger than ``stale_after_seconds`` are kept (their tasks are still coming);
    older ones are taken as lost. Returns the ids of goods removed from Redis.
    """
    states = await publish_goods(session, reservations, stale_before=time.time() - stale_after_seconds)
    on_sale = {state.id for state in states}
    removed = [goods_id for goods_id in await reservations.goods_ids() if goods_id not in on_sale]
    for goods_id in removed:
        await reservations.remove(goods_id)
    return removed


async def complete_sale_state(session: AsyncSession, reservations: RedisReservations) -> None:
    """Rebuild Redis's sale state as ``reconcile`` does, unless it is already complete (a fresh or emptied Redis)."""
    if not await reservations.is_loaded():
        await reconcile(session, reservations, stale_after_seconds=RESERVATION_STALE_AFTER_SECONDS)


class StockReport(msgspec.Struct, frozen=True):
    """One goods as the database and (in production) Redis see it."""

    id: int
    name: str
    price: Decimal
    start: datetime.datetime
    end: datetime.datetime | None
    database_stock: int
    orders: int
    redis: RedisGoods | None

    @property
    def agrees(self) -> bool:
        """Redis's reservable stock and buyers account for exactly the database's stock and orders."""
        if self.redis is None:
            return False
        return (
            self.redis.stock + self.redis.pending == self.database_stock
            and self.redis.buyers == self.orders + self.redis.pending
        )


async def stock_report(
    session: AsyncSession, reservations: RedisReservations | None, *, name: str | None = None
) -> list[StockReport]:
    """Goods on sale (or the one named) with their stock and order count; Redis's view when given."""
    orders = (
        select(SeckillOrder.goods_id, func.count().label("orders"))
        .group_by(SeckillOrder.goods_id)
        .subquery("order_counts")
    )
    query = (
        select(SeckillGoods, func.coalesce(orders.c.orders, 0))
        .outerjoin(orders, orders.c.goods_id == SeckillGoods.id)
        .where(*_LISTED)
        .order_by(SeckillGoods.id)
    )
    if name is not None:
        query = query.where(SeckillGoods.name == name)
    rows = (await session.execute(query)).all()
    in_redis = await reservations.state(goods.id for goods, _ in rows) if reservations is not None else {}
    return [
        StockReport(
            id=goods.id,
            name=goods.name,
            price=goods.price,
            start=goods.start_time,
            end=goods.end_time,
            database_stock=goods.stock,
            orders=int(order_count),
            redis=in_redis.get(goods.id),
        )
        for goods, order_count in rows
    ]
