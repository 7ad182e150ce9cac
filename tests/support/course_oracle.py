"""What the catalogue endpoints must answer, computed in plain Python from the rows that were loaded.

An independent re-statement of the contract (visibility, ordering, display names, media URLs,
section previews), so the API's SQL is checked against something that does not share its code.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seed import DemoCatalogue, load_demo, load_seed, read_seed_rows
from luffy.settings import Settings, load_settings
from tests.conftest import TEST_SECRET, truncate_all

COURSE_TYPE = {0: "付费", 1: "VIP专享"}
LEVEL = {0: "初级", 1: "中级", 2: "高级"}
STATUS = {0: "上线", 1: "下线", 2: "预上线"}
ROLE = {0: "讲师", 1: "导师", 2: "班主任"}
SECTION_TYPE = {0: "文档", 1: "练习", 2: "视频"}

Row = dict[str, Any]
BASE_URL = "http://testserver.local"


def catalogue_settings(database_url: str, data_dir: str) -> Settings:
    return load_settings(
        {
            "LUFFY_DATA_DIR": data_dir,
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_SECRET_KEY": TEST_SECRET,
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_BACKEND_URL": BASE_URL,
        }
    )


async def load_catalogue(settings: Settings, courses: int, random_seed: int) -> DemoCatalogue:
    """Empty the database, then load the seed rows and a generated catalogue of ``courses``."""
    await truncate_all(settings.database_url)
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            await load_seed(session, settings.media_root)
        async with session_scope(config) as session:
            return await load_demo(session, courses, random_seed)
    finally:
        await config.get_engine().dispose()


def is_visible(row: Row | None) -> bool:
    return row is not None and bool(row["is_show"]) and not row["is_delete"]


def _by_id(rows: Iterable[Row]) -> dict[int, Row]:
    return {row["id"]: row for row in rows}


@dataclass
class Tables:
    teachers: list[Row]
    categories: list[Row]
    courses: list[Row]
    chapters: list[Row]
    sections: list[Row]

    @classmethod
    def from_seed_and_demo(cls, demo: DemoCatalogue | None) -> Tables:
        seed = read_seed_rows()
        return cls(
            teachers=seed["luffy_teacher"] + (demo.teachers if demo else []),
            categories=seed["luffy_course_category"] + (demo.categories if demo else []),
            courses=seed["luffy_course"] + (demo.courses if demo else []),
            chapters=seed["luffy_course_chapter"] + (demo.chapters if demo else []),
            sections=seed["luffy_course_section"] + (demo.sections if demo else []),
        )


ORDER_FIELDS = ("orders", "price", "students", "id")


def sort_key(ordering: Sequence[tuple[str, bool]]) -> Any:
    """A key for ``sorted`` honouring each field's direction, then ``id`` in the last field's direction."""
    tie_break_descending = ordering[-1][1]

    def key(course: Row) -> tuple[Any, ...]:
        parts: list[Any] = []
        for field, descending in ordering:
            value = course[field]
            parts.append(-value if descending else value)
        parts.append(-course["id"] if tie_break_descending else course["id"])
        return tuple(parts)

    return key


class Oracle:
    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.teachers = _by_id(tables.teachers)
        self.categories = _by_id(tables.categories)

    def media(self, path: str | None) -> str | None:
        return f"{BASE_URL}/media/{path}" if path else None

    def categories_json(self) -> list[Row]:
        visible = [row for row in self.tables.categories if is_visible(row)]
        return [{"id": row["id"], "name": row["name"]} for row in sorted(visible, key=lambda r: (r["orders"], r["id"]))]

    def visible_courses(
        self,
        ordering: Sequence[tuple[str, bool]] = (("orders", False),),
        category: int | None = None,
        search: str | None = None,
    ) -> list[Row]:
        courses = [row for row in self.tables.courses if is_visible(row)]
        if category is not None:
            courses = [
                row
                for row in courses
                if row["course_category_id"] == category and is_visible(self.categories.get(category))
            ]
        if search:
            courses = [row for row in courses if search.lower() in row["name"].lower()]
        return sorted(courses, key=sort_key(ordering))

    def _chapters_of(self, course_id: int) -> list[Row]:
        chapters = [row for row in self.tables.chapters if row["course_id"] == course_id and is_visible(row)]
        return sorted(chapters, key=lambda r: (r["chapter"], r["orders"], r["id"]))

    def _sections_of(self, chapter_id: int) -> list[Row]:
        sections = [row for row in self.tables.sections if row["chapter_id"] == chapter_id and is_visible(row)]
        return sorted(sections, key=lambda r: (r["orders"], r["id"]))

    def course_json(self, course: Row) -> Row:
        teacher = self.teachers.get(course["teacher_id"]) if course["teacher_id"] is not None else None
        category = self.categories.get(course["course_category_id"])
        previews = [
            {
                "id": section["id"],
                "name": section["name"],
                "section_link": section["section_link"],
                "duration": section["duration"],
                "free_trail": section["free_trail"],
            }
            for chapter in self._chapters_of(course["id"])
            for section in self._sections_of(chapter["id"])
        ][:4]
        return {
            "id": course["id"],
            "name": course["name"],
            "course_img": self.media(course["course_img"]),
            "course_type": course["course_type"],
            "course_type_name": COURSE_TYPE[course["course_type"]],
            "brief": course["brief"],
            "level": course["level"],
            "level_name": LEVEL[course["level"]],
            "pub_date": course["pub_date"].isoformat(),
            "period": course["period"],
            "attachment_path": self.media(course["attachment_path"]),
            "status": course["status"],
            "status_name": STATUS[course["status"]],
            "students": course["students"],
            "sections": course["sections"],
            "pub_sections": course["pub_sections"],
            "price": f"{Decimal(course['price']):.2f}",
            "course_category": category["id"] if is_visible(category) else None,
            "teacher": {
                "id": teacher["id"],
                "name": teacher["name"],
                "role": teacher["role"],
                "role_name": ROLE[teacher["role"]],
                "title": teacher["title"],
                "signature": teacher["signature"],
                "image": self.media(teacher["image"]),
                "brief": teacher["brief"],
            }
            if is_visible(teacher)
            else None,
            "section_list": previews,
        }

    def chapters_json(self, course_id: int) -> list[Row]:
        return [
            {
                "id": chapter["id"],
                "chapter": chapter["chapter"],
                "name": chapter["name"],
                "summary": chapter["summary"],
                "pub_date": chapter["pub_date"].isoformat(),
                "coursesections": [
                    {
                        "id": section["id"],
                        "name": section["name"],
                        "orders": section["orders"],
                        "section_type": section["section_type"],
                        "section_type_name": SECTION_TYPE[section["section_type"]],
                        "section_link": section["section_link"],
                        "duration": section["duration"],
                        "free_trail": section["free_trail"],
                        "pub_date": section["pub_date"],
                    }
                    for section in self._sections_of(chapter["id"])
                ],
            }
            for chapter in self._chapters_of(course_id)
        ]


def parse_section_times(chapters: list[Row]) -> list[Row]:
    """The reply's ISO 8601 section times as aware datetimes, to compare with the loaded rows."""
    for chapter in chapters:
        for section in chapter["coursesections"]:
            section["pub_date"] = datetime.datetime.fromisoformat(section["pub_date"])
    return chapters
