"""Where a token may come from, and that a disabled or deleted user's token stops working everywhere.

Embedded mode (the database decides) and production mode (the Redis revocation list, here with
the app in-process and no worker) on SQLite and PostgreSQL; ``test_seckill_production`` repeats
the revocation with real processes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, update

import luffy.user.revocation as revocation
from luffy.app import create_app
from luffy.db import session_scope
from luffy.errors import NotFound
from luffy.seckill.reservations import RedisReservations
from luffy.seckill.services import publish_goods
from luffy.settings import Settings
from luffy.user.models import User
from luffy.user.revocation import REVOKED_KEY, RedisRevocations, rebuild_now
from luffy.user.services import set_user_active
from tests.support.front_end import GET_RESULT, SCKILL, SECKILL, same_origin
from tests.support.seckill_support import HAT, AppClient, create_goods, create_users, running, sale_state

ME = "/api/v1/user/me/"
TASK_ID = "0" * 32


class Api(AppClient):
    """A running app (embedded, or production on Redis without workers) and a client on the test's loop."""

    def bearer(self, user_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user_id)}"}

    async def set_active(self, user_id: int, active: bool) -> None:
        async with session_scope(self.config) as session:
            await set_user_active(session, user_id, active)

    async def load(self, name: str = HAT) -> int:
        """Goods on sale, as ``luffy seckill load`` leaves them (in Redis too, in production)."""
        goods_id = await create_goods(self.config, name=name, stock=10)
        gate = self.app.state.seckill_gate
        if isinstance(gate, RedisReservations):
            async with session_scope(self.config) as session:
                await publish_goods(session, gate)
        return goods_id

    async def statuses(self, headers: dict[str, str]) -> dict[str, int]:
        """The status of every authenticated endpoint for these credentials."""
        replies = {
            "me": await self.client.get(ME, headers=headers),
            "sckill POST": await self.client.post(SCKILL, json={"name": HAT}, headers=headers),
            "sckill GET": await self.client.get(SCKILL, params={"task_id": TASK_ID}, headers=headers),
            "seckill": await self.client.get(SECKILL, headers=headers),
            "get_result": await self.client.get(GET_RESULT, params={"id": TASK_ID}, headers=headers),
        }
        for response in replies.values():
            assert response.json()["code"] in (100, 101, 102, 103, 888, 999), response.text
        return {name: response.status_code for name, response in replies.items()}


@pytest.fixture(params=["embedded", "redis"])
async def mode_redis_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "embedded":
        yield None
        return
    url = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    yield url


@pytest.fixture
async def api(
    clean_database: str, mode_redis_url: str | None, make_settings: Callable[..., Settings]
) -> AsyncIterator[Api]:
    app = create_app(make_settings(clean_database, mode_redis_url))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Api(app, client)


@pytest.fixture
async def sqlite_api(
    sqlite_url: str, mode_redis_url: str | None, make_settings: Callable[..., Settings]
) -> AsyncIterator[Api]:
    """For the rules that don't depend on the database."""
    from tests.conftest import truncate_all

    await truncate_all(sqlite_url)
    app = create_app(make_settings(sqlite_url, mode_redis_url))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Api(app, client)


# --- where the token comes from -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["Bearer", "jwt", "bearer", "JWT"])
async def test_bearer_and_jwt_prefixes_are_accepted(sqlite_api: Api, scheme: str) -> None:
    [user] = await create_users(sqlite_api.config, 1)

    response = await sqlite_api.client.get(ME, headers={"Authorization": f"{scheme} {sqlite_api.token(user)}"})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user


@pytest.mark.parametrize("template", ["Token {}", "Basic {}", "{}", "JWT", "Bearer ", "Bearer\t{}x", "Bearer {}x"])
async def test_other_authorization_headers_are_refused(sqlite_api: Api, template: str) -> None:
    [user] = await create_users(sqlite_api.config, 1)

    response = await sqlite_api.client.get(ME, headers={"Authorization": template.format(sqlite_api.token(user))})

    assert response.status_code == 401
    assert response.json()["code"] == 999


async def test_the_token_cookie_works_on_a_same_origin_request(sqlite_api: Api) -> None:
    [user] = await create_users(sqlite_api.config, 1)

    response = await sqlite_api.client.get(ME, headers=same_origin(sqlite_api.token(user)))

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user


@pytest.mark.parametrize("fetch_site", ["cross-site", "same-site", "none", None, ""])
async def test_the_token_cookie_is_refused_unless_the_browser_says_same_origin(
    sqlite_api: Api, fetch_site: str | None
) -> None:
    """A cross-site page's requests carry the user's cookies too: accepting them would be CSRF."""
    await sqlite_api.load()
    [user] = await create_users(sqlite_api.config, 1)
    headers = {"Cookie": f"token={sqlite_api.token(user)}"}
    if fetch_site is not None:
        headers["Sec-Fetch-Site"] = fetch_site

    statuses = await sqlite_api.statuses(headers)

    assert set(statuses.values()) == {401}, statuses
    assert (await sale_state(sqlite_api.config, 1)).orders == 0


async def test_an_authorization_header_is_used_even_when_a_cookie_is_there(sqlite_api: Api) -> None:
    first, second = await create_users(sqlite_api.config, 2)
    cookie = same_origin(sqlite_api.token(first))

    wrong_header = await sqlite_api.client.get(ME, headers={**cookie, "Authorization": "Bearer nonsense"})
    other_user = await sqlite_api.client.get(ME, headers={**cookie, **sqlite_api.bearer(second)})

    assert wrong_header.status_code == 401
    assert other_user.json()["id"] == second


@pytest.mark.parametrize("value", ["nonsense", "", " ", "令牌", "a" * 5000])
async def test_a_bad_token_cookie_is_a_401(sqlite_api: Api, value: str) -> None:
    headers = {"Cookie": f"token={value}".encode(), "Sec-Fetch-Site": b"same-origin"}
    assert (await sqlite_api.client.get(ME, headers=headers)).status_code == 401


@pytest.mark.parametrize("subject", ["0", "-1", str(2**63), "9" * 40, "1.5", "一", "+1", " 1", "1_0", "１"])
async def test_a_signed_token_for_an_impossible_user_id_is_a_401(sqlite_api: Api, subject: str) -> None:
    token = sqlite_api.app.state.jwt_auth.create_token(identifier=subject)

    statuses = await sqlite_api.statuses({"Authorization": f"Bearer {token}"})

    assert set(statuses.values()) == {401}, statuses


# --- revocation ----------------------------------------------------------------------------------------


async def test_a_disabled_users_token_is_refused_everywhere_at_once(api: Api) -> None:
    goods_id = await api.load()
    [user] = await create_users(api.config, 1)
    for headers in (api.bearer(user), same_origin(api.token(user))):
        assert (await api.client.get(ME, headers=headers)).status_code == 200

    await api.set_active(user, False)

    for headers in (api.bearer(user), same_origin(api.token(user))):
        statuses = await api.statuses(headers)
        assert set(statuses.values()) == {401}, statuses
    refused = await api.client.post(SCKILL, json={"name": HAT}, headers=api.bearer(user))
    assert refused.json() == {"code": 999, "msg": "用户不存在或已停用"}
    await asyncio.sleep(0.2)  # embedded tasks run in-process: give a wrongly queued one time to order
    assert (await sale_state(api.config, goods_id)).orders == 0


async def test_an_enabled_again_user_can_buy_again(api: Api) -> None:
    await api.load()
    [user] = await create_users(api.config, 1)
    await api.set_active(user, False)

    await api.set_active(user, True)

    assert (await api.client.get(ME, headers=api.bearer(user))).status_code == 200
    bought = await api.client.post(SCKILL, json={"name": HAT}, headers=api.bearer(user))
    assert bought.json()["code"] == 100


async def test_other_users_are_not_affected(api: Api) -> None:
    await api.load()
    disabled, other = await create_users(api.config, 2)

    await api.set_active(disabled, False)

    assert (await api.client.get(ME, headers=api.bearer(other))).status_code == 200
    assert (await api.client.post(SCKILL, json={"name": HAT}, headers=api.bearer(other))).json()["code"] == 100


async def test_setting_an_unknown_user_active_says_so(api: Api) -> None:
    async with session_scope(api.config) as session:
        with pytest.raises(NotFound):
            await set_user_active(session, 999_999, False)


async def test_a_user_disabled_directly_in_sql_is_refused_after_the_next_rebuild(api: Api) -> None:
    """Changes made around the hooks reach Redis by the periodic rebuild (embedded: at once)."""
    await api.load()
    [user] = await create_users(api.config, 1)
    async with session_scope(api.config) as session:
        await session.execute(update(User).where(User.id == user).values(is_active=False))

    if isinstance(api.app.state.revocations, RedisRevocations):
        await rebuild_now(api.app.state.revocations, api.config)

    statuses = await api.statuses(api.bearer(user))
    assert set(statuses.values()) == {401}, statuses


@pytest.fixture
async def redis_api(clean_database: str, redis_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[Api]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    app = create_app(make_settings(clean_database, redis_url))
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            yield Api(app, client)


async def _revoked_ids(api: Api) -> set[int]:
    return {int(member) for member in await api.app.state.redis.smembers(REVOKED_KEY)}


async def test_api_start_up_rebuilds_the_list_from_the_database(
    clean_database: str, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(clean_database, redis_url)
    app = create_app(settings)
    disabled, enabled = await create_users(app.state.sqlalchemy_config, 2)
    async with session_scope(app.state.sqlalchemy_config) as session:
        await session.execute(update(User).where(User.id == disabled).values(is_active=False))
    stale = Redis.from_url(redis_url)
    await stale.flushdb()
    await stale.sadd(REVOKED_KEY, enabled)
    await stale.aclose()

    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            api = Api(app, client)
            assert await _revoked_ids(api) == {disabled}
            assert (await client.get(SECKILL, headers=api.bearer(disabled))).status_code == 401
            assert (await client.get(ME, headers=api.bearer(enabled))).status_code == 200


async def test_the_rebuild_keeps_revoked_users_that_were_deleted_and_drops_restored_ones(redis_api: Api) -> None:
    deleted, restored = await create_users(redis_api.config, 2)
    await redis_api.set_active(deleted, False)
    await redis_api.app.state.redis.sadd(REVOKED_KEY, restored)
    async with session_scope(redis_api.config) as session:
        await session.execute(delete(User).where(User.id == deleted))

    await rebuild_now(redis_api.app.state.revocations, redis_api.config)

    assert await _revoked_ids(redis_api) == {deleted}


async def test_a_revocation_made_while_the_rebuild_reads_the_database_is_kept(
    redis_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild watches the set: a hook landing between its read and its write makes it start over."""
    [user] = await create_users(redis_api.config, 1)
    read = revocation.revoked_user_ids
    reads = 0

    async def read_then_revoke(session: object, known: set[int]) -> set[int]:
        nonlocal reads
        reads += 1
        found = await read(session, known)  # type: ignore[arg-type]
        if reads == 1:
            await redis_api.set_active(user, False)
        return found

    monkeypatch.setattr(revocation, "revoked_user_ids", read_then_revoke)

    await rebuild_now(redis_api.app.state.revocations, redis_api.config)

    assert reads == 2
    assert await _revoked_ids(redis_api) == {user}
    assert (await redis_api.client.get(SECKILL, headers=redis_api.bearer(user))).status_code == 401


async def test_a_process_without_an_app_revokes_through_the_redis_its_settings_name(
    clean_database: str, redis_url: str, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CLI process (``luffy user disable``) has no app: the hooks reach Redis from its settings."""
    settings = make_settings(clean_database, redis_url)
    monkeypatch.setattr(revocation, "get_settings", lambda: settings)
    redis = Redis.from_url(redis_url)
    await redis.flushdb()
    app = create_app(settings)
    [user] = await create_users(app.state.sqlalchemy_config, 1)

    async with session_scope(app.state.sqlalchemy_config) as session:
        await set_user_active(session, user, False)
    revoked = await redis.sismember(REVOKED_KEY, str(user))
    async with session_scope(app.state.sqlalchemy_config) as session:
        await set_user_active(session, user, True)
    restored = not await redis.sismember(REVOKED_KEY, str(user))

    await redis.aclose()
    await app.state.sqlalchemy_config.get_engine().dispose()
    assert (revoked, restored) == (True, True)


async def test_an_unreachable_revocation_list_is_a_503_not_a_500(
    clean_database: str, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings(clean_database, "redis://127.0.0.1:1/0"))
    [user] = await create_users(app.state.sqlalchemy_config, 1)
    async with running(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            api = Api(app, client)
            statuses = await api.statuses(api.bearer(user))

    assert statuses == {"me": 200, "sckill POST": 503, "sckill GET": 503, "seckill": 503, "get_result": 503}
