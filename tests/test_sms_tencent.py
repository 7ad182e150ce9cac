"""The ``tencent`` provider against a local fake ``SendSms``: signing, success, permanent and transient failures.

Sends go through the API and the send task on the in-process broker with the real retry
middleware; ``test_sms_processes`` repeats the retry case with a real worker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from litestar.testing import AsyncTestClient

from luffy.app import create_app
from luffy.settings import Settings, SettingsError, load_settings
from luffy.user.sms_providers import tc3_authorization
from tests.conftest import truncate_all
from tests.support.fake_tencent import FakeTencent
from tests.support.user_helpers import settled_sms

MOBILE = "13800138000"
SEND = "/api/v1/user/mobile/send_sms/"
LOGIN = "/api/v1/user/mobile/login/"


def test_tc3_signature_matches_the_official_sdk() -> None:
    # Computed with tencentcloud-sdk-python-common 3.1.195 (AbstractClient._get_tc3_signature) for this input.
    payload = (
        '{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400006666","SignName":"路飞学城",'
        '"TemplateId":"1110","TemplateParamSet":["4370"]}'
    ).encode()
    header = tc3_authorization(
        secret_id="AKIDtest",
        secret_key="test-secret-key-Gu5t9xGARNpq86cd98joQYCN3",
        host="sms.tencentcloudapi.com",
        payload=payload,
        timestamp=1_700_000_000,
    )
    assert header == (
        "TC3-HMAC-SHA256 Credential=AKIDtest/2023-11-14/sms/tc3_request, SignedHeaders=content-type;host, "
        "Signature=0491299476d771d58ae3c745f25b1b4b3c39a9c00724f985d095334fe7093494"
    )


@pytest.mark.parametrize("missing", ["LUFFY_TENCENT_SECRET_ID", "LUFFY_TENCENT_TEMPLATE_ID"])
def test_the_tencent_provider_needs_its_credentials(tmp_path: object, missing: str) -> None:
    fake = FakeTencent()
    try:
        env = {"LUFFY_DATA_DIR": str(tmp_path), **fake.settings()}
    finally:
        fake.close()
    del env[missing]
    with pytest.raises(SettingsError) as error:
        load_settings(env)
    assert error.value.variable == missing


@pytest.fixture
def fake_tencent() -> Iterator[FakeTencent]:
    fake = FakeTencent()
    yield fake
    fake.close()


@pytest.fixture
def tencent_settings(make_settings: Callable[..., Settings], fake_tencent: FakeTencent) -> Callable[[str], Settings]:
    def build(database_url: str) -> Settings:
        return make_settings(
            database_url,
            **fake_tencent.settings(
                LUFFY_SMS_CODE_LENGTH="6",
                LUFFY_TENCENT_TIMEOUT_SECONDS="0.3",
                LUFFY_SMS_RETRY_DELAY_SECONDS="0.05",
            ),
        )

    return build


async def send_one(settings: Settings) -> list[object]:
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        return await settled_sms(settings.database_url, MOBILE, wait=30)


def assert_no_code_in_log(row: object, code: str) -> None:
    for field in (row.message, row.error):  # type: ignore[attr-defined]
        assert code not in (field or "")


async def test_success_sends_a_signed_request_and_masks_the_code(
    clean_database: str, tencent_settings: Callable[[str], Settings], fake_tencent: FakeTencent
) -> None:
    settings = tencent_settings(clean_database)
    async with AsyncTestClient(app=create_app(settings), base_url="http://testserver.local") as client:
        assert (await client.post(SEND, json={"mobile": MOBILE})).status_code == 200
        [row] = await settled_sms(settings.database_url, MOBILE)
        [request] = fake_tencent.requests
        code = request["body"]["TemplateParamSet"][0]
        assert (await client.post(LOGIN, json={"mobile": MOBILE, "code": code})).status_code == 200
    assert request["signed"]
    assert request["headers"]["X-TC-Action"] == "SendSms"
    assert request["headers"]["X-TC-Version"] == "2021-01-11"
    assert request["headers"]["X-TC-Region"] == "ap-guangzhou"
    assert request["body"] == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": "1400006666",
        "SignName": "路飞学城",
        "TemplateId": "1110",
        "TemplateParamSet": [code],
    }
    assert (row.provider, row.status, row.attempts, row.error) == ("tencent", "sent", 1, None)
    assert "******" in row.message
    assert_no_code_in_log(row, code)


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("status:LimitExceeded.PhoneNumberDailyLimit", "LimitExceeded.PhoneNumberDailyLimit"),
        ("status:FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberInBlacklist"),
        ("error:AuthFailure.SecretIdNotFound", "AuthFailure.SecretIdNotFound"),
        ("http:403", "HTTP 403"),
    ],
)
async def test_a_permanent_failure_is_not_retried(
    sqlite_url: str,
    tencent_settings: Callable[[str], Settings],
    fake_tencent: FakeTencent,
    outcome: str,
    reason: str,
) -> None:
    await truncate_all(sqlite_url)
    fake_tencent.script = [outcome]
    [row] = await send_one(tencent_settings(sqlite_url))
    await asyncio.sleep(1.2)  # longer than a retry's backoff: none may come
    assert len(fake_tencent.requests) == 1
    assert (row.status, row.attempts) == ("failed", 1)
    assert reason in row.error
    assert_no_code_in_log(row, fake_tencent.requests[0]["body"]["TemplateParamSet"][0])


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        (["sleep:1.5"] * 3, "timeout"),
        (["http:500"] * 3, "HTTP 500"),
        (["http:502", "http:503", "error:InternalError.Timeout"], "InternalError.Timeout"),
    ],
)
async def test_transient_failures_are_retried_three_times_then_recorded_as_failed(
    database_url: str,
    tencent_settings: Callable[[str], Settings],
    fake_tencent: FakeTencent,
    script: list[str],
    reason: str,
) -> None:
    await truncate_all(database_url)
    fake_tencent.script = list(script)
    [row] = await send_one(tencent_settings(database_url))
    assert len(fake_tencent.requests) == 3
    assert (row.status, row.attempts) == ("failed", 3)
    attempts = row.error.splitlines()
    assert [line.split(":")[0] for line in attempts] == ["attempt 1", "attempt 2", "attempt 3"]
    assert reason in attempts[-1]
    assert_no_code_in_log(row, fake_tencent.requests[0]["body"]["TemplateParamSet"][0])


async def test_a_transient_failure_then_success_is_sent_on_the_second_try(
    sqlite_url: str, tencent_settings: Callable[[str], Settings], fake_tencent: FakeTencent
) -> None:
    await truncate_all(sqlite_url)
    fake_tencent.script = ["error:RequestLimitExceeded"]
    [row] = await send_one(tencent_settings(sqlite_url))
    assert len(fake_tencent.requests) == 2
    assert (row.status, row.attempts) == ("sent", 2)
    assert row.error.startswith("attempt 1: RequestLimitExceeded")
    first, second = fake_tencent.requests
    assert first["body"]["TemplateParamSet"] == second["body"]["TemplateParamSet"]
