"""The rules of SMS codes, mobile and password login, registration and users, shared by the API,
the send task and the CLI."""

from __future__ import annotations

import datetime
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from litestar.stores.base import Store
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.db import utcnow
from luffy.errors import Conflict, Forbidden, InvalidInput, NotAuthenticated, NotFound, TooManyRequests, Unavailable
from luffy.settings import Settings
from luffy.user.codes import CodeStore, RedisCodeStore, StoreCodeStore, Verdict, code_for_send
from luffy.user.limits import (
    Limiter,
    LimitExceeded,
    RedisLimiter,
    StoreLimiter,
    Window,
    ip_window,
    login_windows,
    sms_windows,
)
from luffy.user.models import SmsLog, User, account_enabled
from luffy.user.passwords import hash_password, unusable_password, verify_password
from luffy.user.revocation import REVOKED_MSG, restore_user, revoke_user
from luffy.user.sms_providers import PermanentSmsError, SmsProvider, TransientSmsError, mask_code, render_message

logger = logging.getLogger("luffy.sms")

# ASCII digits only: ``\d`` would also accept full-width and other Unicode digits.
MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")
SMS_MAX_ATTEMPTS = 3
CACHE_DOWN_MSG = "短信服务暂不可用，请稍后再试"
LOGIN_DOWN_MSG = "登录服务暂不可用，请稍后再试"
LOGIN_FAILED_MSG = "用户名或密码错误"
LIMIT_MESSAGES = {
    "mobile_interval": "验证码发送过于频繁，请{seconds}秒后再试",
    "mobile_daily": "该手机号今日获取验证码的次数已达上限",
    "ip_hourly": "请求过于频繁，请稍后再试",
    "login_account": "登录失败次数过多，请{seconds}秒后再试",
    "login_ip": "请求过于频繁，请稍后再试",
}

# ``enqueue(mobile, send_id)``: hand the delivery of a kept code to the send task.
Enqueue = Callable[[str, str], Awaitable[object]]


def parse_mobile(raw: str) -> str:
    if not raw:
        raise InvalidInput("请输入手机号", field="mobile")
    if not MOBILE_RE.fullmatch(raw):
        raise InvalidInput("手机号格式不正确", field="mobile")
    return raw


def parse_code(raw: str, length: int) -> str:
    if not raw:
        raise InvalidInput("请输入验证码", field="code")
    if len(raw) != length or not raw.isascii() or not raw.isdigit():
        raise InvalidInput("验证码格式不正确", field="code")
    return raw


def new_code(length: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(length))


@contextmanager
def cache_required(message: str = CACHE_DOWN_MSG) -> Iterator[None]:
    """Codes and limits cannot be kept without the cache: say so with a 503, never a 500."""
    try:
        yield
    except (RedisError, OSError) as exc:
        logger.warning("cache unreachable: %s", type(exc).__name__)
        raise Unavailable(message) from exc


def _too_many(exc: LimitExceeded) -> TooManyRequests:
    return TooManyRequests(LIMIT_MESSAGES[exc.limit].format(seconds=exc.retry_after), retry_after=exc.retry_after)


class SmsCodeService:
    """Limits, codes and the hand-off to the send task (the API side of SMS login)."""

    def __init__(self, settings: Settings, codes: CodeStore, limiter: Limiter, enqueue: Enqueue) -> None:
        self.settings = settings
        self.codes = codes
        self.limiter = limiter
        self.enqueue = enqueue

    async def _acquire(self, windows: list[Window]) -> None:
        """Count one request in every window: a 429 when a limit is reached, a 503 when the cache is down."""
        with cache_required():
            try:
                await self.limiter.acquire(windows)
            except LimitExceeded as exc:
                raise _too_many(exc) from None

    async def count_lookup(self, client_ip: str) -> None:
        """``check_mobile`` spends the client's hourly SMS quota, so it cannot enumerate users fast."""
        await self._acquire([ip_window(self.settings, client_ip)])

    async def request_code(self, mobile: str, client_ip: str) -> str:
        """Count the request, keep a new code, enqueue its delivery; returns the send id.

        Each step undoes the earlier ones when it fails, so a code is never kept without a
        send enqueued (and the send task delivers only a code that is still kept).
        """
        windows = sms_windows(self.settings, mobile, client_ip)
        await self._acquire(windows)
        send_id = uuid.uuid4().hex
        try:
            await self.codes.put(mobile, new_code(self.settings.sms_code_length), send_id, self.settings.sms_code_ttl)
            await self.enqueue(mobile, send_id)
        except Exception as exc:
            logger.warning("SMS code for %s not sent: %s; undoing", mobile, type(exc).__name__)
            await self._undo(mobile, send_id, windows)
            raise Unavailable(CACHE_DOWN_MSG) from exc
        return send_id

    async def _undo(self, mobile: str, send_id: str, windows: list[Window]) -> None:
        for step in (self.codes.discard(mobile, send_id), self.limiter.release(windows)):
            try:
                await step
            except Exception as exc:  # the cache may be the thing that failed: the code then expires on its own
                logger.warning("SMS undo step failed: %s", type(exc).__name__)

    async def check_code(self, mobile: str, code: str) -> None:
        with cache_required():
            verdict = await self.codes.verify(mobile, code, self.settings.sms_max_wrong_tries)
        if verdict is Verdict.WRONG:
            raise InvalidInput("验证码错误")
        if verdict is Verdict.VOIDED:
            raise InvalidInput("验证码错误次数过多，请重新获取")
        if verdict is Verdict.MISSING:
            raise InvalidInput("验证码不存在或已过期，请重新获取")


def make_limiter(redis: Redis | None, store: Store) -> Limiter:
    return RedisLimiter(redis) if redis is not None else StoreLimiter(store)


def make_sms_code_service(settings: Settings, redis: Redis | None, store: Store, enqueue: Enqueue) -> SmsCodeService:
    """``enqueue`` hands a send to the ``sms`` queue; the app wires it in (domains never import the tasks)."""
    codes = RedisCodeStore(redis) if redis is not None else StoreCodeStore(store)
    return SmsCodeService(settings, codes, make_limiter(redis, store), enqueue)


# --- users ---------------------------------------------------------------------------------------


def user_insert(session: AsyncSession) -> Any:
    """``INSERT INTO luffy_user`` in the session's dialect, which has ``ON CONFLICT`` on both databases."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(User)


def new_user_row(
    *, username: str, mobile: str, now: datetime.datetime, password: str | None = None, **fields: Any
) -> dict[str, Any]:
    """Every column of a new ``luffy_user`` row, as Django's ``create_user`` would fill them."""
    return {
        "username": username,
        "mobile": mobile,
        "password": password or unusable_password(),
        "is_active": True,
        "is_staff": False,
        "is_superuser": False,
        "first_name": "",
        "last_name": "",
        "email": "",
        "icon": "",
        "date_joined": now,
        **fields,
    }


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class UserService(SQLAlchemyAsyncRepositoryService[User]):
    repository_type = UserRepository

    def _insert(self) -> Any:
        return user_insert(self.repository.session)

    @staticmethod
    def _new_user(mobile: str, now: datetime.datetime) -> dict[str, Any]:
        return new_user_row(username=mobile, mobile=mobile, now=now)

    async def mobile_exists(self, mobile: str) -> bool:
        return await self.repository.exists(mobile=mobile)

    async def log_in(self, mobile: str) -> tuple[int, str, str | None]:
        """The user with ``mobile`` (created on the first login), stamped with the login time.

        One statement: an upsert that updates only an active user, so a disabled one comes back empty.
        """
        now = utcnow()
        insert = self._insert()
        statement = (
            insert.values(**self._new_user(mobile, now), last_login=now)
            .on_conflict_do_update(
                index_elements=[User.mobile],
                set_={"last_login": now},
                where=account_enabled(),
            )
            .returning(User.id, User.username, User.icon)
        )
        try:
            row = (await self.repository.session.execute(statement)).one_or_none()
        except IntegrityError:
            raise Conflict("该手机号对应的用户名已被占用，请联系客服") from None
        if row is None:
            raise Forbidden("账号已停用")
        return row.id, row.username, row.icon

    async def active_user(self, user_id: int) -> User:
        user = await self.repository.get_one_or_none(User.id == user_id, account_enabled())
        if user is None:
            raise NotAuthenticated(REVOKED_MSG)
        return user

    async def ensure_users(self, mobiles: Sequence[str], chunk: int = 500) -> dict[str, tuple[int, str]]:
        """Create the users that are missing, in bulk; returns ``mobile -> (id, username)`` for every one found."""
        unique = list(dict.fromkeys(mobiles))
        now = utcnow()
        session = self.repository.session
        for start in range(0, len(unique), chunk):
            rows = [self._new_user(mobile, now) for mobile in unique[start : start + chunk]]
            await session.execute(self._insert().values(rows).on_conflict_do_nothing())
        found: dict[str, tuple[int, str]] = {}
        for start in range(0, len(unique), chunk):
            result = await session.execute(
                select(User.mobile, User.id, User.username).where(User.mobile.in_(unique[start : start + chunk]))
            )
            found.update({row.mobile: (row.id, row.username) for row in result})
        return found


# --- accounts: passwords, registration, password login, operators' changes ------------------------

PASSWORD_MIN, PASSWORD_MAX = 8, 128
# Django's UnicodeUsernameValidator: letters, digits and @.+-_ (Unicode letters included), up to 150.
USERNAME_RE = re.compile(r"[\w.@+-]{1,150}")
EMAIL_RE = re.compile(r"[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+")
EMAIL_MAX = 254


def check_password_rules(password: str) -> str:
    """The contract's password rules; each refusal names the rule."""
    if len(password) < PASSWORD_MIN:
        raise InvalidInput(f"密码不能少于{PASSWORD_MIN}个字符", field="password")
    if len(password) > PASSWORD_MAX:
        raise InvalidInput(f"密码不能超过{PASSWORD_MAX}个字符", field="password")
    if password.isdigit():
        raise InvalidInput("密码不能全是数字", field="password")
    if "\x00" in password:
        raise InvalidInput("密码不能包含空字符", field="password")
    return password


def _account_key(user_id: int | None, identifier: str) -> str:
    """The lockout counter of a known user (by id: username, mobile and email share it), else of the name tried."""
    if user_id is not None:
        return f"user:{user_id}"
    return "name:" + hashlib.sha256(identifier.lower().encode()).hexdigest()[:32]


def _could_exist(identifier: str) -> bool:
    return 0 < len(identifier) <= EMAIL_MAX and "\x00" not in identifier


class PasswordLogin:
    """Password login with the per-account lockout and the per-IP limit (one per app: it holds the limiter)."""

    def __init__(self, settings: Settings, limiter: Limiter) -> None:
        self.settings = settings
        self.limiter = limiter

    async def _find(self, session: AsyncSession, identifier: str) -> Any:
        """The user ``identifier`` names: by username, else mobile, else email (case-insensitive); or None."""
        if not _could_exist(identifier):
            return None
        matches = [User.username == identifier]
        if MOBILE_RE.fullmatch(identifier):
            matches.append(User.mobile == identifier)
        if "@" in identifier:
            matches.append(func.lower(User.email) == identifier.lower())
        precedence = case((User.username == identifier, 0), (User.mobile == identifier, 1), else_=2)
        statement = (
            select(User.id, User.username, User.password, User.is_active, User.icon)
            .where(or_(*matches))
            .order_by(precedence, User.id)
            .limit(1)
        )
        return (await session.execute(statement)).one_or_none()

    async def _count_attempt(self, windows: list[Window]) -> None:
        with cache_required(LOGIN_DOWN_MSG):
            try:
                await self.limiter.acquire(windows)
            except LimitExceeded as exc:
                raise _too_many(exc) from None

    async def log_in(
        self, session: AsyncSession, identifier: str, password: str, client_ip: str
    ) -> tuple[int, str, str]:
        """``(id, username, icon)`` of the user whose password this is; a 400 that says nothing more otherwise.

        The session's connection goes back to the pool while the password is hashed.
        """
        user = await self._find(session, identifier)
        await session.commit()
        windows = login_windows(self.settings, _account_key(user.id if user else None, identifier), client_ip)
        await self._count_attempt(windows)
        checked = await verify_password(password, user.password if user else None)
        if user is None or not user.is_active or not checked.ok:
            raise InvalidInput(LOGIN_FAILED_MSG)
        with cache_required(LOGIN_DOWN_MSG):
            await self.limiter.release(windows)
        changes: dict[str, Any] = {"last_login": utcnow()}
        if checked.upgrade:
            changes["password"] = await hash_password(password)
        await session.execute(update(User).where(User.id == user.id).values(**changes))
        return user.id, user.username, user.icon


def make_password_login(settings: Settings, redis: Redis | None, store: Store) -> PasswordLogin:
    return PasswordLogin(settings, make_limiter(redis, store))


async def _insert_user(session: AsyncSession, row: dict[str, Any]) -> int:
    """Insert a user; a taken mobile, username (or a race for them) is a refusal naming which, never a 500."""
    statement = user_insert(session).values(**row).on_conflict_do_nothing().returning(User.id)
    user_id = (await session.execute(statement)).scalar_one_or_none()
    if user_id is not None:
        return user_id
    if await session.scalar(select(User.id).where(User.mobile == row["mobile"])) is not None:
        raise InvalidInput("该手机号已注册", field="mobile")
    raise Conflict("该用户名已被占用", field="username")


async def register(session: AsyncSession, sms: SmsCodeService, mobile: str, code: str, password: str) -> int:
    """A new user with ``mobile`` as username, once the SMS code proves the mobile is theirs; returns the id."""
    check_password_rules(password)
    await sms.check_code(mobile, code)
    if await session.scalar(select(User.id).where(User.mobile == mobile)) is not None:
        raise InvalidInput("该手机号已注册", field="mobile")
    await session.commit()
    encoded = await hash_password(password)
    return await _insert_user(session, new_user_row(username=mobile, mobile=mobile, now=utcnow(), password=encoded))


async def create_user(
    session: AsyncSession,
    *,
    username: str,
    mobile: str,
    password: str,
    email: str = "",
    is_staff: bool = False,
    is_superuser: bool = False,
) -> int:
    """An operator's new user (``luffy user create``); returns the id."""
    if not USERNAME_RE.fullmatch(username):
        raise InvalidInput("用户名只能包含字母、数字和 @.+-_，最多150个字符", field="username")
    if not MOBILE_RE.fullmatch(mobile):
        raise InvalidInput("手机号格式不正确", field="mobile")
    if email and (len(email) > EMAIL_MAX or not EMAIL_RE.fullmatch(email)):
        raise InvalidInput("邮箱格式不正确", field="email")
    check_password_rules(password)
    encoded = await hash_password(password)
    row = new_user_row(
        username=username,
        mobile=mobile,
        now=utcnow(),
        password=encoded,
        email=email,
        is_staff=is_staff or is_superuser,
        is_superuser=is_superuser,
    )
    return await _insert_user(session, row)


async def user_id_by_username(session: AsyncSession, username: str) -> int:
    user_id = await session.scalar(select(User.id).where(User.username == username)) if _could_exist(username) else None
    if user_id is None:
        raise NotFound(f"没有用户名为 {username} 的用户", field="username")
    return user_id


async def set_password(session: AsyncSession, user_id: int, password: str) -> None:
    encoded = await hash_password(check_password_rules(password))
    if await session.scalar(update(User).where(User.id == user_id).values(password=encoded).returning(User.id)) is None:
        raise NotFound("用户不存在", field="user_id")


async def list_users(session: AsyncSession, limit: int) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.id).limit(limit))).all()


async def set_user_active(session: AsyncSession, user_id: int, active: bool) -> None:
    """Enable or disable a user: the one place this changes, so every consequence can hang on it.

    Commits, then updates the revocation list, so the user's tokens stop (or start) working at
    once on every API process, flash-sale admission included.
    """
    change = update(User).where(User.id == user_id).values(is_active=active)
    if (await session.execute(change.returning(User.id))).first() is None:
        raise NotFound("用户不存在", field="user_id")
    enabled = await session.scalar(select(User.id).where(User.id == user_id, account_enabled())) is not None
    await session.commit()
    await (restore_user(user_id) if enabled else revoke_user(user_id))


# --- the SMS log and the send task ----------------------------------------------------------------


class SmsLogRepository(SQLAlchemyAsyncRepository[SmsLog]):
    model_type = SmsLog


class SmsLogService(SQLAlchemyAsyncRepositoryService[SmsLog]):
    repository_type = SmsLogRepository

    async def recent(self, mobile: str | None, limit: int) -> Sequence[SmsLog]:
        filters: list[Any] = [OrderBy(field_name="id", sort_order="desc"), LimitOffset(limit=limit, offset=0)]
        if mobile:
            filters.append(SmsLog.mobile == mobile)
        return await self.list(*filters)


class SmsStatus:
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"
    FINAL = frozenset({SENT, FAILED, SKIPPED})


def _note(log: SmsLog, text: str) -> None:
    log.error = f"{log.error}\n{text}" if log.error else text


async def deliver_code(
    session: AsyncSession,
    cache: Store,
    provider: SmsProvider,
    settings: Settings,
    mobile: str,
    send_id: str,
    max_attempts: int = SMS_MAX_ATTEMPTS,
) -> str:
    """One delivery attempt of the code that ``send_id`` stands for; returns the row's status.

    Each attempt is committed before and after the provider call, so the SMS log keeps every
    attempt even when this raises ``TransientSmsError`` to have TaskIQ retry it. The attempt
    count in the row (not the message) caps the tries, so a redelivered message cannot add one.
    """
    log = await session.scalar(select(SmsLog).where(SmsLog.send_id == send_id))
    if log is not None and log.status in SmsStatus.FINAL:
        return log.status
    if log is None:
        log = SmsLog(send_id=send_id, mobile=mobile, provider=provider.name, status=SmsStatus.SENDING, attempts=0)
        session.add(log)
    code = await code_for_send(cache, mobile, send_id)
    if code is None:
        log.status = SmsStatus.SKIPPED
        _note(log, "code expired, used or replaced before it was sent")
        await session.commit()
        return log.status
    log.attempts += 1
    attempt = log.attempts
    message = render_message(code, settings.sms_code_ttl)
    keep_code = provider.keeps_code_in_log and settings.is_embedded
    log.message = message if keep_code else mask_code(message, code)
    log.status = SmsStatus.SENDING
    await session.commit()
    try:
        await provider.send_code(mobile, code, message)
    except TransientSmsError as exc:
        _note(log, f"attempt {attempt}: {mask_code(str(exc), code)}")
        log.status = SmsStatus.FAILED if attempt >= max_attempts else SmsStatus.RETRYING
        await session.commit()
        if log.status == SmsStatus.RETRYING:
            raise
        logger.warning("SMS %s to %s failed after %d attempts", send_id, mobile, attempt)
        return log.status
    except PermanentSmsError as exc:
        _note(log, f"attempt {attempt}: {mask_code(str(exc), code)}")
        log.status = SmsStatus.FAILED
        await session.commit()
        logger.warning("SMS %s to %s failed: %s", send_id, mobile, mask_code(str(exc), code))
        return log.status
    except Exception as exc:
        _note(log, f"attempt {attempt}: unexpected {type(exc).__name__}")
        log.status = SmsStatus.FAILED
        await session.commit()
        raise
    log.status = SmsStatus.SENT
    log.sent_time = utcnow()
    await session.commit()
    return log.status
