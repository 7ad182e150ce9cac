"""A PostgreSQL cluster and a redis-server of a test's own, to stop and start at will.

Outage tests take their database and Redis away; doing that to the suite's shared servers would
break every other test (and every other session on the machine). ``PrivatePostgres`` runs
``initdb`` into a temporary directory as the ``postgres`` user (PostgreSQL refuses to run as
root) and serves it on a free port; ``PrivateRedis`` keeps its port across restarts, so the
clients configured with its URL find it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.services import ServiceUnavailable, free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROLE, PASSWORD, DATABASE = "luffy", "luffy", "luffy"
NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


def _as_postgres(*command: str) -> subprocess.CompletedProcess[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *command], capture_output=True, text=True, check=False, timeout=60)


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster with a ``luffy`` superuser and database."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            raise ServiceUnavailable(f"PostgreSQL 15 binaries not found in {PG_BIN}")
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="luffy-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        password_file = self.root / "password"
        password_file.write_text(PASSWORD)
        if os.geteuid() == 0:
            shutil.chown(password_file, "postgres")
        created = _as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(self.data),
            "-U",
            ROLE,
            "--pwfile",
            str(password_file),
            "-A",
            "md5",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        )
        if created.returncode != 0:
            raise ServiceUnavailable(f"initdb failed: {created.stderr.strip()}")
        self.start()
        try:
            self._create_database()
        except BaseException:
            self.destroy()
            raise

    def _create_database(self) -> None:
        created = subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, DATABASE],
            env={**os.environ, "PGPASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if created.returncode != 0:
            raise ServiceUnavailable(f"createdb failed: {created.stderr.strip()}")

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        started = _as_postgres(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start"
        )
        if started.returncode != 0:
            raise ServiceUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {started.stdout.strip()}")

    def stop(self) -> None:
        """A fast shutdown: sessions are ended (admin shutdown), new connections refused."""
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence: a restart brings it back empty, on the same port."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServiceUnavailable("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="luffy-redis-")
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.05)
            raise ServiceUnavailable("redis-server did not answer")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
