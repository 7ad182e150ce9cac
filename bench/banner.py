"""Load benchmark of ``GET /api/v1/home/banner/``, served as in production.

PostgreSQL database ``luffy_bench_banner`` (created, migrated and seeded), a private
``redis-server``, ``luffy serve`` with 2 workers. ``wrk`` drives the endpoint at 32 connections:
first from the cache, then with Redis stopped (every request falls back to the database). Prints
requests/s, p50 and p99 and writes them to the ``banner`` section of ``bench/results.md``.

    python bench/banner.py [--duration 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import run_wrk, wait_healthy, write_block  # noqa: E402

from tests.support.services import free_port, postgres_admin_dsn  # noqa: E402

DATABASE = "luffy_bench_banner"
URL_PATH = "/api/v1/home/banner/"
WORKERS = 2


async def _ensure_database(admin_dsn: str) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()


def luffy(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "-m", "luffy", *args], env=env, check=True, capture_output=True, timeout=300)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        raise SystemExit("needs wrk and redis-server on PATH")

    admin_dsn = postgres_admin_dsn()
    asyncio.run(_ensure_database(admin_dsn))
    workdir = Path(tempfile.mkdtemp(prefix="luffy-bench-banner-"))
    redis_port, api_port = free_port(), free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")} | {
        "LUFFY_DATA_DIR": str(workdir),
        "LUFFY_DATABASE_URL": admin_dsn.rpartition("/")[0].replace("postgresql://", "postgresql+asyncpg://")
        + f"/{DATABASE}",
        "LUFFY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "LUFFY_SECRET_KEY": "bench-secret-key-long-enough-0123456789abcdef",
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_LOG_LEVEL": "ERROR",
    }
    rows = []
    try:
        luffy(env, "db", "upgrade")
        luffy(env, "seed")
        base = f"http://127.0.0.1:{api_port}"
        server = subprocess.Popen(
            [sys.executable, "-m", "luffy", "serve", "--port", str(api_port), "--workers", str(WORKERS)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_healthy(base, server)
            rows.append(("from the cache (Redis)", *run_wrk(base + URL_PATH, args.duration, args.connections)))
            redis.terminate()
            redis.wait(timeout=10)
            rows.append(("Redis stopped: from PostgreSQL", *run_wrk(base + URL_PATH, args.duration, args.connections)))
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        if redis.poll() is None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines = [
        f"### Home banners, {WORKERS} workers — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Written by `python bench/banner.py`: wrk, {args.connections} connections, {args.duration} s per scenario; "
        f"{os.cpu_count()} cores, Linux {platform.release()}, Python {platform.python_version()}; load average "
        f"after the run: {load}. A cache hit runs no SQL (asserted in tests/test_home.py).",
        "",
        "| scenario | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---:|---:|---:|",
        *(f"| {name} | {rps:,.0f} | {p50:.1f} | {p99:.1f} | {errors} |" for name, rps, p50, p99, errors in rows),
    ]
    section = "\n".join(lines)
    print(section)
    write_block("banner", section)


if __name__ == "__main__":
    main()
