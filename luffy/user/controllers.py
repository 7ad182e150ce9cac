"""User endpoints: mobile check, SMS codes, mobile login, registration, password login (public) and
the current user (with a token).

The original front end's paths (``user/user/mobile/``, ``user/user/send_sms/``,
``user/user/mobile_login/``, ``user/user/mobile_register/``, ``user/user/mul_login/``) are aliases
of the same handlers. ``CurrentUserController`` is mounted on the app's authenticated router,
``UserController`` on the public one.
"""

from __future__ import annotations

from typing import Annotated, Any

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.handlers import HTTPRouteHandler
from litestar.params import JSONBody, QueryParameter
from litestar.security.jwt import Token
from litestar.types.internal_types import PathParameterDefinition
from sqlalchemy.ext.asyncio import AsyncSession

from luffy.cache import CACHE_STORE
from luffy.responses import error_responses
from luffy.settings import Settings
from luffy.user.auth import REVOCATION_CHECKED_IN_HANDLER, AuthUser, issue_token
from luffy.user.limits import client_key
from luffy.user.schemas import (
    MOBILE_EXISTS,
    MOBILE_UNKNOWN,
    LoginBody,
    LoginReply,
    Me,
    MobileBody,
    MobileCheck,
    PasswordLoginBody,
    RegisterBody,
    Registered,
    SmsSent,
)
from luffy.user.services import (
    PasswordLogin,
    SmsCodeService,
    UserService,
    make_password_login,
    make_sms_code_service,
    parse_code,
    parse_mobile,
    register,
)

SmsDep = NamedDependency[SmsCodeService]
PasswordLoginDep = NamedDependency[PasswordLogin]
UsersDep = NamedDependency[UserService]
SettingsDep = NamedDependency[Settings]
MobileQuery = Annotated[str, QueryParameter(description="A mainland China mobile number, e.g. 13800138000.")]


def operation_id(handler: HTTPRouteHandler, method: str, components: list[str | PathParameterDefinition]) -> str:
    """Unique per alias path (Litestar's default merges repeated components such as ``user/user``)."""
    words = [part if isinstance(part, str) else part.name for part in components]
    return "".join(word.replace("_", " ").title().replace(" ", "") for word in [method.lower(), *words])


def provide_sms_codes(request: Request[Any, Any, Any], state: State, settings: SettingsDep) -> SmsCodeService:
    """One service per app, made on first use (the Redis client exists only once the app has started).

    ``state.enqueue_sms`` is the send task's queue, wired in by ``luffy.app`` at assembly.
    """
    service: SmsCodeService | None = state.get("sms_code_service")
    if service is None:
        service = make_sms_code_service(settings, state.redis, request.app.stores.get(CACHE_STORE), state.enqueue_sms)
        state.sms_code_service = service
    return service


def provide_password_login(request: Request[Any, Any, Any], state: State, settings: SettingsDep) -> PasswordLogin:
    service: PasswordLogin | None = state.get("password_login")
    if service is None:
        service = make_password_login(settings, state.redis, request.app.stores.get(CACHE_STORE))
        state.password_login = service
    return service


def client_ip(request: Request[Any, Any, Any]) -> str:
    return client_key(request.client.host if request.client else "")


async def _send_code(request: Request[Any, Any, Any], sms: SmsCodeService, mobile: str) -> SmsSent:
    await sms.request_code(parse_mobile(mobile), client_ip(request))
    return SmsSent()


provide_users = create_service_provider(UserService)


class UserController(Controller):
    path = "/user"
    tags = ["user"]
    dependencies = {
        "sms": Provide(provide_sms_codes, sync_to_thread=False),
        "password_login": Provide(provide_password_login, sync_to_thread=False),
        "users": Provide(provide_users),
    }

    @get(
        ["/mobile/check_mobile", "/user/mobile"],
        summary="Is a mobile number registered? (counts against the per-IP SMS limit)",
        operation_id=operation_id,
        responses=error_responses(400, 429),
    )
    async def check_mobile(
        self, request: Request[Any, Any, Any], sms: SmsDep, users: UsersDep, mobile: MobileQuery
    ) -> MobileCheck:
        checked = parse_mobile(mobile)
        await sms.count_lookup(client_ip(request))
        if await users.mobile_exists(checked):
            return MobileCheck(code=MOBILE_EXISTS, msg="手机号存在")
        return MobileCheck(code=MOBILE_UNKNOWN, msg="手机号不存在")

    @post(
        "/mobile/send_sms",
        status_code=200,
        summary="Send an SMS verification code",
        responses=error_responses(400, 429),
    )
    async def send_sms(self, request: Request[Any, Any, Any], sms: SmsDep, data: JSONBody[MobileBody]) -> SmsSent:
        return await _send_code(request, sms, data.mobile)

    @get(
        ["/mobile/send_sms", "/user/send_sms"],
        summary="Send an SMS verification code (the original front end's GET form)",
        operation_id=operation_id,
        responses=error_responses(400, 429),
    )
    async def send_sms_by_query(self, request: Request[Any, Any, Any], sms: SmsDep, mobile: MobileQuery) -> SmsSent:
        return await _send_code(request, sms, mobile)

    @post(
        ["/mobile/login", "/user/mobile_login"],
        status_code=200,
        summary="Log in with a mobile and its SMS code",
        operation_id=operation_id,
        responses=error_responses(400),
    )
    async def login(
        self,
        request: Request[Any, Any, Any],
        sms: SmsDep,
        users: UsersDep,
        settings: SettingsDep,
        data: JSONBody[LoginBody],
    ) -> LoginReply:
        mobile = parse_mobile(data.mobile)
        code = parse_code(data.code, settings.sms_code_length)
        await sms.check_code(mobile, code)
        user_id, username, icon = await users.log_in(mobile)
        token = issue_token(request.app.state.jwt_auth, user_id, username)
        return LoginReply(token=token, username=username, icon=settings.media_url(icon))

    @post(
        ["/user/mobile_register", "/register"],
        status_code=200,
        summary="Register with a mobile, its SMS code and a password (the username is the mobile)",
        operation_id=operation_id,
        responses=error_responses(400, 409, 503),
    )
    async def register(
        self, sms: SmsDep, db_session: AsyncSession, settings: SettingsDep, data: JSONBody[RegisterBody]
    ) -> Registered:
        mobile = parse_mobile(data.mobile)
        code = parse_code(data.code, settings.sms_code_length)
        await register(db_session, sms, mobile, code, data.password)
        return Registered()

    @post(
        ["/user/mul_login", "/login"],
        status_code=200,
        summary="Log in with a username, mobile or email and a password (failures lock the account for a while)",
        operation_id=operation_id,
        responses=error_responses(400, 429, 503),
    )
    async def password_login(
        self,
        request: Request[Any, Any, Any],
        password_login: PasswordLoginDep,
        db_session: AsyncSession,
        settings: SettingsDep,
        data: JSONBody[PasswordLoginBody],
    ) -> LoginReply:
        user_id, username, icon = await password_login.log_in(
            db_session, data.username, data.password, client_ip(request)
        )
        token = issue_token(request.app.state.jwt_auth, user_id, username)
        return LoginReply(token=token, username=username, icon=settings.media_url(icon))


class CurrentUserController(Controller):
    path = "/user"
    tags = ["user"]
    dependencies = {"users": Provide(provide_users)}

    @get(
        "/me",
        summary="The logged-in user (Authorization: Bearer <token>)",
        responses=error_responses(400, 401),
        opt={REVOCATION_CHECKED_IN_HANDLER: True},
    )
    async def me(self, request: Request[AuthUser, Token, Any], users: UsersDep, settings: SettingsDep) -> Me:
        user = await users.active_user(request.user.id)
        return Me(
            id=user.id, username=user.username, mobile=user.mobile, email=user.email, icon=settings.media_url(user.icon)
        )
