"""Run ``luffy`` commands as real processes, the way an operator or a supervisor does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET

# This checkout's luffy, as the test process imports it; tests/test_wheel.py passes an installed wheel's instead.
THIS_LUFFY = (sys.executable, "-m", "luffy")


def luffy_env(values: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without its ``LUFFY_*`` variables, plus ``values``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")}
    env.pop("PYTHONPATH", None)
    return env | {"COLUMNS": "200", **values}


def run_luffy(
    env: Mapping[str, str],
    *args: str,
    timeout: float = 60,
    luffy: Sequence[str] = THIS_LUFFY,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*luffy, *args],
        env=luffy_env(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def operator_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """What the CLI tests' operator has set: the database, a data directory, a secret and the console SMS."""
    return {
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }


def run_operator(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``luffy ARGS`` as an operator runs it, in a terminal wide enough that rich's tables do not wrap."""
    return run_luffy(operator_env(database_url, data_dir) | {"COLUMNS": "250"}, *args, timeout=120)


class LuffyProcess:
    """A long-running ``luffy`` command in its own process group, its output in a log file."""

    def __init__(
        self,
        env: Mapping[str, str],
        args: tuple[str, ...],
        log_path: Path,
        *,
        luffy: Sequence[str] = THIS_LUFFY,
        cwd: Path | None = None,
    ) -> None:
        self.args = args
        self.log_path = log_path
        with log_path.open("wb") as log:
            self.popen = subprocess.Popen(
                [*luffy, *args],
                env=luffy_env(env),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log:
            if self.popen.poll() is not None:
                pytest.fail(f"luffy {' '.join(self.args)} exited ({self.popen.returncode}):\n{self.log}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {text!r} from luffy {' '.join(self.args)} in {timeout} s:\n{self.log}")
            time.sleep(0.05)

    def send(self, signum: int) -> None:
        os.kill(self.popen.pid, signum)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as a supervisor stops it; the whole tree is killed if it has not exited within ``timeout``."""
        self.send(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()

    def wait_for_api(self, base_url: str, timeout: float = 30) -> None:
        """Until ``/health`` answers at all (a 503 too: some tests start it with a server down); fails if it exits."""

        def answers() -> bool:
            if self.popen.poll() is not None:
                pytest.fail(f"the API exited at start:\n{self.log}")
            try:
                httpx.get(base_url + "/health", timeout=1.0)
            except httpx.TransportError:
                return False
            return True

        wait_until(answers, timeout=timeout, what="the API to answer")

    def kill_all(self) -> None:
        """SIGKILL the whole process tree, as a crash or an OOM kill would."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def wait(self, timeout: float = 20) -> int:
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"luffy {' '.join(self.args)} still running after {timeout} s:\n{self.log}")


def wait_until(condition: Callable[[], bool], timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def healthy(base_url: str) -> bool:
    """``/health`` answers 200: the server is up and its database and Redis are reachable."""
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
