"""The original Luffy catalogue tables, with the original table, column and key names."""

from __future__ import annotations

import datetime
from decimal import Decimal

from advanced_alchemy.types import BigIntIdentity, DateTimeUTC
from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, foreign, mapped_column, relationship

from luffy.db import ONLY_ON, LuffyBase

VISIBLE = text("is_show AND NOT is_delete")


def _visible_index(name: str, *columns: str) -> Index:
    """A partial index over visible rows only: what every public endpoint filters on."""
    return Index(name, *columns, postgresql_where=VISIBLE, sqlite_where=VISIBLE)


class Teacher(LuffyBase):
    __tablename__ = "luffy_teacher"

    name: Mapped[str] = mapped_column(String(32))
    role: Mapped[int] = mapped_column(SmallInteger, default=0)
    title: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(255))
    image: Mapped[str | None] = mapped_column(String(100))
    brief: Mapped[str] = mapped_column(Text)


class CourseCategory(LuffyBase):
    __tablename__ = "luffy_course_category"
    __table_args__ = (_visible_index("ix_luffy_course_category_visible_orders", "orders", "id"),)

    name: Mapped[str] = mapped_column(String(64), unique=True)


class Course(LuffyBase):
    __tablename__ = "luffy_course"
    # One index per ordering field, alone and within a category: with ties broken by id in the
    # direction of the last field, every single-field ordering of a page is an index range scan.
    __table_args__ = (
        _visible_index("ix_luffy_course_visible_orders", "orders", "id"),
        _visible_index("ix_luffy_course_visible_category_orders", "course_category_id", "orders", "id"),
        _visible_index("ix_luffy_course_visible_price", "price", "id"),
        _visible_index("ix_luffy_course_visible_category_price", "course_category_id", "price", "id"),
        _visible_index("ix_luffy_course_visible_students", "students", "id"),
        _visible_index("ix_luffy_course_visible_category_students", "course_category_id", "students", "id"),
        Index("ix_luffy_course_teacher_id", "teacher_id"),
        # ``search`` is ILIKE '%word%': a trigram index serves it on PostgreSQL (migration 0004 creates pg_trgm).
        Index(
            "ix_luffy_course_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
            info={ONLY_ON: "postgresql"},
        ).ddl_if(dialect="postgresql"),
    )

    name: Mapped[str] = mapped_column(String(128))
    course_img: Mapped[str | None] = mapped_column(String(255))
    course_type: Mapped[int] = mapped_column(SmallInteger, default=0)
    brief: Mapped[str | None] = mapped_column(Text)
    level: Mapped[int] = mapped_column(SmallInteger, default=0)
    pub_date: Mapped[datetime.date] = mapped_column(Date, default=datetime.date.today)
    period: Mapped[int] = mapped_column(Integer, default=7)
    attachment_path: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[int] = mapped_column(SmallInteger, default=0)
    students: Mapped[int] = mapped_column(Integer, default=0)
    sections: Mapped[int] = mapped_column(Integer, default=0)
    pub_sections: Mapped[int] = mapped_column(Integer, default=0)
    price: Mapped[Decimal] = mapped_column(Numeric(6, 2), default=Decimal("0.00"))
    # The original: DO_NOTHING to the teacher; SET_NULL to the category with no database constraint.
    teacher_id: Mapped[int | None] = mapped_column(BigIntIdentity, ForeignKey("luffy_teacher.id"))
    course_category_id: Mapped[int | None] = mapped_column(BigIntIdentity)

    teacher: Mapped[Teacher | None] = relationship(lazy="raise")
    course_category: Mapped[CourseCategory | None] = relationship(
        primaryjoin=lambda: foreign(Course.course_category_id) == CourseCategory.id, lazy="raise"
    )


class CourseChapter(LuffyBase):
    __tablename__ = "luffy_course_chapter"
    __table_args__ = (Index("ix_luffy_course_chapter_course_id", "course_id", "chapter", "orders"),)

    course_id: Mapped[int] = mapped_column(BigIntIdentity, ForeignKey("luffy_course.id", ondelete="CASCADE"))
    chapter: Mapped[int] = mapped_column(SmallInteger, default=1)
    name: Mapped[str] = mapped_column(String(128))
    summary: Mapped[str | None] = mapped_column(Text)
    pub_date: Mapped[datetime.date] = mapped_column(Date, default=datetime.date.today)


class CourseSection(LuffyBase):
    __tablename__ = "luffy_course_section"
    __table_args__ = (Index("ix_luffy_course_section_chapter_id", "chapter_id", "orders"),)

    chapter_id: Mapped[int] = mapped_column(BigIntIdentity, ForeignKey("luffy_course_chapter.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    section_type: Mapped[int] = mapped_column(SmallInteger, default=2)
    section_link: Mapped[str | None] = mapped_column(String(255))
    duration: Mapped[str | None] = mapped_column(String(32))
    pub_date: Mapped[datetime.datetime] = mapped_column(DateTimeUTC, default=datetime.datetime.now)
    free_trail: Mapped[bool] = mapped_column(default=False)
