"""The TaskIQ brokers, one per queue, so a flood on one queue never delays the others.

Production: a Redis stream per queue (acknowledged delivery: a killed worker's messages are
redelivered) and the Redis result backend. Embedded: in-process brokers, so tasks run inside
``luffy serve``; results are read through the same ``result_backend`` interface either way.
"""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker, TaskiqEvents
from taskiq.state import TaskiqState
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from luffy.settings import Settings, get_settings
from luffy.tasks.retry import BackoffRetryMiddleware

QUEUES = ("default", "sms", "seckill")
STREAM_PREFIX = "luffy:queue:"
RESULT_PREFIX = "luffy:result"
CONSUMER_GROUP = "luffy"
STREAM_MAXLEN = 100_000
# A SIGKILLed worker's unacknowledged messages are reclaimed after this long.
REDELIVERY_IDLE_MS = 30_000
EMBEDDED_STORED_RESULTS = 100_000


def make_broker(queue: str, settings: Settings) -> AsyncBroker:
    if settings.redis_url is None:
        broker: AsyncBroker = InMemoryBroker(max_stored_results=EMBEDDED_STORED_RESULTS, propagate_exceptions=False)
    else:
        broker = RedisStreamBroker(
            url=settings.redis_url,
            queue_name=STREAM_PREFIX + queue,
            consumer_group_name=CONSUMER_GROUP,
            maxlen=STREAM_MAXLEN,
            idle_timeout=REDELIVERY_IDLE_MS,
            unacknowledged_lock_timeout=REDELIVERY_IDLE_MS / 1000,
        ).with_result_backend(
            RedisAsyncResultBackend(
                redis_url=settings.redis_url,
                result_ex_time=settings.result_ttl_seconds,
                prefix_str=RESULT_PREFIX,
            )
        )
    broker.add_middlewares(BackoffRetryMiddleware(default_retry_count=3, use_jitter=True, use_delay_exponent=True))
    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, _open_resources)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, _close_resources)
    return broker


async def _open_resources(state: TaskiqState) -> None:
    """What tasks reach through dependencies: built when a worker starts, not at import."""
    from luffy.cache import make_cache_store
    from luffy.db import make_sqlalchemy_config

    # The API's lifespan hands its own settings to an in-process broker; a worker reads the environment.
    settings = getattr(state, "settings", None) or get_settings()
    state.settings = settings
    state.sqlalchemy_config = make_sqlalchemy_config(settings)
    state.cache_store = make_cache_store(settings)


async def _close_resources(state: TaskiqState) -> None:
    config = getattr(state, "sqlalchemy_config", None)
    if config is not None:
        await config.get_engine().dispose()


_settings = get_settings()
default_broker = make_broker("default", _settings)
sms_broker = make_broker("sms", _settings)
seckill_broker = make_broker("seckill", _settings)
BROKERS: dict[str, AsyncBroker] = {"default": default_broker, "sms": sms_broker, "seckill": seckill_broker}
