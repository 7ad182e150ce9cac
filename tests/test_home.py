"""``GET /api/v1/home/banner/``: the contract's Home section, served from the cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import msgspec
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import insert, update

from luffy.app import create_app
from luffy.cache import make_cache_store
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.home.models import Banner
from luffy.home.schemas import BannerChanges
from luffy.home.services import BANNER_CACHE_KEY, refresh_banner_cache
from luffy.settings import Settings
from tests.conftest import TEST_SECRET
from tests.support.database import execute_sql
from tests.support.logs import LogRecords, captured_logs
from tests.support.processes import run_luffy
from tests.support.services import free_port
from tests.support.sqlcount import count_statements
from tests.support.waiting import eventually

BANNERS_URL = "/api/v1/home/banner/"
SEEDED_BANNERS = [
    {
        "id": 1,
        "title": "Python开发入门",
        "image": "http://testserver.local/media/banner/banner1.png",
        "link": "/free-course",
        "info": "21天从零学会Python",
    },
    {
        "id": 2,
        "title": "Linux运维精讲",
        "image": "http://testserver.local/media/banner/banner2.png",
        "link": "/actual-course",
        "info": "5周Linux系统基础",
    },
    {
        "id": 3,
        "title": "项目实战",
        "image": "http://testserver.local/media/banner/banner3.png",
        "link": "/light-course",
        "info": "从需求到上线的Python项目",
    },
]


def banner_row(banner_id: int, orders: int, **overrides: Any) -> dict[str, Any]:
    return {
        "id": banner_id,
        "orders": orders,
        "title": f"banner {banner_id}",
        "image": f"banner/{banner_id}.png",
        "link": f"/link/{banner_id}",
        "info": f"info {banner_id}",
        "is_show": True,
        "is_delete": False,
        **overrides,
    }


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def redis_settings(
    seeded: Settings, redis_client: redis.Redis, redis_url: str, make_settings: Callable[..., Settings]
) -> Settings:
    return make_settings(seeded.database_url, redis_url)


async def test_seeded_banners_with_absolute_image_urls(client: AsyncTestClient[Litestar], seeded: Settings) -> None:
    response = await client.get(BANNERS_URL)
    assert response.status_code == 200
    assert response.json() == {"code": 100, "msg": "成功", "result": SEEDED_BANNERS}
    assert (await client.get(BANNERS_URL.rstrip("/"))).json()["result"] == SEEDED_BANNERS


async def test_visible_banners_by_orders_then_id_up_to_the_count(
    clean_database: str, make_settings: Callable[..., Settings]
) -> None:
    await execute_sql(
        clean_database,
        insert(Banner),
        [
            banner_row(1, 5),
            banner_row(2, 1, is_show=False),
            banner_row(3, 1, is_delete=True),
            banner_row(4, 3),
            banner_row(5, 3),
            banner_row(6, 9),
            banner_row(7, 0, image=""),
        ],
    )
    app = create_app(make_settings(clean_database, LUFFY_BANNER_COUNT="4"))
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        result = (await client.get(BANNERS_URL)).json()["result"]
    assert [banner["id"] for banner in result] == [7, 4, 5, 1]
    assert result[0]["image"] is None
    assert result[1] == {
        "id": 4,
        "title": "banner 4",
        "image": "http://testserver.local/media/banner/4.png",
        "link": "/link/4",
        "info": "info 4",
    }


async def test_no_banners_is_an_empty_list(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.get(BANNERS_URL)
    assert response.json() == {"code": 100, "msg": "成功", "result": []}


async def test_a_hit_makes_no_sql_and_a_miss_one_statement(redis_settings: Settings) -> None:
    app = create_app(redis_settings)
    engine = app.state.sqlalchemy_config.get_engine()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        with count_statements(engine) as miss:
            first = await client.get(BANNERS_URL)
        with count_statements(engine) as hit:
            second = await client.get(BANNERS_URL)
    assert first.json()["result"] == second.json()["result"] == SEEDED_BANNERS
    assert len(miss) == 1
    assert hit == []


async def test_the_cache_answers_until_refreshed(redis_settings: Settings, redis_client: redis.Redis) -> None:
    app = create_app(redis_settings)
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        await client.get(BANNERS_URL)
        assert redis_client.ttl(BANNER_CACHE_KEY) == 2 * redis_settings.banner_refresh_seconds
        await execute_sql(redis_settings.database_url, update(Banner).where(Banner.id == 1).values(title="改过"))
        assert (await client.get(BANNERS_URL)).json()["result"][0]["title"] == "Python开发入门"

        config, store = make_sqlalchemy_config(redis_settings), make_cache_store(redis_settings)
        async with store, session_scope(config) as session:
            refreshed = await refresh_banner_cache(session, store, redis_settings)
        await config.get_engine().dispose()
        assert refreshed[0].title == "改过"
        assert (await client.get(BANNERS_URL)).json()["result"][0]["title"] == "改过"


async def test_an_unreadable_cached_value_is_rebuilt(redis_settings: Settings, redis_client: redis.Redis) -> None:
    redis_client.set(BANNER_CACHE_KEY, b"not json")
    async with AsyncTestClient(app=create_app(redis_settings), base_url="http://testserver.local") as client:
        response = await client.get(BANNERS_URL)
    assert response.json()["result"] == SEEDED_BANNERS
    assert redis_client.get(BANNER_CACHE_KEY).startswith(b"[")


@pytest.fixture
def home_log() -> Iterator[LogRecords]:
    with captured_logs("luffy.home", "luffy.cache") as records:
        yield records


async def test_redis_unreachable_answers_from_the_database(
    seeded: Settings, make_settings: Callable[..., Settings], home_log: LogRecords
) -> None:
    closed_port = free_port()
    settings = make_settings(seeded.database_url, f"redis://127.0.0.1:{closed_port}/0")
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        responses = [await client.get(BANNERS_URL) for _ in range(3)]
        health = await client.get("/health")
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert all(response.json()["result"] == SEEDED_BANNERS for response in responses)
    warnings = [message for message in home_log.messages if message.startswith("cache unreachable (")]
    assert len(warnings) == 1  # once per outage pause, not once per request
    assert health.status_code == 503
    assert health.json() == {"status": "down", "database": "ok", "cache": "down", "broker": "down"}


async def test_embedded_mode_caches_in_the_data_dir(seeded: Settings) -> None:
    assert seeded.is_embedded
    app = create_app(seeded)
    engine = app.state.sqlalchemy_config.get_engine()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as client:
        await client.get(BANNERS_URL)
        with count_statements(engine) as hit:
            response = await client.get(BANNERS_URL)
    assert hit == []
    assert response.json()["result"] == SEEDED_BANNERS
    assert any((seeded.data_dir / "cache").iterdir())


async def test_embedded_scheduler_refreshes_the_cache(seeded: Settings, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(seeded.database_url, LUFFY_BANNER_REFRESH_SECONDS="1")
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        await client.get(BANNERS_URL)
        await execute_sql(settings.database_url, update(Banner).where(Banner.id == 2).values(is_show=False))

        async def hidden() -> bool:
            return await banner_ids(client) == [1, 3]

        await eventually(hidden, within=15, what="the scheduler to drop the hidden banner")


async def test_health_pings_the_redis_broker(redis_settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(redis_settings)) as client:
        response = await client.get("/health")
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok"}


# --- the operator's write paths: ``luffy banner ...``, ``luffy cache refresh-banner``, ``luffy seed`` -------


def env_of(settings: Settings) -> dict[str, str]:
    """The environment that makes a ``luffy`` process use ``settings``' database, cache and data dir."""
    return {
        "LUFFY_DATA_DIR": str(settings.data_dir),
        "LUFFY_DATABASE_URL": settings.database_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
        "LUFFY_BACKEND_URL": settings.backend_url,
        **({"LUFFY_REDIS_URL": settings.redis_url} if settings.redis_url else {}),
    }


def luffy_ok(settings: Settings, *args: str) -> str:
    result = run_luffy(env_of(settings), *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


async def banner_ids(client: AsyncTestClient[Litestar]) -> list[int]:
    return [banner["id"] for banner in (await client.get(BANNERS_URL)).json()["result"]]


async def test_banner_commands_show_at_once(redis_settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(redis_settings), base_url="http://testserver.local") as client:
        assert await banner_ids(client) == [1, 2, 3]  # now cached

        updated = luffy_ok(redis_settings, "banner", "update", "2", "--title", "改了", "--orders", "0")
        assert "updated banner 2 (改了)" in updated
        result = (await client.get(BANNERS_URL)).json()["result"]
        assert [(banner["id"], banner["title"]) for banner in result] == [
            (2, "改了"),
            (1, "Python开发入门"),
            (3, "项目实战"),
        ]

        luffy_ok(redis_settings, "banner", "hide", "1")
        assert await banner_ids(client) == [2, 3]

        added = luffy_ok(
            redis_settings,
            *(
                "banner",
                "add",
                "--title",
                "新横幅",
                "--image",
                "banner/new.png",
                "--link",
                "/new",
                "--info",
                "新的",
                "--orders",
                "9",
            ),
        )
        assert "added banner 4 (新横幅)" in added
        assert "http://testserver.local/media/banner/new.png" in added  # the cached list it printed
        assert await banner_ids(client) == [2, 3, 4]

        luffy_ok(redis_settings, "banner", "delete", "3")
        assert await banner_ids(client) == [2, 4]

    listing = luffy_ok(redis_settings, "banner", "list", "--deleted")
    assert "│ 1  │ 1      │ no      │ Python开发入门" in listing
    assert "│ 3  │ 3      │ deleted │ 项目实战" in listing


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("update", "99", "--title", "x"), "no such banner"),
        (("add", "--title", "x"), "a new banner needs image, link, info"),
        (
            ("add", "--title", "项目实战", "--image", "a.png", "--link", "/", "--info", "i"),
            "another banner has this title",
        ),
        (("update", "1", "--title", "a title longer than sixteen"), "Expected `str` of length <= 16"),
    ],
)
def test_banner_command_errors_are_one_line(seeded: Settings, args: tuple[str, ...], error: str) -> None:
    result = run_luffy(env_of(seeded), "banner", *args)
    assert result.returncode == 2
    assert error in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"title": ""},
        {"title": "x" * 17},
        {"image": "/media/a.png"},
        {"image": "http://elsewhere/a.png"},
        {"link": "x" * 65},
    ],
)
def test_banner_fields_are_checked_against_the_columns(fields: dict[str, str]) -> None:
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(fields, BannerChanges)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_refresh_banner_and_seed_rewrite_the_cache(redis_settings: Settings, redis_client: redis.Redis) -> None:
    await execute_sql(redis_settings.database_url, update(Banner).where(Banner.id == 1).values(title="库里改的"))
    printed = luffy_ok(redis_settings, "cache", "refresh-banner")
    assert "cached banners (3)" in printed
    assert "库里改的" in printed
    assert "库里改的".encode() in redis_client.get(BANNER_CACHE_KEY)

    assert "banner cache refreshed: 3 banners" in luffy_ok(redis_settings, "seed")
    assert "Python开发入门".encode() in redis_client.get(BANNER_CACHE_KEY)  # the seed restored the title


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_running_embedded_server_sees_banner_commands(seeded: Settings) -> None:
    async with AsyncTestClient(app=create_app(seeded), base_url="http://testserver.local") as client:
        assert await banner_ids(client) == [1, 2, 3]
        luffy_ok(seeded, "banner", "hide", "2")
        assert await banner_ids(client) == [1, 3]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_banner_command_says_when_the_cache_is_down(seeded: Settings, make_settings: Callable[..., Settings]) -> None:
    unreachable = make_settings(seeded.database_url, f"redis://127.0.0.1:{free_port()}/0")
    result = run_luffy(env_of(unreachable), "banner", "hide", "2")
    assert result.returncode == 1
    assert "hid banner 2" in result.stdout
    assert "the database is up to date, but the banner cache could not be refreshed" in result.stderr


async def test_the_openapi_document_describes_the_banner_list(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    operation = document["paths"]["/api/v1/home/banner"]["get"]
    reply = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert reply["$ref"].startswith("#/components/schemas/ListResult")
    schemas = document["components"]["schemas"]
    banner = schemas["BannerItem"]
    assert set(banner["properties"]) == {"id", "title", "image", "link", "info"}
