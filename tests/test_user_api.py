"""SMS codes, mobile login and /me through the HTTP API, on SQLite and PostgreSQL, embedded and on Redis.

The send task runs on the in-process broker here; ``test_sms_processes`` runs it in real workers.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from taskiq.exceptions import SendTaskError

from luffy.app import create_app
from luffy.cache import make_cache_store
from luffy.settings import Settings
from luffy.user.codes import CodeRecord, code_key, decode_record
from luffy.user.models import SmsLog, User
from tests.conftest import truncate_all
from tests.support.database import execute_sql
from tests.support.sqlcount import count_statements
from tests.support.user_helpers import delivered_code, me_after_login, sms_rows
from tests.support.waiting import eventually

MOBILE = "13800138000"
SEND = "/api/v1/user/mobile/send_sms/"
LOGIN = "/api/v1/user/mobile/login/"
CHECK = "/api/v1/user/mobile/check_mobile/"
ME = "/api/v1/user/me/"

SettingsFactory = Callable[..., Settings]


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        yield client


@pytest.fixture(params=["embedded", "redis"])
def cache_url(request: pytest.FixtureRequest) -> str | None:
    """``None`` for the embedded cache store, else a flushed Redis."""
    if request.param == "embedded":
        return None
    url = request.getfixturevalue("redis_url")
    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture
def sms_settings(clean_database: str, cache_url: str | None, make_settings: SettingsFactory) -> SettingsFactory:
    """Settings on both databases and both caches: ``sms_settings(LUFFY_X=...)``."""
    return lambda **overrides: make_settings(clean_database, cache_url, **overrides)


@pytest.fixture
async def sqlite_only(sqlite_url: str, cache_url: str | None, make_settings: SettingsFactory) -> SettingsFactory:
    """For rules that don't depend on the database: SQLite, both caches."""
    await truncate_all(sqlite_url)
    return lambda **overrides: make_settings(sqlite_url, cache_url, **overrides)


async def cached_record(settings: Settings, mobile: str) -> CodeRecord | None:
    """The code as the cache keeps it (to test expiry without waiting for a delivery)."""
    store = make_cache_store(settings)
    async with store:
        return decode_record(await store.get(code_key(mobile)))


async def cached_code(settings: Settings, mobile: str) -> str:
    record = await cached_record(settings, mobile)
    assert record is not None
    return record.code


async def sms_code(settings: Settings, mobile: str) -> str:
    """The code sent to ``mobile``: from the SMS log embedded (tasks run in the app), else from the cache.

    With Redis the send task waits in the stream for a worker; ``test_sms_processes`` runs real ones.
    """
    if settings.is_embedded:
        return await delivered_code(settings.database_url, mobile)
    return await cached_code(settings, mobile)


async def count_rows(database_url: str, model: type) -> int:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            return (await connection.execute(select(func.count()).select_from(model))).scalar_one()
    finally:
        await engine.dispose()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


async def send_once_the_interval_allows(client: AsyncTestClient[Litestar], mobile: str) -> None:
    """Ask for a new code as soon as the per-mobile interval lets one through (a refusal uses no quota)."""

    async def sent() -> bool:
        reply = await client.post(SEND, json={"mobile": mobile})
        assert reply.status_code in (200, 429), reply.text
        return reply.status_code == 200

    await eventually(sent, within=10, what=f"the interval to let {mobile} ask again")


async def send_and_log_in(client: AsyncTestClient[Litestar], settings: Settings, mobile: str) -> dict[str, object]:
    assert (await client.post(SEND, json={"mobile": mobile})).status_code == 200
    code = await sms_code(settings, mobile)
    response = await client.post(LOGIN, json={"mobile": mobile, "code": code})
    assert response.status_code == 200, response.text
    return response.json()


# --- the flow ------------------------------------------------------------------------------------


async def test_send_login_me_and_the_code_works_once(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    async with running(settings) as client:
        assert (await client.get(CHECK, params={"mobile": MOBILE})).json() == {"code": 101, "msg": "手机号不存在"}

        sent = await client.post(SEND, json={"mobile": MOBILE})
        assert sent.status_code == 200
        assert sent.json() == {"code": 100, "msg": "短信已发送"}
        code = await sms_code(settings, MOBILE)
        assert len(code) == 4
        if settings.is_embedded:
            [row] = await sms_rows(settings.database_url, MOBILE)
            assert (row.provider, row.status, row.attempts, row.error) == ("console", "sent", 1, None)
            assert row.sent_time is not None

        login = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
        me = await me_after_login(client, login, MOBILE)
        assert me.json() == {
            "code": 100,
            "msg": "成功",
            "id": me.json()["id"],
            "username": MOBILE,
            "mobile": MOBILE,
            "email": "",
            "icon": None,
        }
        assert (await client.get(CHECK, params={"mobile": MOBILE})).json() == {"code": 100, "msg": "手机号存在"}

        again = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
        assert again.status_code == 400
        assert again.json() == {"code": 999, "msg": "验证码不存在或已过期，请重新获取"}
    assert await count_rows(settings.database_url, User) == 1


async def test_original_front_end_paths_and_no_trailing_slash(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    async with running(settings) as client:
        assert (await client.get("/api/v1/user/user/send_sms/", params={"mobile": "13900139000"})).status_code == 200
        assert (await client.get("/api/v1/user/mobile/send_sms", params={"mobile": "13700137000"})).status_code == 200
        code = await sms_code(settings, "13900139000")
        login = await client.post("/api/v1/user/user/mobile_login", json={"mobile": "13900139000", "code": code})
        assert login.status_code == 200
        assert login.json()["username"] == "13900139000"
        check = await client.get("/api/v1/user/user/mobile/", params={"mobile": "13900139000"})
        assert check.json() == {"code": 100, "msg": "手机号存在"}
        me = await client.get("/api/v1/user/me", headers={"Authorization": f"Bearer {login.json()['token']}"})
        assert me.status_code == 200


async def test_an_existing_user_keeps_its_id_and_gets_an_absolute_icon_url(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    await execute_sql(settings.database_url, insert(User).values(username="路飞", mobile=MOBILE, icon="icon/luffy.png"))
    async with running(settings) as client:
        body = await send_and_log_in(client, settings, MOBILE)
        assert body["username"] == "路飞"
        assert body["icon"] == "http://testserver.local/media/icon/luffy.png"
        me = (await client.get(ME, headers={"Authorization": f"Bearer {body['token']}"})).json()
        assert (me["username"], me["mobile"], me["icon"]) == (
            "路飞",
            MOBILE,
            "http://testserver.local/media/icon/luffy.png",
        )
    assert await count_rows(settings.database_url, User) == 1


async def test_a_disabled_user_cannot_log_in(sms_settings: SettingsFactory) -> None:
    settings = sms_settings(LUFFY_SMS_MOBILE_INTERVAL_SECONDS="1")
    async with running(settings) as client:
        first = await send_and_log_in(client, settings, MOBILE)
        await execute_sql(settings.database_url, update(User).values(is_active=False))
        assert (await client.get(ME, headers={"Authorization": f"Bearer {first['token']}"})).status_code == 401
        await send_once_the_interval_allows(client, MOBILE)
        code = await cached_code(settings, MOBILE)
        refused = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
    assert refused.status_code == 403
    assert refused.json() == {"code": 999, "msg": "账号已停用"}


# --- codes: wrong, voided, used, expired, no master code ------------------------------------------


async def test_five_wrong_codes_void_the_code(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    async with running(settings) as client:
        await client.post(SEND, json={"mobile": MOBILE})
        code = await sms_code(settings, MOBILE)
        wrong = "0000" if code != "0000" else "1111"
        for _ in range(4):
            response = await client.post(LOGIN, json={"mobile": MOBILE, "code": wrong})
            assert response.status_code == 400
            assert response.json() == {"code": 999, "msg": "验证码错误"}
        fifth = await client.post(LOGIN, json={"mobile": MOBILE, "code": wrong})
        assert fifth.status_code == 400
        assert fifth.json() == {"code": 999, "msg": "验证码错误次数过多，请重新获取"}
        right = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
        assert right.status_code == 400
        assert right.json()["msg"] == "验证码不存在或已过期，请重新获取"
    assert await count_rows(settings.database_url, User) == 0


async def test_four_wrong_codes_still_leave_the_right_one_usable(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only()
    async with running(settings) as client:
        await client.post(SEND, json={"mobile": MOBILE})
        code = await sms_code(settings, MOBILE)
        wrong = "0000" if code != "0000" else "1111"
        for _ in range(4):
            assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": wrong})).status_code == 400
        assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": code})).status_code == 200


async def test_an_expired_code_fails(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_SMS_CODE_TTL="1")
    async with running(settings) as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        code = await cached_code(settings, MOBILE)
        await asyncio.sleep(2.1)  # the point of the test: the code's 1 s TTL runs out
        response = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
    assert response.status_code == 400
    assert response.json() == {"code": 999, "msg": "验证码不存在或已过期，请重新获取"}


async def test_there_is_no_master_code(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_SMS_CODE_LENGTH="4")
    candidates = ["0000", "1111", "1234", "6666", "8888", "9999"]
    async with running(settings) as client:
        for candidate in candidates:  # nobody asked for a code: nothing may log in
            assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": candidate})).status_code == 400
        await client.post(SEND, json={"mobile": MOBILE})
        code = await sms_code(settings, MOBILE)
        for candidate in [c for c in candidates if c != code][:4]:  # stay under the wrong-try limit
            assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": candidate})).status_code == 400
        assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": code})).status_code == 200
    assert await count_rows(settings.database_url, User) == 1


async def test_a_new_code_replaces_the_old_one(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_SMS_MOBILE_INTERVAL_SECONDS="1")
    async with running(settings) as client:
        await client.post(SEND, json={"mobile": MOBILE})
        first = await sms_code(settings, MOBILE)
        await send_once_the_interval_allows(client, MOBILE)
        second = await cached_code(settings, MOBILE)
        if first != second:
            assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": first})).status_code == 400
        assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": second})).status_code == 200


# --- /me -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."],
)
async def test_me_without_a_valid_token_is_401(sqlite_only: SettingsFactory, authorization: str | None) -> None:
    async with running(sqlite_only()) as client:
        headers = {"Authorization": authorization} if authorization else {}
        response = await client.get(ME, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == 999


async def test_me_for_a_disabled_user_is_401(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only()
    async with running(settings) as client:
        body = await send_and_log_in(client, settings, MOBILE)
        await execute_sql(settings.database_url, update(User).values(is_active=False))
        response = await client.get(ME, headers={"Authorization": f"Bearer {body['token']}"})
    assert response.status_code == 401
    assert response.json() == {"code": 999, "msg": "用户不存在或已停用"}


# --- SQL budget --------------------------------------------------------------------------------------


async def test_statement_budget(sms_settings: SettingsFactory) -> None:
    settings = sms_settings()
    app = create_app(settings)
    engine = app.state.sqlalchemy_config.get_engine()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        with count_statements(engine) as statements:
            assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        # Embedded, the send task runs on the app's engine at once: its SMS log writes are not the request's.
        assert [statement for statement in statements if "luffy_sms_log" not in statement] == []
        code = await sms_code(settings, MOBILE)
        with count_statements(engine) as statements:
            login = await client.post(LOGIN, json={"mobile": MOBILE, "code": code})
        assert login.status_code == 200
        assert len(statements) == 1, statements
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}
        with count_statements(engine) as statements:
            assert (await client.get(ME, headers=bearer)).status_code == 200
        assert len(statements) == 1, statements
        with count_statements(engine) as statements:
            assert (await client.get(CHECK, params={"mobile": MOBILE})).status_code == 200
        assert len(statements) == 1, statements


# --- limits --------------------------------------------------------------------------------------------


async def test_one_code_per_mobile_per_interval(sqlite_only: SettingsFactory) -> None:
    async with running(sqlite_only()) as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        again = await client.get(SEND, params={"mobile": MOBILE})
        assert again.status_code == 429
        assert again.json() == {"code": 999, "msg": "验证码发送过于频繁，请60秒后再试"}
        assert 58 <= int(again.headers["Retry-After"]) <= 60
        assert (await client.post(SEND, json={"mobile": "13900139000"})).status_code == 200


async def test_daily_limit_per_mobile(sqlite_only: SettingsFactory) -> None:
    settings = sqlite_only(LUFFY_SMS_MOBILE_INTERVAL_SECONDS="1", LUFFY_SMS_MOBILE_DAILY_LIMIT="2")
    async with running(settings) as client:
        for _ in range(2):
            assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
            await asyncio.sleep(1.05)  # out of the 1 s interval, so the next refusal can only be the daily limit
        third = await client.post(SEND, json={"mobile": MOBILE})
        assert third.status_code == 429
        assert third.json() == {"code": 999, "msg": "该手机号今日获取验证码的次数已达上限"}
        assert 86_000 < int(third.headers["Retry-After"]) <= 86_400
        assert (await client.post(SEND, json={"mobile": "13900139000"})).status_code == 200


async def test_hourly_limit_per_client_ip_counts_mobile_checks(sqlite_only: SettingsFactory) -> None:
    async with running(sqlite_only(LUFFY_SMS_IP_HOURLY_LIMIT="3")) as client:
        assert (await client.get(CHECK, params={"mobile": MOBILE})).status_code == 200
        assert (await client.post(SEND, json={"mobile": "13900139001"})).status_code == 200
        assert (await client.post(SEND, json={"mobile": "13900139002"})).status_code == 200
        blocked = await client.post(SEND, json={"mobile": "13900139003"})
        assert blocked.status_code == 429
        assert blocked.json() == {"code": 999, "msg": "请求过于频繁，请稍后再试"}
        assert 3_500 < int(blocked.headers["Retry-After"]) <= 3_600
        check = await client.get(CHECK, params={"mobile": MOBILE})
        assert check.status_code == 429
        assert "Retry-After" in check.headers


async def test_a_rejected_request_uses_no_quota(sqlite_only: SettingsFactory) -> None:
    async with running(sqlite_only(LUFFY_SMS_IP_HOURLY_LIMIT="2")) as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 429  # interval
        assert (await client.post(SEND, json={"mobile": "13900139000"})).status_code == 200
        assert (await client.post(SEND, json={"mobile": "13700137000"})).status_code == 429  # IP: 2 used


async def test_concurrent_sends_for_one_mobile_pass_once(sqlite_only: SettingsFactory) -> None:
    async with running(sqlite_only()) as client:
        replies = await asyncio.gather(*(client.post(SEND, json={"mobile": MOBILE}) for _ in range(10)))
    assert sorted(reply.status_code for reply in replies) == [200] + [429] * 9


# --- the cache or the queue down: 503, nothing half-done -------------------------------------------------


async def test_redis_down_is_503_and_nothing_is_done(clean_database: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(clean_database, closed_port_url())
    async with running(settings) as client:
        for reply in (
            await client.post(SEND, json={"mobile": MOBILE}),
            await client.get("/api/v1/user/user/send_sms/", params={"mobile": MOBILE}),
            await client.post(LOGIN, json={"mobile": MOBILE, "code": "1234"}),
            await client.get(CHECK, params={"mobile": MOBILE}),
        ):
            assert reply.status_code == 503
            assert reply.json() == {"code": 888, "msg": "短信服务暂不可用，请稍后再试"}
        await asyncio.sleep(0.3)  # nothing to wait for: a stray task would have written by now
    assert await count_rows(clean_database, SmsLog) == 0
    assert await count_rows(clean_database, User) == 0


async def test_a_failed_enqueue_keeps_no_code_and_gives_the_quota_back(
    sqlite_only: SettingsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import luffy.tasks.sms

    async def broker_down(*_args: object) -> None:
        raise SendTaskError

    settings = sqlite_only()
    async with running(settings) as client:
        with monkeypatch.context() as patch:
            patch.setattr(luffy.tasks.sms, "enqueue_sms_code", broker_down)
            failed = await client.post(SEND, json={"mobile": MOBILE})
            assert failed.status_code == 503
            assert failed.json()["code"] == 888
            assert await cached_record(settings, MOBILE) is None
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        assert await sms_code(settings, MOBILE)


async def test_openapi_lists_every_user_endpoint(sqlite_only: SettingsFactory) -> None:
    async with running(sqlite_only()) as client:
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    expected = {
        "/api/v1/user/mobile/check_mobile": {"get"},
        "/api/v1/user/user/mobile": {"get"},
        "/api/v1/user/mobile/send_sms": {"get", "post"},
        "/api/v1/user/user/send_sms": {"get"},
        "/api/v1/user/mobile/login": {"post"},
        "/api/v1/user/user/mobile_login": {"post"},
        "/api/v1/user/me": {"get"},
    }
    assert {path: set(paths[path]) for path in expected} == expected
    login = paths["/api/v1/user/mobile/login"]["post"]
    assert login["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/LoginBody")
    query = paths["/api/v1/user/mobile/send_sms"]["get"]["parameters"]
    assert [(parameter["name"], parameter["in"], parameter["required"]) for parameter in query] == [
        ("mobile", "query", True)
    ]


async def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(sqlite_only: SettingsFactory) -> None:
    """Behind a trusted proxy it is read: ``test_security`` proves that with a real server."""
    from luffy.asgi import build

    settings = sqlite_only(LUFFY_SMS_IP_HOURLY_LIMIT="1")
    async with AsyncTestClient(app=build(settings), base_url="http://testserver.local") as client:
        first = await client.post(SEND, json={"mobile": MOBILE}, headers={"X-Forwarded-For": "203.0.113.1"})
        second = await client.post(SEND, json={"mobile": "13900139000"}, headers={"X-Forwarded-For": "203.0.113.2"})
    assert (first.status_code, second.status_code) == (200, 429)
