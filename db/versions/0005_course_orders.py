"""course orders: the original's luffy_order and luffy_order_detail

The original Django tables, with their column names and types and no database foreign keys
(Django's ``db_constraint=False``), plus the indexes Luffy reads by: a user's orders newest
first, the unpaid orders the timeout sweep closes, and the details of an order or a course.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
UNPAID = sa.text("order_status = 0")


def upgrade() -> None:
    op.create_table(
        "luffy_order",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("subject", sa.String(length=150), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=10, scale=2), nullable=False),
        sa.Column("out_trade_no", sa.String(length=64), nullable=False),
        sa.Column("trade_no", sa.String(length=64), nullable=True),
        sa.Column("order_status", sa.SmallInteger(), nullable=False),
        sa.Column("pay_type", sa.SmallInteger(), nullable=False),
        sa.Column("pay_time", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_time", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("user_id", BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_luffy_order")),
        sa.UniqueConstraint("out_trade_no", name=op.f("uq_luffy_order_out_trade_no")),
    )
    with op.batch_alter_table("luffy_order", schema=None) as batch_op:
        batch_op.create_index(
            "ix_luffy_order_unpaid_created", ["created_time"], unique=False, postgresql_where=UNPAID, sqlite_where=UNPAID
        )
        batch_op.create_index("ix_luffy_order_user_created", ["user_id", "created_time"], unique=False)

    op.create_table(
        "luffy_order_detail",
        sa.Column("id", BIGINT, autoincrement=True, nullable=False),
        sa.Column("price", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("real_price", sa.Numeric(precision=6, scale=2), nullable=False),
        sa.Column("course_id", BIGINT, nullable=False),
        sa.Column("order_id", BIGINT, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_luffy_order_detail")),
    )
    with op.batch_alter_table("luffy_order_detail", schema=None) as batch_op:
        batch_op.create_index("ix_luffy_order_detail_course_id", ["course_id"], unique=False)
        batch_op.create_index("ix_luffy_order_detail_order_id", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_table("luffy_order_detail")
    op.drop_table("luffy_order")
