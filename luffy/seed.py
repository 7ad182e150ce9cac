"""Seed data: the original Luffy rows (``seeds/*.json``) and a synthetic catalogue for benchmarks."""

from __future__ import annotations

import datetime
import json
import random
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Table, delete, func, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.course.models import Course, CourseCategory, CourseChapter, CourseSection, Teacher
from luffy.models import metadata
from luffy.paths import resource_dir

SEEDS_DIR = resource_dir("seeds")
SEED_FILES = ("catalogue.json", "home.json", "seckill.json")
# Demo rows live at and above this id in every table, so they never collide with real rows
# and a new ``--demo`` run can replace them wholesale.
DEMO_ID_BASE = 1_000_000
DEMO_CATEGORIES = 20
DEMO_TEACHERS = 100
DEMO_CHAPTERS_PER_COURSE = 5
DEMO_SECTIONS_PER_CHAPTER = 4

Progress = Callable[[str, int], None]


def _to_python(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    python_type = column.type.python_type
    if python_type is datetime.datetime:
        parsed = datetime.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
    if python_type is datetime.date:
        return datetime.date.fromisoformat(value)
    if python_type is Decimal:
        return Decimal(str(value))
    return value


def read_seed_rows(seeds_dir: Path = SEEDS_DIR) -> dict[str, list[dict[str, Any]]]:
    """Every seed row by table name, with values converted to the columns' Python types."""
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in SEED_FILES:
        for table_name, table_rows in json.loads((seeds_dir / name).read_text(encoding="utf-8")).items():
            table = metadata.tables[table_name]
            rows[table_name] = [
                {key: _to_python(table.c[key], value) for key, value in row.items()} for row in table_rows
            ]
    return rows


# Live data: seeding adds the flash-sale goods when missing but never resets a running sale's stock.
INSERT_ONLY_TABLES = frozenset({"luffy_seckill_goods"})


def _upsert(dialect: str, table: Table, rows: list[dict[str, Any]]) -> Any:
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table).values(rows)
    if table.name in INSERT_ONLY_TABLES:
        return statement.on_conflict_do_nothing()
    updates = {key: statement.excluded[key] for key in rows[0] if key != "id"}
    return statement.on_conflict_do_update(index_elements=[table.c.id], set_=updates)


async def advance_sequences(session: AsyncSession, tables: Iterable[Table]) -> None:
    """PostgreSQL only: move each ``id`` sequence past the highest id, so new rows don't collide."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                f"GREATEST((SELECT COALESCE(MAX(id), 0) FROM {table.name}), 1))"
            )
        )


@dataclass(frozen=True)
class SeedReport:
    rows_by_table: dict[str, int]
    media_files: int


async def load_seed(session: AsyncSession, media_root: Path, seeds_dir: Path = SEEDS_DIR) -> SeedReport:
    """Upsert every seed row by id (running it twice changes nothing) and copy the seed media.

    Flash-sale goods are only inserted when missing: their stock belongs to ``luffy seckill load``.
    """
    dialect = session.get_bind().dialect.name
    seed_rows = read_seed_rows(seeds_dir)
    tables = [table for table in metadata.sorted_tables if seed_rows.get(table.name)]
    for table in tables:
        await session.execute(_upsert(dialect, table, seed_rows[table.name]))
    await advance_sequences(session, tables)
    media_files = 0
    source = seeds_dir / "media"
    for path in sorted(source.rglob("*")):
        if path.is_file():
            target = media_root / path.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            media_files += 1
    return SeedReport({table.name: len(seed_rows[table.name]) for table in tables}, media_files)


# --- the synthetic catalogue -------------------------------------------------------------------

TOPICS = ("Python", "Go", "Linux", "Java", "前端", "数据库", "算法", "运维", "机器学习", "Rust", "Vue", "Django")
FORMS = ("入门", "进阶", "实战", "精讲", "项目", "面试", "源码", "架构")
SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
_EPOCH = datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class DemoCatalogue:
    teachers: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    courses: list[dict[str, Any]]
    chapters: list[dict[str, Any]]
    sections: list[dict[str, Any]]

    def tables(self) -> Sequence[tuple[Table, list[dict[str, Any]]]]:
        return (
            (metadata.tables[Teacher.__tablename__], self.teachers),
            (metadata.tables[CourseCategory.__tablename__], self.categories),
            (metadata.tables[Course.__tablename__], self.courses),
            (metadata.tables[CourseChapter.__tablename__], self.chapters),
            (metadata.tables[CourseSection.__tablename__], self.sections),
        )


def _base(rng: random.Random, row_id: int, orders: int, *, hide_rate: float = 0.0) -> dict[str, Any]:
    moment = _EPOCH + datetime.timedelta(minutes=rng.randrange(0, 900_000))
    return {
        "id": row_id,
        "orders": orders,
        "is_show": rng.random() >= hide_rate,
        "is_delete": rng.random() < hide_rate / 2,
        "created_time": moment,
        "updated_time": moment,
    }


def build_demo_catalogue(courses: int, random_seed: int) -> DemoCatalogue:
    """A deterministic catalogue: the same ``courses`` and ``random_seed`` give the same rows."""
    rng = random.Random(random_seed)
    teachers = [
        {
            **_base(rng, DEMO_ID_BASE + i, i),
            "name": f"{rng.choice(SURNAMES)}老师{i}",
            "role": rng.randrange(3),
            "title": f"{rng.choice(TOPICS)}讲师",
            "signature": None if i % 3 else "学而不思则罔",
            "image": f"teacher/demo_{i % 10}.png",
            "brief": f"{rng.choice(TOPICS)} 方向资深工程师。",
        }
        for i in range(DEMO_TEACHERS)
    ]
    categories = [
        {
            **_base(rng, DEMO_ID_BASE + i, 100 + i, hide_rate=0.1 if i >= DEMO_CATEGORIES - 2 else 0.0),
            "name": f"{TOPICS[i % len(TOPICS)]}·{i}",
        }
        for i in range(DEMO_CATEGORIES)
    ]
    course_rows: list[dict[str, Any]] = []
    chapter_rows: list[dict[str, Any]] = []
    section_rows: list[dict[str, Any]] = []
    for i in range(courses):
        course_id = DEMO_ID_BASE + i
        base = _base(rng, course_id, rng.randrange(1, 1000), hide_rate=0.05)
        course_rows.append(
            {
                **base,
                "name": f"{rng.choice(TOPICS)}{rng.choice(FORMS)}第{i}期",
                "course_img": f"courses/demo_{i % 20}.png",
                "course_type": rng.randrange(2),
                "brief": f"第{i}期课程简介",
                "level": rng.randrange(3),
                "pub_date": base["created_time"].date(),
                "period": rng.randrange(7, 90),
                "attachment_path": "",
                "status": rng.choice((0, 0, 0, 1, 2)),
                "students": rng.randrange(0, 5000),
                "sections": DEMO_CHAPTERS_PER_COURSE * DEMO_SECTIONS_PER_CHAPTER,
                "pub_sections": DEMO_CHAPTERS_PER_COURSE * DEMO_SECTIONS_PER_CHAPTER,
                "price": Decimal(rng.randrange(0, 99_999)) / 100,
                "course_category_id": DEMO_ID_BASE + rng.randrange(DEMO_CATEGORIES),
                "teacher_id": DEMO_ID_BASE + rng.randrange(DEMO_TEACHERS),
            }
        )
        for c in range(DEMO_CHAPTERS_PER_COURSE):
            chapter_id = DEMO_ID_BASE + i * DEMO_CHAPTERS_PER_COURSE + c
            chapter_base = _base(rng, chapter_id, c + 1, hide_rate=0.02)
            chapter_rows.append(
                {
                    **chapter_base,
                    "course_id": course_id,
                    "chapter": c + 1,
                    "name": f"第{c + 1}章",
                    "summary": "",
                    "pub_date": chapter_base["created_time"].date(),
                }
            )
            for s in range(DEMO_SECTIONS_PER_CHAPTER):
                section_id = DEMO_ID_BASE + (i * DEMO_CHAPTERS_PER_COURSE + c) * DEMO_SECTIONS_PER_CHAPTER + s
                section_base = _base(rng, section_id, s + 1, hide_rate=0.02)
                section_rows.append(
                    {
                        **section_base,
                        "chapter_id": chapter_id,
                        "name": f"第{c + 1}章第{s + 1}节",
                        "section_type": rng.randrange(3),
                        "section_link": f"https://video.example/{section_id}.mp4",
                        "duration": f"{rng.randrange(3, 60)}:{rng.randrange(60):02d}",
                        "pub_date": section_base["created_time"],
                        "free_trail": s == 0,
                    }
                )
    return DemoCatalogue(teachers, categories, course_rows, chapter_rows, section_rows)


async def _bulk_insert(session: AsyncSession, table: Table, rows: list[dict[str, Any]], progress: Progress) -> None:
    batch = 5_000
    if session.get_bind().dialect.name == "postgresql":
        # COPY is an order of magnitude faster than INSERT for a large catalogue.
        connection = await session.connection()
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        columns = list(rows[0])
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            await raw.copy_records_to_table(
                table.name, records=[tuple(row[c] for c in columns) for row in chunk], columns=columns
            )
            progress(table.name, len(chunk))
        return
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        await session.execute(insert(table), chunk)
        progress(table.name, len(chunk))


async def load_demo(
    session: AsyncSession, courses: int, random_seed: int, progress: Progress = lambda _t, _n: None
) -> DemoCatalogue:
    """Replace the demo rows (ids from ``DEMO_ID_BASE``) with a fresh deterministic catalogue."""
    catalogue = build_demo_catalogue(courses, random_seed)
    for table, _rows in reversed(catalogue.tables()):
        await session.execute(delete(table).where(table.c.id >= DEMO_ID_BASE))
    for table, rows in catalogue.tables():
        if rows:
            await _bulk_insert(session, table, rows, progress)
    await advance_sequences(session, [table for table, _ in catalogue.tables()])
    return catalogue


async def count_rows(session: AsyncSession) -> dict[str, int]:
    return {
        table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
        for table in metadata.sorted_tables
    }
