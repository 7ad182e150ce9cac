"""``luffy sms outbox`` and ``luffy user token`` as an operator runs them, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path

import jwt
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from luffy.user.models import SmsLog, User
from tests.conftest import TEST_SECRET, truncate_all
from tests.support.processes import run_operator


async def _execute(database_url: str, statement: object) -> list[object]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            result = await connection.execute(statement)
            return list(result) if result.returns_rows else []
    finally:
        await engine.dispose()


def execute(database_url: str, statement: object) -> list[object]:
    return asyncio.run(_execute(database_url, statement))


def log_row(send_id: str, mobile: str, **fields: object) -> dict[str, object]:
    row = {"provider": "console", "status": "sent", "attempts": 1, "message": None, "error": None}
    return {"send_id": send_id, "mobile": mobile, **row, **fields}


def test_outbox_shows_newest_first_with_text_and_errors(clean_database: str, tmp_path: Path) -> None:
    execute(
        clean_database,
        insert(SmsLog).values(
            [
                log_row("a" * 32, "13800138000", message="【路飞学城】您的验证码是1234，5分钟内有效"),
                log_row("b" * 32, "13900139000", provider="tencent", status="failed", attempts=3,
                        message="【路飞学城】您的验证码是****", error="attempt 1: HTTP 500\nattempt 3: HTTP 500"),
                log_row("c" * 32, "13800138000", message="【路飞学城】您的验证码是5678，5分钟内有效"),
            ]
        ),
    )  # fmt: skip
    result = run_operator(clean_database, tmp_path, "sms", "outbox")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "138" in line or "139" in line]
    assert ["5678" in lines[0], "tencent" in lines[1], "1234" in lines[-1]] == [True, True, True]
    assert "HTTP 500" in result.stdout, result.stdout
    assert "failed" in result.stdout

    only = run_operator(clean_database, tmp_path, "sms", "outbox", "--mobile", "13800138000", "--limit", "1").stdout
    assert "5678" in only
    assert "1234" not in only
    assert "13900139000" not in only


def test_outbox_rejects_a_bad_limit(clean_database: str, tmp_path: Path) -> None:
    result = run_operator(clean_database, tmp_path, "sms", "outbox", "--limit", "0")
    assert result.returncode == 2


def _claims(token: str) -> dict[str, object]:
    return jwt.decode(token, TEST_SECRET, algorithms=["HS256"])


def test_user_token_creates_missing_users_and_keeps_the_order(clean_database: str, tmp_path: Path) -> None:
    execute(clean_database, insert(User).values(username="路飞", mobile="13900139000"))
    mobiles = ["13800138000", "13900139000", "13800138000", "13700137000"]
    result = run_operator(clean_database, tmp_path, "user", "token", *mobiles)
    assert result.returncode == 0, result.stderr
    tokens = result.stdout.split()
    assert len(tokens) == 4
    rows = execute(clean_database, select(User.mobile, User.id, User.username))
    users = {mobile: (user_id, name) for mobile, user_id, name in rows}
    assert len(users) == 3
    for mobile, token in zip(mobiles, tokens, strict=True):
        claims = _claims(token)
        assert claims["sub"] == str(users[mobile][0])
        assert claims["extras"] == {"username": users[mobile][1]}
    assert users["13900139000"][1] == "路飞"
    assert users["13700137000"][1] == "13700137000"


def test_user_token_refuses_bad_mobiles_and_creates_nobody(sqlite_url: str, tmp_path: Path) -> None:
    asyncio.run(truncate_all(sqlite_url))
    result = run_operator(
        sqlite_url, tmp_path, "user", "token", "13800138000", "1380013800", "abc", "１３８００１３８０００"
    )
    assert result.returncode == 2
    assert "not a mobile number: 1380013800, abc, １３８００１３８０００" in result.stderr
    assert execute(sqlite_url, select(func.count()).select_from(User)) == [(0,)]


def test_user_token_for_five_thousand_mobiles_in_one_call(clean_database: str, tmp_path: Path) -> None:
    mobiles = [f"1{3 + i % 7}{i:09d}" for i in range(5_000)]
    execute(clean_database, insert(User).values(username=mobiles[10], mobile=mobiles[10]))
    result = run_operator(clean_database, tmp_path, "user", "token", *mobiles)
    assert result.returncode == 0, result.stderr
    tokens = result.stdout.split()
    assert len(tokens) == 5_000
    assert execute(clean_database, select(func.count()).select_from(User)) == [(5_000,)]
    ids = dict(execute(clean_database, select(User.mobile, User.id)))
    for index in (0, 10, 2_500, 4_999):
        assert _claims(tokens[index])["sub"] == str(ids[mobiles[index]])
