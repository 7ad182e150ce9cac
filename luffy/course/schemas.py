"""Reply shapes of the catalogue endpoints, exactly the contract's fields (msgspec, no ORM objects)."""

from __future__ import annotations

import datetime

import msgspec

from luffy.responses import Envelope, ListResult, Page

COURSE_TYPE_NAMES = {0: "付费", 1: "VIP专享"}
LEVEL_NAMES = {0: "初级", 1: "中级", 2: "高级"}
STATUS_NAMES = {0: "上线", 1: "下线", 2: "预上线"}
ROLE_NAMES = {0: "讲师", 1: "导师", 2: "班主任"}
SECTION_TYPE_NAMES = {0: "文档", 1: "练习", 2: "视频"}


def display_name(names: dict[int, str], value: int) -> str:
    """Django's ``get_FOO_display``: the choice's label, or the raw value when it is not a known choice."""
    return names.get(value) or str(value)


class CategoryItem(msgspec.Struct):
    id: int
    name: str


class TeacherItem(msgspec.Struct, kw_only=True):
    id: int
    name: str
    role: int
    role_name: str
    title: str
    signature: str | None
    image: str | None
    brief: str


class SectionPreview(msgspec.Struct, kw_only=True):
    """One of the (at most four) sections shown with a course in the list."""

    id: int
    name: str
    section_link: str | None
    duration: str | None
    free_trail: bool


class CourseItem(msgspec.Struct, kw_only=True):
    id: int
    name: str
    course_img: str | None
    course_type: int
    course_type_name: str
    brief: str | None
    level: int
    level_name: str
    pub_date: datetime.date
    period: int
    attachment_path: str | None
    status: int
    status_name: str
    students: int
    sections: int
    pub_sections: int
    price: str
    course_category: int | None
    teacher: TeacherItem | None
    section_list: list[SectionPreview]


# The detail reply: the course's fields at the top level beside ``code`` and ``msg``.
CourseDetail = msgspec.defstruct(
    "CourseDetail",
    [(field.name, field.type) for field in msgspec.structs.fields(CourseItem)],
    bases=(Envelope,),
    kw_only=True,
    module=__name__,
)


class SectionItem(msgspec.Struct, kw_only=True):
    id: int
    name: str
    orders: int
    section_type: int
    section_type_name: str
    section_link: str | None
    duration: str | None
    free_trail: bool
    pub_date: datetime.datetime


class ChapterItem(msgspec.Struct, kw_only=True):
    id: int
    chapter: int
    name: str
    summary: str | None
    pub_date: datetime.date
    coursesections: list[SectionItem]


CategoryList = ListResult[CategoryItem]
CoursePage = Page[CourseItem]
