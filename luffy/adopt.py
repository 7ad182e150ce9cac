"""``luffy db adopt``: a database made by the original Django project becomes a Luffy database at head.

Luffy's migrations start from Luffy's own first schema, so they cannot run on an original database;
they don't need to: the original tables already have the shape Luffy's models describe (that is
the point of keeping the original names). Adoption therefore

1. checks that every Luffy table the database already has (``luffy_user``, the catalogue, and the
   course orders once Luffy models them) has every column Luffy's model reads;
2. creates, from the models at head, only the Luffy tables that are missing (SMS log, flash-sale
   goods and orders, ...) and the indexes Luffy wants on the existing ones (on PostgreSQL with
   the extensions those indexes need, ``pg_trgm``);
3. stamps the newest migration, in the same transaction.

No existing row is read for writing or changed. Because step 2 works from the models at head, a
later migration needs nothing here: its tables are created (or checked, when the original has
them) like the others. Django's own tables (``auth_*``, ``django_*``, ``luffy_user_groups``) are
left alone. A database that already has a Luffy migration recorded, or none of Luffy's tables,
is reported and left unchanged.
"""

from __future__ import annotations

import enum

import msgspec
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from luffy.db import MIGRATIONS_DIR, ONLY_ON, VERSION_TABLE
from luffy.models import metadata

# What the models' PostgreSQL indexes need (the trigram index on course names; migration 0004).
POSTGRESQL_EXTENSIONS = ("pg_trgm",)


class Outcome(enum.StrEnum):
    ADOPTED = "adopted"
    ALREADY_LUFFY = "already_luffy"
    EMPTY = "empty"


class Adoption(msgspec.Struct, kw_only=True):
    outcome: Outcome
    revision: str | None = None
    created_tables: list[str] = msgspec.field(default_factory=list)
    created_indexes: list[str] = msgspec.field(default_factory=list)


class NotAnOriginalDatabase(Exception):
    """The database has some of Luffy's tables, but not in the original shape; ``problems`` say what differs."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _migration_context(connection: Connection) -> MigrationContext:
    return MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})


def _adopt(connection: Connection) -> Adoption:
    inspector = inspect(connection)
    existing = set(inspector.get_table_names())
    if VERSION_TABLE in existing:
        revision = _migration_context(connection).get_current_revision()
        if revision is not None:
            return Adoption(outcome=Outcome.ALREADY_LUFFY, revision=revision)
    ours = {table.name: table for table in metadata.sorted_tables}
    present = sorted(existing & set(ours))
    if "luffy_user" not in existing:
        if not present:
            return Adoption(outcome=Outcome.EMPTY)
        raise NotAnOriginalDatabase(["luffy_user is missing"])

    problems = []
    for name in present:
        columns = {column["name"] for column in inspector.get_columns(name)}
        missing = [column.name for column in ours[name].columns if column.name not in columns]
        if missing:
            problems.append(f"{name} has no column {', '.join(missing)}")
    if problems:
        raise NotAnOriginalDatabase(problems)

    dialect = connection.dialect.name
    if dialect == "postgresql":
        for extension in POSTGRESQL_EXTENSIONS:
            connection.execute(text(f"CREATE EXTENSION IF NOT EXISTS {extension}"))
    missing_tables = [table for table in metadata.sorted_tables if table.name not in existing]
    metadata.create_all(connection, tables=missing_tables)
    created_indexes = []
    for name in present:
        indexed = {index["name"] for index in inspector.get_indexes(name)}
        for index in sorted(ours[name].indexes, key=lambda index: str(index.name)):
            if index.name not in indexed and index.info.get(ONLY_ON, dialect) == dialect:
                index.create(connection)
                created_indexes.append(str(index.name))

    scripts = ScriptDirectory(str(MIGRATIONS_DIR))
    head = str(scripts.get_current_head())
    _migration_context(connection).stamp(scripts, head)
    return Adoption(
        outcome=Outcome.ADOPTED,
        revision=head,
        created_tables=[table.name for table in missing_tables],
        created_indexes=created_indexes,
    )


async def adopt(config: SQLAlchemyAsyncConfig) -> Adoption:
    """Adopt the database of ``config`` (one transaction: all of it, or nothing on any error)."""
    async with config.get_engine().begin() as connection:
        return await connection.run_sync(_adopt)
