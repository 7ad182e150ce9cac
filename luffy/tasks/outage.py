"""Tasks wait out a database outage instead of failing, and a waiting worker takes no new work.

A task decorated with ``@waits_out_outages`` that hits a transient database failure (see
``luffy.outages``) is run again in place, with capped exponential backoff and jitter, for up to
``LUFFY_TASK_OUTAGE_SECONDS``. Its message stays unacknowledged all along, so a worker killed
meanwhile loses nothing: the message is redelivered after ``LUFFY_TASK_REDELIVERY_SECONDS``, which
the settings keep longer than the budget. Permanent errors (a constraint, bad data) end the task
at once, as does an outage that outlasts the budget.

While any task in a process waits, ``outage_breaker`` is open and that process's stream readers
fetch nothing (``luffy.tasks.broker``): a thousand queued tasks stay in Redis instead of each
knocking on a recovering database. The first task to get through closes it and wakes the others.
The breaker logs one line per change of state, not one per task.

Opt a task in by decorating its function under the broker's decorator::

    @sms_broker.task(task_name="...")
    @waits_out_outages
    async def my_task(session: SessionDep, ...) -> ...: ...

Each attempt commits the ``AsyncSession`` arguments it was given, and a failed one rolls them back,
so the next attempt starts on a fresh connection.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession

from luffy.outages import is_transient_database_error

BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 5.0

logger = logging.getLogger("luffy.tasks.outage")

TaskFunction = TypeVar("TaskFunction", bound=Callable[..., Awaitable[Any]])


class OutageBreaker:
    """This process's view of the database: open while one of its tasks waits out an outage."""

    def __init__(self) -> None:
        self.budget_seconds = 0.0
        self._waiting = 0
        self._open = False
        # Made when the breaker opens, so they belong to the event loop running the tasks.
        self._intake: asyncio.Event | None = None
        self._recovered: asyncio.Event | None = None

    @property
    def is_open(self) -> bool:
        return self._open

    async def wait_for_intake(self) -> None:
        """Return once no task here is waiting out an outage (at once when none is)."""
        if self._open and self._intake is not None:
            await self._intake.wait()

    def started_waiting(self) -> None:
        self._waiting += 1

    def failed(self, exc: BaseException) -> None:
        """A task found the database away: open (once) and stop the intake."""
        if not self._open:
            self._open = True
            self._intake = asyncio.Event()
            self._recovered = asyncio.Event()
            logger.warning(
                "database unavailable (%s): tasks wait it out for up to %.0f s; new tasks are not taken meanwhile",
                type(exc).__name__,
                self.budget_seconds,
            )

    def stopped_waiting(self, *, recovered: bool) -> None:
        self._waiting -= 1
        if recovered:
            self._close("database reachable again: taking new tasks")
        elif self._waiting == 0:
            self._close("database still unavailable after the outage budget: tasks failed; taking new tasks")

    def _close(self, reason: str) -> None:
        if not self._open:
            return
        self._open = False
        logger.warning(reason)
        for event in (self._intake, self._recovered):
            if event is not None:
                event.set()

    async def pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if another task gets through to the database first."""
        if not self._open or self._recovered is None:
            await asyncio.sleep(seconds)
            return
        try:
            async with asyncio.timeout(seconds):
                await self._recovered.wait()
        except TimeoutError:
            pass


outage_breaker = OutageBreaker()


def backoff_delay(attempt: int) -> float:
    """Capped exponential backoff with jitter: about 0.5, 1, 2, 4, then 5 s, each 50-100 % of that."""
    return min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2**attempt) * random.uniform(0.5, 1.0)


async def _reset_sessions(sessions: list[AsyncSession]) -> None:
    for session in sessions:
        try:
            await session.rollback()
        except Exception as exc:  # the connection is gone; the pool replaces it on next use
            if not is_transient_database_error(exc):
                raise


def waits_out_outages(function: TaskFunction) -> TaskFunction:
    """Run ``function`` again while the database is away, for up to the outage budget (see the module)."""

    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        sessions = [value for value in (*args, *kwargs.values()) if isinstance(value, AsyncSession)]
        breaker = outage_breaker
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        reached = False
        try:
            attempt = 0
            while True:
                try:
                    result = await function(*args, **kwargs)
                    for session in sessions:
                        await session.commit()
                except Exception as exc:
                    if not is_transient_database_error(exc):
                        reached = True
                        raise
                    await _reset_sessions(sessions)
                    if breaker.budget_seconds <= 0:
                        raise
                    if deadline is None:
                        deadline = loop.time() + breaker.budget_seconds
                        breaker.started_waiting()
                    breaker.failed(exc)
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise
                    await breaker.pause(min(backoff_delay(attempt), remaining))
                    attempt += 1
                else:
                    reached = True
                    return result
        finally:
            if deadline is not None:
                breaker.stopped_waiting(recovered=reached)

    return cast("TaskFunction", wrapper)
