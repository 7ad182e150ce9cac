"""The contract's envelope: ``code``/``msg`` on every reply, errors included."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

import asyncpg
import msgspec
from advanced_alchemy.exceptions import NotFoundError, RepositoryError
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap, Scope
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from luffy import errors
from luffy.outages import is_outage

logger = logging.getLogger("luffy.errors")

SUCCESS = 100
CLIENT_ERROR = 999
SERVER_ERROR = 888
SUCCESS_MSG = "成功"
SERVER_ERROR_MSG = "服务器错误"
UNAVAILABLE_MSG = "服务暂不可用，请稍后再试"
OUTAGE_RETRY_AFTER_SECONDS = 5
OUTAGE_LOG_INTERVAL_SECONDS = 5.0

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


def page_url(request: Request[Any, Any, Any], page: int) -> str:
    """The request's URL with only ``page`` changed (removed for page 1, as DRF does).

    Absolute on ``LUFFY_BACKEND_URL``, never on the request's ``Host`` header, which the client writes.
    """
    query = parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    params = [(key, value) for key, value in query if key != "page"]
    if page > 1:
        params.append(("page", str(page)))
    query_string = urlencode(params)
    url = request.app.state.settings.backend_url + requested_path(request.scope)
    return f"{url}?{query_string}" if query_string else url


def requested_path(scope: Scope) -> str:
    """The path as the client sent it: Litestar's router strips the trailing slash from ``path``."""
    raw_path: bytes | None = scope.get("raw_path")
    return raw_path.decode("latin-1").partition("?")[0] if raw_path else scope["path"]


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


_FIELD_IN_MESSAGE = re.compile(r"(?:parameter|field) [`'\"]([^`'\"]+)[`'\"]")
_REQUEST_ECHO = re.compile(r" for (?:path|GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS) \S+.*$")


def _field_and_message(field: str | None, message: str) -> ErrorDetail:
    """One validation problem, named by the field it is about, without echoing the request's URL."""
    named = _FIELD_IN_MESSAGE.search(message)
    if named and field in (None, "data"):
        field = named.group(1)
    if message == f"'{field}'":  # msgspec's wording for a body that is not an object at all
        message = "请求体必须是 JSON 对象"
    return ErrorDetail(field=field, message=_REQUEST_ECHO.sub("", message))


def _validation_errors(exc: HTTPException) -> list[ErrorDetail] | None:
    if isinstance(exc.extra, list):
        details = [
            _field_and_message(item.get("key"), str(item.get("message", "")))
            for item in exc.extra
            if isinstance(item, dict)
        ]
        return details or None
    if exc.status_code == 400 and exc.detail.isascii():
        return [_field_and_message(None, exc.detail)]
    return None


def _message(exc: HTTPException) -> str:
    """The contract's short Chinese ``msg``. Litestar's own details are English and may echo the
    request ("Missing required query parameter 'course' for path ..."): those give way to the status's
    message, the specifics moving to ``errors``. Luffy's own details are Chinese and kept as they are."""
    if not exc.detail or exc.detail.isascii():
        return DEFAULT_ERROR_MESSAGES.get(exc.status_code, "请求错误")
    return exc.detail


def http_exception_handler(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorReply]:
    status = exc.status_code
    if status >= HTTP_500_INTERNAL_SERVER_ERROR and status != 503:
        return server_error_handler(_, exc)
    code = SERVER_ERROR if status >= HTTP_500_INTERNAL_SERVER_ERROR else CLIENT_ERROR
    headers = exc.headers
    if status == 503 and not (headers and "Retry-After" in headers):
        headers = {**(headers or {}), "Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
    return Response(
        ErrorReply(code=code, msg=_message(exc), errors=_validation_errors(exc) if status == 400 else None),
        status_code=status,
        headers=headers,
        media_type=MediaType.JSON,
    )


def undecodable_body_handler(_: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[ErrorReply]:
    """A request body that is not UTF-8 (see ``luffy.http.LuffyRequest``): 400, never a 500."""
    return Response(
        ErrorReply(code=CLIENT_ERROR, msg="请求体不是有效的 UTF-8 JSON"),
        status_code=400,
        media_type=MediaType.JSON,
    )


DOMAIN_ERROR_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 400,
    errors.NotAuthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.TooManyRequests: 429,
    errors.Unavailable: 503,
}


def domain_error_status(exc: errors.DomainError) -> int:
    """The HTTP status of a domain error: its nearest mapped class, 400 for an unmapped subclass."""
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERROR_STATUS:
            return DOMAIN_ERROR_STATUS[cls]
    return 400


def domain_error_handler(_: Request[Any, Any, Any], exc: errors.DomainError) -> Response[ErrorReply]:
    """The one place a service's refusal becomes HTTP: status by class, ``msg`` as the service wrote it."""
    status = domain_error_status(exc)
    headers = (
        {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.TooManyRequests | errors.Unavailable) else None
    )
    details = [ErrorDetail(field=exc.field, message=exc.message)] if exc.field is not None else None
    return Response(
        ErrorReply(code=SERVER_ERROR if status >= 500 else CLIENT_ERROR, msg=exc.message, errors=details),
        status_code=status,
        headers=headers,
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


def _outage_in(exc: BaseException) -> BaseException | None:
    """The outage behind ``exc``: itself, or what it wraps (advanced-alchemy wraps SQLAlchemy's errors)."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if is_outage(seen):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


_last_outage_log = -OUTAGE_LOG_INTERVAL_SECONDS


def dependency_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorReply]:
    """The database or Redis is away (refused, closed, shutting down, pool exhausted): 503, never a 500."""
    global _last_outage_log
    outage = _outage_in(exc)
    if outage is None:
        return server_error_handler(request, exc)
    now = time.monotonic()
    if now - _last_outage_log >= OUTAGE_LOG_INTERVAL_SECONDS:  # one line per few seconds, not one per request
        _last_outage_log = now
        logger.warning("dependency unavailable on %s %s: %s", request.method, request.url.path, type(outage).__name__)
    return domain_error_handler(request, errors.Unavailable(UNAVAILABLE_MSG, retry_after=OUTAGE_RETRY_AFTER_SECONDS))


exception_handlers: ExceptionHandlersMap = {
    HTTPException: http_exception_handler,
    errors.DomainError: domain_error_handler,
    NotFoundError: not_found_handler,
    UnicodeDecodeError: undecodable_body_handler,
    DBAPIError: dependency_error_handler,
    PoolTimeoutError: dependency_error_handler,
    RepositoryError: dependency_error_handler,
    asyncpg.PostgresError: dependency_error_handler,
    asyncpg.InterfaceError: dependency_error_handler,
    RedisError: dependency_error_handler,
    OSError: dependency_error_handler,
    HTTP_500_INTERNAL_SERVER_ERROR: server_error_handler,
    Exception: server_error_handler,
}
