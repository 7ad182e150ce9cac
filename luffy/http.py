"""HTTP-level protections every response and request body gets, whatever the route.

- The JSON body of a request is decoded in C by msgspec, which gives up on deep nesting with a
  ``RecursionError``: that is a client's mistake (or an attack) and answers 400, never a 500 with
  a traceback in the log.
- A body that is not UTF-8 is told apart from malformed JSON by exception type, not by msgspec's
  wording (before 0.23 it raised ``UnicodeDecodeError`` itself; since, a ``DecodeError`` whose text
  says so): once decoding fails, Python's own codec checks the body, and its ``UnicodeDecodeError``
  reaches ``responses.undecodable_body_handler``.
- Every response says ``X-Content-Type-Options: nosniff`` (a browser never guesses a JSON or media
  reply into HTML), and ``Strict-Transport-Security`` when the API is served over https.
- A reply sent before the framework (``luffy.cached_replies``, ``luffy.purchase_lane``) goes
  through :class:`AppReplyHeaders`: the app's own ``before_send`` hooks (these security headers)
  on each message, and the CORS headers Litestar's CORS middleware adds for the app's
  ``CORSConfig`` (that middleware is not public API, so :func:`cors_headers` spells its rule out).
  Such a layer answers only what the app's router takes as it comes (:func:`taken_as_it_comes`).
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request
from litestar._asgi.utils import is_valid_host  # the router's own Host check (private, pinned by the lock)
from litestar.config.cors import CORSConfig
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ClientException, SerializationException
from litestar.types import BeforeMessageSendHookHandler, Message, Scope, Send

from luffy.settings import Settings

# The API's bodies are a few dozen bytes (a mobile and a code, a goods id); anything near this size
# is not from the front end, and a small cap keeps a flood of large bodies cheap to refuse.
API_MAX_BODY_BYTES = 4_096
HSTS = "max-age=31536000"


class LuffyRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException(detail="请求体嵌套过深") from None
        except SerializationException:
            (await self.body()).decode("utf-8")
            raise


def security_headers(settings: Settings) -> BeforeMessageSendHookHandler:
    https = settings.backend_url.startswith("https://")

    async def add_headers(message: Message, _scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["X-Content-Type-Options"] = "nosniff"
        if https:
            headers["Strict-Transport-Security"] = HSTS

    return add_headers


JSON_HEADERS = ((b"content-type", b"application/json"),)


def taken_as_it_comes(scope: Scope) -> bool:
    """Whether the app's router takes this request as it comes: no root path to strip, and no
    ``Host`` header it refuses (Litestar's own check, which answers 400 before any route)."""
    if scope.get("root_path"):
        return False
    host = next((value for name, value in scope["headers"] if name == b"host"), None)
    return host is None or is_valid_host(host)


class AppReplyHeaders:
    """What the app does to a reply's messages, for a reply sent without it (see the module docstring)."""

    def __init__(self, app: Litestar) -> None:
        self.cors = app.cors_config
        self.before_send = app.before_send

    def sending(self, scope: Scope, send: Send) -> Send:
        """``send`` as the app's: CORS headers on the response start, then the app's ``before_send`` hooks."""

        async def send_as_the_app(message: Message) -> None:
            if message["type"] == "http.response.start" and self.cors is not None:
                origin, has_cookie = _origin_and_cookie(scope)
                if origin:
                    message["headers"] = [*message["headers"], *cors_headers(self.cors, origin, has_cookie)]
            for hook in self.before_send:
                await hook(message, scope)
            await send(message)

        return send_as_the_app

    async def send_json(self, scope: Scope, send: Send, body: bytes, status: int = 200) -> None:
        """A reply of JSON ``body``, as the app sends one."""
        send = self.sending(scope, send)
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _origin_and_cookie(scope: Scope) -> tuple[str | None, bool]:
    """The first ``Origin`` (as Litestar reads it) and whether any cookie came."""
    origin = None
    has_cookie = False
    for name, value in scope["headers"]:
        if name == b"origin" and origin is None:
            origin = value.decode("latin-1")
        elif name == b"cookie":
            has_cookie = True
    return origin, has_cookie


def cors_headers(config: CORSConfig, origin: str, has_cookie: bool) -> list[tuple[bytes, bytes]]:
    """The headers Litestar's CORS middleware adds to a reply to a simple request from ``origin``."""
    headers = dict(config.simple_headers)
    if (config.is_allow_all_origins and has_cookie) or (
        not config.is_allow_all_origins and config.is_origin_allowed(origin=origin)
    ):
        headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
    headers["Access-Control-Allow-Headers"] = ", ".join(sorted(set(config.allow_headers)))
    headers["Access-Control-Allow-Methods"] = ", ".join(sorted(set(config.allow_methods)))
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
