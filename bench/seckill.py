"""Seckill benchmark: a flash sale against the production set-up on this machine.

PostgreSQL database ``luffy_bench_seckill`` (dropped and re-created; role luffy/luffy on
127.0.0.1:5432), a private ``redis-server``, ``luffy serve --workers 2``, 2 seckill task worker
processes. 5,000 distinct buyers (tokens from ``luffy user token``) for a stock of 1,000, 64
requests in flight: POST requests/s, the time until every purchase has its final answer, and
the sale's invariants checked at the end. The result is written to ``bench/results.md``
between the seckill markers (other benchmarks keep their own sections).

    python bench/seckill.py [--buyers 5000] [--stock 1000] [--in-flight 64]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import RESULTS, wait_healthy, write_block  # noqa: E402

from tests.support.services import free_port, redis_server  # noqa: E402

DATABASE = "luffy_bench_seckill"
ADMIN_DSN = "postgresql://luffy:luffy@127.0.0.1:5432/postgres"
GOODS = "性感帽子"
SECRET = "bench-secret-key-that-is-long-enough-0123456789"
ANCHOR_POSTS_PER_SECOND = 330
ANCHOR_ALL_FINAL_SECONDS = 41
TARGET_ALL_FINAL_SECONDS = 20
LUFFY = [sys.executable, "-m", "luffy"]


async def recreate_database() -> str:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await admin.close()
    return f"postgresql+asyncpg://luffy:luffy@127.0.0.1:5432/{DATABASE}"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*LUFFY, *args], env=env, capture_output=True, text=True, check=False, timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"luffy {' '.join(args[:3])} failed:\n{result.stdout}\n{result.stderr}")
    return result


def buyer_tokens(env: dict[str, str], mobiles: list[str]) -> tuple[list[str], float]:
    """One token per buyer, from ``luffy user token`` (it creates the missing users); and how long it took."""
    started = time.perf_counter()
    tokens = run(env, "user", "token", *mobiles).stdout.split()
    if len(tokens) != len(mobiles):
        raise SystemExit(f"luffy user token printed {len(tokens)} tokens for {len(mobiles)} mobiles")
    return tokens, time.perf_counter() - started


class Processes:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: list[str]) -> None:
        log = (self.log_dir / f"{name}.log").open("wb")
        self.started.append(
            subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@dataclass
class Sale:
    post_seconds: float = 0.0
    all_final_seconds: float = 0.0
    post_latencies: list[float] = field(default_factory=list)
    post_errors: int = 0
    polls: int = 0
    at_once: Counter[tuple[int, str | None]] = field(default_factory=Counter)
    after_task: Counter[tuple[int, str | None]] = field(default_factory=Counter)
    winners: set[str] = field(default_factory=set)

    @property
    def answers(self) -> Counter[tuple[int, str | None]]:
        return self.at_once + self.after_task


async def run_sale(base_url: str, tokens: list[str], in_flight: int) -> Sale:
    """POST every buyer once (``in_flight`` at a time), then poll the queued ones until each is final."""
    sale = Sale()
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as client:
        todo = list(tokens)
        queued: dict[str, str] = {}

        async def buyer() -> None:
            while todo:
                token = todo.pop()
                started = time.perf_counter()
                async with client.post(
                    "/api/v1/user/sckill/", json={"name": GOODS}, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    reply = await response.json() if response.status == 200 else None
                sale.post_latencies.append(time.perf_counter() - started)
                if reply is None:
                    sale.post_errors += 1
                elif reply["code"] == 100:
                    queued[reply["task_id"]] = token
                else:
                    sale.at_once[(reply["code"], reply.get("reason"))] += 1

        began = time.perf_counter()
        await asyncio.gather(*(buyer() for _ in range(in_flight)))
        sale.post_seconds = time.perf_counter() - began

        pending = dict(queued)

        async def poller(batch: list[tuple[str, str]]) -> None:
            for task_id, token in batch:
                async with client.get(
                    "/api/v1/user/sckill/", params={"task_id": task_id}, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    reply = await response.json()
                sale.polls += 1
                if reply["code"] != 103:
                    del pending[task_id]
                    sale.after_task[(reply["code"], reply.get("reason"))] += 1
                    if reply["code"] == 100:
                        sale.winners.add(token)

        while pending:
            items = list(pending.items())
            await asyncio.gather(*(poller(items[index::in_flight]) for index in range(in_flight)))
            if pending:
                await asyncio.sleep(0.05)
            if time.perf_counter() - began > 300:
                raise SystemExit(f"{len(pending)} purchases still not final after 300 s")
        sale.all_final_seconds = time.perf_counter() - began
    return sale


async def transactions() -> int:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute("SELECT pg_stat_force_next_flush()")
        return await connection.fetchval(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1", DATABASE
        )
    finally:
        await connection.close()


async def database_invariants(stock: int) -> dict[str, object]:
    connection = await asyncpg.connect(ADMIN_DSN.rsplit("/", 1)[0] + "/" + DATABASE)
    try:
        remaining = await connection.fetchval("SELECT stock FROM luffy_seckill_goods WHERE name = $1", GOODS)
        orders = await connection.fetchval("SELECT count(*) FROM luffy_seckill_order")
        doubles = await connection.fetchval(
            "SELECT count(*) FROM (SELECT user_id FROM luffy_seckill_order"
            " GROUP BY user_id, goods_id HAVING count(*) > 1) d"
        )
        order_mobiles = {
            row["mobile"]
            for row in await connection.fetch(
                "SELECT u.mobile FROM luffy_seckill_order o JOIN luffy_user u ON u.id = o.user_id"
            )
        }
    finally:
        await connection.close()
    return {
        "remaining": remaining,
        "orders": orders,
        "users_with_two_orders": doubles,
        "order_mobiles": order_mobiles,
        "oversold": max(0, orders - stock),
    }


def redis_state(redis_url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(redis_url)
    goods_id = client.hget("luffy:seckill:names", GOODS).decode()
    return {
        "stock": int(client.hget(f"luffy:seckill:goods:{goods_id}", "stock")),
        "pending": client.hlen(f"luffy:seckill:pending:{goods_id}"),
        "buyers": client.scard(f"luffy:seckill:buyers:{goods_id}"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--stock", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--api-workers", type=int, default=2)
    parser.add_argument("--task-workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print the result without writing bench/results.md")
    args = parser.parse_args()

    log_dir = Path(tempfile.mkdtemp(prefix="luffy-bench-seckill-"))
    with redis_server() as redis_url:
        database_url = asyncio.run(recreate_database())
        env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")} | {
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_REDIS_URL": redis_url,
            "LUFFY_SECRET_KEY": SECRET,
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_DATA_DIR": str(log_dir / "data"),
            "LUFFY_LOG_LEVEL": "WARNING",
        }
        run(env, "db", "upgrade")
        run(env, "seckill", "load", GOODS, "--stock", str(args.stock), "--price", "99.00", "--start", "now")
        mobiles = [f"139{index:08d}" for index in range(args.buyers)]
        tokens, token_seconds = buyer_tokens(env, mobiles)
        mobile_of = dict(zip(tokens, mobiles, strict=True))
        processes = Processes(env, log_dir)
        try:
            port = free_port()
            processes.start("api", [*LUFFY, "serve", "--port", str(port), "--workers", str(args.api_workers)])
            base_url = f"http://127.0.0.1:{port}"
            wait_healthy(base_url)
            worker = [*LUFFY, "worker", "--queue", "seckill", "--workers", str(args.task_workers)]
            processes.start("worker", worker)
            load_before = os.getloadavg()[0]
            transactions_before = asyncio.run(transactions())
            sale = asyncio.run(run_sale(base_url, tokens, args.in_flight))
            database = asyncio.run(database_invariants(args.stock))
            in_redis = redis_state(redis_url)
            status = subprocess.run([*LUFFY, "seckill", "status"], env=env, capture_output=True, text=True)
        finally:
            processes.stop()
        # Backends flush their statistics when they end: count after the processes are gone.
        time.sleep(0.5)
        transactions_during = asyncio.run(transactions()) - transactions_before

    ordered = sale.answers[(100, None)]
    sold_out = sale.answers[(101, "sold_out")]
    violations = {
        "orders ≠ stock": database["orders"] != args.stock,
        "remaining + orders ≠ loaded": database["remaining"] + database["orders"] != args.stock,
        "a user with two orders": database["users_with_two_orders"] > 0,
        "oversold": database["oversold"] > 0,
        "'ordered' answers ≠ orders": ordered != database["orders"],
        "answers ≠ buyers": sum(sale.answers.values()) != args.buyers,
        "winners ≠ the users holding orders": {mobile_of[token] for token in sale.winners} != database["order_mobiles"],
        "an answer other than ordered / sold out": ordered + sold_out != args.buyers,
        "POST errors": sale.post_errors > 0,
        "Redis stock ≠ 0 or reservations left": in_redis["stock"] != 0 or in_redis["pending"] != 0,
        "Redis buyers ≠ orders": in_redis["buyers"] != database["orders"],
        "`luffy seckill status` disagrees": status.returncode != 0,
    }
    failed = [name for name, broken in violations.items() if broken]
    latencies = sorted(sale.post_latencies)
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    posts_per_second = args.buyers / sale.post_seconds
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    invariants = "**all hold**" if not failed else "**VIOLATED: " + "; ".join(failed) + "**"
    rows = [
        ("measure", "Luffy", "original design (anchor)", "target"),
        ("---", "---", "---", "---"),
        (
            "POST requests/s",
            f"**{posts_per_second:,.0f}** ({sale.post_seconds:.2f} s for {args.buyers:,})",
            f"~{ANCHOR_POSTS_PER_SECOND}",
            "—",
        ),
        ("POST latency p50 / p99", f"{statistics.median(latencies) * 1000:.1f} ms / {p99 * 1000:.1f} ms", "—", "—"),
        (
            "time until every purchase is final",
            f"**{sale.all_final_seconds:.2f} s**",
            f"~{ANCHOR_ALL_FINAL_SECONDS} s",
            f"< {TARGET_ALL_FINAL_SECONDS} s",
        ),
        ("answers", f"{ordered:,} ordered, {sold_out:,} sold out", "", ""),
        (
            "database transactions during the sale",
            f"{transactions_during:,} for {database['orders']:,} orders",
            "",
            "the POST path makes no query",
        ),
        ("invariants", invariants, "", "zero violations"),
    ]
    table = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    section = "\n".join(
        [
            "## Seckill (flash sale)",
            "",
            f"`python bench/seckill.py` — {now}, commit {commit.stdout.strip() or '?'}, {os.cpu_count()} CPU cores",
            f"(load average {load_before:.2f} at the start: the cores are shared with other work, expect noise).",
            "",
            f"Set-up: PostgreSQL database `{DATABASE}`, a private `redis-server`, "
            f"`luffy serve --workers {args.api_workers}`, "
            f"`luffy worker --queue seckill --workers {args.task_workers}`; "
            f"{args.buyers:,} distinct buyers (tokens from `luffy user token`: {token_seconds:.1f} s for all); "
            f"stock {args.stock:,}; {args.in_flight} requests in flight "
            "(an aiohttp client on the same machine).",
            "",
            table,
            "",
            f"End state: database stock {database['remaining']}, {database['orders']:,} orders, "
            f"{database['users_with_two_orders']} users with two orders; Redis stock {in_redis['stock']}, "
            f"{in_redis['pending']} reservations in flight, {in_redis['buyers']:,} buyers; `luffy seckill status` "
            f"{'agrees' if status.returncode == 0 else 'DISAGREES'}. Answered at once from Redis (no task): "
            f"{sum(sale.at_once.values()):,}; through an order task: {sum(sale.after_task.values()):,} "
            f"({sale.polls:,} polls).",
        ]
    )
    print(section)
    if not args.no_write:
        write_block("seckill", section)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
