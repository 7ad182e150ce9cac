"""luffy_user in the original shape (Django AbstractUser + mobile, icon)

Every user is kept with its id, username, mobile, icon, is_active and last_login. New columns:
``password`` gets Django's unusable password (``!`` + random: these users log in by SMS until
they set one), names and email are empty, nobody is staff or superuser, ``date_joined`` is the old
``created_time``. A soft-deleted user becomes inactive (``is_active`` is the only "gone" now);
an empty icon is stored as ``''``. The BaseModel columns go.

PostgreSQL changes the table in place. SQLite cannot alter a column, so the table is rebuilt,
with foreign keys off meanwhile (flash-sale orders point at it; SQLite's documented procedure).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UNUSABLE = {
    "postgresql": "'!' || substr(md5(random()::text || id::text), 1, 20) || substr(md5(random()::text), 1, 20)",
    "sqlite": "'!' || lower(hex(randomblob(20)))",
}


@contextmanager
def _foreign_keys_off() -> Iterator[None]:
    """SQLite: rebuild a referenced table without its children's foreign keys firing (no-op elsewhere)."""
    if op.get_bind().dialect.name != "sqlite":
        yield
        return
    with op.get_context().autocommit_block():
        op.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        with op.get_context().autocommit_block():
            op.execute("PRAGMA foreign_keys=ON")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table("luffy_user") as batch:
        batch.add_column(sa.Column("password", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("is_superuser", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("first_name", sa.String(length=150), nullable=True))
        batch.add_column(sa.Column("last_name", sa.String(length=150), nullable=True))
        batch.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch.add_column(sa.Column("is_staff", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("date_joined", DateTimeUTC(timezone=True), nullable=True))
    op.execute(
        "UPDATE luffy_user SET "
        f"password = {_UNUSABLE[dialect]}, is_superuser = false, first_name = '', last_name = '', email = '', "
        "is_staff = false, date_joined = created_time, is_active = (is_active AND NOT is_delete), "
        "icon = coalesce(icon, '')"
    )
    with _foreign_keys_off(), op.batch_alter_table("luffy_user") as batch:
        for name in ("password", "is_superuser", "first_name", "last_name", "email", "is_staff", "date_joined"):
            batch.alter_column(name, nullable=False)
        batch.alter_column("icon", existing_type=sa.String(length=255), type_=sa.String(length=100), nullable=False)
        for name in ("orders", "is_show", "is_delete", "created_time", "updated_time"):
            batch.drop_column(name)


def downgrade() -> None:
    with _foreign_keys_off(), op.batch_alter_table("luffy_user") as batch:
        batch.add_column(sa.Column("orders", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("is_show", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("is_delete", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("created_time", DateTimeUTC(timezone=True), nullable=True))
        batch.add_column(sa.Column("updated_time", DateTimeUTC(timezone=True), nullable=True))
        batch.alter_column("icon", existing_type=sa.String(length=100), type_=sa.String(length=255), nullable=True)
    op.execute(
        "UPDATE luffy_user SET orders = 0, is_show = true, is_delete = false, "
        "created_time = date_joined, updated_time = date_joined, icon = nullif(icon, '')"
    )
    with _foreign_keys_off(), op.batch_alter_table("luffy_user") as batch:
        for name in ("orders", "is_show", "is_delete", "created_time", "updated_time"):
            batch.alter_column(name, nullable=False)
        for name in ("password", "is_superuser", "first_name", "last_name", "email", "is_staff", "date_joined"):
            batch.drop_column(name)
