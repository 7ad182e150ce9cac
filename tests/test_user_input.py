"""Hostile input to the SMS and login endpoints: always a 4xx in the envelope, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from luffy.app import create_app
from luffy.settings import Settings
from tests.support.user_helpers import delivered_code

SEND = "/api/v1/user/mobile/send_sms/"
LOGIN = "/api/v1/user/mobile/login/"
CHECK = "/api/v1/user/mobile/check_mobile/"
MOBILE = "13800138000"

BAD_MOBILES = [
    "",
    "1380013800",  # 10 digits
    "138001380000",  # 12 digits
    "12800138000",  # no such prefix
    "23800138000",
    "1380013800a",
    "+8613800138000",
    " 13800138000",
    "13800138000 ",
    "13800138000\n",
    "138 0013 8000",
    "１３８００１３８０００",  # full-width digits: \\d would take them
    "١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits
    "13800138000\x00",
    "📱13800138000",
    "' OR 1=1 --",
    "1" * 1_000,
]
WRONG_BODIES = [
    {"mobile": 13800138000},
    {"mobile": None},
    {"mobile": ["13800138000"]},
    {"mobile": {"$ne": ""}},
    {"mobile": True},
    {},
    {"phone": MOBILE},
    [MOBILE],
    MOBILE,
    13800138000,
    None,
]
BAD_CODES = ["", "abcd", "12a4", "12 4", "１２３４", "123", "12345", "-123", "1e3 ", "0x12", "１234", "❶❷❸❹"]


@pytest.fixture
async def client(sqlite_url: str, make_settings: Callable[..., Settings]) -> AsyncIterator[AsyncTestClient[Litestar]]:
    from tests.conftest import truncate_all

    await truncate_all(sqlite_url)
    settings = make_settings(sqlite_url, LUFFY_SMS_IP_HOURLY_LIMIT="100000")
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as test_client:
        test_client.app.state.test_database_url = sqlite_url
        yield test_client


def short(value: object) -> str:
    return repr(value)[:24]


def assert_client_error(response: object, status: int = 400) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["code"] == 999
    assert isinstance(body["msg"], str)
    assert body["msg"]


@pytest.mark.parametrize("mobile", BAD_MOBILES, ids=short)
async def test_a_bad_mobile_is_400_everywhere(client: AsyncTestClient[Litestar], mobile: str) -> None:
    assert_client_error(await client.post(SEND, json={"mobile": mobile}))
    assert_client_error(await client.get(SEND, params={"mobile": mobile}))
    assert_client_error(await client.get("/api/v1/user/user/send_sms/", params={"mobile": mobile}))
    assert_client_error(await client.get(CHECK, params={"mobile": mobile}))
    assert_client_error(await client.post(LOGIN, json={"mobile": mobile, "code": "1234"}))


async def test_a_malformed_mobile_says_so_in_chinese(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post(SEND, json={"mobile": "12345"})
    assert response.json() == {
        "code": 999,
        "msg": "手机号格式不正确",
        "errors": [{"field": "mobile", "message": "手机号格式不正确"}],
    }


@pytest.mark.parametrize("body", WRONG_BODIES, ids=short)
async def test_wrong_json_shapes_are_400(client: AsyncTestClient[Litestar], body: object) -> None:
    assert_client_error(await client.post(SEND, content=json.dumps(body), headers={"Content-Type": "application/json"}))
    login_body = {"mobile": body, "code": "1234"} if isinstance(body, dict) else body
    assert_client_error(await client.post(LOGIN, json=login_body))


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"mobile": "13800138000"', b"\xff\xfe\x00", b"mobile=13800138000", b'{"mobile": "\\ud800"}'],
    ids=short,
)
async def test_broken_json_is_400(client: AsyncTestClient[Litestar], raw: bytes) -> None:
    for path in (SEND, LOGIN):
        assert_client_error(await client.post(path, content=raw, headers={"Content-Type": "application/json"}))


@pytest.mark.parametrize("code", [*BAD_CODES, 1234, None, ["1234"], {"code": "1234"}, 12.34, True], ids=short)
async def test_a_bad_code_is_400_and_no_wrong_try(client: AsyncTestClient[Litestar], code: object) -> None:
    await client.post(SEND, json={"mobile": MOBILE})
    real = await delivered_code(client.app.state.test_database_url, MOBILE)
    for _ in range(6):  # more than the wrong-try limit: malformed codes must not use it up
        assert_client_error(await client.post(LOGIN, json={"mobile": MOBILE, "code": code}))
    assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": real})).status_code == 200


async def test_a_huge_body_is_refused(client: AsyncTestClient[Litestar]) -> None:
    huge = json.dumps({"mobile": MOBILE, "padding": "x" * 1_000_000})
    for path in (SEND, LOGIN):
        response = await client.post(path, content=huge, headers={"Content-Type": "application/json"})
        assert_client_error(response, status=413)


async def test_a_huge_query_string_is_400(client: AsyncTestClient[Litestar]) -> None:
    assert_client_error(await client.get(SEND, params={"mobile": "1" * 60_000}))


async def test_missing_query_parameter_is_400(client: AsyncTestClient[Litestar]) -> None:
    assert_client_error(await client.get(SEND))
    assert_client_error(await client.get(CHECK))


async def test_wrong_methods_are_405(client: AsyncTestClient[Litestar]) -> None:
    assert_client_error(await client.get(LOGIN), status=405)
    assert_client_error(await client.delete(SEND), status=405)
    assert_client_error(await client.post("/api/v1/user/me/"), status=405)
