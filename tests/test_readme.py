"""The README's reference parts are checked against the code, so a change to one shows in the other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from luffy.cli import app as cli
from luffy.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTINGS_START = "<!-- settings table:"
SETTINGS_END = "<!-- end of settings table -->"


def _where_things_are() -> str:
    return README.split("## Where things are", 1)[1].split("\n## ", 1)[0]


def test_the_readme_settings_table_is_the_declared_settings() -> None:
    block = README[README.index(SETTINGS_START) : README.index(SETTINGS_END)]
    table = block.split("\n", 1)[1]
    assert table == settings_table(), "README.md is out of date: paste the output of `python -m luffy.settings`"


def test_every_path_on_the_map_exists() -> None:
    paths = re.findall(r"`((?:luffy|tests|db|seeds)/[^`<*]*)`", _where_things_are())
    assert len(paths) > 20
    assert [path for path in paths if not (ROOT / path).exists()] == []


@pytest.mark.parametrize(
    "module",
    sorted(
        str(path.relative_to(ROOT))
        for pattern in ("luffy/*/controllers.py", "luffy/*/commands.py", "luffy/tasks/*.py")
        for path in ROOT.glob(pattern)
        if path.name != "__init__.py"
    ),
)
def test_every_controller_command_and_task_module_is_on_the_map(module: str) -> None:
    assert f"`{module}`" in _where_things_are(), f"add {module} to README.md's 'Where things are'"


def test_every_luffy_command_is_on_the_map() -> None:
    names = [group.name for group in cli.registered_groups] + [
        command.name or command.callback.__name__ for command in cli.registered_commands if command.callback
    ]
    assert len(names) >= 10
    missing = [name for name in names if not re.search(rf"`luffy {name}( \.\.\.)?`", _where_things_are())]
    assert missing == [], f"add luffy {', '.join(map(str, missing))} to README.md's 'Where things are'"
