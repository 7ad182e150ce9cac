"""``luffy serve`` answers the catalogue with either ASGI server, as a real process on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_SECRET, truncate_all
from tests.support.processes import LuffyProcess, healthy, run_luffy, wait_until
from tests.support.services import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def seeded_postgres_env(postgres_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    import asyncio

    asyncio.run(truncate_all(postgres_url))
    env = {
        "LUFFY_DATABASE_URL": postgres_url,
        # Two API workers share their limits through Redis (embedded mode refuses --workers 2).
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_DATA_DIR": str(tmp_path),
    }
    seeded = run_luffy(env, "seed")
    assert seeded.returncode == 0, seeded.stderr
    return env


@pytest.fixture
def served(seeded_postgres_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = LuffyProcess(
        {**seeded_postgres_env, "LUFFY_BACKEND_URL": base},
        ("serve", "--server", request.param, "--port", str(port), "--workers", "2"),
        tmp_path / "serve.log",
    )
    try:
        wait_until(lambda: healthy(base), timeout=30, what=f"luffy serve --server {request.param}")
        # Both workers up before the test ends: Granian stopped while a worker is still starting
        # waits out its 15 s grace period for that worker.
        wait_until(lambda: process.log.count(" up: database ") == 2, timeout=30, what="both workers to start")
        yield base
    finally:
        process.stop()


@pytest.mark.parametrize("served", ["granian", "uvicorn"], indirect=True)
def test_serve_answers_the_catalogue(served: str) -> None:
    categories = httpx.get(f"{served}/api/v1/course/category/").json()
    assert categories["result"] == [{"id": 1, "name": "Python"}, {"id": 2, "name": "Linux"}]
    page = httpx.get(f"{served}/api/v1/course/actual/", params={"page_size": 2}).json()
    assert page["count"] == 3
    assert page["next"] == f"{served}/api/v1/course/actual/?page_size=2&page=2"
    assert page["results"][0]["course_img"] == f"{served}/media/courses/alex_python.png"
    assert httpx.get(f"{served}/api/v1/course/chapter/", params={"course": 1}).json()[0]["name"] == "计算机原理"
