"""Real processes for the production seckill tests: the API server, task workers and the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from redis.asyncio import Redis

from luffy.seckill.reservations import RedisGoods, RedisReservations
from luffy.settings import Settings
from luffy.user.auth import issue_token, make_jwt_auth
from tests.conftest import TEST_SECRET
from tests.support.processes import LuffyProcess
from tests.support.services import free_port

URL = "/api/v1/user/sckill/"
STARTUP_SECONDS = 30
# A killed worker's messages are claimed by another after this long (short, to keep tests fast).
REDELIVERY_SECONDS = 3


def production_env(database_url: str, redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    return {
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_LOG_LEVEL": "WARNING",
        "LUFFY_TASK_REDELIVERY_SECONDS": str(REDELIVERY_SECONDS),
        **overrides,
    }


class Stack:
    """``luffy`` processes started for a test; all are killed (whole process trees) at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[LuffyProcess] = []

    def _start(self, name: str, *args: str, **env_overrides: str) -> LuffyProcess:
        process = LuffyProcess(self.env | env_overrides, args, self.log_dir / f"{name}-{len(self.processes)}.log")
        self.processes.append(process)
        return process

    def start_api(self, **env_overrides: str) -> str:
        """``luffy serve`` on a free port; returns its base URL once ``/health`` answers."""
        port = free_port()
        process = self._start("api", "serve", "--port", str(port), **env_overrides)
        base_url = f"http://127.0.0.1:{port}"
        process.wait_for_api(base_url, timeout=STARTUP_SECONDS)
        return base_url

    def start_worker(self) -> LuffyProcess:
        return self._start("worker", "worker", "--queue", "seckill", "--workers", "1")

    def stop_all(self) -> None:
        """Kill everything: graceful shutdown is tested where it is built, not here."""
        for process in self.processes:
            process.kill_all()

    def logs(self, name: str) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self.log_dir.glob(f"{name}-*.log")))


class SaleStack(msgspec.Struct):
    """A production stack and this test process's own view of its settings, database and Redis."""

    stack: Stack
    settings: Settings
    config: SQLAlchemyAsyncConfig
    redis: Redis

    def tokens(self, user_ids: list[int]) -> list[str]:
        jwt_auth = make_jwt_auth(self.settings)
        return [issue_token(jwt_auth, user_id, str(user_id)) for user_id in user_ids]

    async def in_redis(self, goods_id: int) -> RedisGoods:
        return (await RedisReservations(self.redis, owner_ttl_seconds=60).state([goods_id]))[goods_id]


async def post_all(
    base_url: str, tokens: Iterable[str], body: dict[str, object], *, in_flight: int = 64
) -> list[dict[str, object]]:
    """One POST per token, at most ``in_flight`` at a time; the replies in token order."""
    async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=in_flight)) as client:

        async def one(token: str) -> dict[str, object]:
            async with client.post(URL, json=body, headers={"Authorization": f"Bearer {token}"}) as response:
                assert response.status == 200, await response.text()
                return await response.json()

        return await asyncio.gather(*(one(token) for token in tokens))


async def poll_all(
    base_url: str,
    tasks: list[tuple[str, str]],
    *,
    within_seconds: float,
    in_flight: int = 64,
    retry_unavailable: bool = False,
) -> list[dict[str, object]]:
    """The final answer (not 103) of every ``(token, task_id)``, polled in rounds.

    With ``retry_unavailable`` a 503 is polled again, as a client honouring ``Retry-After`` would.
    """
    answers: dict[str, dict[str, object]] = {}
    async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=in_flight)) as client:

        async def one(token: str, task_id: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(URL, params={"task_id": task_id}, headers=headers) as response:
                if retry_unavailable and response.status == 503:
                    return
                assert response.status == 200, await response.text()
                reply = await response.json()
            if reply["code"] != 103:
                answers[task_id] = reply

        async with asyncio.timeout(within_seconds):
            while len(answers) < len(tasks):
                await asyncio.gather(*(one(token, task_id) for token, task_id in tasks if task_id not in answers))
                await asyncio.sleep(0.1)
    return [answers[task_id] for _, task_id in tasks]
