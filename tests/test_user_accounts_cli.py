"""``luffy user create|set-password|disable|enable|list`` as an operator runs them, against the running API."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from luffy.settings import Settings
from tests.conftest import TEST_SECRET, truncate_all
from tests.support.processes import luffy_env
from tests.test_accounts_api import LOGIN, ME
from tests.test_user_api import running


def luffy(database_url: str, data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {
        "LUFFY_DATA_DIR": str(data_dir),
        "LUFFY_DATABASE_URL": database_url,
        "LUFFY_SECRET_KEY": TEST_SECRET,
        "LUFFY_SMS_PROVIDER": "console",
    }
    return subprocess.run(
        [sys.executable, "-m", "luffy", *args],
        env=luffy_env(env | {"COLUMNS": "250"}),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_create_set_password_disable_enable_and_list(
    clean_database: str, make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings(clean_database)
    created = luffy(
        clean_database, tmp_path, "user", "create", "nami", "--mobile", "13800138000", "--email", "nami@example.com",
        "--staff", stdin="first-password\n",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "created user" in created.stdout

    async with running(settings) as client:
        login = await client.post(LOGIN, json={"username": "nami@example.com", "password": "first-password"})
        assert login.status_code == 200, login.text
        bearer = {"Authorization": f"Bearer {login.json()['token']}"}

        changed = luffy(clean_database, tmp_path, "user", "set-password", "nami", stdin="second-password\n")
        assert changed.returncode == 0, changed.stderr
        assert (await client.post(LOGIN, json={"username": "nami", "password": "first-password"})).status_code == 400
        assert (await client.post(LOGIN, json={"username": "nami", "password": "second-password"})).status_code == 200

        assert luffy(clean_database, tmp_path, "user", "disable", "nami").returncode == 0
        assert (await client.get(ME, headers=bearer)).status_code == 401
        refused = await client.post(LOGIN, json={"username": "nami", "password": "second-password"})
        assert refused.json() == {"code": 999, "msg": "用户名或密码错误"}

        assert luffy(clean_database, tmp_path, "user", "enable", "nami").returncode == 0
        assert (await client.get(ME, headers=bearer)).status_code == 200

    listed = luffy(clean_database, tmp_path, "user", "list")
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if "nami" in line]
    assert "13800138000" in row
    assert "nami@example.com" in row
    assert "second-password" not in listed.stdout
    assert "argon2" not in listed.stdout


async def test_refusals_are_one_line_and_exit_status_2(sqlite_url: str, tmp_path: Path) -> None:
    """The rules live in the services (and are tested on both databases there); SQLite is enough here."""
    await truncate_all(sqlite_url)
    clean_database = sqlite_url
    ok = luffy(clean_database, tmp_path, "user", "create", "zoro", "--mobile", "13900139000", stdin="long-enough\n")
    assert ok.returncode == 0, ok.stderr
    cases = {
        ("create", "zoro2", "--mobile", "13900139000"): ("good-password\n", "该手机号已注册"),
        ("create", "zoro", "--mobile", "13700137000"): ("good-password\n", "该用户名已被占用"),
        ("create", "bad name!", "--mobile", "13600136000"): ("good-password\n", "用户名只能包含"),
        ("create", "usopp", "--mobile", "12345"): ("good-password\n", "手机号格式不正确"),
        ("create", "usopp", "--mobile", "13600136000", "--email", "not-an-email"): (
            "good-password\n",
            "邮箱格式不正确",
        ),
        ("create", "usopp", "--mobile", "13600136000"): ("short\n", "密码不能少于8个字符"),
        ("create", "franky", "--mobile", "13500135000"): ("", "no password on standard input"),
        ("set-password", "zoro"): ("12345678901\n", "密码不能全是数字"),
        ("set-password", "nobody"): ("good-password\n", "没有用户名为 nobody 的用户"),
        ("disable", "nobody"): ("", "没有用户名为 nobody 的用户"),
    }
    for args, (stdin, message) in cases.items():
        result = luffy(clean_database, tmp_path, "user", *args, stdin=stdin)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    as_argument = luffy(clean_database, tmp_path, "user", "create", "x", "--mobile", "13400134000", "--password", "p")
    assert as_argument.returncode != 0
    listed = luffy(clean_database, tmp_path, "user", "list")
    assert [line for line in listed.stdout.splitlines() if "139" in line or "13400134000" in line] != []
    assert "13400134000" not in listed.stdout
