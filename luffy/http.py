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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders
from litestar.exceptions import ClientException, SerializationException
from litestar.types import Message, Scope

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


def security_headers(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    https = settings.backend_url.startswith("https://")

    async def add_headers(message: Message, _scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["X-Content-Type-Options"] = "nosniff"
        if https:
            headers["Strict-Transport-Security"] = HSTS

    return add_headers
