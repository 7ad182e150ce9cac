"""The scheduler: sends the periodic tasks; workers (or the embedded API) run them.

Production runs it as ``luffy scheduler``. Its interval clocks live in the process, so two
schedulers sending at once would double every periodic task: the process that holds the Redis
lock ``luffy:scheduler:leader`` sends, any other one stands by and takes over when the lock
expires (``LEADER_LOCK_SECONDS`` after the leader died). Embedded mode runs the same loop inside
``luffy serve``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import signal
from contextlib import suppress

from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError
from taskiq import ScheduledTask, ScheduleSource, TaskiqScheduler
from taskiq.cli.scheduler.run import SchedulerLoop

from luffy.cache import make_redis
from luffy.settings import Settings
from luffy.tasks.broker import configure_brokers, default_broker

LEADER_LOCK = "luffy:scheduler:leader"
LEADER_LOCK_SECONDS = 10
LEADER_RENEW_SECONDS = 3
STANDBY_POLL_SECONDS = 1.0

logger = logging.getLogger("luffy.scheduler")


class PeriodicScheduleSource(ScheduleSource):
    """The periodic tasks, every one on the default queue, with intervals from the settings.

    (TaskIQ's ``LabelScheduleSource`` reads intervals from task labels, which are fixed at import;
    these intervals are settings.)
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def get_schedules(self) -> list[ScheduledTask]:
        from luffy.tasks.banner import update_banner
        from luffy.tasks.order import close_expired_orders

        return [
            ScheduledTask(
                task_name=task.task_name,
                labels={},
                args=[],
                kwargs={},
                schedule_id=task.task_name,
                interval=interval,
            )
            for task, interval in (
                (update_banner, self.settings.banner_refresh_seconds),
                (close_expired_orders, self.settings.order_sweep_seconds),
            )
        ]


def make_scheduler(settings: Settings) -> TaskiqScheduler:
    return TaskiqScheduler(broker=default_broker, sources=[PeriodicScheduleSource(settings)])


async def run_embedded_scheduler(settings: Settings) -> None:
    """The scheduler loop inside ``luffy serve`` (embedded mode), on brokers the API has started.

    The first round waits one interval: the cache fills on the first request anyway.
    """
    scheduler = make_scheduler(settings)
    loop = SchedulerLoop(scheduler)
    now = datetime.datetime.now(datetime.UTC)
    for source in scheduler.sources:
        for schedule in await source.get_schedules():
            loop.interval_tasks_last_run[schedule.schedule_id] = now
    await loop.run()


async def _hold_leadership(lock: Lock) -> None:
    """Renews the leader lock; returns when it is lost (Redis gone, or the lock expired meanwhile)."""
    while True:
        await asyncio.sleep(LEADER_RENEW_SECONDS)
        try:
            await lock.reacquire()
        except (LockError, RedisError) as exc:
            logger.error("lost the scheduler lock (%s): stopping", exc)
            return


async def _become_leader(lock: Lock, stop: asyncio.Event) -> bool:
    """Take the leader lock, waiting while another scheduler holds it; ``False`` when stopped first."""
    if await lock.acquire(blocking=False):
        return True
    logger.info("another scheduler holds %s: standing by", LEADER_LOCK)
    acquiring = asyncio.create_task(lock.acquire())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({acquiring, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not acquiring.done():
        acquiring.cancel()
        logger.info("scheduler stopped while standing by")
        return False
    return acquiring.result()


async def _lead(settings: Settings, lock: Lock, stop: asyncio.Event) -> int:
    """Send the periodic tasks until stopped (0) or until the lock or the loop is lost (1)."""
    scheduler = make_scheduler(settings)
    await scheduler.startup()
    try:
        logger.info(
            "scheduler leading: update_banner every %d s, close_expired_orders every %d s",
            settings.banner_refresh_seconds,
            settings.order_sweep_seconds,
        )
        sending = asyncio.create_task(SchedulerLoop(scheduler).run())
        leading = asyncio.create_task(_hold_leadership(lock))
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait({sending, leading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if sending in done and sending.exception() is not None:
            logger.error("scheduler loop failed", exc_info=sending.exception())
        for task in (sending, leading, stopping):
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        logger.info("scheduler stopping")
        return 0 if stopping in done else 1
    finally:
        await scheduler.shutdown()


async def run_scheduler_process(settings: Settings) -> int:
    """``luffy scheduler``: lead (or stand by) until SIGTERM/SIGINT; returns the exit status."""
    configure_brokers(settings)
    default_broker.is_scheduler_process = True
    stop = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        event_loop.add_signal_handler(signum, stop.set)
    redis = make_redis(settings)
    lock = redis.lock(LEADER_LOCK, timeout=LEADER_LOCK_SECONDS, sleep=STANDBY_POLL_SECONDS, thread_local=False)
    try:
        if not await _become_leader(lock, stop):
            return 0
        try:
            return await _lead(settings, lock, stop)
        finally:
            with suppress(LockError, RedisError):
                await lock.release()
    except RedisError as exc:
        logger.error("cannot reach Redis: %s", exc)
        return 1
    finally:
        await redis.aclose()
