"""Catalogue rules shown on small hand-made catalogues: visibility, section order, search, display.

Each test builds exactly the rows it needs (on SQLite and PostgreSQL) so the rule it checks is
the only thing that can explain the answer.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.db import LuffyBase, make_sqlalchemy_config, session_scope
from luffy.settings import Settings

API = "/api/v1/course"
BASE = "http://testserver.local"
Client = AsyncTestClient[Litestar]
TODAY = datetime.date(2024, 5, 1)
NOW = datetime.datetime(2024, 5, 1, 8, 30, tzinfo=datetime.UTC)


async def _insert(settings: Settings, *rows: LuffyBase) -> None:
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            for row in rows:
                session.add(row)
                await session.flush()
    finally:
        await config.get_engine().dispose()


def teacher(id: int, **fields: Any) -> Teacher:
    defaults: dict[str, Any] = {"name": f"T{id}", "role": 0, "title": "讲师", "image": None, "brief": "b"}
    return Teacher(id=id, **{**defaults, **fields})


def category(id: int, **fields: Any) -> CourseCategory:
    return CourseCategory(id=id, **{"name": f"C{id}", **fields})


def course(id: int, **fields: Any) -> Course:
    defaults: dict[str, Any] = {"name": f"course {id}", "pub_date": TODAY, "price": Decimal("10.00")}
    return Course(id=id, **{**defaults, **fields})


def chapter(id: int, course_id: int, number: int, **fields: Any) -> CourseChapter:
    return CourseChapter(id=id, course_id=course_id, chapter=number, name=f"ch{id}", pub_date=TODAY, **fields)


def section(id: int, chapter_id: int, **fields: Any) -> CourseSection:
    return CourseSection(id=id, chapter_id=chapter_id, name=f"s{id}", pub_date=NOW, **fields)


async def _get(client: Client, path: str, status: int = 200, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == status, response.text
    return response.json()


def _ids(rows: list[dict[str, Any]]) -> list[int]:
    return [row["id"] for row in rows]


async def test_hidden_and_deleted_rows_are_invisible(client: Client, settings: Settings) -> None:
    await _insert(
        settings,
        teacher(1),
        teacher(2, is_show=False),
        teacher(3, is_delete=True),
        category(1),
        category(2, is_show=False),
        category(3, is_delete=True),
        course(1, teacher_id=1, course_category_id=1, orders=1),
        course(2, teacher_id=2, course_category_id=2, orders=2),
        course(3, teacher_id=3, course_category_id=3, orders=3),
        course(4, teacher_id=1, course_category_id=1, orders=4, is_show=False),
        course(5, teacher_id=1, course_category_id=1, orders=5, is_delete=True),
        course(6, teacher_id=None, course_category_id=None, orders=6),
    )
    assert (await _get(client, f"{API}/category/"))["result"] == [{"id": 1, "name": "C1"}]

    page = await _get(client, f"{API}/actual/")
    assert page["count"] == 4
    assert _ids(page["results"]) == [1, 2, 3, 6]
    by_id = {row["id"]: row for row in page["results"]}
    assert by_id[1]["teacher"]["id"] == 1
    assert by_id[1]["course_category"] == 1
    # A hidden teacher or category is shown as none; the course itself stays visible.
    for hidden in (2, 3, 6):
        assert by_id[hidden]["teacher"] is None
        assert by_id[hidden]["course_category"] is None

    assert _ids((await _get(client, f"{API}/actual/", course_category=1))["results"]) == [1]
    for hidden_category in (2, 3):
        assert (await _get(client, f"{API}/actual/", course_category=hidden_category))["count"] == 0

    assert (await _get(client, f"{API}/actual/2/"))["teacher"] is None
    for invisible in (4, 5):
        await _get(client, f"{API}/actual/{invisible}/", status=404)
        await _get(client, f"{API}/list/{invisible}", status=404)
        await _get(client, f"{API}/chapter/", status=404, course=invisible)


async def test_sections_follow_chapter_order_then_section_order_and_hide_with_their_chapter(
    client: Client, settings: Settings
) -> None:
    await _insert(
        settings,
        course(1),
        # Chapter order is (chapter, orders, id), whatever the ids say.
        chapter(10, 1, number=2, orders=1),
        chapter(11, 1, number=1, orders=5),
        chapter(12, 1, number=1, orders=2),
        chapter(13, 1, number=0, orders=0, is_show=False),
        chapter(14, 1, number=0, orders=0, is_delete=True),
        section(100, 12, orders=2),
        section(101, 12, orders=1),
        section(102, 12, orders=0, is_show=False),
        section(103, 11, orders=1),
        section(104, 10, orders=1),
        section(105, 10, orders=1),
        section(99, 10, orders=2),
        section(106, 13, orders=0),
        section(107, 14, orders=0),
        section(108, 11, orders=0, is_delete=True),
    )
    detail = await _get(client, f"{API}/actual/1/")
    assert _ids(detail["section_list"]) == [101, 100, 103, 104]
    assert detail["section_list"][0] == {
        "id": 101,
        "name": "s101",
        "section_link": None,
        "duration": None,
        "free_trail": False,
    }
    assert _ids((await _get(client, f"{API}/actual/"))["results"][0]["section_list"]) == [101, 100, 103, 104]

    chapters = await _get(client, f"{API}/chapter/", course=1)
    assert _ids(chapters) == [12, 11, 10]
    assert [_ids(item["coursesections"]) for item in chapters] == [[101, 100], [103], [104, 105, 99]]


async def test_section_previews_are_per_course_on_a_page(client: Client, settings: Settings) -> None:
    await _insert(
        settings,
        course(1, orders=1),
        course(2, orders=2),
        course(3, orders=3),
        chapter(10, 1, number=1),
        chapter(20, 2, number=1),
        *[section(100 + n, 10, orders=n) for n in range(6)],
        section(200, 20, orders=1),
    )
    page = await _get(client, f"{API}/actual/")
    assert [_ids(row["section_list"]) for row in page["results"]] == [[100, 101, 102, 103], [200], []]
    assert await _get(client, f"{API}/chapter/", course=3) == []


async def test_equal_sort_values_are_broken_by_id_so_pages_never_overlap(client: Client, settings: Settings) -> None:
    ids = [7, 3, 11, 1, 9, 5, 12, 2, 8, 4, 10, 6]
    await _insert(settings, *[course(i, orders=0, price=Decimal("5.00"), students=3) for i in ids])
    # Ties go by id in the direction of the last ordering field.
    for ordering, descending in (
        ("orders", False),
        ("-orders", True),
        ("price", False),
        ("-price", True),
        ("-students,price", False),
        ("price,-students", True),
        (None, False),
    ):
        seen: list[int] = []
        for number in (1, 2, 3):
            params = {"page": number, "page_size": 5, **({"ordering": ordering} if ordering else {})}
            seen += _ids((await _get(client, f"{API}/actual/", **params))["results"])
        assert seen == sorted(ids, reverse=descending), ordering
    assert _ids((await _get(client, f"{API}/actual/", ordering="-id", page_size=3))["results"]) == [12, 11, 10]
    assert _ids((await _get(client, f"{API}/actual/", ordering="id,-price", page_size=3))["results"]) == [1, 2, 3]


async def test_search_wildcards_and_quotes_match_themselves(client: Client, settings: Settings) -> None:
    names = {
        1: "100% 实战",
        2: "1000 实战",
        3: "snake_case 入门",
        4: "snake case 入门",
        5: "Back\\slash",
        6: 'It\'s "quoted"',
        7: "Mixed PYTHON",
        8: "python lower",
        9: "a/b 路径",
    }
    await _insert(settings, *[course(i, name=name, orders=i) for i, name in names.items()])
    cases = {
        "%": [1],
        "0%": [1],
        "_": [3],
        "e_c": [3],
        "\\": [5],
        "'": [6],
        '"quoted"': [6],
        "python": [7, 8],
        "PYTHON": [7, 8],
        "/": [9],
        "实战": [1, 2],
        "  实战  ": [1, 2],
    }
    for word, expected in cases.items():
        body = await _get(client, f"{API}/search/", search=word)
        assert _ids(body["results"]) == expected, word
        assert body["count"] == len(expected)


async def test_fields_display_names_media_and_money(client: Client, settings: Settings) -> None:
    await _insert(
        settings,
        teacher(1, role=2, image="teacher/t.png", signature="签名"),
        teacher(2, role=9, image=None),
        category(1),
        course(
            1,
            teacher_id=1,
            course_category_id=1,
            course_img="",
            attachment_path="attachment/notes.pdf",
            course_type=1,
            level=2,
            status=2,
            price=Decimal("0.5"),
            pub_date=datetime.date(2021, 2, 3),
        ),
        course(2, teacher_id=2, course_img="courses/c.png", course_type=5, level=7, status=9, orders=2),
        chapter(10, 1, number=1, summary=None),
        section(100, 10, section_type=0, section_link="https://v.example/1", duration="12:30", free_trail=True),
        section(101, 10, section_type=1, orders=1),
        section(102, 10, section_type=2, orders=2),
        section(103, 10, section_type=4, orders=3),
    )
    first = await _get(client, f"{API}/actual/1/")
    assert first["course_img"] is None
    assert first["attachment_path"] == f"{BASE}/media/attachment/notes.pdf"
    assert (first["course_type_name"], first["level_name"], first["status_name"]) == ("VIP专享", "高级", "预上线")
    assert first["price"] == "0.50"
    assert first["pub_date"] == "2021-02-03"
    assert first["teacher"] == {
        "id": 1,
        "name": "T1",
        "role": 2,
        "role_name": "班主任",
        "title": "讲师",
        "signature": "签名",
        "image": f"{BASE}/media/teacher/t.png",
        "brief": "b",
    }
    assert first["section_list"][0] == {
        "id": 100,
        "name": "s100",
        "section_link": "https://v.example/1",
        "duration": "12:30",
        "free_trail": True,
    }
    second = await _get(client, f"{API}/list/2/")
    assert second["course_img"] == f"{BASE}/media/courses/c.png"
    assert second["teacher"]["image"] is None
    # Values outside the choices show as themselves, as Django's get_FOO_display does.
    assert (second["course_type_name"], second["level_name"], second["status_name"]) == ("5", "7", "9")
    assert second["teacher"]["role_name"] == "9"

    chapters = await _get(client, f"{API}/chapter/", course=1)
    assert chapters[0]["summary"] is None
    assert [s["section_type_name"] for s in chapters[0]["coursesections"]] == ["文档", "练习", "视频", "4"]
    assert datetime.datetime.fromisoformat(chapters[0]["coursesections"][0]["pub_date"]) == NOW


async def test_an_empty_catalogue_has_an_empty_first_page(client: Client, settings: Settings) -> None:
    body = await _get(client, f"{API}/actual/")
    assert body == {"code": 100, "msg": "成功", "count": 0, "next": None, "previous": None, "results": []}
    await _get(client, f"{API}/actual/", status=404, page=2)
    assert (await _get(client, f"{API}/category/"))["result"] == []


@pytest.mark.parametrize("path", [f"{API}/actual/", f"{API}/search/", f"{API}/list/"])
async def test_page_past_the_last_is_a_404_in_the_envelope(client: Client, settings: Settings, path: str) -> None:
    await _insert(settings, *[course(i) for i in range(1, 4)])
    assert len((await _get(client, path, page=2, page_size=2))["results"]) == 1
    assert await _get(client, path, status=404, page=3, page_size=2) == {"code": 999, "msg": "无效页面"}
