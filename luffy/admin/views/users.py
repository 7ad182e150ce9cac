"""Users (no hash shown; password, disable and enable through the services ``luffy user …`` calls) and the SMS log."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqladmin import action, expose
from sqladmin.authentication import login_required
from sqladmin.filters import AllUniqueStringValuesFilter, BooleanFilter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from luffy.admin.site import PATH, admin_context
from luffy.admin.views.base import ImageUploads, ReadOnlyView
from luffy.errors import DomainError
from luffy.user.models import SmsLog, User
from luffy.user.services import set_password, set_user_active

MENU = "用户"
# A verification code is 4 to 8 digits; a mobile (11) is left readable.
CODE = re.compile(r"(?<!\d)\d{4,8}(?!\d)")


def mask_codes(text: str | None) -> str:
    return CODE.sub(lambda match: "*" * len(match.group()), text or "")


def _ids(raw: str) -> list[int]:
    return [int(part) for part in raw.split(",") if part.strip().isdigit()]


class UserView(ImageUploads, model=User):
    name = "用户"
    name_plural = "用户"
    icon = "fa-solid fa-users"
    category = MENU
    can_create = False
    can_delete = False
    can_export = False
    image_folders = {"icon": "icon"}
    column_list = [
        User.id,
        User.username,
        User.mobile,
        User.email,
        User.is_active,
        User.is_staff,
        User.date_joined,
        User.last_login,
    ]
    column_details_exclude_list = [User.password]
    column_labels: ClassVar[dict[Any, str]] = {
        "id": "ID",
        "username": "用户名",
        "mobile": "手机号",
        "email": "邮箱",
        "first_name": "名",
        "last_name": "姓",
        "is_active": "有效",
        "is_staff": "管理员",
        "is_superuser": "超级用户",
        "date_joined": "注册时间",
        "last_login": "上次登录",
        "icon": "头像",
    }
    column_searchable_list = [User.username, User.mobile, User.email]
    column_sortable_list = [User.id, User.date_joined, User.last_login]
    column_default_sort = [(User.id, True)]
    column_filters = [BooleanFilter(User.is_active, title="有效"), BooleanFilter(User.is_staff, title="管理员")]
    # Username, mobile and email have rules (``luffy user create`` checks them) and is_active has
    # consequences (set_user_active): none of them is a plain form field here.
    form_columns = [User.first_name, User.last_name, User.is_staff, User.icon]

    @action("set-password", "设置密码", add_in_list=False)
    async def set_password_action(self, request: Request) -> Response:
        pks = _ids(request.query_params.get("pks", ""))
        return RedirectResponse(f"{PATH}/user/password?pk={pks[0] if pks else ''}", status_code=302)

    @action("disable", "禁用", "禁用后该用户无法登录，已签发的令牌也会失效。")
    async def disable_action(self, request: Request) -> Response:
        return RedirectResponse(f"{PATH}/user/active?active=0&pks={request.query_params.get('pks', '')}", 302)

    @action("enable", "启用")
    async def enable_action(self, request: Request) -> Response:
        return RedirectResponse(f"{PATH}/user/active?active=1&pks={request.query_params.get('pks', '')}", 302)

    async def _page(self, request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
        return await self.templates.TemplateResponse(
            request,
            "luffy_admin/form.html",
            {"model_view": self, "back": f"{PATH}/user/list", **context},
            status_code=status_code,
        )

    @expose("/password", methods=["GET", "POST"])
    @login_required
    async def password_page(self, request: Request) -> Response:
        ids = _ids(request.query_params.get("pk", ""))
        if not ids:
            return RedirectResponse(f"{PATH}/user/list", 302)
        page = {
            "title": "设置密码",
            "subject": f"用户 ID {ids[0]}",
            "action": str(request.url),
            "fields": [{"name": "password", "label": "新密码", "type": "password"}],
            "submit": "保存",
            "back": f"{PATH}/user/details/{ids[0]}",
        }
        if request.method == "GET":
            return await self._page(request, page)
        form = await request.form()
        try:
            async with admin_context(request).session() as session:
                await set_password(session, ids[0], str(form.get("password", "")))
        except DomainError as exc:
            return await self._page(request, {**page, "error": str(exc)}, 400)
        return await self._page(request, {**page, "done": "密码已更新"})

    @expose("/active", methods=["GET", "POST"])
    @login_required
    async def active_page(self, request: Request) -> Response:
        ids = _ids(request.query_params.get("pks", ""))
        active = request.query_params.get("active") == "1"
        verb = "启用" if active else "禁用"
        page = {
            "title": f"{verb}用户",
            "subject": f"{verb}以下用户：ID {', '.join(map(str, ids))}",
            "action": str(request.url),
            "fields": [],
            "submit": f"确认{verb}",
        }
        if request.method == "GET" or not ids:
            return await self._page(request, page)
        try:
            async with admin_context(request).session() as session:
                for user_id in ids:
                    await set_user_active(session, user_id, active)
        except DomainError as exc:
            return await self._page(request, {**page, "error": str(exc)}, 400)
        return await self._page(request, {**page, "done": f"已{verb} {len(ids)} 个用户"})


class SmsLogView(ReadOnlyView, model=SmsLog):
    name = "短信记录"
    name_plural = "短信记录"
    icon = "fa-solid fa-comment-sms"
    category = MENU
    column_list = [
        SmsLog.id,
        SmsLog.mobile,
        SmsLog.provider,
        SmsLog.status,
        SmsLog.attempts,
        SmsLog.message,
        SmsLog.created_time,
        SmsLog.sent_time,
    ]
    column_labels: ClassVar[dict[Any, str]] = {
        "id": "ID",
        "send_id": "发送号",
        "mobile": "手机号",
        "provider": "通道",
        "status": "状态",
        "attempts": "尝试次数",
        "error": "错误",
        "message": "内容(验证码已隐藏)",
        "created_time": "创建时间",
        "sent_time": "发送时间",
    }
    column_searchable_list = [SmsLog.mobile]
    column_sortable_list = [SmsLog.id, SmsLog.created_time]
    column_default_sort = [(SmsLog.id, True)]
    column_filters = [AllUniqueStringValuesFilter(SmsLog.status, title="状态")]
    column_formatters = {SmsLog.message: lambda model, _a: mask_codes(model.message)}
    column_formatters_detail = {
        SmsLog.message: lambda model, _a: mask_codes(model.message),
        SmsLog.error: lambda model, _a: mask_codes(model.error),
    }
