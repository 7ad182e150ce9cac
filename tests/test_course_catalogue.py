"""The Courses section of the contract, row by row, against the seed rows plus a generated catalogue.

Every test runs on SQLite and on PostgreSQL (the module's ``loaded`` fixture is parametrized) and
compares whole replies with what ``tests/course_oracle.py`` computes from the loaded rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.app import create_app
from luffy.settings import Settings
from tests.support.course_oracle import BASE_URL as BASE
from tests.support.course_oracle import Oracle, Row, Tables, catalogue_settings, is_visible, load_catalogue

DEMO_COURSES = 60
DEMO_RANDOM_SEED = 11
API = "/api/v1/course"

Client = AsyncTestClient[Litestar]


@dataclass
class Loaded:
    settings: Settings
    oracle: Oracle


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def loaded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """Seed rows plus a generated catalogue, loaded once per database for this module's read-only tests."""
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    settings = catalogue_settings(url, str(tmp_path_factory.mktemp("catalogue")))
    demo = asyncio.run(load_catalogue(settings, DEMO_COURSES, DEMO_RANDOM_SEED))
    return Loaded(settings, Oracle(Tables.from_seed_and_demo(demo)))


@pytest.fixture
async def api(loaded: Loaded) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(loaded.settings), base_url=BASE) as client:
        yield client


async def _json(api: Client, path: str, params: dict[str, Any] | None = None, status: int = 200) -> Any:
    response = await api.get(path, params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def _ids(rows: list[Row]) -> list[int]:
    return [row["id"] for row in rows]


def test_the_generated_catalogue_has_what_these_tests_need(loaded: Loaded) -> None:
    tables = loaded.oracle.tables
    assert len([row for row in tables.courses if is_visible(row)]) > 50
    assert any(not is_visible(row) for row in tables.courses)
    assert any(not is_visible(row) for row in tables.chapters)
    assert any(not is_visible(row) for row in tables.sections)


# --- categories ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/category/", f"{API}/category"])
async def test_categories_are_the_visible_ones_by_orders_then_id(api: Client, loaded: Loaded, path: str) -> None:
    body = await _json(api, path)
    assert body == {"code": 100, "msg": "成功", "result": loaded.oracle.categories_json()}


# --- the course list -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/actual/", f"{API}/actual", f"{API}/list/", f"{API}/list"])
async def test_first_page_is_ten_courses_by_orders_then_id(api: Client, loaded: Loaded, path: str) -> None:
    body = await _json(api, path)
    expected = loaded.oracle.visible_courses()
    assert body == {
        "code": 100,
        "msg": "成功",
        "count": len(expected),
        "next": f"{BASE}{path}?page=2",
        "previous": None,
        "results": [loaded.oracle.course_json(course) for course in expected[:10]],
    }


@pytest.mark.parametrize(
    "ordering",
    ["orders", "-orders", "price", "-price", "students", "-students", "id", "-id", "-students,price", "price,-id"],
)
async def test_walking_next_links_yields_every_course_once_in_order(api: Client, loaded: Loaded, ordering: str) -> None:
    keys = [(term.lstrip("-"), term.startswith("-")) for term in ordering.split(",")]
    expected = loaded.oracle.visible_courses(keys)
    url: str | None = f"{BASE}{API}/actual/?ordering={ordering}&page_size=7"
    seen: list[Row] = []
    pages = 0
    while url:
        body = await _json(api, url)
        assert body["count"] == len(expected)
        assert len(body["results"]) <= 7
        if pages:
            assert body["previous"] is not None
            assert f"ordering={ordering.replace(',', '%2C')}" in body["previous"]
        seen += body["results"]
        url = body["next"]
        pages += 1
    assert _ids(seen) == _ids(expected)
    assert seen == [loaded.oracle.course_json(course) for course in expected]
    assert pages == -(-len(expected) // 7)


async def test_previous_links_keep_the_other_parameters(api: Client) -> None:
    body = await _json(api, f"{API}/list/", {"page_size": 5, "ordering": "-price", "page": 3})
    assert body["previous"] == f"{BASE}{API}/list/?page_size=5&ordering=-price&page=2"
    assert body["next"] == f"{BASE}{API}/list/?page_size=5&ordering=-price&page=4"
    second = await _json(api, f"{API}/list/", {"page_size": 5, "ordering": "-price", "page": 2})
    assert second["previous"] == f"{BASE}{API}/list/?page_size=5&ordering=-price"


async def test_last_page_has_no_next_and_the_page_after_it_is_a_404(api: Client, loaded: Loaded) -> None:
    total = len(loaded.oracle.visible_courses())
    last = -(-total // 10)
    body = await _json(api, f"{API}/actual/", {"page": last})
    assert body["next"] is None
    assert len(body["results"]) == total - (last - 1) * 10
    missing = await _json(api, f"{API}/actual/", {"page": last + 1}, status=404)
    assert missing["code"] == 999


@pytest.mark.parametrize(
    ("params", "expected_size"),
    [
        ({}, 10),
        ({"page_size": 3}, 3),
        ({"size": 4}, 4),
        ({"page_size": 2, "size": 4}, 2),
        ({"page_size": 50}, 50),
        ({"page_size": 51}, 50),
        ({"size": 1000}, 50),
        ({"page_size": 10**30}, 50),
    ],
)
async def test_page_size_its_alias_and_the_clamp(api: Client, params: dict[str, Any], expected_size: int) -> None:
    body = await _json(api, f"{API}/actual/", params)
    assert len(body["results"]) == expected_size


async def test_course_category_filters_and_keeps_the_ordering(api: Client, loaded: Loaded) -> None:
    category = next(row["id"] for row in loaded.oracle.categories_json() if row["id"] >= 1_000_000)
    expected = loaded.oracle.visible_courses((("price", True),), category=category)
    assert expected, "the generated catalogue has courses in this category"
    body = await _json(api, f"{API}/actual/", {"course_category": category, "ordering": "-price", "page_size": 50})
    assert body["count"] == len(expected)
    assert body["results"] == [loaded.oracle.course_json(course) for course in expected]
    assert all(course["course_category"] == category for course in body["results"])


async def test_unknown_category_is_an_empty_first_page(api: Client) -> None:
    body = await _json(api, f"{API}/actual/", {"course_category": 424242})
    assert body == {"code": 100, "msg": "成功", "count": 0, "next": None, "previous": None, "results": []}
    await _json(api, f"{API}/actual/", {"course_category": 424242, "page": 2}, status=404)


@pytest.mark.parametrize("word", ["python", "PYTHON", "PyThOn", "入门", "第1", "Go进阶", "no such course"])
async def test_search_is_a_case_insensitive_substring_of_the_name(api: Client, loaded: Loaded, word: str) -> None:
    expected = loaded.oracle.visible_courses(search=word)
    for path in (f"{API}/search/", f"{API}/actual/", f"{API}/list"):
        body = await _json(api, path, {"search": word, "page_size": 50})
        assert body["count"] == len(expected)
        assert _ids(body["results"]) == _ids(expected[:50])


async def test_search_combines_with_category_ordering_and_pages(api: Client, loaded: Loaded) -> None:
    category = 1
    expected = loaded.oracle.visible_courses((("students", True),), category=category, search="python")
    body = await _json(
        api, f"{API}/search/", {"search": "python", "course_category": category, "ordering": "-students", "size": 1}
    )
    assert body["count"] == len(expected) == 2
    assert _ids(body["results"]) == _ids(expected[:1])
    assert body["next"] == f"{BASE}{API}/search/?search=python&course_category=1&ordering=-students&size=1&page=2"


# --- one course ----------------------------------------------------------------------------------


async def test_detail_is_the_course_beside_code_and_msg(api: Client, loaded: Loaded) -> None:
    for course in loaded.oracle.tables.courses:
        for path in (f"{API}/actual/{course['id']}/", f"{API}/list/{course['id']}"):
            if is_visible(course):
                body = await _json(api, path)
                assert body == {"code": 100, "msg": "成功", **loaded.oracle.course_json(course)}
            else:
                assert (await _json(api, path, status=404)) == {"code": 999, "msg": "课程不存在"}


async def test_the_seed_course_reads_as_the_original_did(api: Client) -> None:
    body = await _json(api, f"{API}/actual/2/")
    assert body["price"] == "99.00"
    assert body["pub_date"] == "2022-07-14"
    assert body["course_img"] == f"{BASE}/media/courses/mjj_python.png"
    assert body["attachment_path"] is None
    assert body["teacher"]["name"] == "Mjj"
    assert body["teacher"]["image"] == f"{BASE}/media/teacher/mjj_icon.png"
    assert body["teacher"]["role_name"] == "讲师"
    assert body["level_name"] == "中级"
    assert body["section_list"] == [
        {"id": 5, "name": "web项目的创建", "section_link": None, "duration": None, "free_trail": True}
    ]
    image = await api.get(body["course_img"].removeprefix(BASE))
    assert image.status_code == 200


@pytest.mark.parametrize("course_id", ["0", "-1", "424242", str(2**53), str(2**63), "9" * 40, "abc", "1.5"])
async def test_unknown_or_malformed_course_id_is_a_404(api: Client, course_id: str) -> None:
    body = await _json(api, f"{API}/actual/{course_id}/", status=404)
    assert body["code"] == 999


# --- chapters ------------------------------------------------------------------------------------


async def test_chapters_are_a_bare_array_of_visible_chapters_and_sections(api: Client, loaded: Loaded) -> None:
    from tests.support.course_oracle import parse_section_times

    for course in loaded.oracle.tables.courses:
        if is_visible(course):
            body = await _json(api, f"{API}/chapter/", {"course": course["id"]})
            assert isinstance(body, list)
            assert parse_section_times(body) == loaded.oracle.chapters_json(course["id"])
        else:
            body = await _json(api, f"{API}/chapter", {"course": course["id"]}, status=404)
            assert body == {"code": 999, "msg": "课程不存在"}


async def test_seed_chapters_read_as_the_original_did(api: Client) -> None:
    body = await _json(api, f"{API}/chapter/", {"course": 1})
    assert [chapter["name"] for chapter in body] == ["计算机原理", "环境搭建"]
    first = body[0]["coursesections"][0]
    assert first["section_type_name"] == "视频"
    assert first["pub_date"].startswith("2022-07-14T14:02:33")
    assert set(first) == {
        "id",
        "name",
        "orders",
        "section_type",
        "section_type_name",
        "section_link",
        "duration",
        "free_trail",
        "pub_date",
    }


# --- hostile input -------------------------------------------------------------------------------

HOSTILE: list[tuple[str, dict[str, Any], int]] = [
    # page
    ("actual/", {"page": "abc"}, 400),
    ("actual/", {"page": "0"}, 400),
    ("actual/", {"page": "-1"}, 400),
    ("actual/", {"page": "1.5"}, 400),
    ("actual/", {"page": ""}, 400),
    ("actual/", {"page": str(10**30)}, 404),
    ("actual/", {"page": str(2**63)}, 404),
    ("actual/", {"page": "9" * 5000}, 400),
    ("actual/", {"page": "1; DROP TABLE luffy_course"}, 400),
    # page_size and its alias
    ("actual/", {"page_size": "abc"}, 400),
    ("actual/", {"page_size": "0"}, 400),
    ("actual/", {"page_size": "-5"}, 400),
    ("actual/", {"page_size": "9" * 5000}, 400),
    ("actual/", {"size": "0"}, 400),
    ("actual/", {"size": "x"}, 400),
    ("actual/", {"size": str(10**30)}, 200),
    # course_category
    ("actual/", {"course_category": "abc"}, 400),
    ("actual/", {"course_category": "0"}, 400),
    ("actual/", {"course_category": "-1"}, 400),
    ("actual/", {"course_category": str(10**30)}, 400),
    ("actual/", {"course_category": str(2**63)}, 400),
    ("actual/", {"course_category": str(2**53)}, 400),
    ("actual/", {"course_category": str(2**53 - 1)}, 200),
    ("actual/", {"course_category": "1 OR 1=1"}, 400),
    # ordering
    ("actual/", {"ordering": "name"}, 400),
    ("actual/", {"ordering": "Price"}, 400),
    ("actual/", {"ordering": "--price"}, 400),
    ("actual/", {"ordering": "-"}, 400),
    ("actual/", {"ordering": "price,,id"}, 400),
    ("actual/", {"ordering": "price desc"}, 400),
    ("actual/", {"ordering": "price; DROP TABLE luffy_course"}, 400),
    ("actual/", {"ordering": "(SELECT 1)"}, 400),
    ("actual/", {"ordering": "id'--"}, 400),
    ("actual/", {"ordering": "x" * 5000}, 400),
    ("actual/", {"ordering": ""}, 200),
    ("actual/", {"ordering": " -price , id "}, 200),
    # search: a clean 400 only when it can never be searched; otherwise the correct, maybe empty, page
    ("search/", {"search": "\x00"}, 400),
    ("search/", {"search": "中" * 129}, 400),
    # chapters: missing or not an integer is a 400; any integer that names no visible course, a 404
    ("chapter/", {}, 400),
    ("chapter/", {"course": ""}, 400),
    ("chapter/", {"course": "abc"}, 400),
    ("chapter/", {"course": "1 OR 1=1"}, 400),
    ("chapter/", {"course": "1.5"}, 400),
    ("chapter/", {"course": "0"}, 404),
    ("chapter/", {"course": "-3"}, 404),
    ("chapter/", {"course": str(10**30)}, 404),
    ("chapter/", {"course": str(2**63 - 1)}, 404),
    ("chapter/", {"course": str(2**53 - 1)}, 404),
]


@pytest.mark.parametrize(("path", "params", "status"), HOSTILE)
async def test_hostile_input_is_a_clean_client_error(
    api: Client, path: str, params: dict[str, Any], status: int
) -> None:
    response = await api.get(f"{API}/{path}", params=params)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == (100 if status == 200 else 999)
    assert "Traceback" not in response.text


HOSTILE_SEARCHES = [
    "%",
    "_",
    "%%",
    "%_%",
    "'",
    '"',
    "\\",
    "\\%",
    "/",
    "//%",
    "'; DROP TABLE luffy_course; --",
    "' OR '1'='1",
    "第_期",
    "Python%",
    "😀" * 40,
    "课程" * 64,
    "ÀÉÎõü",
    "\t",
    "\u202e",
]


@pytest.mark.parametrize("word", HOSTILE_SEARCHES)
async def test_hostile_search_is_answered_correctly(api: Client, loaded: Loaded, word: str) -> None:
    expected = loaded.oracle.visible_courses(search=word.strip())
    body = await _json(api, f"{API}/search/", {"search": word, "page_size": 50})
    assert body["count"] == len(expected)
    assert _ids(body["results"]) == _ids(expected[:50])
