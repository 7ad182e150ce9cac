"""The flash-sale purchase (``POST user/sckill/``), answered before the framework with the app's own parts.

Why it exists: when a sale opens every buyer POSTs at once, and the framework's work on each
request (routing, middleware, dependency injection, the response pipeline) cost more CPU than the
purchase itself: half of both cores during a 5,000-buyer sale (``bench/results.md``). This layer
sits outside the Litestar app (``luffy.asgi``), like ``luffy.cached_replies``, and answers the
purchase doing what the app does, with the app's parts:

- the request must be one the app's router takes as it comes (``luffy.http.taken_as_it_comes``);
- the token is read and checked by an instance of the app's own authentication middleware
  (``luffy.user.auth``: the same header and cookie rules, JWT checks and user rules), given the
  app's route handler, so the user's revocation is checked where the app checks it: inside the
  admission script;
- the body must be at most the app's cap, and decode into exactly the request's fields: a field
  the request does not have goes to the app, which decodes the whole body (and may refuse it); a
  body of only these fields, with the types they declare, the app reads as the same request;
- the desk the app's lifespan built (``SeckillDesk.request``) answers it, once; an error it raises
  is answered by the app's own exception handler, as Litestar calls it;
- the reply's messages go through what the app does to them (``luffy.http.AppReplyHeaders``).

Anything else (no token or a refused one, another body, content type or size, the desk not built
yet) goes to the app with whatever body was read replayed, and the app answers as it always does
(401, 400, 413, ...). The layer refuses to start when the route has a feature it does not carry
(guards, hooks, other middleware; see :func:`features_the_lane_skips`). Embedded mode has no such
layer. ``tests/test_purchase_lane.py`` holds its replies to the app's.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Litestar, MediaType, Response
from litestar.connection import ASGIConnection
from litestar.handlers import HTTPRouteHandler
from litestar.middleware import DefineMiddleware
from litestar.middleware._internal.exceptions.middleware import (  # Litestar's own pick (private, pinned by the lock)
    get_exception_handler,
)
from litestar.middleware.authentication import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json
from litestar.status_codes import HTTP_200_OK
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from luffy.app import API_PREFIX
from luffy.http import API_MAX_BODY_BYTES, JSON_HEADERS, AppReplyHeaders, taken_as_it_comes
from luffy.seckill.schemas import PurchaseRequest
from luffy.seckill.services import SeckillDesk
from luffy.settings import Settings

PURCHASE_PATH = f"{API_PREFIX}/user/sckill/"
# The front end's spelling and the OpenAPI document's: the app routes both to the same handler.
ROUTE_PATH = PURCHASE_PATH.rstrip("/")
PURCHASE_PATHS = frozenset({PURCHASE_PATH, ROUTE_PATH})
JSON_MEDIA_TYPE = JSON_HEADERS[0][1]


class ExactPurchase(PurchaseRequest, forbid_unknown_fields=True):
    """A purchase body with nothing but the request's fields (msgspec checks every byte of those)."""


_decode_purchase = msgspec.json.Decoder(ExactPurchase).decode


class PurchaseLane:
    """An ASGI app: ``POST`` :data:`PURCHASE_PATHS` answered here when it can be, everything else to ``app``."""

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.litestar = litestar
        self.route_handler = purchase_route_handler(litestar)
        skipped = features_the_lane_skips(litestar, self.route_handler)
        if skipped:
            raise RuntimeError(f"POST {PURCHASE_PATH} has what the purchase lane would skip: {', '.join(skipped)}")
        self.max_body_bytes = self.route_handler.resolve_request_max_body_size() or API_MAX_BODY_BYTES
        self.status_code = self.route_handler.status_code
        self.exception_handlers = self.route_handler.resolve_exception_handlers()
        if get_exception_handler(self.exception_handlers, Exception()) is None:
            raise RuntimeError(f"POST {PURCHASE_PATH} has no exception handler for every exception")
        self.type_encoders = self.route_handler.resolve_type_encoders()
        self.reply_headers = AppReplyHeaders(litestar)
        self.authentication = app_authentication(litestar, self.route_handler)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        desk: SeckillDesk | None = None
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in PURCHASE_PATHS:  # type: ignore[typeddict-item]
            desk = self.litestar.state.get("seckill_desk")
        if desk is None or not taken_as_it_comes(scope) or not _json_within(scope, self.max_body_bytes):
            await self.app(scope, receive, send)
            return
        app_scope = self._app_scope(scope)
        authenticated = await self._authenticated(app_scope)
        if authenticated is None:
            await self.app(scope, receive, send)  # the body is still unread: the app reads it, or not
            return
        body, more_body = await _read_body(receive, self.max_body_bytes)
        if body is None:
            return  # the client went away before its body was in: nothing was done, no one to answer
        purchase = _decoded(body) if not more_body and len(body) <= self.max_body_bytes else None
        replayed = _replaying(body, more_body, receive)
        if purchase is None:
            await self.app(scope, replayed, send)
            return
        app_scope["user"], app_scope["auth"] = authenticated.user, authenticated.auth
        try:
            reply = await desk.request(purchase, authenticated.user.id)
        except Exception as exc:  # answered by the app's own handler, as the app would
            await self._error_reply(app_scope, replayed, send, exc)
            return
        await self.reply_headers.send_json(app_scope, send, encode_json(reply), self.status_code)

    def _app_scope(self, scope: Scope) -> Scope:
        """``scope`` as the app's router hands it to the route: with the app, the route and its path."""
        return {  # type: ignore[return-value]
            **scope,
            "app": self.litestar,
            "litestar_app": self.litestar,
            "route_handler": self.route_handler,
            "path": ROUTE_PATH,
            "path_params": {},
            "path_template": ROUTE_PATH,
        }

    async def _authenticated(self, scope: Scope) -> AuthenticationResult | None:
        try:
            return await self.authentication.authenticate_request(ASGIConnection(scope))
        except Exception:  # any refusal is the app's to answer, with its own reply
            return None

    async def _error_reply(self, scope: Scope, receive: Receive, send: Send, exc: Exception) -> None:
        """As Litestar's exception middleware answers: the handler it picks, the route's type encoders."""
        request = self.litestar.request_class(scope=scope, receive=receive, send=send)
        handler = get_exception_handler(self.exception_handlers, exc)
        assert handler is not None, "checked at start-up: the app handles every exception"
        response = handler(request, exc)
        asgi_response = response.to_asgi_response(app=None, request=request, type_encoders=self.type_encoders)
        await asgi_response(scope, receive, self.reply_headers.sending(scope, send))


def purchase_route_handler(app: Litestar) -> HTTPRouteHandler:
    """The app's handler for ``POST`` :data:`PURCHASE_PATH` (its options and exception handlers apply here)."""
    for route in app.routes:
        if isinstance(route, HTTPRoute) and route.path == ROUTE_PATH:
            handler, _ = route.route_handler_map["POST"]
            return handler
    raise LookupError(f"the app has no POST {PURCHASE_PATH}")


def features_the_lane_skips(app: Litestar, route_handler: HTTPRouteHandler) -> list[str]:
    """What the app would do for the purchase that this layer does not: it must be nothing."""
    middleware = route_handler.resolve_middleware()
    skipped = {
        "middleware besides authentication": len(middleware) != 1 or _authentication_factory(middleware[0]) is None,
        "guards": bool(route_handler.resolve_guards()),
        "before_request hooks": route_handler.resolve_before_request() is not None,
        "after_request hooks": any(layer.after_request for layer in route_handler.ownership_layers),
        "after_response hooks": route_handler.resolve_after_response() is not None,
        "response headers": bool(route_handler.resolve_response_headers()),
        "response cookies": bool(route_handler.resolve_response_cookies()),
        "a status other than 200": route_handler.status_code != HTTP_200_OK,
        "a media type other than JSON": route_handler.media_type != MediaType.JSON,
        "a response class": route_handler.resolve_response_class() is not Response,
        "DTOs": route_handler.resolve_data_dto() is not None or route_handler.resolve_return_dto() is not None,
        "a background task": route_handler.background is not None,
        "after_exception hooks": bool(app.after_exception),
        "exceptions logged by the framework": app.logging_config is not None
        and getattr(app.logging_config, "log_exceptions", "never") != "never",
        "pdb on exceptions": app.pdb_on_exception,
        "CSRF": app.csrf_config is not None,
        "compression": app.compression_config is not None,
        "allowed hosts": bool(app.allowed_hosts),
    }
    return [name for name, present in skipped.items() if present]


def app_authentication(app: Litestar, route_handler: HTTPRouteHandler) -> AbstractAuthenticationMiddleware:
    """An instance of the authentication middleware on ``route_handler`` (never called as ASGI)."""
    for middleware in route_handler.resolve_middleware():
        if isinstance(middleware, DefineMiddleware) and _authentication_factory(middleware) is not None:
            instance = middleware(app)
            assert isinstance(instance, AbstractAuthenticationMiddleware)
            return instance
    raise LookupError(f"POST {PURCHASE_PATH} has no authentication middleware")


def _authentication_factory(middleware: Any) -> type[AbstractAuthenticationMiddleware] | None:
    factory = middleware.middleware if isinstance(middleware, DefineMiddleware) else None
    if isinstance(factory, type) and issubclass(factory, AbstractAuthenticationMiddleware):
        return factory
    return None


def _json_within(scope: Scope, max_body_bytes: int) -> bool:
    """A JSON body declared no bigger than the route's cap (a body without a length is measured as read)."""
    content_type = b""
    for name, value in scope["headers"]:
        if name == b"content-type":
            content_type = value
        elif name == b"content-length" and not (value.isdigit() and int(value) <= max_body_bytes):
            return False
    return content_type.partition(b";")[0].strip().lower() == JSON_MEDIA_TYPE


async def _read_body(receive: Receive, max_body_bytes: int) -> tuple[bytes | None, bool]:
    """The body read until its end or past the cap, and whether more follows. ``None`` on a disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        more_body = message.get("more_body", False)
        if not more_body or size > max_body_bytes:
            return b"".join(chunks), more_body


def _replaying(body: bytes, more_body: bool, receive: Receive) -> Receive:
    """``receive`` that first gives back what was read (then the rest, if reading stopped early)."""
    pending = True

    async def replayed() -> ReceiveMessage:
        nonlocal pending
        if pending:
            pending = False
            return HTTPRequestEvent(type="http.request", body=body, more_body=more_body)
        return await receive()

    return replayed


def _decoded(body: bytes) -> PurchaseRequest | None:
    try:
        return _decode_purchase(body)
    except msgspec.DecodeError:
        return None


def with_purchase_lane(app: ASGIApp, litestar: Litestar, settings: Settings) -> ASGIApp:
    """``app`` behind this layer in production; as it is in embedded mode."""
    if settings.redis_url is None:
        return app
    return PurchaseLane(app, litestar)
