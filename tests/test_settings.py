"""Settings: embedded defaults, production switches, and one clear line for a bad value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from luffy.settings import SettingsError, load_settings

SECRET = "s" * 40


def test_defaults_are_the_embedded_mode(tmp_path: Path) -> None:
    settings = load_settings({"LUFFY_DATA_DIR": str(tmp_path)})
    assert settings.is_embedded
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path / 'luffy.sqlite3'}"
    assert settings.media_root == tmp_path / "media"
    assert settings.banner_count == 3
    assert settings.banner_refresh_seconds == 60
    assert settings.sms_code_length == 4
    assert settings.sms_code_ttl == 300
    assert settings.cors_origins == ("*",)


def test_embedded_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = load_settings({"LUFFY_DATA_DIR": str(tmp_path)}).secret_key
    again = load_settings({"LUFFY_DATA_DIR": str(tmp_path)}).secret_key
    assert first == again
    assert len(first) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_urls_switch_modes(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LUFFY_DATA_DIR": str(tmp_path),
            "LUFFY_DATABASE_URL": "postgresql://u:p@db.internal:5432/luffy",
            "LUFFY_REDIS_URL": "redis://cache:6379/1",
            "LUFFY_SECRET_KEY": SECRET,
            "LUFFY_SMS_PROVIDER": "console",
            "LUFFY_CORS_ORIGINS": "http://a.example, http://b.example",
        }
    )
    assert not settings.is_embedded
    assert settings.is_postgres
    assert settings.database_url == "postgresql+asyncpg://u:p@db.internal:5432/luffy"
    assert settings.cors_origins == ("http://a.example", "http://b.example")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"LUFFY_DATABASE_URL": "nonsense"}, "LUFFY_DATABASE_URL"),
        ({"LUFFY_DATABASE_URL": "mysql://u:p@h/db", "LUFFY_SECRET_KEY": SECRET}, "LUFFY_DATABASE_URL"),
        ({"LUFFY_REDIS_URL": "http://nope", "LUFFY_SECRET_KEY": SECRET}, "LUFFY_REDIS_URL"),
        ({"LUFFY_REDIS_URL": "redis://h:port/0", "LUFFY_SECRET_KEY": SECRET}, "LUFFY_REDIS_URL"),
        ({"LUFFY_REDIS_URL": "redis://localhost:6379/0"}, "LUFFY_SECRET_KEY"),
        ({"LUFFY_SECRET_KEY": "short"}, "LUFFY_SECRET_KEY"),
        ({"LUFFY_SMS_PROVIDER": "carrier-pigeon"}, "LUFFY_SMS_PROVIDER"),
        ({"LUFFY_BANNER_COUNT": "three"}, "LUFFY_BANNER_COUNT"),
        ({"LUFFY_BANNER_COUNT": "0"}, "LUFFY_BANNER_COUNT"),
        ({"LUFFY_DB_ECHO": "maybe"}, "LUFFY_DB_ECHO"),
        ({"LUFFY_BACKEND_URL": "ftp://x"}, "LUFFY_BACKEND_URL"),
        ({"LUFFY_TASK_REDELIVERY_SECONDS": "0"}, "LUFFY_TASK_REDELIVERY_SECONDS"),
        ({"LUFFY_TASK_STREAM_MAXLEN": "10"}, "LUFFY_TASK_STREAM_MAXLEN"),
        ({"LUFFY_WORKER_SHUTDOWN_SECONDS": "soon"}, "LUFFY_WORKER_SHUTDOWN_SECONDS"),
    ],
)
def test_bad_values_name_their_variable(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), **env})
    assert raised.value.variable == variable
    assert str(raised.value).startswith(variable)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"# comment\nLUFFY_BANNER_COUNT=5\nexport LUFFY_SMS_CODE_LENGTH='6'\nLUFFY_DATA_DIR={tmp_path}\n")
    monkeypatch.setenv("LUFFY_BANNER_COUNT", "7")
    settings = load_settings(dotenv=dotenv)
    assert settings.banner_count == 7
    assert settings.sms_code_length == 6


def test_password_in_a_bad_url_is_never_echoed(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize("command", [["db", "current"], ["seed"], ["serve"]])
def test_any_command_stops_with_one_line_and_status_2(tmp_path: Path, command: list[str]) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LUFFY_")}
    env |= {"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_DATABASE_URL": "nonsense", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, "-m", "luffy", *command], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "LUFFY_DATABASE_URL" in lines[0]
    assert "Traceback" not in result.stderr


def test_choices_and_flags_read_as_people_write_them(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LUFFY_DATA_DIR": str(tmp_path),
            "LUFFY_LOG_LEVEL": "debug",
            "LUFFY_SMS_PROVIDER": "Console",
            "LUFFY_DB_ECHO": "Yes",
        }
    )
    assert (settings.log_level, settings.sms_provider, settings.db_echo) == ("DEBUG", "console", True)


def test_a_number_out_of_bounds_is_named_with_its_bound_and_value(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_SMS_CODE_LENGTH": "3"})
    assert str(raised.value) == "LUFFY_SMS_CODE_LENGTH: expected `int` >= 4, got '3'"


def test_a_short_secret_key_is_refused_without_echoing_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_SECRET_KEY": "hunter2-hunter2"})
    assert raised.value.variable == "LUFFY_SECRET_KEY"
    assert "hunter2" not in str(raised.value)


def test_a_comma_list_of_nothing_keeps_the_default(tmp_path: Path) -> None:
    settings = load_settings({"LUFFY_DATA_DIR": str(tmp_path), "LUFFY_CORS_ORIGINS": " , ", "LUFFY_MEDIA_PREFIX": "s"})
    assert settings.cors_origins == ("*",)
    assert settings.media_prefix == "/s/"
