"""Registration and password login through the HTTP API, on SQLite and PostgreSQL, embedded and on Redis.

A wrong password, an unknown user and a disabled user get the same reply; failures lock the account
(429 with Retry-After, the right password included) and count against the client IP.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from luffy.user.models import User
from luffy.user.passwords import make_password, verify_password
from luffy.user.services import create_user
from tests import test_user_api
from tests.support.database import execute_sql
from tests.support.user_helpers import me_after_login
from tests.test_user_api import SEND, SettingsFactory, closed_port_url, count_rows, running, sms_code

# The SMS tests' fixtures: both caches (embedded, Redis), and both databases or SQLite only.
cache_url = test_user_api.cache_url
sms_settings = test_user_api.sms_settings
sqlite_only = test_user_api.sqlite_only

MOBILE = "13800138000"
PASSWORD = "luffy-2026"
REGISTER = "/api/v1/user/user/mobile_register/"
LOGIN = "/api/v1/user/user/mul_login/"
ME = "/api/v1/user/me/"
FAILED = {"code": 999, "msg": "用户名或密码错误"}


async def make_user(database_url: str, **fields: Any) -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with AsyncSession(engine) as session:
            user_id = await create_user(session, **({"password": PASSWORD} | fields))
            await session.commit()
            return user_id
    finally:
        await engine.dispose()


async def stored_password(database_url: str, user_id: int) -> str:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(select(User.password).where(User.id == user_id))).scalar_one()
    finally:
        await engine.dispose()


async def test_register_then_log_in_by_username_mobile_and_email_then_me(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    async with running(settings) as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        code = await sms_code(settings, MOBILE)
        registered = await client.post(REGISTER, json={"mobile": MOBILE, "code": code, "password": PASSWORD})
        assert registered.status_code == 200, registered.text
        assert registered.json() == {"code": 100, "msg": "注册成功"}
        await execute_sql(settings.database_url, update(User).values(email="Luffy@Example.com"))

        for name in (MOBILE, "luffy@example.com", "LUFFY@example.COM"):
            login = await client.post("/api/v1/user/login", json={"username": name, "password": PASSWORD})
            me = await me_after_login(client, login, MOBILE)
            assert {key: me.json()[key] for key in ("username", "mobile", "email")} == {
                "username": MOBILE,
                "mobile": MOBILE,
                "email": "Luffy@Example.com",
            }
    assert (await stored_password(settings.database_url, me.json()["id"])).startswith("argon2$argon2id$v=19$")


async def test_a_user_with_another_username_logs_in_by_it_and_by_mobile(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only()
    await make_user(settings.database_url, username="路飞_luffy", mobile=MOBILE)
    async with running(settings) as client:
        for name in ("路飞_luffy", MOBILE):
            login = await client.post(LOGIN, json={"username": name, "password": PASSWORD})
            assert login.status_code == 200, login.text
            assert login.json()["username"] == "路飞_luffy"


async def test_registration_refusals(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    await make_user(settings.database_url, username="taken", mobile="13900139000")
    async with running(settings) as client:
        weak = {
            "short-1": "密码不能少于8个字符",
            "x" * 129: "密码不能超过128个字符",
            "1234567890": "密码不能全是数字",
        }
        for password, message in weak.items():
            reply = await client.post(REGISTER, json={"mobile": MOBILE, "code": "1234", "password": password})
            assert reply.status_code == 400
            assert reply.json()["msg"] == message
            assert reply.json()["errors"] == [{"field": "password", "message": message}]

        no_code = await client.post(REGISTER, json={"mobile": MOBILE, "code": "1234", "password": PASSWORD})
        assert no_code.status_code == 400
        assert no_code.json()["msg"] == "验证码不存在或已过期，请重新获取"

        assert (await client.post(SEND, json={"mobile": "13900139000"})).status_code == 200
        code = await sms_code(settings, "13900139000")
        taken = await client.post(REGISTER, json={"mobile": "13900139000", "code": code, "password": PASSWORD})
        assert taken.status_code == 400
        assert taken.json()["msg"] == "该手机号已注册"
        burnt = await client.post(REGISTER, json={"mobile": "13900139000", "code": code, "password": PASSWORD})
        assert burnt.json()["msg"] == "验证码不存在或已过期，请重新获取"

        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        code = await sms_code(settings, MOBILE)
        wrong = "0000" if code != "0000" else "1111"
        for _ in range(4):
            reply = await client.post(REGISTER, json={"mobile": MOBILE, "code": wrong, "password": PASSWORD})
            assert reply.json()["msg"] == "验证码错误"
        voided = await client.post(REGISTER, json={"mobile": MOBILE, "code": wrong, "password": PASSWORD})
        assert voided.json()["msg"] == "验证码错误次数过多，请重新获取"
        late = await client.post(REGISTER, json={"mobile": MOBILE, "code": code, "password": PASSWORD})
        assert late.status_code == 400
    assert await count_rows(settings.database_url, User) == 1


async def test_wrong_password_unknown_user_and_disabled_user_get_the_same_400(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    await make_user(settings.database_url, username="zoro", mobile="13900139000")
    await make_user(settings.database_url, username="nami", mobile="13700137000")
    await execute_sql(settings.database_url, update(User).where(User.username == "nami").values(is_active=False))
    async with running(settings) as client:
        replies = [
            await client.post(LOGIN, json={"username": "zoro", "password": "wrong-password"}),
            await client.post(LOGIN, json={"username": "nobody", "password": PASSWORD}),
            await client.post(LOGIN, json={"username": "13600136000", "password": PASSWORD}),
            await client.post(LOGIN, json={"username": "nobody@example.com", "password": PASSWORD}),
            await client.post(LOGIN, json={"username": "nami", "password": PASSWORD}),
        ]
    assert [(reply.status_code, reply.json()) for reply in replies] == [(400, FAILED)] * len(replies)


async def test_a_user_without_a_password_cannot_log_in_with_one(sqlite_only: SettingsFactory) -> None:
    """Users made by SMS login have Django's unusable password (``!...``): nothing matches it."""
    settings = sqlite_only()
    user_id = await make_user(settings.database_url, username="usopp", mobile=MOBILE)
    await execute_sql(settings.database_url, update(User).values(password="!" + "x" * 40))
    async with running(settings) as client:
        for password in ("!" + "x" * 40, "", PASSWORD):
            reply = await client.post(LOGIN, json={"username": "usopp", "password": password})
            assert (reply.status_code, reply.json()) == (400, FAILED)
    assert await stored_password(settings.database_url, user_id) == "!" + "x" * 40


async def test_failures_lock_the_account_with_retry_after_even_for_the_right_password(
    sms_settings: SettingsFactory,
) -> None:
    # A window long enough for three Argon2 checks on a busy machine; the test then waits it out.
    settings = sms_settings(LUFFY_LOGIN_MAX_FAILURES="3", LUFFY_LOGIN_LOCK_SECONDS="8")
    await make_user(settings.database_url, username="sanji", mobile=MOBILE, email="sanji@example.com")
    async with running(settings) as client:
        # username, mobile and email name one account: their failures add up
        for name in ("sanji", MOBILE, "sanji@example.com"):
            reply = await client.post(LOGIN, json={"username": name, "password": "wrong-password"})
            assert (reply.status_code, reply.json()) == (400, FAILED)
        for password in ("wrong-password", PASSWORD):
            locked = await client.post(LOGIN, json={"username": "sanji", "password": password})
            assert locked.status_code == 429
            assert locked.json() == {"code": 999, "msg": f"登录失败次数过多，请{locked.headers['Retry-After']}秒后再试"}
            assert 1 <= int(locked.headers["Retry-After"]) <= 8
        other = await client.post(LOGIN, json={"username": "someone-else", "password": "wrong-password"})
        assert other.status_code == 400
        await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.1)  # the lock's window passing
        assert (await client.post(LOGIN, json={"username": "sanji", "password": PASSWORD})).status_code == 200


async def test_an_unknown_name_locks_like_a_known_one(sqlite_only: SettingsFactory) -> None:
    """Otherwise the lockout itself would tell which accounts exist."""
    settings = sqlite_only(LUFFY_LOGIN_MAX_FAILURES="2")
    await make_user(settings.database_url, username="robin", mobile=MOBILE)
    async with running(settings) as client:
        for name in ("robin", "franky"):
            codes = [
                (await client.post(LOGIN, json={"username": name, "password": "wrong-password"})).status_code
                for _ in range(3)
            ]
            assert codes == [400, 400, 429], name


async def test_failures_count_against_the_client_ip(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_LOGIN_IP_HOURLY_LIMIT="3")
    await make_user(settings.database_url, username="brook", mobile=MOBILE)
    async with running(settings) as client:
        assert (await client.post(LOGIN, json={"username": "brook", "password": PASSWORD})).status_code == 200
        for name in ("a", "b", "c"):
            assert (await client.post(LOGIN, json={"username": name, "password": PASSWORD})).status_code == 400
        blocked = await client.post(LOGIN, json={"username": "brook", "password": PASSWORD})
    assert blocked.status_code == 429
    assert blocked.json() == {"code": 999, "msg": "请求过于频繁，请稍后再试"}
    assert 3_500 < int(blocked.headers["Retry-After"]) <= 3_600


async def test_concurrent_guesses_cannot_pass_the_lockout(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_LOGIN_MAX_FAILURES="3")
    await make_user(settings.database_url, username="jinbe", mobile=MOBILE)
    async with running(settings) as client:
        replies = await asyncio.gather(
            *(client.post(LOGIN, json={"username": "jinbe", "password": f"guess-{n:04d}"}) for n in range(8))
        )
    assert sorted(reply.status_code for reply in replies) == [400] * 3 + [429] * 5


async def test_login_is_503_when_redis_is_down(clean_database: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(clean_database, closed_port_url())
    await make_user(clean_database, username="chopper", mobile=MOBILE)
    async with running(settings) as client:
        reply = await client.post(LOGIN, json={"username": "chopper", "password": PASSWORD})
    assert reply.status_code == 503
    assert reply.json() == {"code": 888, "msg": "登录服务暂不可用，请稍后再试"}


async def test_an_unknown_user_costs_the_same_hashing_as_a_wrong_password() -> None:
    encoded = make_password(PASSWORD)
    await verify_password("warm-up", None)

    async def fastest(stored: str | None) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            assert not (await verify_password("wrong-password", stored)).ok
            times.append(time.perf_counter() - start)
        return min(times)

    known, unknown = await fastest(encoded), await fastest(None)
    assert 0.5 < unknown / known < 2, (known, unknown)


async def test_the_front_ends_paths_and_openapi(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only()
    await make_user(settings.database_url, username="luffy", mobile=MOBILE)
    async with running(settings) as client:
        for path in ("/api/v1/user/user/mul_login", "/api/v1/user/login/", "/api/v1/user/login"):
            assert (await client.post(path, json={"username": "luffy", "password": PASSWORD})).status_code == 200
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in (
        "/api/v1/user/user/mobile_register",
        "/api/v1/user/register",
        "/api/v1/user/user/mul_login",
        "/api/v1/user/login",
    ):
        assert set(paths[path]) == {"post"}


HOSTILE_VALUES: list[Any] = [
    None,
    12345678,
    1.5,
    True,
    [],
    {"$ne": ""},
    "",
    "x" * 3000,
    "路飞" * 500,
    "\u0000" * 10,
    "a\u0000b",
    "🏴‍☠️" * 40,
    "' OR 1=1 --",
    "\u202e" + "1380013800",
]


@pytest.mark.parametrize("field", ["username", "password"])
async def test_hostile_login_fields_are_4xx(sms_settings: SettingsFactory, field: str) -> None:
    settings = sms_settings(LUFFY_LOGIN_IP_HOURLY_LIMIT="1000", LUFFY_LOGIN_MAX_FAILURES="1000")
    await make_user(settings.database_url, username="luffy", mobile=MOBILE)
    async with running(settings) as client:
        for value in HOSTILE_VALUES:
            body = {"username": "luffy", "password": PASSWORD, field: value}
            reply = await client.post(LOGIN, json=body)
            assert 400 <= reply.status_code < 500, (value, reply.text)
            assert reply.json()["code"] == 999
        for raw in (
            b"",
            b"[]",
            b"null",
            b"{",
            b'{"username": "a"}',
            b"\xff\xfe",
            b'{"username":"' + b"a" * 5000 + b'"}',
        ):
            reply = await client.post(LOGIN, content=raw, headers={"Content-Type": "application/json"})
            assert 400 <= reply.status_code < 500, (raw[:20], reply.text)


@pytest.mark.parametrize("field", ["mobile", "code", "password"])
async def test_hostile_registration_fields_are_4xx(sms_settings: SettingsFactory, field: str) -> None:
    settings = sms_settings()
    async with running(settings) as client:
        for value in HOSTILE_VALUES:
            body = {"mobile": MOBILE, "code": "1234", "password": PASSWORD, field: value}
            reply = await client.post(REGISTER, json=body)
            assert 400 <= reply.status_code < 500, (value, reply.text)
            assert reply.json()["code"] == 999
    assert await count_rows(settings.database_url, User) == 0
