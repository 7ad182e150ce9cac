"""The catalogue cache (``luffy/course/cache.py``): hits without SQL, and every write path clears it.

Production mode (a real Redis) on SQLite and PostgreSQL. Each write path is driven as an operator
drives it (the admin's forms over HTTP, ``luffy seed`` and ``luffy catalogue clear-cache`` as
processes) after the cache has been filled, and the next request must show the change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from redis.asyncio import Redis
from sqlalchemy import update

from luffy.admin.views import VIEWS
from luffy.admin.views.catalogue import CatalogueView
from luffy.app import create_app
from luffy.cache import CACHE_RETRY_SECONDS, CacheOutage
from luffy.course.cache import CATALOGUE_KEY, CATEGORIES_FIELD, EPOCH_KEY, RedisCatalogueCache, course_field
from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.settings import Settings
from tests.support.admin_support import STAFF, form_values, log_in, make_users, page_token
from tests.support.database import execute_sql
from tests.support.logs import LogRecords, captured_logs
from tests.support.processes import operator_env, run_luffy
from tests.support.services import free_port
from tests.support.sqlcount import count_statements

API = "/api/v1/course"
BASE_URL = "http://testserver.local"
Client = AsyncTestClient[Litestar]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def production(seeded: Settings, redis: Redis, redis_url: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(seeded.database_url, redis_url, LUFFY_CATALOGUE_CACHE_SECONDS="120")


@pytest.fixture
async def api(production: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(production), base_url=BASE_URL) as client:
        yield client


async def _body(api: Client, path: str, **params: Any) -> bytes:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.content


async def _json(api: Client, path: str, **params: Any) -> Any:
    response = await api.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _fields(redis: Redis) -> set[str]:
    return {field.decode() for field in await redis.hkeys(CATALOGUE_KEY)}


# --- hits ----------------------------------------------------------------------------------------


async def test_a_repeated_reply_is_the_cached_bytes_and_runs_no_sql(api: Client, redis: Redis) -> None:
    engine = api.app.state.sqlalchemy_config.get_engine()
    for path, params in [
        (f"{API}/category/", {}),
        (f"{API}/actual/1/", {}),
        (f"{API}/chapter/", {"course": 1}),
    ]:
        first = await _body(api, path, **params)
        with count_statements(engine) as statements:
            again = await _body(api, path, **params)
        assert statements == [], path
        assert again == first, path
    assert await _fields(redis) == {"categories", "course:1", "chapters:1"}
    with count_statements(engine) as statements:
        alias = await _body(api, f"{API}/list/1/")
    assert statements == []
    assert alias == await _body(api, f"{API}/actual/1/")


async def test_cached_replies_are_the_replies_without_a_cache(
    production: Settings, make_settings: Callable[..., Settings]
) -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        (f"{API}/category/", {}),
        (f"{API}/actual/2/", {}),
        (f"{API}/chapter/", {"course": 2}),
    ]
    # One app at a time: the task brokers are per process.
    async with AsyncTestClient(app=create_app(production), base_url=BASE_URL) as api:
        cached = [[await _body(api, path, **params) for _ in range(2)][1] for path, params in requests]
    async with AsyncTestClient(app=create_app(make_settings(production.database_url)), base_url=BASE_URL) as embedded:
        assert cached == [await _body(embedded, path, **params) for path, params in requests]
        detail = await _json(embedded, f"{API}/actual/2/")
    assert (detail["code"], detail["msg"], detail["id"], detail["teacher"]["id"]) == (100, "成功", 2, 2)


async def test_the_openapi_document_describes_the_cached_replies_as_before(api: Client) -> None:
    paths = (await _json(api, "/schema/openapi.json"))["paths"]

    def success_schema(path: str) -> Any:
        return paths[f"{API}{path}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]

    assert success_schema("/category") == {"$ref": "#/components/schemas/ListResult_luffy.course.schemas.CategoryItem_"}
    for path in ("/actual/{course_id}", "/list/{course_id}"):
        assert success_schema(path) == {"$ref": "#/components/schemas/CourseDetail"}
    assert success_schema("/chapter") == {"type": "array", "items": {"$ref": "#/components/schemas/ChapterItem"}}


async def test_an_unknown_course_is_a_404_and_is_not_cached(api: Client, redis: Redis) -> None:
    for path, params in [(f"{API}/actual/999999/", {}), (f"{API}/chapter/", {"course": 999999})]:
        for _ in range(2):
            response = await api.get(path, params=params)
            assert response.status_code == 404
            assert response.json() == {"code": 999, "msg": "课程不存在"}
    assert await _fields(redis) == set()


async def test_the_cache_expires_within_the_configured_seconds_of_its_first_fill(api: Client, redis: Redis) -> None:
    await _body(api, f"{API}/category/")
    assert 0 < await redis.ttl(CATALOGUE_KEY) <= 120
    await redis.expire(CATALOGUE_KEY, 50)
    await _body(api, f"{API}/actual/1/")
    assert 0 < await redis.ttl(CATALOGUE_KEY) <= 50


async def test_a_fill_that_raced_a_write_is_dropped(production: Settings, redis: Redis) -> None:
    cache = RedisCatalogueCache(redis, ttl_seconds=60)

    async def read_then_a_write_commits() -> bytes:
        await cache.invalidate()  # the write's commit and invalidation land between our read and our fill
        return b'{"stale":true}'

    assert await cache.reply(CATEGORIES_FIELD, read_then_a_write_commits) == b'{"stale":true}'
    assert await redis.hget(CATALOGUE_KEY, CATEGORIES_FIELD) is None

    async def fresh() -> bytes:
        return b'{"fresh":true}'

    assert await cache.reply(CATEGORIES_FIELD, fresh) == b'{"fresh":true}'
    assert await redis.hget(CATALOGUE_KEY, CATEGORIES_FIELD) == b'{"fresh":true}'
    assert int(await redis.get(EPOCH_KEY)) == 1


async def test_with_the_database_down_cached_replies_are_still_served(
    production: Settings, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    requests: list[tuple[str, dict[str, Any]]] = [
        (f"{API}/category/", {}),
        (f"{API}/actual/1/", {}),
        (f"{API}/chapter/", {"course": 1}),
    ]
    async with AsyncTestClient(app=create_app(production), base_url=BASE_URL) as api:
        cached = [await _body(api, path, **params) for path, params in requests]
    unreachable = f"postgresql+asyncpg://luffy:luffy@127.0.0.1:{free_port()}/luffy"
    database_down = make_settings(unreachable, redis_url, LUFFY_DB_POOL_TIMEOUT_SECONDS="1")
    async with AsyncTestClient(app=create_app(database_down), base_url=BASE_URL) as api:
        assert [await _body(api, path, **params) for path, params in requests] == cached
        assert (await api.get(f"{API}/actual/2/")).status_code == 503  # not cached: the database is needed


@pytest.fixture
def cache_log() -> Iterator[LogRecords]:
    with captured_logs("luffy.cache") as records:
        yield records


async def test_with_redis_unreachable_the_catalogue_answers_from_the_database(
    seeded: Settings, make_settings: Callable[..., Settings], cache_log: LogRecords
) -> None:
    down = make_settings(seeded.database_url, f"redis://127.0.0.1:{free_port()}/0")
    async with AsyncTestClient(app=create_app(down), base_url=BASE_URL) as client:
        for _ in range(3):
            categories = await _json(client, f"{API}/category/")
            assert [item["name"] for item in categories["result"]] == ["Python", "Linux"]
            assert (await _json(client, f"{API}/actual/1/"))["id"] == 1
            assert (await _json(client, f"{API}/chapter/", course=1))[0]["id"] == 1
    warnings = [message for message in cache_log.messages if message.startswith("cache unreachable (")]
    assert len(warnings) == 1, f"one warning per {CACHE_RETRY_SECONDS:.0f} s pause, not one per request"


def test_an_outage_pauses_the_cache_then_lets_it_be_tried_again(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1000.0
    monkeypatch.setattr("luffy.cache.time.monotonic", lambda: now)
    outage = CacheOutage("catalogue cache")
    assert not outage.ongoing
    outage.record(ConnectionError("refused"))
    assert outage.ongoing
    now += CACHE_RETRY_SECONDS
    assert not outage.ongoing


# --- write paths ---------------------------------------------------------------------------------


async def test_a_direct_database_edit_shows_after_luffy_catalogue_clear_cache(
    api: Client, production: Settings, redis_url: str, tmp_path: Path
) -> None:
    assert (await _json(api, f"{API}/actual/1/"))["name"] == "Python开发21天入门"
    await execute_sql(production.database_url, update(Course).where(Course.id == 1).values(name="改过的课程"))
    assert (await _json(api, f"{API}/actual/1/"))["name"] == "Python开发21天入门"  # cached, until cleared
    env = {**operator_env(production.database_url, tmp_path), "LUFFY_REDIS_URL": redis_url}
    cleared = run_luffy(env, "catalogue", "clear-cache")
    assert cleared.returncode == 0, cleared.stderr
    assert (await _json(api, f"{API}/actual/1/"))["name"] == "改过的课程"
    embedded = run_luffy(operator_env(production.database_url, tmp_path), "catalogue", "clear-cache")
    assert (embedded.returncode, "no catalogue cache" in embedded.stdout) == (0, True), embedded.stdout


async def test_luffy_seed_clears_the_cache_after_its_writes(
    api: Client, production: Settings, redis_url: str, tmp_path: Path
) -> None:
    await execute_sql(production.database_url, update(Course).where(Course.id == 1).values(name="改过的课程"))
    assert (await _json(api, f"{API}/actual/1/"))["name"] == "改过的课程"
    assert len((await _json(api, f"{API}/category/"))["result"]) == 2
    env = {**operator_env(production.database_url, tmp_path), "LUFFY_REDIS_URL": redis_url}
    seeded = run_luffy(env, "seed", "--demo", "3", timeout=120)
    assert seeded.returncode == 0, seeded.stderr
    assert (await _json(api, f"{API}/actual/1/"))["name"] == "Python开发21天入门"
    assert len((await _json(api, f"{API}/category/"))["result"]) > 2  # the demo catalogue's categories


def test_luffy_seed_with_redis_unreachable_seeds_and_says_the_cache_was_not_cleared(
    seeded: Settings, tmp_path: Path
) -> None:
    env = {**operator_env(seeded.database_url, tmp_path), "LUFFY_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    result = run_luffy(env, "seed")
    assert result.returncode == 1
    assert "seed rows upserted" in result.stdout
    assert "the catalogue cache could not be cleared" in " ".join(result.stderr.split())


def test_every_admin_view_of_a_catalogue_table_clears_the_cache() -> None:
    catalogue_tables = {
        model.__tablename__ for model in (Course, CourseCategory, CourseChapter, CourseSection, Teacher)
    }
    views = {view.model.__tablename__: view for view in VIEWS}
    assert catalogue_tables <= set(views)
    assert [name for name in catalogue_tables if not issubclass(views[name], CatalogueView)] == []


@pytest.fixture
async def admin(api: Client, production: Settings) -> Client:
    await make_users(production)
    assert (await log_in(api, STAFF[0], STAFF[2])).status_code == 302
    return api


async def _edit(admin: Client, identity: str, pk: int, **changes: str) -> None:
    page = (await admin.get(f"/admin/{identity}/edit/{pk}")).text
    form = {**form_values(page), **changes, "save": "Save", "csrf_token": page_token(page)}
    response = await admin.post(f"/admin/{identity}/edit/{pk}", data=form, follow_redirects=False)
    assert response.status_code == 302, response.text[-800:]


async def _delete(admin: Client, identity: str, pk: int) -> None:
    token = page_token((await admin.get(f"/admin/{identity}/list")).text)
    response = await admin.delete(f"/admin/{identity}/delete?pks={pk}", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert "error=" not in response.text, response.text


async def _chapter_names(api: Client, course_id: int) -> list[str]:
    return [chapter["name"] for chapter in await _json(api, f"{API}/chapter/", course=course_id)]


async def _section_names(api: Client, course_id: int) -> list[str]:
    chapters = await _json(api, f"{API}/chapter/", course=course_id)
    return [section["name"] for chapter in chapters for section in chapter["coursesections"]]


async def test_an_admin_created_category_shows_at_once(admin: Client) -> None:
    assert [item["name"] for item in (await _json(admin, f"{API}/category/"))["result"]] == ["Python", "Linux"]
    page = (await admin.get("/admin/course-category/create")).text
    form = {"name": "Go", "orders": "9", "is_show": "y", "save": "Save", "csrf_token": page_token(page)}
    created = await admin.post("/admin/course-category/create", data=form, follow_redirects=False)
    assert created.status_code == 302, created.text[-800:]
    assert [item["name"] for item in (await _json(admin, f"{API}/category/"))["result"]] == ["Python", "Linux", "Go"]


async def test_admin_edits_of_each_catalogue_table_show_at_once(admin: Client) -> None:
    assert (await _json(admin, f"{API}/category/"))["result"][0]["name"] == "Python"
    await _edit(admin, "course-category", 1, name="Python 3")
    assert (await _json(admin, f"{API}/category/"))["result"][0]["name"] == "Python 3"

    assert (await _json(admin, f"{API}/actual/1/"))["name"] == "Python开发21天入门"
    await _edit(admin, "course", 1, name="Python 入门")
    assert (await _json(admin, f"{API}/actual/1/"))["name"] == "Python 入门"

    assert (await _json(admin, f"{API}/actual/1/"))["teacher"]["name"] == "Alex"
    await _edit(admin, "teacher", 1, name="Alex Li")
    assert (await _json(admin, f"{API}/actual/1/"))["teacher"]["name"] == "Alex Li"

    assert (await _chapter_names(admin, 1))[0] == "计算机原理"
    await _edit(admin, "course-chapter", 1, name="计算机组成")
    assert (await _chapter_names(admin, 1))[0] == "计算机组成"

    assert (await _section_names(admin, 1))[0] == "计算机原理上"
    await _edit(admin, "course-section", 1, name="计算机组成上")
    assert (await _section_names(admin, 1))[0] == "计算机组成上"
    assert (await _json(admin, f"{API}/actual/1/"))["section_list"][0]["name"] == "计算机组成上"


async def test_admin_deletes_of_each_catalogue_table_show_at_once(admin: Client, redis: Redis) -> None:
    assert len((await _json(admin, f"{API}/category/"))["result"]) == 2
    await _delete(admin, "course-category", 2)
    assert [item["name"] for item in (await _json(admin, f"{API}/category/"))["result"]] == ["Python"]

    assert (await _json(admin, f"{API}/actual/2/"))["teacher"]["id"] == 2
    await _delete(admin, "teacher", 2)
    assert (await _json(admin, f"{API}/actual/2/"))["teacher"] is None

    assert (await _section_names(admin, 1))[:2] == ["计算机原理上", "计算机原理下"]
    await _delete(admin, "course-section", 1)
    assert (await _section_names(admin, 1))[0] == "计算机原理下"

    assert await _chapter_names(admin, 1) == ["计算机原理", "环境搭建"]
    await _delete(admin, "course-chapter", 1)
    assert await _chapter_names(admin, 1) == ["环境搭建"]

    assert (await admin.get(f"{API}/actual/3/")).status_code == 200
    await _delete(admin, "course", 3)
    assert (await admin.get(f"{API}/actual/3/")).status_code == 404
    assert (await admin.get(f"{API}/chapter/", params={"course": 3})).status_code == 404
    assert course_field(3) not in await _fields(redis)
