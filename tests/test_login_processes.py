"""The password-login limits hold across two real ``luffy serve`` processes sharing Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis

from tests.conftest import truncate_all
from tests.test_accounts_api import FAILED, LOGIN, PASSWORD, make_user
from tests.test_sms_processes import api_server, luffy_env

pytestmark = pytest.mark.slow

MAX_FAILURES, IP_HOURLY = 4, 10


@pytest.fixture(scope="module")
def servers(postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    logs = tmp_path_factory.mktemp("login-processes")
    env = luffy_env(
        postgres_url,
        redis_url,
        logs / "data",
        LUFFY_LOGIN_MAX_FAILURES=str(MAX_FAILURES),
        LUFFY_LOGIN_IP_HOURLY_LIMIT=str(IP_HOURLY),
    )
    with api_server(env, logs / "api-a.log") as a, api_server(env, logs / "api-b.log") as b:
        yield a, b


@pytest.fixture
def clean(servers: tuple[str, str], postgres_url: str, redis_url: str) -> tuple[str, str]:
    asyncio.run(truncate_all(postgres_url))
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match="login_limit:*"):
        client.delete(key)
    client.close()
    asyncio.run(make_user(postgres_url, username="luffy", mobile="13800138000"))
    return servers


async def _at_once(requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*(client.post(server + LOGIN, json=body) for server, body in requests))


def test_concurrent_guesses_on_both_servers_fail_at_most_the_limit_then_the_account_is_locked(
    clean: tuple[str, str],
) -> None:
    a, b = clean
    guesses = [(server, {"username": "luffy", "password": f"guess-{n:04d}"}) for n, server in enumerate([a, b] * 6)]
    replies = asyncio.run(_at_once(guesses))
    assert sorted(reply.status_code for reply in replies) == [400] * MAX_FAILURES + [429] * (12 - MAX_FAILURES)
    assert all(reply.json() == FAILED for reply in replies if reply.status_code == 400)
    for server in (a, b):
        locked = httpx.post(server + LOGIN, json={"username": "13800138000", "password": PASSWORD}, timeout=60)
        assert locked.status_code == 429
        assert 800 < int(locked.headers["Retry-After"]) <= 900


def test_the_ip_limit_holds_across_servers(clean: tuple[str, str]) -> None:
    a, b = clean
    for index in range(IP_HOURLY):
        server = a if index % 2 else b
        reply = httpx.post(server + LOGIN, json={"username": f"nobody-{index}", "password": PASSWORD}, timeout=60)
        assert reply.status_code == 400
    for server in (a, b):
        blocked = httpx.post(server + LOGIN, json={"username": "luffy", "password": PASSWORD}, timeout=60)
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 3_500


def test_a_success_on_one_server_is_not_counted_on_the_other(clean: tuple[str, str]) -> None:
    a, b = clean
    for _ in range(MAX_FAILURES - 1):
        assert httpx.post(a + LOGIN, json={"username": "luffy", "password": "wrong-one"}, timeout=60).status_code == 400
    for server in (a, b, a):
        ok = httpx.post(server + LOGIN, json={"username": "luffy", "password": PASSWORD}, timeout=60)
        assert ok.status_code == 200, ok.text
    assert httpx.post(b + LOGIN, json={"username": "luffy", "password": "wrong-one"}, timeout=60).status_code == 400
    locked = httpx.post(a + LOGIN, json={"username": "luffy", "password": PASSWORD}, timeout=60)
    assert locked.status_code == 429
