"""``luffy seed``: exactly the original rows, idempotent, and a deterministic demo catalogue."""

from __future__ import annotations

import datetime
import re
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.db import make_sqlalchemy_config, session_scope
from luffy.home.models import Banner
from luffy.seed import DEMO_ID_BASE, build_demo_catalogue, count_rows, load_demo, load_seed
from luffy.settings import Settings

SHARED_SEED_SQL = Path(__file__).resolve().parents[2] / "shared" / "seed-data.sql"
TABLES = {
    "luffy_teacher": Teacher,
    "luffy_course_category": CourseCategory,
    "luffy_course": Course,
    "luffy_course_chapter": CourseChapter,
    "luffy_course_section": CourseSection,
}


def original_rows() -> dict[str, list[dict[str, Any]]]:
    """The rows of the original seed SQL, read by SQLite itself (independent of seeds/*.json)."""
    sql = SHARED_SEED_SQL.read_text(encoding="utf-8")
    database = sqlite3.connect(":memory:")
    columns: dict[str, list[str]] = {}
    for match in re.finditer(r"INSERT INTO (\w+)\(([^)]*)\)", sql):
        columns[match.group(1).lower()] = [name.strip() for name in match.group(2).split(",")]
    for table, names in columns.items():
        database.execute(f"CREATE TABLE {table} ({', '.join(names)})")
    database.executescript(sql)
    return {
        table: [
            dict(zip(names, row, strict=True))
            for row in database.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY id")
        ]
        for table, names in columns.items()
    }


def normalise(value: Any) -> Any:
    """Database values in the SQL file's spelling: 1/0 booleans, naive timestamps, plain numbers."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


async def _seed(settings: Settings) -> dict[str, int]:
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            await load_seed(session, settings.media_root)
        async with session_scope(config) as session:
            return await count_rows(session)
    finally:
        await config.get_engine().dispose()


@pytest.mark.skipif(not SHARED_SEED_SQL.exists(), reason="shared/seed-data.sql is not beside the checkout")
async def test_seed_rows_equal_the_original_sql_field_by_field(settings: Settings) -> None:
    await _seed(settings)
    expected = original_rows()
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            for table_name, model in TABLES.items():
                rows = (await session.execute(select(model.__table__).order_by(model.id))).mappings().all()
                want = expected[table_name]
                assert len(rows) == len(want), table_name
                for got, original in zip(rows, want, strict=True):
                    for column, value in original.items():
                        assert normalise(got[column]) == value, (table_name, original["id"], column)
    finally:
        await config.get_engine().dispose()


async def test_seed_twice_changes_nothing_and_copies_media(settings: Settings) -> None:
    first = await _seed(settings)
    second = await _seed(settings)
    assert first == second
    assert first["luffy_course"] == 3
    assert first["luffy_course_section"] == 6
    assert first["luffy_banner"] == 3
    assert (settings.media_root / "courses" / "alex_python.png").read_bytes().startswith(b"\x89PNG")
    assert (settings.media_root / "banner" / "banner1.png").is_file()


async def test_new_rows_get_ids_past_the_seeded_ones(settings: Settings) -> None:
    await _seed(settings)
    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            result = await session.execute(
                insert(CourseCategory).values(name="Go", orders=9).returning(CourseCategory.id)
            )
            assert result.scalar_one() > 2
    finally:
        await config.get_engine().dispose()


def test_demo_catalogue_is_deterministic() -> None:
    first = build_demo_catalogue(50, random_seed=7)
    again = build_demo_catalogue(50, random_seed=7)
    other = build_demo_catalogue(50, random_seed=8)
    assert first == again
    assert first.courses != other.courses
    assert len(first.courses) == 50
    assert len(first.categories) == 20
    assert len(first.teachers) == 100
    assert len(first.chapters) == 50 * 5
    assert len(first.sections) == 50 * 5 * 4
    assert any(not course["is_show"] for course in build_demo_catalogue(500, 1).courses)
    assert any(course["is_delete"] for course in build_demo_catalogue(500, 1).courses)


async def test_demo_load_replaces_previous_demo_rows(settings: Settings) -> None:
    await _seed(settings)
    config = make_sqlalchemy_config(settings)
    try:
        for _ in range(2):
            async with session_scope(config) as session:
                await load_demo(session, 30, random_seed=3)
        async with session_scope(config) as session:
            counts = await count_rows(session)
            demo_courses = (await session.execute(select(func.count()).where(Course.id >= DEMO_ID_BASE))).scalar_one()
            banners = (await session.execute(select(func.count()).select_from(Banner))).scalar_one()
            orphans = (
                await session.execute(
                    text(
                        "SELECT count(*) FROM luffy_course_section s "
                        "LEFT JOIN luffy_course_chapter c ON c.id = s.chapter_id WHERE c.id IS NULL"
                    )
                )
            ).scalar_one()
    finally:
        await config.get_engine().dispose()
    assert demo_courses == 30
    assert counts["luffy_course"] == 33
    assert counts["luffy_course_chapter"] == 4 + 30 * 5
    assert counts["luffy_course_section"] == 6 + 30 * 20
    assert banners == 3
    assert orphans == 0
