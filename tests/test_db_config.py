"""The database config can be built any number of times in one process (the test suite builds hundreds)."""

from __future__ import annotations

from collections.abc import Callable

from luffy.db import make_sqlalchemy_config
from luffy.settings import Settings


def test_many_configs_in_one_process_keep_the_plain_keys(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings("sqlite+aiosqlite:///:memory:")
    configs = [make_sqlalchemy_config(settings) for _ in range(1_500)]
    assert {config.session_scope_key for config in configs} == {configs[0].session_scope_key}
    assert configs[-1].engine_app_state_key == "db_engine"
