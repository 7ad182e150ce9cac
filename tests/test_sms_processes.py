"""SMS login with real processes: two ``luffy serve`` API servers and task workers on one Redis and PostgreSQL.

- the whole flow: send -> a worker sends through ``console`` -> ``luffy sms outbox`` -> login -> /me;
- every limit holds across the two API processes, also under concurrent requests;
- a code is accepted once even when both servers are asked at the same moment;
- a worker retries a failing Tencent call with backoff, then records the failure;
- Redis dying under a running server turns send_sms and login into 503s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from luffy.user.codes import code_key, decode_record
from tests.conftest import TEST_SECRET, truncate_all
from tests.support.fake_tencent import FakeTencent
from tests.support.services import ServiceUnavailable, free_port, redis_server
from tests.support.user_helpers import settled_sms

pytestmark = pytest.mark.slow

MOBILE = "13800138000"
SEND = "/api/v1/user/mobile/send_sms/"
LOGIN = "/api/v1/user/mobile/login/"
ME = "/api/v1/user/me/"
SMS_STREAM = "luffy:queue:sms"
INTERVAL, DAILY, IP_HOURLY = 2, 2, 6


def luffy_env(database_url: str, redis_url: str, data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")}
    return env | {
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_REDIS_URL": redis_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_SMS_MOBILE_INTERVAL_SECONDS": str(INTERVAL),
        "LUFFY_SMS_MOBILE_DAILY_LIMIT": str(DAILY),
        "LUFFY_SMS_IP_HOURLY_LIMIT": str(IP_HOURLY),
        "LUFFY_SMS_RETRY_DELAY_SECONDS": "0.05",
        "COLUMNS": "250",
        **overrides,
    }


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_group(child: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, then SIGKILL what is left after ``grace`` seconds.

    The whole group and until it is gone: a worker's child process still reading the stream
    would take the next test's message.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _group_alive(child.pid) and time.monotonic() < deadline:
        child.poll()
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait(timeout=10)
    while _group_alive(child.pid):
        time.sleep(0.05)


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path, ready: Callable[[], bool], grace: float = 10
) -> Iterator[None]:
    with log.open("wb") as output:
        child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command[2:4]} did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        yield
    finally:
        stop_group(child, grace)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False


@contextmanager
def api_server(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "luffy", "serve", "--port", str(port)]
    with process(command, env, log, lambda: _answers(url)):
        yield url


@contextmanager
def sms_worker(env: dict[str, str], log: Path) -> Iterator[None]:
    command = [sys.executable, "-m", "luffy", "worker", "--queue", "sms", "--workers", "1"]
    with process(command, env, log, lambda: "Listening started" in log.read_text(errors="replace"), grace=3):
        yield


def luffy_cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "luffy", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def forget_sms_state(redis_url: str) -> None:
    """Each test starts with no limits or codes counted and an empty ``sms`` queue."""
    client = redis.Redis.from_url(redis_url)
    for pattern in ("sms_limit:*", "send_sms_code_*"):
        for key in client.scan_iter(match=pattern):
            client.delete(key)
    client.xtrim(SMS_STREAM, maxlen=0)
    client.close()


class Stack:
    def __init__(self, database_url: str, redis_url: str, env: dict[str, str], servers: list[str], logs: Path):
        self.database_url = database_url
        self.redis_url = redis_url
        self.env = env
        self.a, self.b = servers
        self.logs = logs


@pytest.fixture(scope="module")
def stack(postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    asyncio.run(truncate_all(postgres_url))
    logs = tmp_path_factory.mktemp("sms-processes")
    env = luffy_env(postgres_url, redis_url, logs / "data")
    with api_server(env, logs / "api-a.log") as a, api_server(env, logs / "api-b.log") as b:
        yield Stack(postgres_url, redis_url, env, [a, b], logs)


@pytest.fixture
def clean_stack(stack: Stack) -> Stack:
    forget_sms_state(stack.redis_url)
    asyncio.run(truncate_all(stack.database_url))
    return stack


def send(server: str, mobile: str) -> httpx.Response:
    return httpx.post(server + SEND, json={"mobile": mobile}, timeout=10)


def outbox_code(env: dict[str, str], mobile: str) -> str:
    """The code of ``mobile``'s SMS once the outbox shows it sent (masked there: production), read from Redis."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        output = luffy_cli(env, "sms", "outbox", "--mobile", mobile)
        if " sent " in output:
            assert re.search(r"验证码是\*{4}", output), output
            with redis.Redis.from_url(env["LUFFY_REDIS_URL"]) as client:
                record = decode_record(client.get(code_key(mobile)))
            assert record is not None
            return record.code
        time.sleep(0.3)
    raise AssertionError(f"no sent SMS for {mobile} in the outbox:\n{output}")


def test_send_worker_outbox_login_me(clean_stack: Stack) -> None:
    stack = clean_stack
    with sms_worker(stack.env, stack.logs / "worker-console.log"):
        sent = send(stack.a, MOBILE)
        assert sent.status_code == 200
        assert sent.json() == {"code": 100, "msg": "短信已发送"}
        code = outbox_code(stack.env, MOBILE)
    login = httpx.post(stack.b + LOGIN, json={"mobile": MOBILE, "code": code}, timeout=10)
    assert login.status_code == 200
    assert login.json()["username"] == MOBILE
    me = httpx.get(stack.a + ME, headers={"Authorization": f"Bearer {login.json()['token']}"}, timeout=10)
    assert me.status_code == 200
    assert (me.json()["username"], me.json()["mobile"]) == (MOBILE, MOBILE)
    again = httpx.post(stack.a + LOGIN, json={"mobile": MOBILE, "code": code}, timeout=10)
    assert again.status_code == 400


def test_the_mobile_interval_holds_across_api_processes(clean_stack: Stack) -> None:
    assert send(clean_stack.a, MOBILE).status_code == 200
    blocked = send(clean_stack.b, MOBILE)
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= INTERVAL
    assert blocked.json()["code"] == 999


def test_the_daily_limit_holds_across_api_processes(clean_stack: Stack) -> None:
    for server in (clean_stack.a, clean_stack.b):
        assert send(server, MOBILE).status_code == 200
        time.sleep(INTERVAL + 0.1)  # out of the interval, so the next refusal can only be the daily limit
    blocked = send(clean_stack.a, MOBILE)
    assert blocked.status_code == 429
    assert blocked.json()["msg"] == "该手机号今日获取验证码的次数已达上限"
    assert int(blocked.headers["Retry-After"]) > 86_000


def test_the_ip_limit_holds_across_api_processes(clean_stack: Stack) -> None:
    for index in range(IP_HOURLY):
        server = clean_stack.a if index % 2 else clean_stack.b
        assert send(server, f"1390013900{index}").status_code == 200
    for server in (clean_stack.a, clean_stack.b):
        blocked = send(server, "13700137000")
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) > 3_500
        checked = httpx.get(server + "/api/v1/user/mobile/check_mobile/", params={"mobile": MOBILE}, timeout=10)
        assert checked.status_code == 429


async def _at_once(requests: list[tuple[str, str, dict[str, str]]]) -> list[int]:
    async with httpx.AsyncClient(timeout=20) as client:
        replies = await asyncio.gather(*(client.post(server + path, json=body) for server, path, body in requests))
    return [reply.status_code for reply in replies]


def test_concurrent_sends_and_logins_on_both_servers_pass_once(clean_stack: Stack) -> None:
    stack = clean_stack
    statuses = asyncio.run(_at_once([(server, SEND, {"mobile": MOBILE}) for server in (stack.a, stack.b) * 10]))
    assert sorted(statuses) == [200] + [429] * 19
    with sms_worker(stack.env, stack.logs / "worker-concurrent.log"):
        code = outbox_code(stack.env, MOBILE)
    logins = [(server, LOGIN, {"mobile": MOBILE, "code": code}) for server in (stack.a, stack.b) * 5]
    assert sorted(asyncio.run(_at_once(logins))) == [200] + [400] * 9


def test_a_worker_retries_a_failing_tencent_call_then_records_the_failure(clean_stack: Stack) -> None:
    stack = clean_stack
    fake = FakeTencent(["http:500"] * 3)
    try:
        worker_env = stack.env | fake.settings(LUFFY_TENCENT_TIMEOUT_SECONDS="1")
        with sms_worker(worker_env, stack.logs / "worker-tencent.log"):
            assert send(stack.a, MOBILE).status_code == 200
            [row] = asyncio.run(settled_sms(stack.database_url, MOBILE, wait=30))
    finally:
        fake.close()
    assert len(fake.requests) == 3
    assert all(request["signed"] for request in fake.requests)
    assert (row.provider, row.status, row.attempts) == ("tencent", "failed", 3)
    assert row.error.count("HTTP 500") == 3


def test_redis_dying_under_a_running_server_is_503(postgres_url: str, tmp_path: Path) -> None:
    if os.environ.get("LUFFY_TEST_REDIS_URL"):
        pytest.skip("needs a Redis of its own to stop")
    asyncio.run(truncate_all(postgres_url))
    try:
        own_redis = redis_server()
        redis_url = own_redis.__enter__()
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    stopped = False
    try:
        env = luffy_env(postgres_url, redis_url, tmp_path / "data")
        with api_server(env, tmp_path / "api.log") as server:
            assert send(server, MOBILE).status_code == 200
            own_redis.__exit__(None, None, None)
            stopped = True
            for reply in (
                send(server, "13900139000"),
                httpx.post(server + LOGIN, json={"mobile": MOBILE, "code": "1234"}, timeout=10),
            ):
                assert reply.status_code == 503
                assert reply.json() == {"code": 888, "msg": "短信服务暂不可用，请稍后再试"}
    finally:
        if not stopped:
            own_redis.__exit__(None, None, None)
