"""The ``luffy`` command as an operator runs it: a real process on a fresh database."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET
from tests.support.processes import run_luffy
from tests.support.services import throwaway_database


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    with throwaway_database(request.getfixturevalue("postgres_admin")) as url:
        yield url


def luffy(database_url: str, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_luffy(
        {
            "LUFFY_DATA_DIR": str(data_dir),
            "LUFFY_DATABASE_URL": database_url,
            "LUFFY_SECRET_KEY": TEST_SECRET,
            "LUFFY_SMS_PROVIDER": "console",
        },
        *args,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


def _counts(seed_output: str) -> dict[str, str]:
    rows = {}
    for line in seed_output.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if len(cells) == 2 and cells[0].startswith("luffy_"):
            rows[cells[0]] = cells[1]
    return rows


def test_migrate_seed_twice_and_round_trip(fresh_database: str, tmp_path: Path) -> None:
    luffy(fresh_database, tmp_path, "db", "upgrade")
    assert "(head)" in luffy(fresh_database, tmp_path, "db", "current").stdout
    first = _counts(luffy(fresh_database, tmp_path, "seed").stdout)
    second = _counts(luffy(fresh_database, tmp_path, "seed").stdout)
    assert first == second
    assert first["luffy_course"] == "3"
    assert first["luffy_banner"] == "3"
    assert (tmp_path / "media" / "teacher" / "alex_icon.png").is_file()
    luffy(fresh_database, tmp_path, "db", "downgrade", "base")
    assert "(head)" not in luffy(fresh_database, tmp_path, "db", "current").stdout
    luffy(fresh_database, tmp_path, "db", "upgrade", "head")
    assert "initial schema" in luffy(fresh_database, tmp_path, "db", "history").stdout


def test_demo_seed_reports_the_catalogue(fresh_database: str, tmp_path: Path) -> None:
    luffy(fresh_database, tmp_path, "db", "upgrade")
    counts = _counts(luffy(fresh_database, tmp_path, "seed", "--demo", "200", "--random-seed", "5").stdout)
    assert counts["luffy_course"] == str(3 + 200)
    assert counts["luffy_course_chapter"] == str(4 + 200 * 5)
    assert counts["luffy_course_section"] == str(6 + 200 * 20)
    assert counts["luffy_course_category"] == str(2 + 20)
    assert counts["luffy_teacher"] == str(3 + 100)


def test_stamp_adopts_an_existing_database(fresh_database: str, tmp_path: Path) -> None:
    luffy(fresh_database, tmp_path, "db", "upgrade")
    luffy(fresh_database, tmp_path, "db", "stamp", "base")
    assert "(head)" not in luffy(fresh_database, tmp_path, "db", "current").stdout
    luffy(fresh_database, tmp_path, "db", "stamp", "head")
    assert "(head)" in luffy(fresh_database, tmp_path, "db", "current").stdout
