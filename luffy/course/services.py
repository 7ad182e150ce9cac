"""The course catalogue: visible categories, course pages, a course, its chapters.

The hot paths use SQLAlchemy Core selects straight into msgspec structs (no ORM instances) with
a fixed number of statements per call: a page is a count, the page rows with their teacher and
category, and the first sections of every course on the page, ranked in SQL by a window function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from advanced_alchemy.filters import LIKE_ESCAPE_CHAR, escape_like_value
from sqlalchemy import BigInteger, ColumnElement, Select, TextClause, and_, any_, bindparam, exists, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.course.schemas import (
    COURSE_TYPE_NAMES,
    LEVEL_NAMES,
    ROLE_NAMES,
    SECTION_TYPE_NAMES,
    STATUS_NAMES,
    CategoryItem,
    ChapterItem,
    CourseItem,
    SectionItem,
    SectionPreview,
    TeacherItem,
    display_name,
)
from luffy.db import LuffyBase
from luffy.errors import InvalidInput, NotFound
from luffy.settings import Settings

# JavaScript's largest safe integer: a larger id could not reach the front end intact, and the
# bound is exact in the OpenAPI document (whose numbers are floats) and within every SQL bigint.
MAX_ID = 2**53 - 1
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 50
SECTION_PREVIEW_COUNT = 4
ORDERING_FIELDS = ("orders", "price", "students", "id")
# Longer than the name column: it could never match, so it is refused rather than searched.
SEARCH_MAX_LENGTH = 128
# A search counts and pages through at most this many matches: a substring search cannot use an
# ordinary index (PostgreSQL's trigram index serves words of 3+ characters only, SQLite has none),
# so an unbounded count or a deep offset would let cheap requests read the whole table each.
SEARCH_MAX_RESULTS = 1_000


PAGE_NOT_FOUND = "无效页面"
COURSE_NOT_FOUND = "课程不存在"
SEARCH_TOO_DEEP = f"搜索结果只能翻看前 {SEARCH_MAX_RESULTS} 条，请缩小搜索范围"


class OrderingError(InvalidInput):
    """The ``ordering`` parameter names a field that cannot be ordered by."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="ordering")


class PageNotFound(NotFound):
    """The requested page lies past the last page."""

    def __init__(self) -> None:
        super().__init__(PAGE_NOT_FOUND)


class PageTooDeep(InvalidInput):
    """A search page that starts past ``SEARCH_MAX_RESULTS`` matches."""

    def __init__(self) -> None:
        super().__init__(SEARCH_TOO_DEEP, field="page")


OrderKey = tuple[str, bool]  # (field, descending)


def parse_ordering(raw: str | None) -> tuple[OrderKey, ...]:
    """``"-price,students"`` into ``(("price", True), ("students", False))``; default ``orders``."""
    if raw is None or not raw.strip():
        return (("orders", False),)
    keys: list[OrderKey] = []
    seen: set[str] = set()
    for item in raw.split(","):
        term = item.strip()
        field = term.removeprefix("-")
        if field not in ORDERING_FIELDS:
            raise OrderingError(f"无效的排序字段 {term!r}，可选: {', '.join(ORDERING_FIELDS)}")
        if field not in seen:
            seen.add(field)
            keys.append((field, term.startswith("-")))
    return tuple(keys)


@dataclass(frozen=True)
class CourseQuery:
    category_id: int | None = None
    search: str | None = None
    ordering: tuple[OrderKey, ...] = (("orders", False),)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE


@dataclass(frozen=True)
class CoursePageResult:
    count: int
    page: int
    page_size: int
    courses: list[CourseItem]

    @property
    def has_next(self) -> bool:
        return self.page * self.page_size < self.count


def clamp_page_size(requested: int | None) -> int:
    if requested is None:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def visible(model: type[LuffyBase]) -> TextClause:
    # Spelled as the partial indexes' predicate, so SQLite (which matches it term by term) uses them too.
    table = model.__tablename__
    return text(f"{table}.is_show AND NOT {table}.is_delete")


_COURSE_COLUMNS = (
    Course.id,
    Course.name,
    Course.course_img,
    Course.course_type,
    Course.brief,
    Course.level,
    Course.pub_date,
    Course.period,
    Course.attachment_path,
    Course.status,
    Course.students,
    Course.sections,
    Course.pub_sections,
    Course.price,
)
_TEACHER_COLUMNS = (
    Teacher.id.label("teacher_id"),
    Teacher.name.label("teacher_name"),
    Teacher.role.label("teacher_role"),
    Teacher.title.label("teacher_title"),
    Teacher.signature.label("teacher_signature"),
    Teacher.image.label("teacher_image"),
    Teacher.brief.label("teacher_brief"),
)
_ORDER_COLUMNS = {"orders": Course.orders, "price": Course.price, "students": Course.students, "id": Course.id}


def _courses_with_teacher() -> Select[*tuple[Any, ...]]:
    """Visible courses, each with its visible teacher and visible category (else null)."""
    return (
        select(*_COURSE_COLUMNS, CourseCategory.id.label("category_id"), *_TEACHER_COLUMNS)
        .select_from(Course)
        .outerjoin(Teacher, and_(Teacher.id == Course.teacher_id, visible(Teacher)))
        .outerjoin(CourseCategory, and_(CourseCategory.id == Course.course_category_id, visible(CourseCategory)))
        .where(visible(Course))
    )


def order_keys_with_tie_break(ordering: Sequence[OrderKey]) -> tuple[OrderKey, ...]:
    """The ordering, then ``id`` in the direction of its last field, so equal values never swap pages.

    Following the last field's direction lets one ``(field, id)`` index serve both ``field`` and
    ``-field`` (read forwards or backwards).
    """
    if any(field == "id" for field, _ in ordering):
        return tuple(ordering)
    return (*ordering, ("id", ordering[-1][1]))


def _order_by(ordering: Sequence[OrderKey]) -> list[ColumnElement[Any]]:
    return [
        _ORDER_COLUMNS[field].desc() if descending else _ORDER_COLUMNS[field].asc()
        for field, descending in order_keys_with_tie_break(ordering)
    ]


# The statements are built once, with bound parameters, so a request neither rebuilds them nor
# recomputes their cache keys: SQLAlchemy compiles each once and asyncpg prepares each once per
# connection.
def _build_section_previews(of_listed_courses: ColumnElement[bool]) -> Select[*tuple[Any, ...]]:
    """The first sections of each listed course (chapter order, then section order), ranked in SQL."""
    ranked = (
        select(
            CourseChapter.course_id,
            CourseSection.id,
            CourseSection.name,
            CourseSection.section_link,
            CourseSection.duration,
            CourseSection.free_trail,
            func.row_number()
            .over(
                partition_by=CourseChapter.course_id,
                order_by=(
                    CourseChapter.chapter,
                    CourseChapter.orders,
                    CourseChapter.id,
                    CourseSection.orders,
                    CourseSection.id,
                ),
            )
            .label("position"),
        )
        .join(CourseChapter, CourseChapter.id == CourseSection.chapter_id)
        .where(of_listed_courses, visible(CourseChapter), visible(CourseSection))
        .subquery()
    )
    return (
        select(
            ranked.c.course_id,
            ranked.c.id,
            ranked.c.name,
            ranked.c.section_link,
            ranked.c.duration,
            ranked.c.free_trail,
        )
        .where(ranked.c.position <= SECTION_PREVIEW_COUNT)
        .order_by(ranked.c.course_id, ranked.c.position)
    )


def _build_chapters() -> Select[*tuple[Any, ...]]:
    """A visible course's visible chapters, each with its visible sections (one row per section)."""
    return (
        select(
            Course.id.label("course_id"),
            CourseChapter.id.label("chapter_id"),
            CourseChapter.chapter,
            CourseChapter.name.label("chapter_name"),
            CourseChapter.summary,
            CourseChapter.pub_date.label("chapter_pub_date"),
            CourseSection.id.label("section_id"),
            CourseSection.name.label("section_name"),
            CourseSection.orders.label("section_orders"),
            CourseSection.section_type,
            CourseSection.section_link,
            CourseSection.duration,
            CourseSection.free_trail,
            CourseSection.pub_date.label("section_pub_date"),
        )
        .select_from(Course)
        .outerjoin(CourseChapter, and_(CourseChapter.course_id == Course.id, visible(CourseChapter)))
        .outerjoin(CourseSection, and_(CourseSection.chapter_id == CourseChapter.id, visible(CourseSection)))
        .where(Course.id == bindparam("course_id"), visible(Course))
        .order_by(
            CourseChapter.chapter,
            CourseChapter.orders,
            CourseChapter.id,
            CourseSection.orders,
            CourseSection.id,
        )
    )


_CATEGORIES = (
    select(CourseCategory.id, CourseCategory.name)
    .where(visible(CourseCategory))
    .order_by(CourseCategory.orders, CourseCategory.id)
)
_COURSE_BY_ID = _courses_with_teacher().where(Course.id == bindparam("course_id"))
_SECTION_PREVIEWS = {
    # One array parameter: one prepared statement whatever the page's length, and no IN list to render.
    "postgresql": _build_section_previews(
        CourseChapter.course_id == any_(bindparam("course_ids", type_=postgresql.ARRAY(BigInteger)))
    ),
    "sqlite": _build_section_previews(CourseChapter.course_id.in_(bindparam("course_ids", expanding=True))),
}
_CHAPTERS = _build_chapters()


@lru_cache(maxsize=512)
def _page_statements(
    ordering: tuple[OrderKey, ...], by_category: bool, by_search: bool
) -> tuple[Select[*tuple[Any, ...]], Select[*tuple[Any, ...]]]:
    """The count and the page of a listing, for each shape of query (the values are bound at execution)."""
    conditions: list[ColumnElement[bool]] = []
    if by_category:
        # A hidden category is no category: filtering by it finds nothing.
        category_visible = exists().where(CourseCategory.id == bindparam("category_id"), visible(CourseCategory))
        conditions += [Course.course_category_id == bindparam("category_id"), category_visible]
    if by_search:
        # advanced-alchemy's escaping, as its SearchFilter does it, so % and _ match themselves.
        conditions.append(Course.name.ilike(bindparam("name_pattern"), escape=LIKE_ESCAPE_CHAR))
    if by_search:
        matches = select(Course.id).where(visible(Course), *conditions).limit(SEARCH_MAX_RESULTS).subquery()
        count = select(func.count()).select_from(matches)
    else:
        count = select(func.count()).select_from(Course).where(visible(Course), *conditions)
    page = (
        _courses_with_teacher()
        .where(*conditions)
        .order_by(*_order_by(ordering))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )
    return count, page


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class CourseCatalogue:
    """Read-only catalogue queries for the public API, on a connection of their own (see the controller)."""

    def __init__(self, connection: AsyncConnection, settings: Settings) -> None:
        self.connection = connection
        self.settings = settings

    async def categories(self) -> list[CategoryItem]:
        rows = await self.connection.execute(_CATEGORIES)
        return [CategoryItem(id=row.id, name=row.name) for row in rows]

    async def course_page(self, query: CourseQuery) -> CoursePageResult:
        """One page of visible courses; :class:`PageNotFound` past the last page (page 1 always exists).

        A search counts at most ``SEARCH_MAX_RESULTS`` matches, and a page of it starting past them
        is :class:`PageTooDeep` before any query runs.
        """
        offset = (query.page - 1) * query.page_size
        if query.search and offset >= SEARCH_MAX_RESULTS:
            raise PageTooDeep
        count_statement, page_statement = _page_statements(
            query.ordering, query.category_id is not None, bool(query.search)
        )
        parameters: dict[str, Any] = {}
        if query.category_id is not None:
            parameters["category_id"] = query.category_id
        if query.search:
            parameters["name_pattern"] = f"%{escape_like_value(query.search)}%"
        count = (await self.connection.execute(count_statement, parameters)).scalar_one()
        if query.page > 1 and offset >= count:
            raise PageNotFound
        if count == 0:
            return CoursePageResult(count, query.page, query.page_size, [])
        parameters.update(limit=query.page_size, offset=offset)
        rows = (await self.connection.execute(page_statement, parameters)).all()
        courses = await self._with_sections(rows)
        return CoursePageResult(count, query.page, query.page_size, courses)

    async def course(self, course_id: int) -> CourseItem | None:
        """A visible course, or ``None`` (ids outside the id range are simply unknown)."""
        if not 1 <= course_id <= MAX_ID:
            return None
        rows = (await self.connection.execute(_COURSE_BY_ID, {"course_id": course_id})).all()
        if not rows:
            return None
        return (await self._with_sections(rows))[0]

    async def chapters(self, course_id: int) -> list[ChapterItem] | None:
        """The visible chapters of a visible course with their visible sections; ``None`` for no such course."""
        if not 1 <= course_id <= MAX_ID:
            return None
        rows = (await self.connection.execute(_CHAPTERS, {"course_id": course_id})).all()
        if not rows:
            return None
        chapters: list[ChapterItem] = []
        current: ChapterItem | None = None
        for row in rows:
            if row.chapter_id is None:
                continue
            if current is None or current.id != row.chapter_id:
                current = ChapterItem(
                    id=row.chapter_id,
                    chapter=row.chapter,
                    name=row.chapter_name,
                    summary=row.summary,
                    pub_date=row.chapter_pub_date,
                    coursesections=[],
                )
                chapters.append(current)
            if row.section_id is not None:
                current.coursesections.append(
                    SectionItem(
                        id=row.section_id,
                        name=row.section_name,
                        orders=row.section_orders,
                        section_type=row.section_type,
                        section_type_name=display_name(SECTION_TYPE_NAMES, row.section_type),
                        section_link=row.section_link,
                        duration=row.duration,
                        free_trail=row.free_trail,
                        pub_date=row.section_pub_date,
                    )
                )
        return chapters

    async def _with_sections(self, rows: Sequence[Any]) -> list[CourseItem]:
        # Rows are unpacked by position (in the order of their select): a page converts twice as
        # fast as with attribute access.
        previews: dict[int, list[SectionPreview]] = {row[0]: [] for row in rows}
        statement = _SECTION_PREVIEWS[self.connection.dialect.name]
        sections = await self.connection.execute(statement, {"course_ids": list(previews)})
        for course_id, section_id, name, section_link, duration, free_trail in sections:
            previews[course_id].append(
                SectionPreview(
                    id=section_id, name=name, section_link=section_link, duration=duration, free_trail=free_trail
                )
            )
        return [self._course(row, previews[row[0]]) for row in rows]

    def _course(self, row: Any, section_list: list[SectionPreview]) -> CourseItem:
        (
            course_id,
            name,
            course_img,
            course_type,
            brief,
            level,
            pub_date,
            period,
            attachment_path,
            status,
            students,
            sections,
            pub_sections,
            price,
            category_id,
            teacher_id,
            teacher_name,
            teacher_role,
            teacher_title,
            teacher_signature,
            teacher_image,
            teacher_brief,
        ) = row
        media_url = self.settings.media_url
        teacher = None
        if teacher_id is not None:
            teacher = TeacherItem(
                id=teacher_id,
                name=teacher_name,
                role=teacher_role,
                role_name=display_name(ROLE_NAMES, teacher_role),
                title=teacher_title,
                signature=teacher_signature,
                image=media_url(teacher_image),
                brief=teacher_brief,
            )
        return CourseItem(
            id=course_id,
            name=name,
            course_img=media_url(course_img),
            course_type=course_type,
            course_type_name=display_name(COURSE_TYPE_NAMES, course_type),
            brief=brief,
            level=level,
            level_name=display_name(LEVEL_NAMES, level),
            pub_date=pub_date,
            period=period,
            attachment_path=media_url(attachment_path),
            status=status,
            status_name=display_name(STATUS_NAMES, status),
            students=students,
            sections=sections,
            pub_sections=pub_sections,
            price=_money(price),
            course_category=category_id,
            teacher=teacher,
            section_list=section_list,
        )
