"""``/api/v1/course/...``: categories, course pages, a course, its chapters (thin: parse, call, shape)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Request, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, QueryParameter

from luffy.course.cache import CATEGORIES_FIELD, chapters_field, course_field, page_field
from luffy.course.schemas import CategoryList, ChapterItem, CourseDetail, CoursePage
from luffy.course.services import (
    COURSE_NOT_FOUND,
    MAX_ID,
    ORDERING_FIELDS,
    SEARCH_MAX_LENGTH,
    SEARCH_MAX_RESULTS,
    CourseCatalogue,
    CoursePageResult,
    CourseQuery,
    clamp_page_size,
    parse_ordering,
)
from luffy.db import read_connection
from luffy.errors import NotFound
from luffy.responses import error_responses, page_url, requested_path

NO_NUL = r"^[^\x00]*$"
_ORDER_TERM = rf"\s*-?({'|'.join(ORDERING_FIELDS)})\s*"
# Documented in the OpenAPI schema only: the parser enforces it, with a message that names the field.
ORDERING_PATTERN = rf"^({_ORDER_TERM}(,{_ORDER_TERM})*)?$"


async def cached_reply(
    state: State, field: str, build: Callable[[CourseCatalogue], Awaitable[msgspec.Struct | list[Any] | None]]
) -> Response[bytes]:
    """The reply from the catalogue cache (``luffy.course.cache``) as it was encoded, or built and encoded.

    The database is only reached on a miss (so a hit runs no SQL); ``build`` returning ``None``
    (no such course) is a 404, and is not cached.
    """

    async def read() -> bytes | None:
        async with read_connection(state.sqlalchemy_config) as connection:
            reply = await build(CourseCatalogue(connection, state.settings))
        return None if reply is None else msgspec.json.encode(reply)

    body = await state.catalogue_cache.reply(field, read)
    if body is None:
        raise NotFound(COURSE_NOT_FOUND)
    return Response(body, media_type=MediaType.JSON)


def reply_spec(container: Any, description: str) -> dict[int, ResponseSpec]:
    """The OpenAPI entry of a reply sent as encoded bytes: the shape it was encoded from."""
    return {200: ResponseSpec(data_container=container, description=description, generate_examples=False)}


async def _categories(catalogue: CourseCatalogue) -> CategoryList:
    return CategoryList(result=await catalogue.categories())


async def _detail(catalogue: CourseCatalogue, course_id: int) -> CourseDetail | None:  # type: ignore[valid-type]
    course = await catalogue.course(course_id)
    if course is None:
        return None
    return CourseDetail(**{field: getattr(course, field) for field in course.__struct_fields__})


CategoryParameter = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID, description="Only this category's courses.")]
OrderingParameter = Annotated[
    str | None,
    QueryParameter(
        description="Comma-separated fields among orders, price, students, id; '-' for descending. "
        "Default orders; ties are broken by id, in the direction of the last field.",
        max_length=200,
        schema_extra={"pattern": ORDERING_PATTERN},
    ),
]
SearchParameter = Annotated[
    str | None,
    QueryParameter(
        description="Case-insensitive substring of the course name (% and _ match themselves).",
        max_length=SEARCH_MAX_LENGTH,
        pattern=NO_NUL,
    ),
]
PageParameter = Annotated[
    int,
    QueryParameter(
        ge=1,
        description="1-based page number; past the last page is a 404; "
        f"a search page starting past its first {SEARCH_MAX_RESULTS} matches is a 400.",
    ),
]
PageSizeParameter = Annotated[
    int | None, QueryParameter(ge=1, description="Courses per page, default 10; above 50 is clamped to 50.")
]
SizeParameter = Annotated[
    int | None, QueryParameter(ge=1, description="Alias of page_size (the original front end's).")
]


def course_query(
    course_category: int | None,
    ordering: str | None,
    search: str | None,
    page: int,
    page_size: int | None,
    size: int | None,
) -> CourseQuery:
    return CourseQuery(
        category_id=course_category,
        search=search.strip() if search else None,
        ordering=parse_ordering(ordering),
        page=page,
        page_size=clamp_page_size(page_size if page_size is not None else size),
    )


def _page_reply(request: Request[Any, Any, Any], result: CoursePageResult) -> CoursePage:
    return CoursePage(
        count=result.count,
        next=page_url(request, result.page + 1) if result.has_next else None,
        previous=page_url(request, result.page - 1) if result.page > 1 else None,
        results=result.courses,
    )


class CourseController(Controller):
    path = "/course"
    tags = ["courses"]

    @get(
        "/category/",
        summary="Visible course categories, by orders then id",
        responses={**reply_spec(CategoryList, "The visible categories"), **error_responses(400)},
    )
    async def categories(self, state: State) -> Response[bytes]:
        return await cached_reply(state, CATEGORIES_FIELD, _categories)

    @get(
        ["/actual/", "/list/", "/search/"],
        summary="A page of visible courses: filter, search, ordering, pagination",
        responses={**reply_spec(CoursePage, "The page"), **error_responses(400, 404)},
    )
    async def course_list(
        self,
        request: Request[Any, Any, Any],
        state: State,
        course_category: CategoryParameter = None,
        ordering: OrderingParameter = None,
        search: SearchParameter = None,
        page: PageParameter = 1,
        page_size: PageSizeParameter = None,
        size: SizeParameter = None,
    ) -> Response[bytes]:
        query = course_query(course_category, ordering, search, page, page_size, size)
        found_courses = False

        async def read() -> bytes:
            nonlocal found_courses
            async with read_connection(state.sqlalchemy_config) as connection:
                result = await CourseCatalogue(connection, state.settings).course_page(query)
            found_courses = result.count > 0
            return msgspec.json.encode(_page_reply(request, result))

        # Empty pages are not kept: any category id gives one, and they would only fill the hash.
        field = page_field(requested_path(request.scope), request.scope["query_string"].decode("latin-1"))
        body = await (read() if field is None else state.catalogue_cache.reply(field, read, keep=lambda: found_courses))
        return Response(body, media_type=MediaType.JSON)

    @get(
        ["/actual/{course_id:int}/", "/list/{course_id:int}/"],
        summary="One visible course, its fields beside code and msg",
        responses={**reply_spec(CourseDetail, "The course"), **error_responses(400, 404)},
    )
    async def course_detail(self, state: State, course_id: FromPath[int]) -> Response[bytes]:
        return await cached_reply(state, course_field(course_id), lambda catalogue: _detail(catalogue, course_id))

    @get(
        "/chapter/",
        summary="A course's visible chapters with their sections (a bare array, no envelope)",
        responses={**reply_spec(list[ChapterItem], "The chapters"), **error_responses(400, 404)},
    )
    async def chapters(
        self,
        state: State,
        course: Annotated[int, QueryParameter(description="The course id; an unknown or invisible one is a 404.")],
    ) -> Response[bytes]:
        return await cached_reply(state, chapters_field(course), lambda catalogue: catalogue.chapters(course))
