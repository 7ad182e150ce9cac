"""What a security review of the API found (issue 14), each finding guarded by the tests of its section.

The sections follow the issue's list: 1. SMS codes in logs, 2. forged client addresses, 3. deeply
nested JSON, 4. searches that starve the server, 5. ``/media/`` edge cases, 6. tokens for impossible
users, 7. the ``Host`` header in page links, 8. body sizes, 9. file permissions, 10. several
workers without Redis. Then the response headers a scanner expects, and per-IP limits over IPv6.
Database tests run on SQLite and PostgreSQL; process tests run real ``luffy serve`` processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.testing import AsyncTestClient
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.app import create_app
from luffy.cache import make_cache_store, make_redis
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.settings import Settings, SettingsError, load_settings
from luffy.user.auth import issue_token
from luffy.user.codes import CodeStore, RedisCodeStore
from luffy.user.limits import client_key
from luffy.user.models import SmsLog
from luffy.user.services import deliver_code
from luffy.user.sms_providers import ConsoleSmsProvider
from tests.conftest import TEST_SECRET, truncate_all
from tests.support.logs import LogRecords, captured_logs
from tests.support.processes import LuffyProcess, healthy, run_luffy, wait_until
from tests.support.seckill_support import create_users
from tests.support.services import free_port
from tests.support.user_helpers import delivered_code

MOBILE = "13800138000"
SEND = "/api/v1/user/mobile/send_sms/"
LOGIN = "/api/v1/user/mobile/login/"
CHECK = "/api/v1/user/mobile/check_mobile/"
ME = "/api/v1/user/me/"
SECKILL = "/api/v1/user/sckill/"
SEARCH = "/api/v1/course/search/"
NOT_FOUND = {"code": 999, "msg": "资源不存在"}

SettingsFactory = Callable[..., Settings]


@pytest.fixture
def luffy_log() -> Iterator[LogRecords]:
    with captured_logs("luffy") as records:
        yield records


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    return {
        "LUFFY_DATA_DIR": str(tmp_path),
        "LUFFY_DATABASE_URL": "postgresql://luffy:secret@db.internal:5432/luffy",
        "LUFFY_SECRET_KEY": TEST_SECRET,
        **overrides,
    }


def token_for(app: Litestar, user_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(app.state.jwt_auth, user_id, 'someone')}"}


# --- 1. SMS codes never reach a log anyone can read -------------------------------------------------


def test_production_refuses_to_start_without_an_explicit_sms_provider(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(production_env(tmp_path))
    assert raised.value.variable == "LUFFY_SMS_PROVIDER"
    assert load_settings(production_env(tmp_path, LUFFY_SMS_PROVIDER="console")).sms_provider == "console"


def test_luffy_serve_in_production_without_a_provider_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    result = run_luffy(production_env(tmp_path), "serve")
    assert result.returncode == 2
    assert "LUFFY_SMS_PROVIDER" in result.stderr
    assert "Traceback" not in result.stderr


async def test_no_code_is_logged_while_sending_and_logging_in(
    client: AsyncTestClient[Litestar], settings: Settings, luffy_log: LogRecords
) -> None:
    assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
    code = await delivered_code(settings.database_url, MOBILE)
    assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": code})).status_code == 200
    assert any(f"SMS to {MOBILE}" in record.getMessage() for record in luffy_log.records)
    assert f"验证码是{code}" not in luffy_log.text


async def _console_message(settings: Settings, cache: Store, codes: CodeStore) -> str:
    """What the SMS log keeps of a code the console provider sent."""
    config = make_sqlalchemy_config(settings)
    try:
        await codes.put(MOBILE, "4321", "s" * 32, 300)
        async with session_scope(config) as session:
            assert await deliver_code(session, cache, ConsoleSmsProvider(), settings, MOBILE, "s" * 32) == "sent"
            return (await session.execute(select(SmsLog.message))).scalar_one()
    finally:
        await config.get_engine().dispose()


async def test_the_sms_log_masks_codes_in_production_even_with_the_console_provider(
    clean_database: str, redis_url: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(clean_database, redis_url)
    client = make_redis(settings)
    try:
        message = await _console_message(settings, make_cache_store(settings), RedisCodeStore(client))
    finally:
        await client.aclose()
    assert "4321" not in message
    assert "验证码是****" in message


async def test_the_sms_log_keeps_codes_in_embedded_mode_for_the_outbox(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await client.post(SEND, json={"mobile": MOBILE})
    assert (await delivered_code(settings.database_url, MOBILE)).isdigit()


# --- 2. a client cannot choose the address its limits are counted on -------------------------------


@pytest.mark.parametrize("trusted", ["*", "10.0.0.0/8, *"])
def test_trusting_every_proxy_is_refused_with_a_clear_error(tmp_path: Path, trusted: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_TRUSTED_PROXIES": trusted})
    assert raised.value.variable == "LUFFY_TRUSTED_PROXIES"
    assert "any client" in str(raised.value)


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::1", "::/64"),
        ("not-an-ip", "invalid"),
        ("203.0.113.7, 198.51.100.1", "invalid"),
        ("", "invalid"),
    ],
)
def test_limits_key_on_the_address_or_the_ipv6_64_and_never_on_garbage(host: str, key: str) -> None:
    assert client_key(host) == key


# --- 3. deeply nested JSON is a client error ------------------------------------------------------

# Under the 4 KB body cap, and deeper than the JSON decoder goes.
NESTED = b"[" * 2_000 + b"]" * 2_000


async def test_deeply_nested_json_is_a_400_without_a_traceback(
    client: AsyncTestClient[Litestar], luffy_log: LogRecords
) -> None:
    headers = {"Content-Type": "application/json", **token_for(client.app, 1)}
    for path in (SEND, LOGIN, SECKILL):
        response = await client.post(path, content=b'{"mobile": ' + NESTED + b"}", headers=headers)
        assert response.status_code == 400, path
        assert response.json() == {"code": 999, "msg": "请求体嵌套过深"}
    assert "unhandled" not in luffy_log.text
    assert "RecursionError" not in luffy_log.text


# --- 4. searches cannot starve the server ---------------------------------------------------------


def seed_demo(settings: Settings, courses: int) -> None:
    env = {
        "LUFFY_DATA_DIR": str(settings.data_dir),
        "LUFFY_DATABASE_URL": settings.database_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }
    seeded = run_luffy(env, "seed", "--demo", str(courses), timeout=300)
    assert seeded.returncode == 0, seeded.stderr


async def test_deep_search_pages_are_refused_with_400(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get(SEARCH, params={"search": "a", "page": 300, "page_size": 50})
    assert response.status_code == 400
    assert response.json()["code"] == 999
    assert response.json()["errors"][0]["field"] == "page"
    assert (await client.get(SEARCH, params={"search": "a", "page": 21, "page_size": 50})).status_code == 400
    # The list without a search pages as deep as it goes (past the last page is the usual 404).
    assert (await client.get("/api/v1/course/list/", params={"page": 300, "page_size": 50})).status_code == 404


async def test_a_search_counts_and_pages_through_at_most_1000_matches(
    settings: Settings, client: AsyncTestClient[Litestar]
) -> None:
    seed_demo(settings, 1_500)
    first = (await client.get(SEARCH, params={"search": "期", "page_size": 50})).json()
    assert first["count"] == 1_000
    last = (await client.get(SEARCH, params={"search": "期", "page": 20, "page_size": 50})).json()
    assert len(last["results"]) == 50
    assert last["next"] is None
    everything = (await client.get("/api/v1/course/list/", params={"page_size": 1})).json()
    assert everything["count"] > 1_000


async def test_a_search_on_a_large_catalogue_uses_the_trigram_index_on_postgresql(
    postgres_url: str, make_settings: SettingsFactory
) -> None:
    from luffy.course.services import _page_statements

    await truncate_all(postgres_url)
    settings = make_settings(postgres_url)
    seed_demo(settings, 20_000)
    engine = create_async_engine(postgres_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("ANALYZE luffy_course"))
            for statement in _page_statements((("orders", False),), False, True):
                compiled = statement.compile(dialect=connection.dialect)
                values = compiled.construct_params({"name_pattern": "%12345%", "limit": 10, "offset": 0})
                arguments = tuple(values[name] for name in compiled.positiontup or ())
                rows = await connection.exec_driver_sql(f"EXPLAIN {compiled}", arguments)
                plan = "\n".join(row[0] for row in rows)
                assert "ix_luffy_course_name_trgm" in plan, plan
    finally:
        await engine.dispose()
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        found = (await client.get(SEARCH, params={"search": "12345"})).json()
    assert found["results"]
    assert all("12345" in course["name"] for course in found["results"])


async def _hold_every_connection(held: AsyncExitStack, app: Litestar) -> None:
    """Check out every connection the app's pool may open, as slow queries would."""
    engine = app.state.sqlalchemy_config.get_engine()
    for _ in range(engine.pool.size() + max(engine.pool._max_overflow, 0)):  # type: ignore[attr-defined]
        await held.enter_async_context(engine.connect())


async def test_health_answers_while_every_database_connection_is_busy(
    clean_database: str, make_settings: SettingsFactory
) -> None:
    settings = make_settings(clean_database, LUFFY_DB_POOL_SIZE="2")
    app = create_app(settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client, AsyncExitStack() as held:
        await _hold_every_connection(held, app)
        started = time.monotonic()
        response = await client.get("/health")
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.json()["database"] == "ok"
    assert elapsed < 1.5


# --- 5. /media/ serves files under the media root and nothing else --------------------------------


@pytest.mark.parametrize("path", ["/media/a%00b.png", "/media/courses/%00", "/media/%00/../secret_key"])
async def test_a_nul_byte_in_a_media_path_is_a_404(client: AsyncTestClient[Litestar], path: str) -> None:
    response = await client.get(path)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


async def test_a_missing_non_ascii_media_path_is_a_404_that_does_not_echo_it(
    client: AsyncTestClient[Litestar],
) -> None:
    response = await client.get("/media/课程/不存在的图片.png")
    assert (response.status_code, response.json()) == (404, NOT_FOUND)
    assert "不存在的图片" not in response.text


async def test_symbolic_links_in_the_media_root_are_never_followed(
    client: AsyncTestClient[Litestar], settings: Settings, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0")
    media = settings.media_root
    (media / "real.txt").write_text("a real media file")
    (media / "leak.txt").symlink_to(outside / "passwd")
    (media / "leakdir").symlink_to(outside, target_is_directory=True)
    (media / "inside.txt").symlink_to(media / "real.txt")
    (media / "key").symlink_to(settings.data_dir / "secret_key")
    assert (await client.get("/media/real.txt")).text == "a real media file"
    for path in ("/media/leak.txt", "/media/leakdir/passwd", "/media/inside.txt", "/media/key"):
        response = await client.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND), path


# --- 6. a signed token for a user that cannot exist -----------------------------------------------


@pytest.mark.parametrize("user_id", [10**30, 2**63, -1, 0])
async def test_a_signed_token_with_an_out_of_range_user_id_is_a_401(
    client: AsyncTestClient[Litestar], user_id: int
) -> None:
    headers = token_for(client.app, user_id)
    for response in (
        await client.get(ME, headers=headers),
        await client.post(SECKILL, json={"goods_id": 1}, headers=headers),
        await client.get(SECKILL, params={"task_id": "x"}, headers=headers),
    ):
        assert response.status_code == 401
        assert response.json()["code"] == 999


# --- 7. page links never carry the request's Host header ------------------------------------------


async def test_page_links_are_built_on_the_backend_url_not_the_host_header(
    client: AsyncTestClient[Litestar], seeded: Settings
) -> None:
    headers = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    first = (await client.get("/api/v1/course/actual/", params={"page_size": 1}, headers=headers)).json()
    assert first["next"] == f"{seeded.backend_url}/api/v1/course/actual/?page_size=1&page=2"
    second = (await client.get(first["next"].removeprefix(seeded.backend_url), headers=headers)).json()
    assert second["previous"] == f"{seeded.backend_url}/api/v1/course/actual/?page_size=1"
    assert "evil" not in json.dumps([first, second])


# --- 8. every small-body JSON endpoint has the same small cap -------------------------------------


ALIPAY_NOTIFICATION = "/api/v1/order/success/"


async def test_every_api_post_refuses_a_body_over_4_kb(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    from litestar.routes import HTTPRoute

    # A real, enabled user: routes that look the user up must get past authentication to the body.
    [user_id] = await create_users(make_sqlalchemy_config(settings), 1)

    paths = [
        path
        for route in client.app.routes
        if isinstance(route, HTTPRoute) and "POST" in route.methods and route.path.startswith("/api/v1/")
        for path in [route.path + "/"]
    ]
    assert "/api/v1/user/sckill/" in paths
    # Alipay's form-encoded notification is not a small JSON body: it has its own, larger cap (below).
    paths.remove(ALIPAY_NOTIFICATION)
    body = json.dumps({"goods_id": 1, "mobile": MOBILE, "padding": "x" * 5_000})
    headers = {"Content-Type": "application/json", **token_for(client.app, user_id)}
    for path in paths:
        response = await client.post(path, content=body, headers=headers)
        assert response.status_code == 413, path
        assert response.json()["code"] == 999


async def test_the_payment_notification_refuses_a_body_over_its_own_cap(client: AsyncTestClient[Litestar]) -> None:
    from luffy.order.controllers import NOTIFICATION_MAX_BODY_BYTES

    form = "notify_id=" + "x" * NOTIFICATION_MAX_BODY_BYTES
    response = await client.post(
        ALIPAY_NOTIFICATION, content=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == 999


# --- 9. secrets on disk are private from their first byte -----------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    """Files a process creates are world-readable unless it asks otherwise."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_the_secret_key_file_is_created_owner_only_without_a_later_chmod(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_umask: None
) -> None:
    def no_chmod(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the key file was created readable, then chmod-ed")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    key = load_settings({"LUFFY_DATA_DIR": str(tmp_path / "data")}).secret_key
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_text() == key
    assert [path.name for path in (tmp_path / "data").iterdir()] == ["secret_key"]


async def test_the_sqlite_file_and_its_journal_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    settings = load_settings({"LUFFY_DATA_DIR": str(tmp_path / "data")})
    config = make_sqlalchemy_config(settings)
    database = tmp_path / "data" / "luffy.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    try:
        async with config.get_engine().begin() as connection:
            await connection.execute(text("CREATE TABLE probe (id INTEGER)"))
            wal = tmp_path / "data" / "luffy.sqlite3-wal"
            assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        await config.get_engine().dispose()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


# --- 10. several API workers need Redis to share their limits --------------------------------------


def test_serve_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    result = run_luffy({"LUFFY_DATA_DIR": str(tmp_path)}, "serve", "--workers", "2", "--port", str(free_port()))
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "LUFFY_REDIS_URL" in result.stderr
    assert "Luffy API on" not in result.stdout


# --- response headers -----------------------------------------------------------------------------


async def test_every_response_says_nosniff_and_no_hsts_over_http(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/health", "/api/v1/course/category/", "/media/missing.png", "/nowhere", ME):
        response = await client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert "strict-transport-security" not in response.headers, path


async def test_hsts_is_sent_when_the_backend_url_is_https(clean_database: str, make_settings: SettingsFactory) -> None:
    settings = make_settings(clean_database, LUFFY_BACKEND_URL="https://api.example.com")
    async with AsyncTestClient(app=create_app(settings), base_url="https://api.example.com") as client:
        for path in ("/health", "/api/v1/course/category/", "/media/missing.png"):
            response = await client.get(path)
            assert response.headers["strict-transport-security"].startswith("max-age="), path
            assert response.headers["x-content-type-options"] == "nosniff"


# --- real servers: forwarded addresses, IPv6 clients, the Server header ---------------------------


@contextmanager
def serving(env: dict[str, str], log: Path, *, host: str = "127.0.0.1", server: str = "granian") -> Iterator[str]:
    """``luffy serve`` (migrated, embedded) on ``host``; yields its base URL."""
    migrated = run_luffy(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    port = free_port()
    base = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    process = LuffyProcess(env, ("serve", "--host", host, "--port", str(port), "--server", server), log)
    try:
        wait_until(lambda: healthy(base), timeout=30, what=f"luffy serve on {base}")
        yield base
    finally:
        process.stop()


def _check_statuses(base: str, forwarded: list[str | None]) -> list[int]:
    statuses = []
    for value in forwarded:
        headers = {"X-Forwarded-For": value} if value is not None else {}
        statuses.append(httpx.get(base + CHECK, params={"mobile": MOBILE}, headers=headers, timeout=10).status_code)
    return statuses


@pytest.mark.slow
def test_behind_a_trusted_proxy_the_limit_keys_on_the_address_the_proxy_saw(tmp_path: Path) -> None:
    env = {"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_TRUSTED_PROXIES": "127.0.0.1", "LUFFY_SMS_IP_HOURLY_LIMIT": "2"}
    with serving(env, tmp_path / "serve.log") as base:
        # The client writes the left part; the proxy appends the address it saw.
        assert _check_statuses(base, [f"198.51.100.{i}, 203.0.113.9" for i in range(3)]) == [200, 200, 429]
        # Garbage from the proxy never mints a fresh key per value.
        assert _check_statuses(base, [f"garbage-{i}" for i in range(3)]) == [200, 200, 429]
        assert _check_statuses(base, ["203.0.113.10"]) == [200]


@pytest.mark.slow
def test_an_ipv6_client_is_limited_on_its_64(tmp_path: Path) -> None:
    env = {"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_SMS_IP_HOURLY_LIMIT": "2"}
    with serving(env, tmp_path / "serve.log", host="::1") as base:
        assert _check_statuses(base, [None, None, None]) == [200, 200, 429]

    async def ipv6_counter() -> bytes | None:
        return await FileStore(tmp_path / "cache").get("sms_limit:ip:::/64")

    assert asyncio.run(ipv6_counter()) is not None


@pytest.mark.slow
@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_real_servers_send_nosniff_and_no_server_version(tmp_path: Path, server: str) -> None:
    with serving({"LUFFY_DATA_DIR": str(tmp_path)}, tmp_path / "serve.log", server=server) as base:
        for path in ("/health", "/api/v1/course/category/", "/media/missing.png"):
            response = httpx.get(base + path, timeout=10)
            assert response.headers["x-content-type-options"] == "nosniff"
            assert not any(character.isdigit() for character in response.headers.get("server", "")), response.headers
