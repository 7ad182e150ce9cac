"""The catalogue's query budget: a fixed number of SQL statements per request, whatever the page size.

A list page is at most 3 statements (count, the page with teacher, the sections of the whole
page), a detail at most 2, chapters at most 2, on SQLite and on PostgreSQL. These are the budgets
of embedded mode and of a cache miss; in production a repeated category, detail or chapters request
is served by the catalogue cache with none (``tests/test_course_cache.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.db import make_sqlalchemy_config, session_scope
from luffy.seed import DEMO_ID_BASE, load_demo
from luffy.settings import Settings
from tests.support.sqlcount import count_statements

API = "/api/v1/course"


@pytest.fixture
async def catalogue(seeded: Settings) -> Settings:
    config = make_sqlalchemy_config(seeded)
    try:
        async with session_scope(config) as session:
            await load_demo(session, 120, random_seed=3)
    finally:
        await config.get_engine().dispose()
    return seeded


async def _statements(client: AsyncTestClient[Litestar], app: Litestar, path: str, **params: Any) -> list[str]:
    engine = app.state.sqlalchemy_config.get_engine()
    with count_statements(engine) as statements:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return statements


@pytest.mark.parametrize("page_size", [1, 50])  # the default list has well over 50 courses
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"course_category": DEMO_ID_BASE + 3, "ordering": "-price"},
        {"search": "python", "ordering": "students,-id"},
    ],
    ids=["default", "category-ordering-page", "search"],
)
async def test_a_list_page_is_three_statements(
    client: AsyncTestClient[Litestar], app: Litestar, catalogue: Settings, page_size: int, params: dict[str, Any]
) -> None:
    for path in (f"{API}/actual/", f"{API}/list/", f"{API}/search/"):
        statements = await _statements(client, app, path, page_size=page_size, **params)
        body = (await client.get(path, params={"page_size": page_size, **params})).json()
        assert len(body["results"]) == min(page_size, body["count"]) > 0
        assert len(statements) == 3, statements
        assert "row_number()" in statements[2].lower()


async def test_a_detail_is_at_most_two_statements(
    client: AsyncTestClient[Litestar], app: Litestar, catalogue: Settings
) -> None:
    for course_id in (1, DEMO_ID_BASE, DEMO_ID_BASE + 7):
        assert len(await _statements(client, app, f"{API}/actual/{course_id}/")) <= 2


async def test_chapters_are_at_most_two_statements(
    client: AsyncTestClient[Litestar], app: Litestar, catalogue: Settings
) -> None:
    for course_id in (1, DEMO_ID_BASE, DEMO_ID_BASE + 7):
        assert len(await _statements(client, app, f"{API}/chapter/", course=course_id)) <= 2


async def test_categories_are_one_statement(
    client: AsyncTestClient[Litestar], app: Litestar, catalogue: Settings
) -> None:
    assert len(await _statements(client, app, f"{API}/category/")) == 1
