"""The task runtime with real processes: ``luffy worker`` and ``luffy scheduler`` on a private Redis."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis
from litestar import Litestar, get, post
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import update
from taskiq import TaskiqResult
from taskiq.serializers import JSONSerializer
from taskiq_redis import RedisAsyncResultBackend
from taskiq_redis.exceptions import ResultIsMissingError

import luffy.tasks.seckill
from luffy.app import create_app
from luffy.home.models import Banner
from luffy.settings import Settings, load_settings
from luffy.tasks.banner import update_banner
from luffy.tasks.broker import (
    CONSUMER_GROUP,
    RESULT_PREFIX,
    SharedClientResultBackend,
    configure_brokers,
    default_broker,
    seckill_broker,
    start_brokers,
    stop_brokers,
)
from luffy.tasks.seckill import PurchaseTaskQueue
from tests.conftest import TEST_SECRET
from tests.support.database import execute_sql
from tests.support.processes import LuffyProcess, run_luffy, wait_until
from tests.support.waiting import eventually
from tests.test_home import BANNERS_URL

pytestmark = pytest.mark.slow
STREAM = default_broker.stream_name


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def redis_env(redis_client: redis.Redis, redis_url: str, sqlite_url: str, tmp_path: Path) -> dict[str, str]:
    """An environment for ``luffy`` processes on a clean private Redis (and an unseeded SQLite database)."""
    return {
        "LUFFY_DATA_DIR": str(tmp_path / "data"),
        "LUFFY_DATABASE_URL": sqlite_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_BACKEND_URL": "http://testserver.local",
        "LUFFY_TASK_REDELIVERY_SECONDS": "2",
        "LUFFY_WORKER_SHUTDOWN_SECONDS": "20",
    }


@pytest.fixture
def task_env(seeded: Settings, redis_env: dict[str, str]) -> dict[str, str]:
    """One environment for the test's app and its ``luffy`` processes: a seeded database, a clean Redis."""
    return redis_env | {"LUFFY_DATABASE_URL": seeded.database_url}


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Start ``luffy`` commands; whatever is still running at the end is killed."""
    started: list[LuffyProcess] = []

    def start(env: dict[str, str], *args: str) -> LuffyProcess:
        process = LuffyProcess(env, args, tmp_path / f"{len(started)}-{'-'.join(args)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill_all()


@asynccontextmanager
async def brokers(settings: Settings) -> AsyncIterator[None]:
    """This test process as an API process: the brokers configured from ``settings`` and started."""
    configure_brokers(settings)
    await start_brokers()
    try:
        yield
    finally:
        await stop_brokers()


@post("/probe/update-banner", sync_to_thread=False)
async def send_update_banner() -> dict[str, str]:
    task = await update_banner.kiq()
    return {"task_id": task.task_id}


@get("/probe/result/{task_id:str}")
async def read_result(task_id: str) -> dict[str, Any]:
    backend = default_broker.result_backend
    if not await backend.is_result_ready(task_id):
        return {"ready": False}
    result = await backend.get_result(task_id)
    return {"ready": True, "value": result.return_value, "failed": result.is_err}


async def poll_result(client: AsyncTestClient[Litestar], task_id: str) -> dict[str, Any]:
    async def ready() -> dict[str, Any] | None:
        body: dict[str, Any] = (await client.get(f"/probe/result/{task_id}")).json()
        return body if body["ready"] else None

    return await eventually(ready, within=20, every=0.1, what=f"the result of task {task_id}")


async def test_results_are_saved_and_read_as_taskiq_redis_does_without_a_client_per_call(
    redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options: dict[str, Any] = {"result_ex_time": 60, "prefix_str": RESULT_PREFIX, "serializer": JSONSerializer()}
    shared = SharedClientResultBackend(redis_url, **options)
    library = RedisAsyncResultBackend[Any](redis_url, **options)
    saved = TaskiqResult(is_err=False, log="a log line", return_value={"outcome": "ordered"}, execution_time=0.1)
    clients_built: list[Redis] = []
    build_client = Redis.__init__

    def counting_build(client: Redis, *args: Any, **kwargs: Any) -> None:
        clients_built.append(client)
        build_client(client, *args, **kwargs)

    monkeypatch.setattr(Redis, "__init__", counting_build)
    try:
        await shared.set_result("task-1", saved)
        read = await shared.get_result("task-1")
        with pytest.raises(ResultIsMissingError):
            await shared.get_result("never-sent")
        assert clients_built == []
        assert read.return_value == {"outcome": "ordered"}
        assert not read.is_err
        assert read.log is None
        assert (await shared.get_result("task-1", with_logs=True)).log == "a log line"
        assert 0 < redis_client.ttl(f"{RESULT_PREFIX}:task-1") <= 60
        assert await library.get_result("task-1", with_logs=True) == await shared.get_result("task-1", with_logs=True)
        await library.set_result("task-2", saved)
        assert await shared.get_result("task-2") == await library.get_result("task-2")
    finally:
        await shared.shutdown()
        await library.shutdown()


async def test_the_entry_admission_adds_is_the_message_enqueue_sends_for_every_purchase(
    redis_env: dict[str, str], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[object] = []
    prepare = luffy.tasks.seckill._prepare_entry_template

    def counting_prepare() -> object:
        prepared.append(seckill_broker.redis_stream)
        return prepare()

    monkeypatch.setattr(luffy.tasks.seckill, "_prepare_entry_template", counting_prepare)
    queue = PurchaseTaskQueue()
    purchases = [("a" * 32, 7, 1), ("0f" * 16, 2**40, 2**62), ("b" * 32, 1, 12345)]
    for maxlen in ("5000", "2000"):  # a restart with other settings prepares the message again
        async with brokers(load_settings(redis_env | {"LUFFY_TASK_STREAM_MAXLEN": maxlen})):
            for task_id, goods_id, user_id in purchases:
                entry = queue.entry(task_id, user_id)
                await queue.enqueue(task_id, goods_id, user_id)
                [(_id, fields)] = redis_client.xrevrange(seckill_broker.stream_name, count=1)
                assert entry is not None
                assert entry.head + str(goods_id).encode() + entry.tail == fields[b"data"]
                assert (entry.stream, entry.maxlen) == (seckill_broker.stream_name, int(maxlen))
    assert len(prepared) == 2, "prepared once per broker run, not per purchase"
    assert queue.entry("c" * 32, 1) is None, "a stopped broker: enqueue sends (and refuses)"


async def test_a_task_sent_by_the_api_runs_in_a_worker_process(task_env: dict[str, str], spawn: Any) -> None:
    worker = spawn(task_env, "worker", "--queue", "default")
    worker.wait_for_log("consuming Redis stream")
    app = create_app(load_settings(task_env))
    app.register(send_update_banner)
    app.register(read_result)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        task_id = (await client.post("/probe/update-banner")).json()["task_id"]
        assert await poll_result(client, task_id) == {"ready": True, "value": [1, 2, 3], "failed": False}
        await execute_sql(task_env["LUFFY_DATABASE_URL"], update(Banner).where(Banner.id == 1).values(title="缓存里的"))
        # The worker filled the cache, so this answer comes from it, not from the changed row.
        assert (await client.get(BANNERS_URL)).json()["result"][0]["title"] == "Python开发入门"
    assert f"Executing task update_banner with ID: {task_id}" in worker.log


@pytest.fixture
async def banner_table_locked(task_env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    """Hold the banner table locked (PostgreSQL), so ``update_banner`` stays in flight until released."""
    url = task_env["LUFFY_DATABASE_URL"]
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    await connection.execute("BEGIN; LOCK TABLE luffy_banner IN ACCESS EXCLUSIVE MODE")
    yield connection  # the test releases the lock with COMMIT
    await connection.close()


def pending_messages(client: redis.Redis) -> int:
    return client.xpending(STREAM, CONSUMER_GROUP)["pending"]


# A SQLite reader is never blocked (WAL), so only PostgreSQL can hold a task in flight this way.
POSTGRESQL_ONLY = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@POSTGRESQL_ONLY
async def test_a_killed_workers_task_is_redelivered_and_completes(
    task_env: dict[str, str], spawn: Any, redis_client: redis.Redis, banner_table_locked: asyncpg.Connection
) -> None:
    first = spawn(task_env, "worker", "--queue", "default")
    first.wait_for_log("consuming Redis stream")
    async with brokers(load_settings(task_env)):
        task = await update_banner.kiq()
        wait_until(lambda: pending_messages(redis_client) == 1, what="the worker to take the task")
        first.kill_all()
        await banner_table_locked.execute("COMMIT")

        second = spawn(task_env, "worker", "--queue", "default")
        result = await task.wait_result(timeout=30)
    assert result.return_value == [1, 2, 3]
    assert "redelivering message" in second.log
    # The result is saved just before the message is acknowledged (and its entry deleted).
    wait_until(lambda: pending_messages(redis_client) == 0 and redis_client.xlen(STREAM) == 0, what="the ack")


@POSTGRESQL_ONLY
async def test_sigterm_lets_the_running_task_finish(
    task_env: dict[str, str], spawn: Any, redis_client: redis.Redis, banner_table_locked: asyncpg.Connection
) -> None:
    worker = spawn(task_env, "worker", "--queue", "default")
    worker.wait_for_log("consuming Redis stream")
    async with brokers(load_settings(task_env)):
        task = await update_banner.kiq()
        wait_until(lambda: pending_messages(redis_client) == 1, what="the worker to take the task")
        worker.send(signal.SIGTERM)
        worker.wait_for_log("Waiting for 1 running tasks")
        assert worker.popen.poll() is None
        await banner_table_locked.execute("COMMIT")
        assert worker.wait() == 0
        result = await task.wait_result(timeout=5)
    assert result.return_value == [1, 2, 3]
    assert pending_messages(redis_client) == 0
    assert redis_client.xinfo_consumers(STREAM, CONSUMER_GROUP) == []  # a clean stop leaves no consumer behind


async def test_the_scheduler_refreshes_the_cache_through_a_worker(task_env: dict[str, str], spawn: Any) -> None:
    env = task_env | {"LUFFY_BANNER_REFRESH_SECONDS": "1"}
    spawn(env, "worker", "--queue", "default")
    scheduler = spawn(env, "scheduler")
    scheduler.wait_for_log("scheduler leading")
    async with AsyncTestClient(app=create_app(load_settings(env)), base_url="http://testserver.local") as client:
        await client.get(BANNERS_URL)
        await execute_sql(env["LUFFY_DATABASE_URL"], update(Banner).where(Banner.id == 3).values(title="直接改库"))

        async def refreshed() -> list[str] | None:
            titles = [banner["title"] for banner in (await client.get(BANNERS_URL)).json()["result"]]
            return titles if "直接改库" in titles else None

        titles = await eventually(refreshed, within=15, every=0.1, what="the scheduled banner refresh")
    assert titles == ["Python开发入门", "Linux运维精讲", "直接改库"]
    scheduler.send(signal.SIGTERM)
    assert scheduler.wait() == 0
    assert "Sending task update_banner" in scheduler.log


async def test_a_second_scheduler_stands_by_until_the_first_stops(redis_env: dict[str, str], spawn: Any) -> None:
    first = spawn(redis_env, "scheduler")
    first.wait_for_log("scheduler leading")
    second = spawn(redis_env, "scheduler")
    second.wait_for_log("standing by")
    first.send(signal.SIGTERM)
    assert first.wait() == 0
    second.wait_for_log("scheduler leading", timeout=10)
    second.send(signal.SIGTERM)
    assert second.wait() == 0


@pytest.mark.parametrize("command", ["worker", "scheduler"])
def test_worker_and_scheduler_refuse_embedded_mode(command: str, tmp_path: Path) -> None:
    result = run_luffy({"LUFFY_DATA_DIR": str(tmp_path)}, command, timeout=30)
    assert result.returncode == 2
    assert f"luffy {command} needs LUFFY_REDIS_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_worker_rejects_an_unknown_queue(tmp_path: Path) -> None:
    result = run_luffy({"LUFFY_DATA_DIR": str(tmp_path)}, "worker", "--queue", "email", timeout=30)
    assert result.returncode == 2
    assert "unknown queue email" in result.stderr
