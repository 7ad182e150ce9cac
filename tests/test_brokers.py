"""The brokers in embedded mode: tasks run in this process, with TaskIQ's dependencies and retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, insert, select
from taskiq import TaskiqEvents
from taskiq.exceptions import SendTaskError

import luffy.tasks.broker
from luffy.cache import make_cache_store
from luffy.home.models import Banner
from luffy.home.services import BANNER_CACHE_KEY
from luffy.settings import Settings
from luffy.tasks.banner import update_banner
from luffy.tasks.broker import configure_brokers, default_broker, start_brokers, stop_brokers
from luffy.tasks.deps import SessionDep

attempts: list[float] = []


@default_broker.task(task_name="tests.flaky", retry_on_error=True, max_retries=3, delay=0.05)
async def flaky() -> int:
    attempts.append(time.monotonic())
    if len(attempts) < 3:
        raise RuntimeError("transient")
    return len(attempts)


@default_broker.task(task_name="tests.fails_once")
async def fails_once() -> None:
    attempts.append(time.monotonic())
    raise RuntimeError("permanent")


@default_broker.task(task_name="tests.writes_then_fails")
async def writes_then_fails(session: SessionDep) -> None:
    await session.execute(insert(Banner).values(title="半途而废", image="a.png", link="/", info=""))
    await session.flush()
    raise RuntimeError("after the write")


class SlotProbe:
    """What ``holds_a_slot`` tasks report: who started, and a gate that lets them all finish."""

    def __init__(self) -> None:
        self.started: asyncio.Queue[int] = asyncio.Queue()
        self.finished: asyncio.Queue[int] = asyncio.Queue()
        self.release = asyncio.Event()


probes: list[SlotProbe] = []
finished: list[int] = []


@default_broker.task(task_name="tests.holds_a_slot")
async def holds_a_slot(number: int) -> None:
    probe = probes[-1]
    probe.started.put_nowait(number)
    await probe.release.wait()
    probe.finished.put_nowait(number)


@default_broker.task(task_name="tests.slow")
async def slow(number: int) -> None:
    await asyncio.sleep(0.2)
    finished.append(number)


@pytest.fixture
async def embedded(seeded: Settings) -> AsyncIterator[Settings]:
    """This process with embedded brokers; tasks get their own database engine and cache store."""
    attempts.clear()
    configure_brokers(seeded)
    await start_brokers()
    yield seeded
    await stop_brokers()


async def test_a_task_runs_here_and_its_result_is_read_back(embedded: Settings) -> None:
    result = await (await update_banner.kiq()).wait_result(timeout=10)
    assert result.return_value == [1, 2, 3]
    store = make_cache_store(embedded)
    assert b"Python" in (await store.get(BANNER_CACHE_KEY) or b"")


async def test_a_task_labelled_retry_on_error_is_retried_with_backoff(embedded: Settings) -> None:
    result = await (await flaky.kiq()).wait_result(timeout=10)
    assert not result.is_err
    assert result.return_value == 3
    first_wait, second_wait = attempts[1] - attempts[0], attempts[2] - attempts[1]
    assert first_wait >= 0.05
    assert second_wait >= 0.1  # the delay grows with the attempt


async def test_an_unlabelled_failing_task_is_not_retried(embedded: Settings) -> None:
    result = await (await fails_once.kiq()).wait_result(timeout=10)
    assert result.is_err  # a retry would have replaced this result with none
    assert len(attempts) == 1


async def test_a_failing_task_rolls_its_transaction_back(embedded: Settings) -> None:
    result = await (await writes_then_fails.kiq()).wait_result(timeout=10)
    assert result.is_err
    config = default_broker.state.sqlalchemy_config
    async with config.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Banner).where(Banner.title == "半途而废")) == 0


async def test_embedded_brokers_run_client_and_worker_event_handlers(seeded: Settings) -> None:
    seen: list[str] = []
    handlers = {event: (lambda _state, name=event.name: seen.append(name)) for event in TaskiqEvents}
    for event, handler in handlers.items():
        default_broker.add_event_handler(event, handler)
    try:
        configure_brokers(seeded)
        await start_brokers()
        await stop_brokers()
    finally:
        for event, handler in handlers.items():
            default_broker.event_handlers[event].remove(handler)
    assert seen == ["CLIENT_STARTUP", "WORKER_STARTUP", "WORKER_SHUTDOWN", "CLIENT_SHUTDOWN"]


async def test_a_running_broker_cannot_be_reconfigured(embedded: Settings) -> None:
    with pytest.raises(RuntimeError, match="shut it down before configuring it"):
        configure_brokers(embedded)


async def test_a_broker_not_started_refuses_to_send(seeded: Settings) -> None:
    configure_brokers(seeded)
    with pytest.raises(SendTaskError) as raised:
        await update_banner.kiq()
    assert "the default broker is not started" in str(raised.value.__cause__)


async def test_in_process_tasks_run_at_most_the_concurrency_bound_at_once(
    seeded: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(luffy.tasks.broker, "EMBEDDED_CONCURRENCY", 2)
    probe = SlotProbe()
    probes.append(probe)
    configure_brokers(seeded)
    await start_brokers()
    try:
        for number in range(5):
            await holds_a_slot.kiq(number)
        async with asyncio.timeout(5):
            first_two = {await probe.started.get(), await probe.started.get()}
        for _ in range(50):
            await asyncio.sleep(0)  # every other task gets its turn to start, and may not
        assert len(first_two) == 2
        assert probe.started.empty()
        probe.release.set()
        async with asyncio.timeout(5):
            done = {await probe.finished.get() for _ in range(5)}
        assert done == set(range(5))
    finally:
        probe.release.set()
        await stop_brokers()


async def test_stopping_the_brokers_lets_running_tasks_finish(seeded: Settings) -> None:
    finished.clear()
    configure_brokers(seeded)
    await start_brokers()
    await slow.kiq(1)
    await stop_brokers()
    assert finished == [1]
