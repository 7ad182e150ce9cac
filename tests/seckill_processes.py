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

import httpx

from tests.conftest import TEST_SECRET

STARTUP_SECONDS = 30


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

    def start_worker(self) -> subprocess.Popen[bytes]:
        """A seckill task worker (one process)."""
        command = [
            sys.executable,
            "-m",
            "taskiq",
            "worker",
            "luffy.tasks.broker:seckill_broker",
            "luffy.tasks.seckill",
            "--workers",
            "1",
            "--log-level",
            "WARNING",
        ]
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
    gate = asyncio.Semaphore(in_flight)
    limits = httpx.Limits(max_connections=in_flight)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def one(token: str) -> dict[str, object]:
            async with gate:
                response = await client.post(
                    "/api/v1/user/sckill/", json=body, headers={"Authorization": f"Bearer {token}"}
                )
            assert response.status_code == 200, response.text
            return response.json()

        return await asyncio.gather(*(one(token) for token in tokens))


async def poll_all(
    base_url: str, tasks: list[tuple[str, str]], *, within_seconds: float, in_flight: int = 64
) -> list[dict[str, object]]:
    """The final answer (not 103) of every ``(token, task_id)``, polled in rounds."""
    answers: dict[str, dict[str, object]] = {}
    gate = asyncio.Semaphore(in_flight)
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def one(token: str, task_id: str) -> None:
            async with gate:
                response = await client.get(
                    "/api/v1/user/sckill/", params={"task_id": task_id}, headers={"Authorization": f"Bearer {token}"}
                )
            assert response.status_code == 200, response.text
            if response.json()["code"] != 103:
                answers[task_id] = response.json()

        async with asyncio.timeout(within_seconds):
            while len(answers) < len(tasks):
                await asyncio.gather(*(one(token, task_id) for token, task_id in tasks if task_id not in answers))
                await asyncio.sleep(0.1)
    return [answers[task_id] for _, task_id in tasks]
