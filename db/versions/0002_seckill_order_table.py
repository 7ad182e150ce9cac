"""flash-sale orders move to luffy_seckill_order

The original Luffy database keeps its *course* orders in ``luffy_order``; ours held flash-sale
orders there. Every row moves to ``luffy_seckill_order`` (ids kept), and its constraint and index
names follow the table, so an original database can be adopted beside it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RENAMED_CONSTRAINTS = (
    ("pk_luffy_order", "pk_luffy_seckill_order"),
    ("uq_luffy_order_order_no", "uq_luffy_seckill_order_order_no"),
    ("uq_luffy_order_task_id", "uq_luffy_seckill_order_task_id"),
    ("uq_luffy_order_user_goods", "uq_luffy_seckill_order_user_goods"),
    ("fk_luffy_order_goods_id_luffy_seckill_goods", "fk_luffy_seckill_order_goods_id_luffy_seckill_goods"),
    ("fk_luffy_order_user_id_luffy_user", "fk_luffy_seckill_order_user_id_luffy_user"),
)
_RENAMED_INDEX = ("ix_luffy_order_goods_id", "ix_luffy_seckill_order_goods_id")


def _move(old: str, new: str, *, forward: bool) -> None:
    pairs = _RENAMED_CONSTRAINTS if forward else tuple((b, a) for a, b in _RENAMED_CONSTRAINTS)
    index_from, index_to = _RENAMED_INDEX if forward else _RENAMED_INDEX[::-1]
    op.rename_table(old, new)
    if op.get_bind().dialect.name == "postgresql":
        for before, after in pairs:
            op.execute(f'ALTER TABLE {new} RENAME CONSTRAINT "{before}" TO "{after}"')
        op.execute(f'ALTER INDEX "{index_from}" RENAME TO "{index_to}"')
        op.execute(f"ALTER SEQUENCE IF EXISTS {old}_id_seq RENAME TO {new}_id_seq")
        return
    # SQLite keeps constraint names inside the table's CREATE statement: rebuild it with the new names.
    with op.batch_alter_table(new, recreate="always") as batch:
        for before, after in pairs:
            if before.startswith(("uq_", "fk_")):
                kind = "unique" if before.startswith("uq_") else "foreignkey"
                batch.drop_constraint(before, type_=kind)
        batch.drop_index(index_from)
    with op.batch_alter_table(new, recreate="always") as batch:
        if forward:
            batch.create_unique_constraint("uq_luffy_seckill_order_order_no", ["order_no"])
            batch.create_unique_constraint("uq_luffy_seckill_order_task_id", ["task_id"])
            batch.create_unique_constraint("uq_luffy_seckill_order_user_goods", ["user_id", "goods_id"])
            batch.create_foreign_key(
                "fk_luffy_seckill_order_goods_id_luffy_seckill_goods", "luffy_seckill_goods", ["goods_id"], ["id"]
            )
            batch.create_foreign_key("fk_luffy_seckill_order_user_id_luffy_user", "luffy_user", ["user_id"], ["id"])
        else:
            batch.create_unique_constraint("uq_luffy_order_order_no", ["order_no"])
            batch.create_unique_constraint("uq_luffy_order_task_id", ["task_id"])
            batch.create_unique_constraint("uq_luffy_order_user_goods", ["user_id", "goods_id"])
            batch.create_foreign_key(
                "fk_luffy_order_goods_id_luffy_seckill_goods", "luffy_seckill_goods", ["goods_id"], ["id"]
            )
            batch.create_foreign_key("fk_luffy_order_user_id_luffy_user", "luffy_user", ["user_id"], ["id"])
        batch.create_index(index_to, ["goods_id"], unique=False)


def upgrade() -> None:
    _move("luffy_order", "luffy_seckill_order", forward=True)


def downgrade() -> None:
    _move("luffy_seckill_order", "luffy_order", forward=False)
