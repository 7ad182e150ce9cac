"""Load benchmark of the course catalogue, served as in production (``just bench``).

Creates (or reuses) the PostgreSQL database ``luffy_bench``, migrates it, loads the seed rows and
a 10,000-course demo catalogue, serves the API with 2 workers (Granian by default, or uvicorn),
drives each endpoint with ``wrk`` (an async Python client when wrk is missing) at 32 connections,
prints requests/s, p50 and p99 and writes them to ``bench/results.md`` beside the original
stack's figures. ``--profile`` also samples the workers with py-spy while the list is driven.

    python bench/catalogue.py [--server granian|uvicorn|both] [--duration 10] [--reseed] [--profile]
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
import statistics
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

from common import RESULTS, run_wrk  # noqa: E402

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
API = "/api/v1/course"
WORKERS = 2


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str
    drf_rps: float | None  # the original stack (DRF + gunicorn, 5 sync workers), measured on this machine
    bare_rps: float | None  # a frameworkless server (raw ASGI + asyncpg + msgspec), same machine


@dataclass(frozen=True)
class Measurement:
    endpoint: Endpoint
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def endpoints(category_id: int, course_id: int) -> list[Endpoint]:
    return [
        Endpoint("category list", f"{API}/category/", 1_490, 12_350),
        Endpoint("course list, page 1", f"{API}/actual/", 85, 280),
        Endpoint(
            "list: category, -price, page 5",
            f"{API}/actual/?course_category={category_id}&ordering=-price&page=5",
            110,
            1_360,
        ),
        Endpoint("course detail", f"{API}/actual/{course_id}/", 360, 5_480),
        Endpoint("chapter list", f"{API}/chapter/?course={course_id}", None, None),
    ]


# --- the database --------------------------------------------------------------------------------


def database_url() -> str:
    return f"postgresql+asyncpg://{PG_ROLE}:{PG_PASSWORD}@{PG_HOST}:{PG_PORT}/{DATABASE}"


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
    connection = await asyncpg.connect(database_url().replace("+asyncpg", ""))
    try:
        if not await connection.fetchval("SELECT to_regclass('luffy_course') IS NOT NULL"):
            return 0
        return await connection.fetchval("SELECT count(*) FROM luffy_course WHERE id >= $1", DEMO_ID_BASE)
    finally:
        await connection.close()


async def _vacuum_analyze() -> None:
    # Freshly COPYed tables have no statistics or visibility map yet; production tables would.
    connection = await asyncpg.connect(database_url().replace("+asyncpg", ""))
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


# --- the server ----------------------------------------------------------------------------------


def server_command(server: str, port: int) -> list[str]:
    return ["luffy", "serve", "--server", server, "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)]


@contextmanager
def running_server(server: str, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        server_command(server, port),
        env={**env, "LUFFY_BACKEND_URL": base},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{server} exited: {process.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server} did not become healthy on {base}")
            time.sleep(0.3)
        yield base, process
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- the load generator --------------------------------------------------------------------------


async def _python_load(url: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def user() -> None:
            nonlocal errors
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get(url)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += response.status_code >= 300

        started = time.monotonic()
        await asyncio.gather(*(user() for _ in range(connections)))
        elapsed = time.monotonic() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, quantiles[49], quantiles[98], errors


def measure(base: str, endpoint: Endpoint, duration: int, connections: int) -> Measurement:
    url = base + endpoint.path
    if shutil.which("wrk"):
        rps, p50, p99, errors = run_wrk(url, duration, connections)
    else:
        rps, p50, p99, errors = asyncio.run(_python_load(url, duration, connections))
    return Measurement(endpoint, rps, p50, p99, errors)


def pick_targets(base: str) -> tuple[int, int]:
    """A visible demo category with at least five pages, and a visible demo course with chapters."""
    categories = httpx.get(f"{base}{API}/category/").json()["result"]
    category_id = next(
        row["id"]
        for row in categories
        if row["id"] >= DEMO_ID_BASE
        and httpx.get(f"{base}{API}/actual/", params={"course_category": row["id"]}).json()["count"] > 40
    )
    course_id = DEMO_ID_BASE + 42
    while httpx.get(f"{base}{API}/chapter/", params={"course": course_id}).status_code != 200:
        course_id += 1
    return category_id, course_id


# --- the profile ---------------------------------------------------------------------------------


def profile(base: str, server_pid: int, endpoint: Endpoint, duration: int, connections: int) -> list[str]:
    """py-spy samples of every worker while ``endpoint`` is driven: the top functions by own time."""
    if not shutil.which("py-spy"):
        return ["py-spy is not installed (pip install py-spy): no profile taken"]
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "profile.txt"
        sampler = subprocess.Popen(
            [
                "py-spy",
                "record",
                "--pid",
                str(server_pid),
                "--subprocesses",
                "--nonblocking",
                "--format",
                "raw",
                "--rate",
                "200",
                "--duration",
                str(duration),
                "--output",
                str(output),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        measure(base, endpoint, duration - 2, connections)
        sampler.wait(timeout=duration + 30)
        own: collections.Counter[str] = collections.Counter()
        inclusive: collections.Counter[str] = collections.Counter()
        total = 0
        for line in output.read_text().splitlines():
            stack, _, count_text = line.rpartition(" ")
            count = int(count_text)
            frames = stack.split(";")
            # Each stack starts with its process chain (supervisor, then worker); the supervisor's
            # own samples are it waiting for its workers, not request work.
            processes = [frame for frame in frames if frame.startswith("process ")]
            if processes and processes[-1].startswith(f"process {server_pid}:"):
                continue
            frames = [frame for frame in frames if frame and not frame.startswith("process ")]
            # A Granian worker's main thread blocks in the server while requests run on the loop.
            if not frames or "granian/server/" in frames[-1]:
                continue
            total += count
            own[_short(frames[-1])] += count
            for frame in {_short(frame) for frame in frames}:
                inclusive[frame] += count
    if not total:
        return ["py-spy recorded no samples of the workers (is ptrace allowed?)"]
    lines = [f"{total} samples of the workers while `{endpoint.path}` was driven", "", "By own time:", ""]
    lines += [f"- {count / total:6.1%}  {frame}" for frame, count in own.most_common(15)]
    lines += ["", "Inclusive (the frame or anything it called):", ""]
    interesting = [
        (frame, count) for frame, count in inclusive.most_common(60) if "luffy" in frame or "sqlalchemy" in frame
    ]
    lines += [f"- {count / total:6.1%}  {frame}" for frame, count in interesting[:15]]
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
        f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.1f} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; load average before the run: {load}"
    )


def table(server: str, results: list[Measurement], duration: int, connections: int, machine_before: str) -> str:
    tool = "wrk" if shutil.which("wrk") else "an async Python client (httpx)"
    lines = [
        f"### {server}, {WORKERS} workers — {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        "",
        f"{tool}, {connections} connections, {duration} s per endpoint; {machine_before}.",
        "",
        "| endpoint | req/s | p50 ms | p99 ms | errors | DRF req/s | ×DRF | frameworkless req/s | target met |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        endpoint = result.endpoint
        ratio = result.requests_per_second / endpoint.drf_rps if endpoint.drf_rps else None
        met = (ratio is None or ratio >= 3) and result.p99_ms < 100 and result.errors == 0
        lines.append(
            f"| {endpoint.name} | {result.requests_per_second:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
            f"| {result.errors} | {f'{endpoint.drf_rps:,.0f}' if endpoint.drf_rps else '—'} "
            f"| {f'{ratio:.1f}×' if ratio else '—'} | {f'{endpoint.bare_rps:,.0f}' if endpoint.bare_rps else '—'} "
            f"| {'yes' if met else 'NO'} |"
        )
    return "\n".join(lines)


HEADER = """## Catalogue

`python bench/catalogue.py` (run by `just bench`): PostgreSQL database `luffy_bench` with the seed
rows and `luffy seed --demo 10000`, a private `redis-server`, the API served by `luffy serve
--workers 2` in production mode, each endpoint driven at 32 connections after a 2 s warm-up.
Targets (issue 3): every catalogue endpoint at 3× or more the original stack's requests/s, p99
under 100 ms.

Anchors measured on this machine: the original stack done well (DRF + django-filter, gunicorn with
5 sync workers, `select_related` + `prefetch_related`): category list ~1,490 req/s, list page 1
~85 req/s (p99 ~580 ms), filtered and ordered page 5 ~110 req/s, detail ~360 req/s. A
frameworkless server (raw ASGI, asyncpg, msgspec, no indexes beyond the foreign keys): ~12,350,
~280, ~1,360 and ~5,480.
"""
BLOCK_BEGIN, BLOCK_END = "<!-- catalogue: begin -->", "<!-- catalogue: end -->"
PARTS = ("granian", "uvicorn", "profile")


def write_results(sections: dict[str, str], notes: list[str]) -> None:
    """Replace this run's parts of the catalogue block in ``bench/results.md``; keep everything else."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    before, inner, after = text, "", ""
    if BLOCK_BEGIN in text and BLOCK_END in text:
        before, rest = text.split(BLOCK_BEGIN, 1)
        inner, after = rest.split(BLOCK_END, 1)
    else:
        before = text.rstrip() + "\n\n"
        after = "\n"
    parts = {
        match.group(1): match.group(2).strip("\n")
        for match in re.finditer(r"<!-- catalogue/(\w+): begin -->\n(.*?)<!-- catalogue/\1: end -->", inner, re.S)
    }
    parts.update(sections)
    if notes:
        parts["profile"] = "### Profile of the list endpoint (py-spy)\n\n" + "\n".join(notes)
    body = "\n\n".join(
        f"<!-- catalogue/{name}: begin -->\n{parts[name]}\n<!-- catalogue/{name}: end -->"
        for name in PARTS
        if name in parts
    )
    RESULTS.write_text(f"{before}{BLOCK_BEGIN}\n{HEADER}\n{body}\n{BLOCK_END}{after}", encoding="utf-8")


def run_server(server: str, env: dict[str, str], args: argparse.Namespace, with_profile: bool) -> tuple[str, list[str]]:
    """Serve the API with ``server``, measure every endpoint; the report section and profile notes."""
    machine_before = machine()
    with running_server(server, env) as (base, process):
        category_id, course_id = pick_targets(base)
        targets = endpoints(category_id, course_id)
        for endpoint in targets:  # warm the pools and prepared statements of every worker
            measure(base, endpoint, 2, args.connections)
        results = []
        for endpoint in targets:
            result = measure(base, endpoint, args.duration, args.connections)
            results.append(result)
            print(
                f"{server:8} {endpoint.name:32} {result.requests_per_second:9,.0f} req/s  "
                f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  errors {result.errors}",
                flush=True,
            )
        notes: list[str] = []
        if with_profile:
            notes = profile(base, process.pid, targets[1], max(args.duration, 10), args.connections)
            print("\n".join(notes), flush=True)
    return table(server, results, args.duration, args.connections, machine_before), notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["granian", "uvicorn", "both"], default="granian")
    parser.add_argument("--duration", type=int, default=10, help="Seconds per endpoint (at least 10 for results).")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--reseed", action="store_true", help="Reload the demo catalogue even if it is there.")
    parser.add_argument("--fresh", action="store_true", help=f"Drop and recreate the {DATABASE} database first.")
    parser.add_argument("--profile", action="store_true", help="Also sample the workers with py-spy (list page 1).")
    args = parser.parse_args()

    with redis_server() as redis_url:
        env = {
            **{key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")},
            "LUFFY_DATABASE_URL": database_url(),
            # Production mode: a Redis broker and cache, so the API workers run no tasks themselves.
            "LUFFY_REDIS_URL": redis_url,
            "LUFFY_SECRET_KEY": os.environ.get("LUFFY_SECRET_KEY") or secrets.token_urlsafe(48),
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_DATA_DIR": tempfile.mkdtemp(prefix="luffy-bench-"),
            "LUFFY_LOG_LEVEL": "WARNING",
        }
        prepare_database(env, args.reseed, args.fresh)
        servers = ["granian", "uvicorn"] if args.server == "both" else [args.server]
        sections: dict[str, str] = {}
        notes: list[str] = []
        for server in servers:
            sections[server], server_notes = run_server(server, env, args, args.profile and server == servers[0])
            notes = notes or server_notes
    write_results(sections, notes)
    print(f"results written to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
