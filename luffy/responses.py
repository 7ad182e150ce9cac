"""The contract's envelope: ``code``/``msg`` on every reply, errors included."""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

import msgspec
from advanced_alchemy.exceptions import NotFoundError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

logger = logging.getLogger("luffy.errors")

SUCCESS = 100
CLIENT_ERROR = 999
SERVER_ERROR = 888
SUCCESS_MSG = "成功"
SERVER_ERROR_MSG = "服务器错误"

DEFAULT_ERROR_MESSAGES = {
    400: "请求参数错误",
    401: "未登录或登录已过期",
    403: "没有权限",
    404: "资源不存在",
    405: "请求方法不允许",
    409: "冲突",
    413: "请求体过大",
    415: "不支持的媒体类型",
    429: "请求过于频繁",
    503: "服务暂不可用",
}

T = TypeVar("T")


class Envelope(msgspec.Struct, kw_only=True):
    """Base of every success reply: an object's fields sit beside ``code`` and ``msg``."""

    code: int = SUCCESS
    msg: str = SUCCESS_MSG


class ListResult(Envelope, Generic[T], kw_only=True):
    result: list[T]


class Page(Envelope, Generic[T], kw_only=True):
    """DRF page-number style, keys at the top level."""

    count: int
    next: str | None
    previous: str | None
    results: list[T]


class ErrorDetail(msgspec.Struct):
    field: str | None
    message: str


class ErrorReply(msgspec.Struct, omit_defaults=True):
    code: int
    msg: str
    errors: list[ErrorDetail] | None = None


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the contract's error envelope, for a route handler's ``responses=``."""
    return {
        status: ResponseSpec(
            data_container=ErrorReply,
            description=DEFAULT_ERROR_MESSAGES.get(status, "请求错误"),
            generate_examples=False,
        )
        for status in statuses
    }


def _validation_errors(extra: Any) -> list[ErrorDetail] | None:
    if not isinstance(extra, list):
        return None
    details = [
        ErrorDetail(field=item.get("key"), message=str(item.get("message", "")))
        for item in extra
        if isinstance(item, dict)
    ]
    return details or None


def _is_default_detail(exc: HTTPException) -> bool:
    """Litestar's own wording (the status phrase, or "Validation failed for GET /path?query"),
    which is English and echoes the request back: replaced by the contract's short Chinese text."""
    from http import HTTPStatus

    if isinstance(exc, ValidationException) and exc.detail.startswith("Validation failed for "):
        return True
    try:
        return exc.detail == HTTPStatus(exc.status_code).phrase
    except ValueError:
        return False


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorReply]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR and status != 503:
        return server_error_handler(_, exc)
    if _is_default_detail(exc) or not exc.detail:
        message = DEFAULT_ERROR_MESSAGES.get(status, "请求错误")
    else:
        message = exc.detail
    errors = _validation_errors(exc.extra) if isinstance(exc, ValidationException) else None
    code = SERVER_ERROR if status >= HTTP_500_INTERNAL_SERVER_ERROR else CLIENT_ERROR
    return Response(
        ErrorReply(code=code, msg=message, errors=errors),
        status_code=status,
        headers=exc.headers,
        media_type=MediaType.JSON,
    )


def not_found_handler(_: Request[Any, Any, Any], exc: NotFoundError) -> Response[ErrorReply]:
    return Response(ErrorReply(code=CLIENT_ERROR, msg=DEFAULT_ERROR_MESSAGES[404]), status_code=404)


def server_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorReply]:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(
        ErrorReply(code=SERVER_ERROR, msg=SERVER_ERROR_MSG),
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
        media_type=MediaType.JSON,
    )


exception_handlers: ExceptionHandlersMap = {
    HTTPException: http_exception_handler,
    NotFoundError: not_found_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: server_error_handler,
    Exception: server_error_handler,
}
