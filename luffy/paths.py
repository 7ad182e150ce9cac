"""Where the migrations (``db/``) and the seed rows and media (``seeds/``) are.

The repository keeps them at its top level; the wheel carries copies under ``luffy/_bundled/``
(``force-include`` in pyproject.toml), because operators install wheels, not checkouts. Code that
runs from a checkout (an editable install) uses the checkout's own, so a new migration or an edited
seed file counts at once; an installed wheel uses the copies it was built with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"


def checkout_dir() -> Path | None:
    """The source checkout this code runs from, or ``None`` when it is an installed wheel."""
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "db" / "env.py").is_file():
        return root
    return None


def resource_dir(name: Literal["db", "seeds"]) -> Path:
    """``db`` or ``seeds``: the checkout's when running from one, else the wheel's copy."""
    root = checkout_dir()
    return (root if root is not None else BUNDLED_DIR) / name
