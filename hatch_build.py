"""Wheel build hook: the wheel carries the top-level ``db/`` and ``seeds/`` inside the package.

They land in ``luffy/_bundled/`` (found by ``luffy/paths.py``), so an installed wheel can migrate and
seed without a checkout. Only the real wheel gets them: an editable install runs from the checkout,
whose own ``db/`` and ``seeds/`` count, and a copy in site-packages would only go stale.
"""

from __future__ import annotations

from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

BUNDLED = {"db": "luffy/_bundled/db", "seeds": "luffy/_bundled/seeds"}


class BundleMigrationsAndSeeds(BuildHookInterface):
    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if version == "standard":
            build_data["force_include"].update(BUNDLED)
