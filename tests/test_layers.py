"""Imports run one way: the app, the CLI and the tasks use the domains, never the reverse.

A domain module that imported ``luffy.tasks`` (or the app, or the CLI) would tie the services
the task workers call back to the workers themselves; ``luffy.app`` wires task queues into the
services instead. The test reads every import statement, function-local ones included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "luffy"
OUTER_LAYERS = ("luffy.tasks", "luffy.app", "luffy.asgi", "luffy.cached_replies", "luffy.purchase_lane", "luffy.cli")
DOMAINS = sorted(path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists() and path.name != "tasks")


def imported_modules(path: Path) -> set[str]:
    package = f"luffy.{path.parent.name}"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_domains_are_found() -> None:
    assert {"course", "home", "seckill", "user"} <= set(DOMAINS)


@pytest.mark.parametrize("domain", DOMAINS)
def test_a_domain_never_imports_the_tasks_the_app_or_the_cli(domain: str) -> None:
    offending = {
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in sorted((PACKAGE / domain).rglob("*.py"))
        for name in imported_modules(path)
        if any(name == layer or name.startswith(f"{layer}.") for layer in OUTER_LAYERS)
    }
    assert not offending, sorted(offending)


def test_the_check_sees_a_function_local_and_a_relative_import(tmp_path: Path) -> None:
    module = tmp_path / "seckill" / "probe.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from luffy.tasks.seckill import purchase\nfrom ..tasks import sms\n")
    assert {"luffy.tasks.seckill", "luffy.tasks.sms"} <= imported_modules(module)
