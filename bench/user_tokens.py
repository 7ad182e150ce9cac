"""How long ``luffy user token`` takes for 5,000 mobiles (new users, then the same users again).

Runs the real command on a throwaway PostgreSQL database (the test suite's cluster) and on SQLite;
the times include starting the Python process. Usage: ``python bench/user_tokens.py [COUNT]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.services import postgres_admin_dsn, throwaway_database

SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "luffy", *args], env=env, capture_output=True, text=True, check=True)


def measure(label: str, database_url: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")}
        env |= {
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_SECRET_KEY": SECRET,
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_DATA_DIR": data_dir,
        }
        run(env, "db", "upgrade")
        mobiles = [f"1{3 + i % 7}{i:09d}" for i in range(count)]
        for phase in ("new users", "existing users"):
            started = time.perf_counter()
            tokens = run(env, "user", "token", *mobiles).stdout.split()
            elapsed = time.perf_counter() - started
            assert len(tokens) == count
            print(f"{label:<10} {phase:<15} {count} tokens in {elapsed:.2f} s")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    with throwaway_database(postgres_admin_dsn()) as url:
        measure("PostgreSQL", url, count)
    with tempfile.TemporaryDirectory() as directory:
        measure("SQLite", f"sqlite+aiosqlite:///{directory}/bench.sqlite3", count)


if __name__ == "__main__":
    main()
