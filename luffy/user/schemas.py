"""Request bodies and replies of the user and SMS endpoints (msgspec, envelope fields first)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from luffy.responses import Envelope

MOBILE_DOC = msgspec.Meta(
    description="A mainland China mobile number: 11 digits, `^1[3-9]\\d{9}$`.", examples=["13800138000"]
)
CODE_DOC = msgspec.Meta(
    description="The SMS verification code (digits, `LUFFY_SMS_CODE_LENGTH` long).", examples=["1234"]
)

PASSWORD_DOC = msgspec.Meta(
    description="8 to 128 characters, not all digits (registration); any string when logging in.",
    examples=["luffy-2026"],
)
USERNAME_DOC = msgspec.Meta(
    description="A username, a mobile (`^1[3-9]\\d{9}$`) or an email.", examples=["13800138000"]
)

MOBILE_EXISTS = 100
MOBILE_UNKNOWN = 101


class MobileBody(msgspec.Struct):
    mobile: Annotated[str, MOBILE_DOC]


class LoginBody(msgspec.Struct):
    mobile: Annotated[str, MOBILE_DOC]
    code: Annotated[str, CODE_DOC]


class RegisterBody(msgspec.Struct):
    mobile: Annotated[str, MOBILE_DOC]
    code: Annotated[str, CODE_DOC]
    password: Annotated[str, PASSWORD_DOC]


class PasswordLoginBody(msgspec.Struct):
    username: Annotated[str, USERNAME_DOC]
    password: Annotated[str, PASSWORD_DOC]


class Registered(Envelope, kw_only=True):
    msg: str = "注册成功"


class MobileCheck(Envelope, kw_only=True):
    """``code`` 100 "手机号存在" or 101 "手机号不存在"."""


class SmsSent(Envelope, kw_only=True):
    msg: str = "短信已发送"


class LoginReply(Envelope, kw_only=True):
    msg: str = "登录成功"
    token: str
    username: str
    icon: str | None


class Me(Envelope, kw_only=True):
    id: int
    username: str
    mobile: str
    email: str
    icon: str | None


class SmsLogRow(msgspec.Struct, kw_only=True):
    """One SMS log row as ``luffy sms outbox`` shows it."""

    id: int
    send_id: str
    mobile: str
    provider: str
    status: str
    attempts: int
    error: str | None
    message: str | None
    created_time: str
    sent_time: str | None
