"""Changes made behind Luffy's back, as an operator with psql would."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


async def execute_sql(database_url: str, statement: Any, rows: list[dict[str, Any]] | None = None) -> None:
    """Run ``statement`` (with ``rows`` for an executemany) in a transaction of its own, then disconnect."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(statement, rows) if rows else await connection.execute(statement)
    finally:
        await engine.dispose()
