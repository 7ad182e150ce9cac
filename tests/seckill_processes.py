"""Real processes for the production seckill tests: the API server, task workers and the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

import aiohttp
import httpx

from tests.conftest import TEST_SECRET

URL = "/api/v1/user/sckill/"
STARTUP_SECONDS = 30
# A killed worker's messages are claimed by another after this long (short, to keep tests fast).
REDELIVERY_SECONDS = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def production_env(database_url: str, redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")}
    return env | {
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_LOG_LEVEL": "WARNING",
        "LUFFY_TASK_REDELIVERY_SECONDS": str(REDELIVERY_SECONDS),
        "COLUMNS": "200",
        **overrides,
    }


class Stack:
    """Processes started for a test; every one is stopped (its whole process group) at the end."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def _spawn(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(process)
        return process

    def start_api(self, **env_overrides: str) -> str:
        """``luffy serve`` on a free port; returns its base URL once ``/health`` answers."""
        port = _free_port()
        process = self._spawn(
            "api", [sys.executable, "-m", "luffy", "serve", "--port", str(port)], self.env | env_overrides
        )
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the API exited at start: {self.logs('api')}")
            try:
                httpx.get(base_url + "/health", timeout=1.0)
                return base_url
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"the API did not start: {self.logs('api')}")

    def start_worker(self, processes: int = 1) -> subprocess.Popen[bytes]:
        """``luffy worker --queue seckill``."""
        command = [sys.executable, "-m", "luffy", "worker", "--queue", "seckill", "--workers", str(processes)]
        return self._spawn("worker", command, self.env)

    def luffy(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "luffy", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the process and its children: no graceful shutdown, no acknowledgement."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        """Kill everything: graceful shutdown is tested where it is built, not here."""
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)

    def logs(self, prefix: str) -> str:
        return "\n".join(
            path.read_text(errors="replace")[-3000:] for path in sorted(self.log_dir.glob(f"{prefix}-*.log"))
        )


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
    base_url: str, tasks: list[tuple[str, str]], *, within_seconds: float, in_flight: int = 64
) -> list[dict[str, object]]:
    """The final answer (not 103) of every ``(token, task_id)``, polled in rounds."""
    answers: dict[str, dict[str, object]] = {}
    async with aiohttp.ClientSession(base_url, connector=aiohttp.TCPConnector(limit=in_flight)) as client:

        async def one(token: str, task_id: str) -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with client.get(URL, params={"task_id": task_id}, headers=headers) as response:
                assert response.status == 200, await response.text()
                reply = await response.json()
            if reply["code"] != 103:
                answers[task_id] = reply

        async with asyncio.timeout(within_seconds):
            while len(answers) < len(tasks):
                await asyncio.gather(*(one(token, task_id) for token, task_id in tasks if task_id not in answers))
                await asyncio.sleep(0.1)
    return [answers[task_id] for _, task_id in tasks]
