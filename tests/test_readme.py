"""The README's reference parts are checked against the code, so a change to one shows in the other."""

from __future__ import annotations

from pathlib import Path

from luffy.settings import settings_table

README = Path(__file__).resolve().parent.parent / "README.md"
SETTINGS_START = "<!-- settings table:"
SETTINGS_END = "<!-- end of settings table -->"


def test_the_readme_settings_table_is_the_declared_settings() -> None:
    text = README.read_text(encoding="utf-8")
    block = text[text.index(SETTINGS_START) : text.index(SETTINGS_END)]
    table = block.split("\n", 1)[1]
    assert table == settings_table(), "README.md is out of date: paste the output of `python -m luffy.settings`"
