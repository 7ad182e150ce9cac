"""Load benchmark of the catalogue and the banner, measured against the floor in the same run (``just bench``).

The machine is shared and noisy, so an absolute figure means little; a ratio taken in the same run
means a lot. This script serves two things side by side, each with 2 worker processes and the same
database pool, against the same PostgreSQL database and Redis:

- Luffy (``luffy serve --workers 2``, production mode: Redis cache and broker);
- the floor (``../shared/bench-floor/app.py`` on granian): a bare ASGI app doing the same SQL and
  JSON with no framework, the least work Python can do for these replies.

For every endpoint it drives the floor, then Luffy, with ``wrk`` at 32 connections, and reports
requests/s, p50/p99, the servers' CPU time per request (from ``/proc``, so other load on the
machine does not inflate it) and Luffy ÷ floor. The database is ``luffy_bench`` (created and
reused) with the seed rows and a 10,000-course demo catalogue. ``--profile`` samples Luffy's
workers with py-spy on the small endpoints and lists the top frames by own time.

    python bench/catalogue.py [--duration 10] [--reseed] [--profile] [--label after]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import datetime
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import RESULTS, run_wrk, write_block  # noqa: E402

from luffy.seed import DEMO_ID_BASE  # noqa: E402
from tests.support.services import (  # noqa: E402
    PG_HOST,
    PG_PASSWORD,
    PG_PORT,
    PG_ROLE,
    free_port,
    postgres_admin_dsn,
    redis_server,
)

DATABASE = "luffy_bench"
DEMO_COURSES = 10_000
WORKERS = 2
POOL_SIZE = 10
FLOOR_DIR = ROOT.parent / "shared" / "bench-floor"
TARGET_RATIO = 0.7
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 150.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    original_rps: float | None  # the original stack (DRF), as measured for issue 15 on this machine
    on_floor: bool = True


@dataclass(frozen=True)
class Measurement:
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms_per_request: float


def endpoints(category_id: int, course_id: int) -> list[Endpoint]:
    api = "/api/v1"
    return [
        Endpoint("`/course/category/`", f"{api}/course/category/", 1_046),
        Endpoint("`/course/actual/?page=1&page_size=10`", f"{api}/course/actual/?page=1&page_size=10", 68),
        Endpoint(
            f"`/course/actual/?course_category={category_id}&ordering=-price&page=5`",
            f"{api}/course/actual/?course_category={category_id}&ordering=-price&page=5",
            79,
        ),
        Endpoint(f"`/course/actual/{course_id}/`", f"{api}/course/actual/{course_id}/", 232),
        Endpoint("`/home/banner/` (cache hit)", f"{api}/home/banner/", 1_943),
        Endpoint(f"`/course/chapter/?course={course_id}`", f"{api}/course/chapter/?course={course_id}", None, False),
    ]


# --- the database --------------------------------------------------------------------------------


def database_dsn() -> str:
    return f"postgresql://{PG_ROLE}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/{DATABASE}"


async def _ensure_database(admin_dsn: str, fresh: bool) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        if fresh:
            await connection.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await connection.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await connection.close()


async def _demo_courses() -> int:
    connection = await asyncpg.connect(database_dsn())
    try:
        if not await connection.fetchval("SELECT to_regclass('luffy_course') IS NOT NULL"):
            return 0
        return await connection.fetchval("SELECT count(*) FROM luffy_course WHERE id >= $1", DEMO_ID_BASE)
    finally:
        await connection.close()


async def _vacuum_analyze() -> None:
    # Freshly COPYed tables have no statistics or visibility map yet; production tables would.
    connection = await asyncpg.connect(database_dsn())
    try:
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()


def prepare_database(env: dict[str, str], reseed: bool, fresh: bool) -> None:
    asyncio.run(_ensure_database(postgres_admin_dsn(), fresh))
    subprocess.run(["luffy", "db", "upgrade"], env=env, check=True, stdout=subprocess.DEVNULL)
    if reseed or asyncio.run(_demo_courses()) != DEMO_COURSES:
        print(f"loading the seed rows and a {DEMO_COURSES:,}-course demo catalogue ...", flush=True)
        subprocess.run(["luffy", "seed", "--demo", str(DEMO_COURSES)], env=env, check=True, stdout=subprocess.DEVNULL)
    else:
        print(f"reusing the {DEMO_COURSES:,}-course catalogue in {DATABASE}", flush=True)
    asyncio.run(_vacuum_analyze())


# --- the servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen[bytes]

    def workers(self) -> list[int]:
        """The server's worker processes: every process of its group but the supervisor."""
        group = os.getpgid(self.process.pid)
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != self.process.pid:
                try:
                    if os.getpgid(int(entry.name)) == group:
                        pids.append(int(entry.name))
                except ProcessLookupError:
                    continue
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU time of the whole process group so far."""
        total = 0
        for pid in [self.process.pid, *self.workers()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / CLOCK_TICKS

    def worker_rss_mb(self) -> list[float]:
        sizes = []
        for pid in self.workers():
            status = Path(f"/proc/{pid}/status").read_text()
            match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
            if match:
                sizes.append(int(match.group(1)) / 1024)
        return sorted(sizes)


@contextmanager
def running(name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> Iterator[Server]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env={**env, "LUFFY_BACKEND_URL": base},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        probe = f"{base}/api/v1/course/category/"
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(probe, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer on {base}")
            time.sleep(0.3)
        yield Server(name, base, process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def luffy_command() -> list[str]:
    return ["luffy", "serve", "--host", "127.0.0.1", "--workers", str(WORKERS)]


def floor_command() -> list[str]:
    return [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "asgi",
        "--workers",
        str(WORKERS),
        "--loop",
        "uvloop",
        "--no-ws",
        "--host",
        "127.0.0.1",
        "app:app",
    ]


def measure(server: Server, endpoint: Endpoint, duration: int, connections: int) -> Measurement:
    cpu_before = server.cpu_seconds()
    rps, p50, p99, errors = run_wrk(server.base + endpoint.path, duration, connections)
    cpu = server.cpu_seconds() - cpu_before
    return Measurement(rps, p50, p99, errors, cpu * 1000 / max(rps * duration, 1))


def pick_targets(base: str) -> tuple[int, int]:
    """A visible demo category with at least five pages, and a visible demo course with chapters."""
    api = f"{base}/api/v1/course"
    categories = httpx.get(f"{api}/category/").json()["result"]
    category_id = next(
        row["id"]
        for row in categories
        if row["id"] >= DEMO_ID_BASE
        and httpx.get(f"{api}/actual/", params={"course_category": row["id"]}).json()["count"] > 40
    )
    course_id = DEMO_ID_BASE + 42
    while httpx.get(f"{api}/chapter/", params={"course": course_id}).status_code != 200:
        course_id += 1
    return category_id, course_id


# --- the profile ---------------------------------------------------------------------------------


def profile(server: Server, endpoint: Endpoint, duration: int, connections: int) -> list[str]:
    """py-spy samples of Luffy's workers while ``endpoint`` is driven: the top functions by own time."""
    if not shutil.which("py-spy"):
        return ["py-spy is not installed (it is in the dev extras): no profile taken"]
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "profile.txt"
        sampler = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(server.process.pid),
                "--subprocesses",
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                "250",
                "--duration",
                str(duration),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        run_wrk(server.base + endpoint.path, duration - 2, connections)
        sampler.wait(timeout=duration + 30)
        own: collections.Counter[str] = collections.Counter()
        total = 0
        for line in output.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            frames = stack.split(";")
            # Each stack starts with its process chain (supervisor, then worker); the supervisor's
            # own samples are it waiting for its workers, not request work.
            processes = [frame for frame in frames if frame.startswith("process ")]
            if processes and processes[-1].startswith(f"process {server.process.pid}:"):
                continue
            frames = [frame for frame in frames if frame and not frame.startswith("process ")]
            # A Granian worker's main thread blocks in the server while requests run on the loop;
            # an idle event loop waits in select.
            if not frames or "granian/server/" in frames[-1] or frames[-1].startswith("select "):
                continue
            total += int(count_text)
            own[_short(frames[-1])] += int(count_text)
    if not total:
        return ["py-spy recorded no samples of the workers (is ptrace allowed?)"]
    lines = [f"{endpoint.name}: {total} busy samples of the workers; top frames by own time:", ""]
    lines += [f"- {count / total:6.1%}  {frame}" for frame, count in own.most_common(12)]
    return lines


def _short(frame: str) -> str:
    """``func (path/to/site-packages/pkg/mod.py:12)`` as ``func (pkg/mod.py)``."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    function, path = match.groups()
    path = re.sub(r".*/(site-packages|lib/python3\.\d+)/", "", path).replace(str(ROOT) + "/", "")
    return f"{function} ({path})"


# --- the report ----------------------------------------------------------------------------------


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}; load average before the run {load}"
    )


def commit() -> str:
    described = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return described.stdout.strip() or "?"


def report(
    label: str,
    rows: list[tuple[Endpoint, Measurement | None, Measurement]],
    rss: list[float],
    args: argparse.Namespace,
    machine_before: str,
) -> str:
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f"### {label}: commit {commit()}, {now:%Y-%m-%d %H:%M} UTC",
        "",
        f"wrk, {args.connections} connections, {args.duration} s per endpoint and server, after a warm-up; "
        f"{WORKERS} workers and a pool of {POOL_SIZE} connections each for both servers; {machine_before}.",
        "",
        "| endpoint | original (DRF) | floor req/s | Luffy req/s | **Luffy / floor** | Luffy p50 / p99 ms "
        "| CPU ms/request floor / Luffy | errors | goal met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for endpoint, floor, luffy in rows:
        ratio = luffy.requests_per_second / floor.requests_per_second if floor else None
        met = (ratio is None or ratio >= TARGET_RATIO) and luffy.p99_ms < TARGET_P99_MS and luffy.errors == 0
        lines.append(
            f"| {endpoint.name} | {f'{endpoint.original_rps:,.0f}' if endpoint.original_rps else '—'} "
            f"| {f'{floor.requests_per_second:,.0f}' if floor else '—'} | {luffy.requests_per_second:,.0f} "
            f"| **{f'{ratio:.2f}' if ratio is not None else '—'}** | {luffy.p50_ms:.1f} / {luffy.p99_ms:.1f} "
            f"| {f'{floor.cpu_ms_per_request:.2f}' if floor else '—'} / {luffy.cpu_ms_per_request:.2f} "
            f"| {luffy.errors + (floor.errors if floor else 0)} | {'yes' if met else 'NO'} |"
        )
    largest = max(rss) if rss else 0.0
    lines += [
        "",
        f"Luffy's API workers after the runs: RSS {' and '.join(f'{size:.0f} MB' for size in rss)} "
        f"(goal < {TARGET_RSS_MB:.0f} MB each: {'met' if largest < TARGET_RSS_MB else 'NOT met'}).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="Seconds per endpoint and server.")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--reseed", action="store_true", help="Reload the demo catalogue even if it is there.")
    parser.add_argument("--fresh", action="store_true", help=f"Drop and recreate the {DATABASE} database first.")
    parser.add_argument("--profile", action="store_true", help="Also sample Luffy's workers with py-spy.")
    parser.add_argument("--label", default="current", help="The results block's name (e.g. before, after).")
    parser.add_argument("--only", help="Measure only the endpoints whose path contains this (implies --no-write).")
    parser.add_argument("--no-write", action="store_true", help="Print the results without writing bench/results.md.")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if not (FLOOR_DIR / "app.py").exists():
        raise SystemExit(f"the floor is missing: {FLOOR_DIR / 'app.py'}")

    with redis_server() as redis_url:
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")},
            "LUFFY_DATABASE_URL": database_dsn().replace("postgresql://", "postgresql+asyncpg://"),
            # Production mode: a Redis broker and cache, so the API workers run no tasks themselves.
            "LUFFY_REDIS_URL": redis_url,
            "LUFFY_DB_POOL_SIZE": str(POOL_SIZE),
            "LUFFY_SECRET_KEY": os.environ.get("LUFFY_SECRET_KEY") or secrets.token_urlsafe(48),
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_DATA_DIR": tempfile.mkdtemp(prefix="luffy-bench-"),
            "LUFFY_LOG_LEVEL": "WARNING",
        }
        floor_env = {
            **env,
            "FLOOR_DSN": database_dsn(),
            "FLOOR_REDIS_URL": redis_url.rsplit("/", 1)[0] + "/1",
            "FLOOR_POOL_SIZE": str(POOL_SIZE),
        }
        prepare_database(env, args.reseed, args.fresh)
        machine_before = machine()
        rows: list[tuple[Endpoint, Measurement | None, Measurement]] = []
        notes: list[str] = []
        with (
            running("the floor", floor_command(), floor_env, cwd=FLOOR_DIR) as floor,
            running("luffy", luffy_command(), env) as luffy,
        ):
            targets = endpoints(*pick_targets(luffy.base))
            if args.only:
                targets = [endpoint for endpoint in targets if args.only in endpoint.path]
                args.no_write = True
            for endpoint in targets:  # warm pools, prepared statements and caches of every worker
                for server in (floor, luffy) if endpoint.on_floor else (luffy,):
                    run_wrk(server.base + endpoint.path, 2, args.connections)
            for endpoint in targets:
                floor_result = measure(floor, endpoint, args.duration, args.connections) if endpoint.on_floor else None
                luffy_result = measure(luffy, endpoint, args.duration, args.connections)
                rows.append((endpoint, floor_result, luffy_result))
                ratio = (
                    f"{luffy_result.requests_per_second / floor_result.requests_per_second:5.2f}"
                    if floor_result
                    else "  —  "
                )
                print(
                    f"{endpoint.name:70} floor {floor_result.requests_per_second if floor_result else 0:8,.0f}  "
                    f"luffy {luffy_result.requests_per_second:8,.0f} req/s  ratio {ratio}  "
                    f"p99 {luffy_result.p99_ms:6.1f} ms  cpu/req {luffy_result.cpu_ms_per_request:.2f} ms",
                    flush=True,
                )
            if args.profile:
                for endpoint in [endpoint for endpoint in targets if endpoint.on_floor][:5]:
                    notes += [*profile(luffy, endpoint, max(args.duration, 10), args.connections), ""]
                print("\n".join(notes), flush=True)
            rss = luffy.worker_rss_mb()
    section = report(args.label, rows, rss, args, machine_before)
    if notes:
        section += "\n\n#### Profile (py-spy, Luffy's workers)\n\n" + "\n".join(notes)
    print(section)
    if not args.no_write:
        write_block(f"catalogue/{args.label}", section)
        print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
