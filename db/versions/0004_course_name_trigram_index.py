"""search courses through a trigram index on PostgreSQL

``search`` is a case-insensitive substring (``ILIKE '%word%'``), which no b-tree can serve: on a
large catalogue every search read the whole table. A ``pg_trgm`` GIN index serves it for words of
three characters or more. SQLite has no such index; there, searches are bounded instead (see
``luffy/course/services.py``).

``CREATE EXTENSION`` needs a role allowed to create it (a superuser, or the database owner on
PostgreSQL 13+, where pg_trgm is a trusted extension).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_luffy_course_name_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        INDEX, "luffy_course", ["name"], postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: other objects may use it, and dropping it needs the same privileges.
    op.drop_index(INDEX, table_name="luffy_course")
