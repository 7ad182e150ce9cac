"""SMS providers behind one small interface, chosen by ``LUFFY_SMS_PROVIDER``.

A provider either returns (sent), raises ``TransientSmsError`` (worth another try: timeouts,
5xx, rate limits) or raises ``PermanentSmsError`` (retrying cannot help: bad credentials,
unapproved template, blacklisted number).

Tencent Cloud SMS is called through its signed HTTP API (TC3-HMAC-SHA256) with httpx: the call
stays on the event loop, so a slow provider never ties up a thread, and the endpoint and scheme
are plain settings a test can point at a local server.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import time
from typing import Any, Protocol

import httpx

from luffy.settings import Settings

logger = logging.getLogger("luffy.sms")

CONSOLE = "console"
TENCENT = "tencent"


class SmsSendError(Exception):
    """The provider did not send the message; the text says why (never a secret)."""


class TransientSmsError(SmsSendError):
    """Worth another try."""


class PermanentSmsError(SmsSendError):
    """Retrying cannot help."""


class SmsProvider(Protocol):
    name: str
    # Whether the SMS log may keep the code (embedded mode only, where the outbox is how one reads it);
    # False for real providers: the SMS log then keeps the message with the code masked.
    keeps_code_in_log: bool

    async def send_code(self, mobile: str, code: str, message: str) -> None: ...

    async def aclose(self) -> None: ...


def render_message(code: str, ttl_seconds: int) -> str:
    """The verification message as the user reads it."""
    minutes = max(1, ttl_seconds // 60)
    return f"【路飞学城】您的验证码是{code}，{minutes}分钟内有效，请勿泄露给他人。"


def mask_code(text: str, code: str) -> str:
    return text.replace(code, "*" * len(code)) if code else text


class ConsoleSmsProvider:
    """Development provider: nothing is sent; embedded, the SMS log (``luffy sms outbox``) keeps the message.

    The application log never holds a code, whatever the provider: anyone who reads logs could
    otherwise log in as anyone.
    """

    name = CONSOLE
    keeps_code_in_log = True

    async def send_code(self, mobile: str, code: str, message: str) -> None:
        logger.info("SMS to %s: %s", mobile, mask_code(message, code))

    async def aclose(self) -> None:
        return None


# --- Tencent Cloud SMS, SendSms 2021-01-11 --------------------------------------------------------

TENCENT_SERVICE = "sms"
TENCENT_VERSION = "2021-01-11"
TENCENT_ACTION = "SendSms"
TENCENT_CONTENT_TYPE = "application/json; charset=utf-8"
TENCENT_SUCCESS = "Ok"
# Error codes where the same request can succeed a little later; everything else is permanent
# (e.g. ``LimitExceeded.PhoneNumberDailyLimit`` will not clear within a retry's backoff).
TENCENT_TRANSIENT_CODES = frozenset(
    {"InternalError", "InternalError.Timeout", "InternalError.SendAndRecvFail", "InternalError.OtherError"}
)
TENCENT_TRANSIENT_PREFIXES = ("RequestLimitExceeded",)


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, host: str, payload: bytes, timestamp: int, service: str = TENCENT_SERVICE
) -> str:
    """The ``Authorization`` header of a Tencent Cloud API 3.0 POST (signature method TC3-HMAC-SHA256)."""
    date = datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d")
    canonical_request = "\n".join(
        (
            "POST",
            "/",
            "",
            f"content-type:{TENCENT_CONTENT_TYPE}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        )
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        ("TC3-HMAC-SHA256", str(timestamp), scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest())
    )
    date_key = _hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    signing_key = _hmac_sha256(_hmac_sha256(date_key, service), "tc3_request")
    signature = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"


def _is_transient_code(code: str) -> bool:
    return code in TENCENT_TRANSIENT_CODES or code.startswith(TENCENT_TRANSIENT_PREFIXES)


def _raise_for_code(code: str, message: str) -> None:
    text = f"{code}: {message}"[:500]
    raise (TransientSmsError if _is_transient_code(code) else PermanentSmsError)(text)


class TencentSmsProvider:
    name = TENCENT
    keeps_code_in_log = False

    def __init__(self, settings: Settings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.url = f"{settings.tencent_scheme}://{settings.tencent_endpoint}/"
        self.client = client or httpx.AsyncClient(timeout=settings.tencent_timeout_seconds)

    def request_body(self, mobile: str, code: str) -> bytes:
        body = {
            "PhoneNumberSet": [f"+86{mobile}"],
            "SmsSdkAppId": self.settings.tencent_sdk_app_id,
            "SignName": self.settings.tencent_sign_name,
            "TemplateId": self.settings.tencent_template_id,
            "TemplateParamSet": [code],
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    async def send_code(self, mobile: str, code: str, message: str) -> None:
        payload = self.request_body(mobile, code)
        timestamp = int(time.time())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=self.settings.tencent_secret_id,
                secret_key=self.settings.tencent_secret_key,
                host=self.settings.tencent_endpoint,
                payload=payload,
                timestamp=timestamp,
            ),
            "Content-Type": TENCENT_CONTENT_TYPE,
            "Host": self.settings.tencent_endpoint,
            "X-TC-Action": TENCENT_ACTION,
            "X-TC-Version": TENCENT_VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self.settings.tencent_region,
        }
        try:
            response = await self.client.post(self.url, content=payload, headers=headers)
        except httpx.TimeoutException as exc:
            timeout = self.settings.tencent_timeout_seconds
            raise TransientSmsError(f"timeout after {timeout}s ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientSmsError(f"connection failed ({type(exc).__name__})") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientSmsError(f"HTTP {response.status_code}")
        try:
            reply: Any = response.json()["Response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentSmsError(f"HTTP {response.status_code}: not a Tencent Cloud API reply") from exc
        error = reply.get("Error") if isinstance(reply, dict) else None
        if isinstance(error, dict):
            _raise_for_code(str(error.get("Code", "")), str(error.get("Message", "")))
        statuses = reply.get("SendStatusSet") if isinstance(reply, dict) else None
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise PermanentSmsError(f"HTTP {response.status_code}: reply without SendStatusSet")
        status = statuses[0]
        if status.get("Code") != TENCENT_SUCCESS:
            _raise_for_code(str(status.get("Code", "")), str(status.get("Message", "")))

    async def aclose(self) -> None:
        await self.client.aclose()


def make_sms_provider(settings: Settings) -> SmsProvider:
    if settings.sms_provider == TENCENT:
        return TencentSmsProvider(settings)
    return ConsoleSmsProvider()
