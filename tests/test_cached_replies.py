"""The cached-reply front (``luffy.cached_replies``): the app's own replies, replayed from Redis without the framework.

Every test serves ``luffy.asgi.build`` (what ``luffy serve`` runs) and holds the front's reply to
the Litestar app's own reply for the same request: same status, bytes and headers.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.app import create_app
from luffy.asgi import build
from luffy.cached_replies import CachedReplies
from luffy.course.cache import PAGES_KEY, page_field
from luffy.home.services import BANNER_CACHE_KEY
from luffy.settings import Settings
from tests.support.private_servers import PrivateRedis
from tests.support.replies import comparable, recording_app_calls
from tests.support.services import free_port
from tests.support.sqlcount import count_statements

BASE_URL = "http://testserver.local"
ALLOWED_ORIGIN = "http://localhost:8080"
HOT_PATHS = [
    "/api/v1/home/banner/",
    "/api/v1/course/category/",
    "/api/v1/course/actual/1/",
    "/api/v1/course/list/2/",
    "/api/v1/course/chapter/?course=1",
    "/api/v1/course/actual/",
    "/api/v1/course/actual/?page_size=1&page=2",
    "/api/v1/course/list/?ordering=-price&course_category=1",
]
Headers = list[tuple[str, str]]
REQUEST_HEADERS: list[Headers] = [
    [],
    [("Origin", ALLOWED_ORIGIN)],
    [("Origin", "https://evil.example")],
    [("Origin", ALLOWED_ORIGIN), ("Cookie", "token=x")],
    [("Origin", "")],
    [("Origin", ALLOWED_ORIGIN), ("Origin", "https://evil.example")],
    [("Origin", "https://evil.example"), ("Origin", ALLOWED_ORIGIN)],
]


@pytest.fixture
def redis_client(redis_url: str) -> redis.Redis:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    return client


@pytest.fixture
def front_settings(
    seeded: Settings, redis_client: redis.Redis, redis_url: str, make_settings: Callable[..., Settings]
) -> Settings:
    return make_settings(seeded.database_url, redis_url, LUFFY_CORS_ORIGINS=ALLOWED_ORIGIN)


@pytest.fixture
async def front(front_settings: Settings) -> AsyncIterator[tuple[CachedReplies, AsyncTestClient[Any]]]:
    served = build(front_settings)
    assert isinstance(served, CachedReplies)
    async with AsyncTestClient(app=served, base_url=BASE_URL) as client:  # type: ignore[arg-type]
        yield served, client


async def app_replies(settings: Settings, requests: list[tuple[str, str, Headers]]) -> list[httpx.Response]:
    """The Litestar app's own replies (no front), one app at a time: two lifespans would share the brokers."""
    async with AsyncTestClient(app=create_app(settings), base_url=BASE_URL) as client:
        return [await client.request(method, url, headers=headers) for method, url, headers in requests]


@pytest.fixture
def app_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    with recording_app_calls(monkeypatch) as calls:
        yield calls


@pytest.mark.parametrize("path", HOT_PATHS)
async def test_a_hit_is_the_apps_own_reply_byte_for_byte_with_its_headers(
    front_settings: Settings, path: str, app_calls: list[str]
) -> None:
    from_app = await app_replies(front_settings, [("GET", path, headers) for headers in REQUEST_HEADERS])
    served = build(front_settings)
    assert isinstance(served, CachedReplies)
    app_calls.clear()
    async with AsyncTestClient(app=served, base_url=BASE_URL) as client:  # type: ignore[arg-type]
        engine = served.litestar.state.sqlalchemy_config.get_engine()
        for headers, app_reply in zip(REQUEST_HEADERS, from_app, strict=True):
            with count_statements(engine) as statements:
                from_front = await client.get(path, headers=headers)
            assert statements == []
            assert comparable(from_front) == comparable(app_reply), headers
            assert from_front.status_code == 200
    assert app_calls == []


async def test_a_miss_goes_to_the_app_which_fills_the_cache_for_the_next_request(
    front: tuple[CachedReplies, AsyncTestClient[Any]], redis_client: redis.Redis
) -> None:
    served, client = front
    engine = served.litestar.state.sqlalchemy_config.get_engine()
    with count_statements(engine) as on_miss:
        first = await client.get("/api/v1/home/banner/")
    with count_statements(engine) as on_hit:
        second = await client.get("/api/v1/home/banner/")
    assert redis_client.get(BANNER_CACHE_KEY) is not None
    assert len(on_miss) == 1
    assert on_hit == []
    assert first.content == second.content
    assert [banner["id"] for banner in second.json()["result"]] == [1, 2, 3]


async def test_an_unreadable_cached_value_goes_to_the_app_which_rebuilds_it(
    front: tuple[CachedReplies, AsyncTestClient[Any]], redis_client: redis.Redis
) -> None:
    _served, client = front
    redis_client.set(BANNER_CACHE_KEY, b'{"not": "a list"}')
    response = await client.get("/api/v1/home/banner/")
    assert [banner["id"] for banner in response.json()["result"]] == [1, 2, 3]
    assert redis_client.get(BANNER_CACHE_KEY).startswith(b"[")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("POST", "/api/v1/home/banner/", 405),
        ("GET", "/api/v1/home/banner/?page=2", 200),
        ("GET", "/api/v1/home/banner", 200),
        ("HEAD", "/api/v1/home/banner/", 405),
        ("GET", "/api/v1/course/actual/01/", 200),
        ("GET", "/api/v1/course/category/?x=1", 200),
        ("GET", "/api/v1/course/chapter/?course=1&x=2", 200),
        ("GET", "/api/v1/course/actual/?search=Python", 200),
        ("GET", "/api/v1/course/actual/?page=2&page_size=1&page_size=1", 200),
    ],
)
async def test_other_methods_query_strings_and_spellings_are_the_apps_to_answer(
    front_settings: Settings, method: str, url: str, status: int, app_calls: list[str]
) -> None:
    # The first requests fill the caches: only the front's rules keep the others from a replay.
    fill: list[tuple[str, str, Headers]] = [("GET", path, []) for path in HOT_PATHS]
    *_filled, from_app = await app_replies(front_settings, [*fill, (method, url, [])])
    app_calls.clear()
    async with AsyncTestClient(app=build(front_settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
        from_front = await client.request(method, url)
    assert app_calls == [url.partition("?")[0]]
    assert from_front.status_code == from_app.status_code == status
    assert from_front.content == from_app.content


@pytest.mark.parametrize("path", HOT_PATHS[:2])
async def test_a_host_header_the_app_refuses_is_refused_by_the_app_even_on_a_cached_page(
    front_settings: Settings, path: str, app_calls: list[str]
) -> None:
    fill: list[tuple[str, str, Headers]] = [("GET", page, []) for page in HOT_PATHS]
    refused: Headers = [("Host", "shop.example/x")]
    *_filled, from_app = await app_replies(front_settings, [*fill, ("GET", path, refused)])
    app_calls.clear()
    async with AsyncTestClient(app=build(front_settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
        from_front = await client.get(path, headers=refused)
    assert app_calls == [path]
    assert from_front.status_code == from_app.status_code == 400
    assert from_front.content == from_app.content


async def test_with_redis_down_the_app_answers_from_the_database(
    seeded: Settings, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(seeded.database_url, f"redis://127.0.0.1:{free_port()}/0")
    async with AsyncTestClient(app=build(settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
        responses = [await client.get("/api/v1/home/banner/") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert all([banner["id"] for banner in response.json()["result"]] == [1, 2, 3] for response in responses)


def test_embedded_mode_serves_the_app_itself(seeded: Settings) -> None:
    assert isinstance(build(seeded), Litestar)


async def test_course_pages_are_cached_per_request_target_with_their_own_links(front_settings: Settings) -> None:
    first, second = await app_replies(
        front_settings,
        [("GET", "/api/v1/course/actual/?page_size=1", []), ("GET", "/api/v1/course/list/?page_size=1", [])],
    )
    assert first.json()["next"] == "http://testserver.local/api/v1/course/actual/?page_size=1&page=2"
    assert second.json()["next"] == "http://testserver.local/api/v1/course/list/?page_size=1&page=2"
    async with AsyncTestClient(app=build(front_settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
        assert (await client.get("/api/v1/course/actual/?page_size=1")).content == first.content
        assert (await client.get("/api/v1/course/list/?page_size=1")).content == second.content


async def test_an_empty_page_is_not_cached(front_settings: Settings, redis_client: redis.Redis) -> None:
    (reply,) = await app_replies(front_settings, [("GET", "/api/v1/course/actual/?course_category=987654", [])])
    assert reply.json()["count"] == 0
    assert redis_client.hlen(PAGES_KEY) == 0


async def test_a_full_page_cache_starts_over_so_new_pages_are_still_cached(
    front_settings: Settings, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("luffy.course.cache.MAX_CACHED_PAGES", 3)
    urls = [f"/api/v1/course/actual/?page_size={size}" for size in range(1, 6)]
    replies = await app_replies(front_settings, [("GET", url, []) for url in urls])
    assert all(reply.status_code == 200 for reply in replies)
    # Three fills filled it; the fourth emptied it first, the fifth joined the fourth.
    assert sorted(redis_client.hkeys(PAGES_KEY)) == [f"page:{url}".encode() for url in urls[3:]]


@pytest.mark.parametrize(
    "query",
    ["page=" + "1" * 5000, "page=" + "1" * 5000 + "&page=1", "page=%C2%B2", "page=0", "page=01", "page=-1"],
)
async def test_a_hostile_page_number_gets_the_apps_own_4xx_or_page_never_a_500(
    front_settings: Settings, query: str
) -> None:
    url = f"/api/v1/course/actual/?{query}"
    (from_app,) = await app_replies(front_settings, [("GET", url, [])])
    async with AsyncTestClient(app=build(front_settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
        from_front = await client.get(url)
    assert from_front.status_code < 500
    assert (from_front.status_code, from_front.content) == (from_app.status_code, from_app.content)


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("", True),
        ("page=50&size=2&ordering=-price&course_category=1", True),
        ("page=51", False),
        ("page=0", False),
        ("page=01", False),
        ("page=\u00b2", False),
        ("page=" + "9" * 5000, False),
        ("page=1&page=2", False),
        ("search=python", False),
        ("utm_source=x", False),
    ],
)
def test_which_course_pages_are_cached(query: str, cached: bool) -> None:
    query = query.encode().decode("unicode_escape")
    assert (page_field("/api/v1/course/actual/", query) is not None) is cached


HUNG_REDIS_PATHS = [
    "/api/v1/home/banner/",
    "/api/v1/course/category/",
    "/api/v1/course/actual/1/",
    "/api/v1/course/chapter/?course=1",
    "/api/v1/course/actual/?page_size=1",
]


async def test_a_hung_redis_costs_a_cache_read_a_quarter_second_then_is_skipped(
    seeded: Settings, make_settings: Callable[..., Settings]
) -> None:
    redis_server = PrivateRedis()
    settings = make_settings(seeded.database_url, redis_server.url)
    try:
        async with AsyncTestClient(app=build(settings), base_url=BASE_URL) as client:  # type: ignore[arg-type]
            filled = [await client.get(path) for path in HUNG_REDIS_PATHS]
            assert redis_server.process is not None
            redis_server.process.send_signal(signal.SIGSTOP)  # accepts connections, never answers
            try:
                answered = []
                for path in HUNG_REDIS_PATHS:
                    started = time.monotonic()
                    answered.append(await client.get(path))
                    # A cache read waits CACHE_READ_TIMEOUT_SECONDS once, then every cache is skipped;
                    # before, each cache waited 2 s and retried (8 s per request).
                    assert time.monotonic() - started < 2, path
            finally:
                redis_server.process.send_signal(signal.SIGCONT)
    finally:
        redis_server.destroy()
    assert [reply.status_code for reply in answered] == [200] * len(HUNG_REDIS_PATHS)
    assert [reply.content for reply in answered] == [reply.content for reply in filled]
