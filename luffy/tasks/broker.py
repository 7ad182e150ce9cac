"""The TaskIQ brokers, one per queue, so a flood on one queue never delays the others.

A queue has one broker object for the life of the process (task modules decorate their functions
with ``@sms_broker.task(...)`` at import), but what it talks to follows the settings it is given
when the process starts: ``configure_brokers(settings)`` in the API's lifespan, the environment
in a ``luffy worker`` process.

- Production (``LUFFY_REDIS_URL`` set): a Redis stream per queue read by one consumer group. A
  message is acknowledged only after its result is saved, and a message a killed worker left
  unacknowledged is claimed by another worker after ``LUFFY_TASK_REDELIVERY_SECONDS``. Results
  live in Redis for ``LUFFY_RESULT_TTL_SECONDS``.
- Embedded: TaskIQ's ``InMemoryBroker`` runs tasks inside this process (``luffy serve``) and keeps
  their results in memory.

Either way results are read through the broker's ``result_backend``, so callers don't care.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any, cast

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from litestar.stores.base import Store
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage, AsyncBroker, SmartRetryMiddleware, TaskiqEvents, TaskiqMiddleware
from taskiq.brokers.inmemory_broker import InMemoryBroker, InmemoryResultBackend
from taskiq.kicker import AsyncKicker
from taskiq.message import BrokerMessage, TaskiqMessage
from taskiq.receiver import Receiver
from taskiq.result import TaskiqResult
from taskiq.serializers import JSONSerializer
from taskiq.utils import maybe_awaitable
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker
from taskiq_redis.exceptions import ResultIsMissingError

from luffy.cache import make_cache_store, reconnect_once
from luffy.db import make_sqlalchemy_config
from luffy.settings import Settings, get_settings
from luffy.tasks.outage import outage_breaker

QUEUES = ("default", "sms", "seckill")
STREAM_PREFIX = "luffy:queue:"
RESULT_PREFIX = "luffy:result"
CONSUMER_GROUP = "luffy"
# Messages a worker reads ahead; they count as in flight (their redelivery clock runs) until done.
READ_BATCH = 10
READ_BLOCK_MS = 1_000
RECLAIM_BATCH = 100
REDIS_CONNECT_TIMEOUT_SECONDS = 2.0
RECONNECT_PAUSE_SECONDS = 1.0
EMBEDDED_STORED_RESULTS = 100_000
EMBEDDED_CONCURRENCY = 100
RETRY_DEFAULT_TRIES = 3
RETRY_BASE_DELAY_SECONDS = 1.0
RETRY_MAX_DELAY_SECONDS = 30.0

logger = logging.getLogger("luffy.tasks")
# XREADGROUP's reply as this client reads it (RESP2, bytes): [(stream, [(message id, fields), ...]), ...]
StreamRead = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]


class StreamEntry(msgspec.Struct, frozen=True):
    """A task message as its Redis stream entry: what ``XADD stream [MAXLEN [~] maxlen] * data <data>`` adds."""

    stream: str
    data: bytes
    maxlen: int | None
    approximate: bool


class ReclaimingStreamBroker(RedisStreamBroker):
    """taskiq-redis's stream broker, made to redeliver on a quiet queue and to free acknowledged entries.

    While a task of this process waits out a database outage (``luffy.tasks.outage``) the loop
    reads nothing, so queued work stays in the stream for when the database is back.

    taskiq-redis 1.2 runs XAUTOCLAIM only after a read that returned new messages, so a task left
    unacknowledged by a killed worker would wait for unrelated traffic. Here every pass of the read
    loop (at most ``xread_block`` ms apart) claims messages idle for longer than ``idle_timeout``.
    XAUTOCLAIM is atomic and resets the idle time, so two workers never claim one message at once,
    and no lock is needed. Acknowledging also deletes the entry, so the stream holds only work not
    yet done and ``maxlen`` is a bound for overload, not the garbage collector.
    """

    _listening = False
    _acker: Redis | None = None

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        self._listening = True
        loop = asyncio.get_running_loop()
        next_reclaim = 0.0
        connection_lost = False
        async with Redis(connection_pool=self.connection_pool) as redis:
            while True:
                # On Python 3.11 asyncio.wait_for (redis-py's send path) swallows a cancellation that lands
                # as the write completes; without this check a stopping worker would keep reading forever.
                reader = asyncio.current_task()
                if reader is not None and reader.cancelling():
                    raise asyncio.CancelledError
                await outage_breaker.wait_for_intake()
                try:
                    fetched: StreamRead | None = await redis.xreadgroup(  # type: ignore[assignment]
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                    claimed: list[tuple[bytes, dict[bytes, bytes] | None]] = []
                    if loop.time() >= next_reclaim:
                        next_reclaim = loop.time() + self.block / 1000
                        _cursor, claimed, *_deleted = await redis.xautoclaim(
                            self.queue_name,
                            self.consumer_group_name,
                            self.consumer_name,
                            min_idle_time=self.idle_timeout,
                            count=self.unacknowledged_batch_size,
                        )
                except (RedisConnectionError, RedisTimeoutError) as exc:
                    if not connection_lost:
                        logger.warning("stream %s: Redis unreachable (%s); retrying", self.queue_name, exc)
                    connection_lost = True
                    await asyncio.sleep(RECONNECT_PAUSE_SECONDS)
                    continue
                except ResponseError as exc:
                    if "NOGROUP" not in str(exc):
                        raise
                    logger.warning("stream %s: consumer group missing (Redis flushed?); recreating it", self.queue_name)
                    await self._declare_consumer_group()
                    continue
                if connection_lost:
                    logger.info("stream %s: Redis reachable again", self.queue_name)
                    connection_lost = False
                for stream, entries in fetched or []:
                    for message_id, fields in entries:
                        yield AckableMessage(data=fields[b"data"], ack=self._ack_generator(message_id, stream))
                for claimed_id, claimed_fields in claimed:
                    if not claimed_fields:  # trimmed from the stream while pending: nothing left to run
                        continue
                    logger.warning(
                        "stream %s: redelivering message %s, left unacknowledged by a stopped worker",
                        self.queue_name,
                        claimed_id.decode(),
                    )
                    yield AckableMessage(
                        data=claimed_fields[b"data"], ack=self._ack_generator(claimed_id, self.queue_name)
                    )

    def _ack_generator(self, id: bytes | str, queue_name: bytes | str) -> Callable[[], Awaitable[None]]:
        if self._acker is None:
            # One client for every acknowledgement (a redis-py client object is costly to build per message).
            self._acker = Redis(connection_pool=self.connection_pool)
        redis = self._acker

        async def ack() -> None:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xack(queue_name, self.consumer_group_name, id)
                pipe.xdel(queue_name, id)
                await pipe.execute()

        return ack

    async def shutdown(self) -> None:
        if self._listening:
            await self._leave_group()
        await super().shutdown()

    async def _leave_group(self) -> None:
        """Forget this consumer unless it still owns messages (those are redelivered from its entry)."""
        try:
            async with Redis(connection_pool=self.connection_pool) as redis:
                pending = await redis.xpending_range(
                    self.queue_name,
                    self.consumer_group_name,
                    min="-",
                    max="+",
                    count=1,
                    consumername=self.consumer_name,
                )
                if not pending:
                    await redis.xgroup_delconsumer(self.queue_name, self.consumer_group_name, self.consumer_name)
        except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
            logger.debug("stream %s: could not remove consumer %s: %s", self.queue_name, self.consumer_name, exc)


class SharedClientResultBackend(RedisAsyncResultBackend[Any]):
    """taskiq-redis's result backend, saving and reading results through one Redis client.

    taskiq-redis 1.2 builds a redis-py client for every call, and building one costs more Python
    work than the SET or GET it sends (~46 µs here). A result is saved by every task and read by
    every poll, so those two calls share one client (a client takes a pooled connection per
    command, so sharing it is safe). Keys, values, expiry and errors are the library's.
    """

    def __init__(self, redis_url: str, **kwargs: Any) -> None:
        super().__init__(redis_url, **kwargs)
        self.client = Redis(connection_pool=self.redis_pool)

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        value = self.serializer.dumpb(result.model_dump(mode="json"))
        await self.client.set(self._task_name(task_id), value, ex=self.result_ex_time, px=self.result_px_time)

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        name = self._task_name(task_id)
        value = await (self.client.get(name) if self.keep_results else self.client.getdel(name))
        if value is None:
            raise ResultIsMissingError
        # The pool was made without decode_responses: values come back as bytes.
        result = TaskiqResult[Any].model_validate(self.serializer.loadb(cast("bytes", value)))
        if not with_logs:
            result.log = None
        return result

    async def shutdown(self) -> None:
        await self.client.aclose()
        await super().shutdown()


class BackoffRetryMiddleware(SmartRetryMiddleware):
    """Retries tasks labelled ``retry_on_error=True`` (labels ``max_retries``, ``delay``) with backoff.

    SmartRetryMiddleware hands the delay on as a ``delay`` label that Redis streams ignore, so on
    its own it would retry at once. Here the failed attempt waits, then sends the retry; its own
    message stays unacknowledged meanwhile, so a worker killed while waiting loses nothing. The
    attempt plus its wait must stay below ``LUFFY_TASK_REDELIVERY_SECONDS``.
    """

    async def on_send(self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float) -> None:
        await asyncio.sleep(delay)
        await kicker.kiq(*message.args, **message.kwargs)


class BoundedReceiver(Receiver):
    """TaskIQ's receiver, running at most ``max_async_tasks`` tasks at once; the others wait for a slot.

    TaskIQ applies that bound in a worker's read loop; the in-memory broker calls ``callback``
    directly, so here the bound sits in ``callback``. Made at each start-up (its semaphore belongs
    to the running event loop).
    """

    async def callback(self, message: bytes | AckableMessage, raise_err: bool = False) -> None:
        assert self.sem is not None
        async with self.sem:
            await super().callback(message, raise_err=raise_err)


class QueueBroker(InMemoryBroker):
    """One queue's broker: a Redis stream, or (embedded) TaskIQ's in-memory broker, as the settings say.

    Embedded, TaskIQ's ``InMemoryBroker`` runs each task in this process and keeps its result in
    memory; Luffy adds only a bound on the tasks running at once and, on shutdown, a wait of up to
    ``LUFFY_WORKER_SHUTDOWN_SECONDS`` for the running ones. With Redis, sending goes to the stream
    and a ``luffy worker`` process reads it.
    """

    def __init__(self, queue: str) -> None:
        super().__init__(max_stored_results=EMBEDDED_STORED_RESULTS, max_async_tasks=EMBEDDED_CONCURRENCY)
        self.queue = queue
        self.stream_name = STREAM_PREFIX + queue
        self.started = False
        self._settings: Settings | None = None
        self._shared_resources: tuple[SQLAlchemyAsyncConfig, Store] | None = None
        self._stream: ReclaimingStreamBroker | None = None
        self._resources = AsyncExitStack()
        self.add_middlewares(
            BackoffRetryMiddleware(
                default_retry_count=RETRY_DEFAULT_TRIES,
                default_delay=RETRY_BASE_DELAY_SECONDS,
                use_jitter=True,
                use_delay_exponent=True,
                max_delay_exponent=RETRY_MAX_DELAY_SECONDS,
            )
        )

    def configure(
        self,
        settings: Settings,
        *,
        sqlalchemy_config: SQLAlchemyAsyncConfig | None = None,
        cache_store: Store | None = None,
    ) -> None:
        """Use ``settings`` from the next start-up; tasks run here share the given database and cache."""
        if self.started:
            raise RuntimeError(f"the {self.queue} broker is running; shut it down before configuring it")
        self._settings = settings
        if sqlalchemy_config is not None and cache_store is not None:
            self._shared_resources = (sqlalchemy_config, cache_store)
        else:
            self._shared_resources = None

    @property
    def settings(self) -> Settings:
        """The configured settings; a worker process that was not configured reads the environment."""
        if self._settings is None:
            self._settings = get_settings()
        return self._settings

    @property
    def runs_tasks(self) -> bool:
        """Tasks run in this process: a worker, or any process in embedded mode."""
        return self.is_worker_process or self.settings.is_embedded

    async def startup(self) -> None:
        if self.started:
            raise RuntimeError(f"the {self.queue} broker is already running")
        settings = self.settings
        if settings.is_embedded:
            self.result_backend = InmemoryResultBackend(max_stored_results=EMBEDDED_STORED_RESULTS)
            self.receiver = BoundedReceiver(broker=self, executor=self.executor, max_async_tasks=EMBEDDED_CONCURRENCY)
        else:
            assert settings.redis_url is not None
            self._stream = ReclaimingStreamBroker(
                url=settings.redis_url,
                queue_name=self.stream_name,
                consumer_group_name=CONSUMER_GROUP,
                # A group made after tasks were sent must still deliver them; acknowledged entries are deleted,
                # so reading the stream from its start never repeats finished work.
                consumer_id="0",
                consumer_name=f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                maxlen=settings.task_stream_maxlen,
                idle_timeout=settings.task_redelivery_seconds * 1000,
                xread_block=READ_BLOCK_MS,
                xread_count=READ_BATCH,
                unacknowledged_batch_size=RECLAIM_BATCH,
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                health_check_interval=30,
                **reconnect_once(),
            )
            # InMemoryBroker declares its own backend type; with Redis, results live in Redis.
            self.result_backend = SharedClientResultBackend(  # type: ignore[assignment]
                redis_url=settings.redis_url,
                result_ex_time=settings.result_ttl_seconds,
                prefix_str=RESULT_PREFIX,
                serializer=JSONSerializer(),
                socket_connect_timeout=REDIS_CONNECT_TIMEOUT_SECONDS,
                **reconnect_once(),
            )
        self._resources = AsyncExitStack()
        if self.runs_tasks:
            await self._open_task_resources(settings)
        if self._stream is None:
            await super().startup()  # the in-memory broker: client and worker start-up, this process is both
        else:
            await AsyncBroker.startup(self)
            try:
                await self._stream.startup()
            except (RedisConnectionError, RedisTimeoutError) as exc:
                # The API starts anyway (serving what needs no tasks); the group is made on reconnection.
                logger.warning(
                    "queue %s: Redis unreachable (%s); tasks cannot be sent until it is back", self.queue, exc
                )
        self.started = True
        if self._stream is None:
            logger.debug("queue %s: tasks run in this process", self.queue)
        elif self.is_worker_process:
            logger.info(
                "queue %s: consuming Redis stream %s as %s; unacknowledged messages redelivered after %d s",
                self.queue,
                self.stream_name,
                self._stream.consumer_name,
                settings.task_redelivery_seconds,
            )

    async def _open_task_resources(self, settings: Settings) -> None:
        """What tasks reach through their dependencies (``luffy.tasks.deps``)."""
        if self._shared_resources is not None:
            sqlalchemy_config, cache_store = self._shared_resources
        else:
            sqlalchemy_config = make_sqlalchemy_config(settings)
            cache_store = make_cache_store(settings)
            await self._resources.enter_async_context(cache_store)
            self._resources.push_async_callback(sqlalchemy_config.get_engine().dispose)
        outage_breaker.budget_seconds = settings.task_outage_seconds
        self.state.settings = settings
        self.state.sqlalchemy_config = sqlalchemy_config
        self.state.cache_store = cache_store

    async def shutdown(self) -> None:
        """Let in-process tasks finish (for a while), then stop: the worker side first, as it started last."""
        if not self.started:
            return
        running = self._running_tasks
        if running:
            logger.info("queue %s: waiting for %d in-process tasks", self.queue, len(running))
            await asyncio.wait(running, timeout=self.settings.worker_shutdown_seconds)
        try:
            if self._stream is None:
                for handler in self.event_handlers[TaskiqEvents.WORKER_SHUTDOWN]:
                    await maybe_awaitable(handler(self.state))
            # Not InMemoryBroker.shutdown: it would stop the executor for good, and the broker starts again.
            await AsyncBroker.shutdown(self)
            if self._stream is not None:
                await self._stream.shutdown()
        finally:
            await self._resources.aclose()
            self._stream = None
            self.started = False

    @property
    def redis_stream(self) -> ReclaimingStreamBroker | None:
        """The stream broker of this run (a new one at each start-up), ``None`` when embedded or stopped."""
        return self._stream

    def stream_message(self, message: TaskiqMessage) -> StreamEntry | None:
        """``message`` as the entry ``kick`` would add to the Redis stream, for a sender that adds it itself.

        ``None`` when tasks run in this process, or when a middleware acts on sending (only
        ``AsyncKicker.kiq`` calls those hooks).
        """
        if self._stream is None or not self.started:
            return None
        for middleware in self.middlewares:
            if type(middleware).pre_send is not TaskiqMiddleware.pre_send:
                return None
            if type(middleware).post_send is not TaskiqMiddleware.post_send:
                return None
        return StreamEntry(
            stream=self._stream.queue_name,
            data=self.formatter.dumps(message).message,
            maxlen=self._stream.maxlen,
            approximate=self._stream.approximate,
        )

    async def kick(self, message: BrokerMessage) -> None:
        if self._stream is not None:
            await self._stream.kick(message)
        elif not self.started:
            raise RuntimeError(f"the {self.queue} broker is not started")
        else:
            await super().kick(message)

    def listen(self) -> AsyncGenerator[AckableMessage, None]:  # type: ignore[override]  # the stream's, not bytes
        if self._stream is None:
            raise RuntimeError(f"the {self.queue} broker runs tasks in-process: there is no queue to listen to")
        return self._stream.listen()

    async def ping(self) -> None:
        """Raises unless the broker can take tasks: started, and its Redis answering in production."""
        if not self.started:
            raise RuntimeError(f"the {self.queue} broker is not started")
        if self._stream is not None:
            async with Redis(connection_pool=self._stream.connection_pool) as redis:
                await redis.ping()


default_broker = QueueBroker("default")
sms_broker = QueueBroker("sms")
seckill_broker = QueueBroker("seckill")
BROKERS: dict[str, QueueBroker] = {broker.queue: broker for broker in (default_broker, sms_broker, seckill_broker)}


def configure_brokers(
    settings: Settings,
    *,
    sqlalchemy_config: SQLAlchemyAsyncConfig | None = None,
    cache_store: Store | None = None,
) -> None:
    """Point every queue's broker at ``settings`` (tasks run here share the database and cache given)."""
    for broker in BROKERS.values():
        broker.configure(settings, sqlalchemy_config=sqlalchemy_config, cache_store=cache_store)


async def start_brokers() -> None:
    started: list[QueueBroker] = []
    try:
        for broker in BROKERS.values():
            await broker.startup()
            started.append(broker)
    except BaseException:
        for broker in reversed(started):
            await broker.shutdown()
        raise


async def stop_brokers() -> None:
    for broker in reversed(BROKERS.values()):
        await broker.shutdown()
