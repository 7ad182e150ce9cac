"""Shared fixtures: real PostgreSQL and Redis, migrated throwaway databases, an app per test.

Database tests take the ``database_url`` fixture, which runs them once on SQLite and once on
PostgreSQL. With ``CI=true`` a server that cannot be started fails the run instead of skipping.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

# Hermetic: no LUFFY_* from the developer's shell, and a private data dir, before luffy is imported.
for _name in [name for name in os.environ if name.startswith("LUFFY_") and not name.startswith("LUFFY_TEST_")]:
    del os.environ[_name]
os.environ["LUFFY_DATA_DIR"] = tempfile.mkdtemp(prefix="luffy-test-data-")

from litestar import Litestar  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from luffy.settings import Settings, load_settings  # noqa: E402
from tests.support.services import ServiceUnavailable, postgres_admin_dsn, redis_server, throwaway_database  # noqa: E402

TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, exc: Exception) -> None:
    message = f"{what} unavailable: {exc}"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def migrate(database_url: str, data_dir: Path) -> None:
    from advanced_alchemy.alembic.commands import AlembicCommands

    from luffy.db import make_sqlalchemy_config

    env = {
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }
    config = make_sqlalchemy_config(load_settings(env))
    AlembicCommands(sqlalchemy_config=config).upgrade("head")


@pytest.fixture(scope="session")
def postgres_admin() -> str:
    try:
        return postgres_admin_dsn()
    except (ServiceUnavailable, OSError) as exc:
        _unavailable("PostgreSQL", exc)
        raise


@pytest.fixture(scope="session")
def postgres_url(postgres_admin: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    try:
        database = throwaway_database(postgres_admin)
        url = database.__enter__()
    except OSError as exc:
        _unavailable("PostgreSQL", exc)
        raise
    try:
        migrate(url, tmp_path_factory.mktemp("pg-data"))
        yield url
    finally:
        database.__exit__(None, None, None)


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    directory = tmp_path_factory.mktemp("sqlite")
    url = f"sqlite+aiosqlite:///{directory / 'luffy.sqlite3'}"
    migrate(url, directory)
    return url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except ServiceUnavailable as exc:
        _unavailable("Redis", exc)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test on both databases."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


async def truncate_all(database_url: str) -> None:
    from luffy.models import metadata

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                names = ", ".join(table.name for table in metadata.sorted_tables)
                await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(metadata.sorted_tables):
                    await connection.execute(table.delete())
    finally:
        await engine.dispose()


@pytest.fixture
async def clean_database(database_url: str) -> str:
    """The database, emptied: each test starts from a clean state."""
    await truncate_all(database_url)
    return database_url


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings for a test: ``make_settings(database_url, redis_url=None, LUFFY_X=...)``."""

    def build(database_url: str, redis_url: str | None = None, **overrides: str) -> Settings:
        env = {
            "LUFFY_DATA_DIR": str(tmp_path / "data"),
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_SECRET_KEY": TEST_SECRET,
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_BACKEND_URL": "http://testserver.local",
            **({"LUFFY_REDIS_URL": redis_url} if redis_url else {}),
            **overrides,
        }
        return load_settings(env)

    return build


@pytest.fixture
def settings(clean_database: str, make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(clean_database)


@pytest.fixture
def app(settings: Settings) -> Litestar:
    from luffy.app import create_app

    return create_app(settings)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as test_client:
        yield test_client


@pytest.fixture
async def seeded(settings: Settings) -> Settings:
    """The database with the original seed rows loaded."""
    from luffy.db import make_sqlalchemy_config, session_scope
    from luffy.seed import load_seed

    config = make_sqlalchemy_config(settings)
    try:
        async with session_scope(config) as session:
            await load_seed(session, settings.media_root)
    finally:
        await config.get_engine().dispose()
    return settings
