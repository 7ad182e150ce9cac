"""The flash-sale purchase (``POST user/sckill/``), answered before the framework with the app's own parts.

Why it exists: when a sale opens every buyer POSTs at once, and the framework's work on each
request (routing, middleware, dependency injection, the response pipeline) cost more CPU than the
purchase itself: half of both cores during a 5,000-buyer sale (``bench/results.md``). This layer
sits outside the Litestar app (``luffy.asgi``), like ``luffy.cached_replies``, and answers the
purchase doing what the app does, with the app's parts:

- the token is read and checked by an instance of the app's own authentication middleware
  (``luffy.user.auth``: the same header and cookie rules, JWT checks and user rules), given the
  app's route handler, so the user's revocation is checked where the app checks it: inside the
  admission script;
- the body must be at most the app's cap, and is decoded by msgspec into ``PurchaseRequest``
  strictly: a body the strict decoder accepts, the app's lax conversion accepts as the same request;
- the desk the app's lifespan built (``SeckillDesk.request``) answers, and an error it raises is
  answered by the app's own exception handler;
- the reply gets the app's headers (``luffy.http.AppReplyHeaders``).

Anything else (no token or a refused one, a body that is not exactly such JSON or is too big,
another content type, the desk not built yet) goes to the app with its body replayed, and the app
answers as it always does (401, 400, 413, ...). Embedded mode has no such layer.
``tests/test_purchase_lane.py`` holds its replies to the app's.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware.authentication import AbstractAuthenticationMiddleware
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json
from litestar.types import (
    ASGIApp,
    ExceptionHandlersMap,
    HTTPRequestEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from luffy.app import API_PREFIX
from luffy.http import API_MAX_BODY_BYTES, AppReplyHeaders
from luffy.seckill.schemas import PurchaseRequest
from luffy.seckill.services import SeckillDesk
from luffy.settings import Settings

PURCHASE_PATH = f"{API_PREFIX}/user/sckill/"
# The front end's spelling and the OpenAPI document's: the app routes both to the same handler.
PURCHASE_PATHS = frozenset({PURCHASE_PATH, PURCHASE_PATH.rstrip("/")})
JSON_MEDIA_TYPE = b"application/json"
JSON_HEADERS = ((b"content-type", JSON_MEDIA_TYPE),)
_decode_purchase = msgspec.json.Decoder(PurchaseRequest).decode


class PurchaseLane:
    """An ASGI app: ``POST`` :data:`PURCHASE_PATHS` answered here when it can be, everything else to ``app``."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.litestar = litestar
        self.route_handler = purchase_route_handler(litestar)
        self.exception_handlers = self.route_handler.resolve_exception_handlers()
        self.reply_headers = AppReplyHeaders(litestar)
        self.authentication = app_authentication(litestar, self.route_handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        desk: SeckillDesk | None = None
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in PURCHASE_PATHS:  # type: ignore[typeddict-item]
            desk = self.litestar.state.get("seckill_desk")
        if desk is None or not _json_within_cap(scope):
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive)
        if body is None:
            return  # the client went away
        replayed = _replaying(body, complete, receive)
        app_scope = self._app_scope(scope)
        purchase = _decoded(body) if complete else None
        user_id = await self._user_id(app_scope) if purchase is not None else None
        if purchase is None or user_id is None:
            await self.app(scope, replayed, send)
            return
        try:
            reply = await desk.request(purchase, user_id)
        except Exception as exc:  # answered by the app's own handler, as the app would
            await self._error_reply(app_scope, replayed, send, exc)
            return
        encoded = encode_json(reply)
        start: Message = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*JSON_HEADERS, (b"content-length", str(len(encoded)).encode())],
        }
        await self.reply_headers.add(start, scope)
        await send(start)
        await send({"type": "http.response.body", "body": encoded, "more_body": False})

    def _app_scope(self, scope: Scope) -> Scope:
        """``scope`` as the app's router hands it to the route: with the app and the route handler."""
        return {**scope, "app": self.litestar, "litestar_app": self.litestar, "route_handler": self.route_handler}  # type: ignore[return-value]

    async def _user_id(self, scope: Scope) -> int | None:
        try:
            result = await self.authentication.authenticate_request(ASGIConnection(scope))
        except Exception:  # any refusal is the app's to answer, with its own reply
            return None
        user_id: int = result.user.id
        return user_id

    async def _error_reply(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        handler = exception_handler_for(self.exception_handlers, exc)
        request = self.litestar.request_class(scope)
        response = handler(request, exc)
        if inspect.isawaitable(response):
            response = await response
        asgi_response = response.to_asgi_response(app=self.litestar, request=request)
        await asgi_response(scope, receive, self.reply_headers.sending(scope, send))


def purchase_route_handler(app: Litestar) -> HTTPRouteHandler:
    """The app's handler for ``POST`` :data:`PURCHASE_PATH` (its options and exception handlers apply here)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == PURCHASE_PATH.rstrip("/"):
            handler, _ = route.route_handler_map["POST"]
            return handler
    raise LookupError(f"the app has no POST {PURCHASE_PATH}")


def app_authentication(app: Litestar, route_handler: HTTPRouteHandler) -> AbstractAuthenticationMiddleware:
    """An instance of the authentication middleware on ``route_handler``'s router (never called as ASGI)."""
    for layer in route_handler.ownership_layers:
        for middleware in layer.middleware or ():
            if not isinstance(middleware, DefineMiddleware):
                continue
            factory = middleware.middleware
            if isinstance(factory, type) and issubclass(factory, AbstractAuthenticationMiddleware):
                instance = middleware(app)
                assert isinstance(instance, AbstractAuthenticationMiddleware)
                return instance
    raise LookupError(f"POST {PURCHASE_PATH} has no authentication middleware")


def exception_handler_for(handlers: ExceptionHandlersMap, exc: Exception) -> Any:
    """The handler Litestar picks for ``exc``: for an ``HTTPException`` the one for its status if
    any; then the nearest class in its MRO; else the one for status 500."""
    if isinstance(exc, HTTPException) and exc.status_code in handlers:
        return handlers[exc.status_code]
    for cls in type(exc).__mro__:
        if cls in handlers:
            return handlers[cls]
    return handlers[500]


def _json_within_cap(scope: Scope) -> bool:
    """A JSON body declared no bigger than the app's cap (a chunked body is counted as it comes)."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length" and not (value.isdigit() and int(value) <= API_MAX_BODY_BYTES):
            return False
    return content_type.partition(b";")[0].strip().lower() == JSON_MEDIA_TYPE


async def _read_body(receive: Receive) -> tuple[bytes | None, bool]:
    """The body, and whether it is all there: reading stops past the cap. ``None`` on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > API_MAX_BODY_BYTES:
            return b"".join(chunks), False


def _replaying(body: bytes, complete: bool, receive: Receive) -> Receive:
    """``receive`` that first gives back what was read (then the rest, if reading stopped early)."""
    pending = True

    async def replayed() -> ReceiveMessage:
        nonlocal pending
        if pending:
            pending = False
            return HTTPRequestEvent(type="http.request", body=body, more_body=not complete)
        return await receive()

    return replayed


def _decoded(body: bytes) -> PurchaseRequest | None:
    try:
        return _decode_purchase(body)
    except (msgspec.DecodeError, RecursionError):
        return None


def with_purchase_lane(app: ASGIApp, litestar: Litestar, settings: Settings) -> ASGIApp:
    """``app`` behind this layer in production; as it is in embedded mode."""
    if settings.redis_url is None:
        return app
    return PurchaseLane(app, litestar)
