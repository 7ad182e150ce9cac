"""Real PostgreSQL and Redis for the test suite.

PostgreSQL: the machine's cluster (started with ``pg_ctlcluster`` when it is down), a ``luffy``
role, and a throwaway database per test session. Redis: a private ``redis-server`` per test
session on a free port, so parallel runs never share state. ``LUFFY_TEST_POSTGRES_URL`` (an
admin URL) and ``LUFFY_TEST_REDIS_URL`` point the suite at servers of your own instead.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import redis

PG_HOST, PG_PORT = "127.0.0.1", 5432
PG_ROLE, PG_PASSWORD = "luffy", "luffy"


class ServiceUnavailable(RuntimeError):
    pass


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)


def _start_local_postgres() -> None:
    """Start the first local cluster and make sure the ``luffy`` role exists (needs root)."""
    if shutil.which("pg_lsclusters") is None:
        raise ServiceUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    clusters = [line.split() for line in _run("pg_lsclusters", "--no-header").stdout.splitlines() if line.strip()]
    if not clusters:
        raise ServiceUnavailable("no PostgreSQL cluster exists (pg_createcluster)")
    version, name, status = clusters[0][0], clusters[0][1], clusters[0][3]
    if status != "online":
        started = _run("pg_ctlcluster", version, name, "start")
        if started.returncode != 0:
            raise ServiceUnavailable(f"pg_ctlcluster {version} {name} start failed: {started.stderr.strip()}")
    for _ in range(50):
        if _port_open(PG_HOST, PG_PORT):
            break
        time.sleep(0.2)
    else:
        raise ServiceUnavailable("PostgreSQL did not open port 5432")
    role_sql = (
        f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') THEN "
        f"CREATE ROLE {PG_ROLE} LOGIN SUPERUSER PASSWORD '{PG_PASSWORD}'; END IF; END$$;"
    )
    created = _run("runuser", "-u", "postgres", "--", "psql", "-q", "-c", role_sql)
    if created.returncode != 0:
        raise ServiceUnavailable(f"cannot create the {PG_ROLE} role: {created.stderr.strip()}")


def _can_log_in(dsn: str) -> bool:
    import asyncio

    async def attempt() -> bool:
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
        except (OSError, asyncpg.PostgresError):
            return False
        await connection.close()
        return True

    return asyncio.run(attempt())


def postgres_admin_dsn() -> str:
    """A libpq DSN of a role that may create databases."""
    configured = os.environ.get("LUFFY_TEST_POSTGRES_URL")
    if configured:
        return configured.replace("postgresql+asyncpg://", "postgresql://")
    dsn = f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/postgres"
    if not _can_log_in(dsn):
        _start_local_postgres()
    return dsn


async def _admin(dsn: str, sql: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@contextmanager
def throwaway_database(admin_dsn: str) -> Iterator[str]:
    """A fresh database for this test session; yields its SQLAlchemy URL and drops it afterwards."""
    import asyncio

    name = f"luffy_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin(admin_dsn, f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_dsn.rpartition("/")
    try:
        yield base.replace("postgresql://", "postgresql+asyncpg://") + "/" + name
    finally:
        asyncio.run(_admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis URL: ``LUFFY_TEST_REDIS_URL``, or a private ``redis-server`` for this session."""
    configured = os.environ.get("LUFFY_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceUnavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="luffy-redis-")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None:
                    raise ServiceUnavailable("redis-server exited at start") from None
                time.sleep(0.05)
        else:
            raise ServiceUnavailable("redis-server did not answer")
        client.close()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent
