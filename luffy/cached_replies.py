"""Cached replies, answered before the framework: the hottest GETs served from their encoded replies in Redis.

Why it exists: a cache hit is one Redis round trip and a few hundred bytes, yet going through the
framework (routing, middleware, dependency injection, the response pipeline) cost three times the
work of the bare-ASGI floor for it (``bench/results.md``). This layer sits outside the Litestar app
(``luffy.asgi``) and takes a request only when it can answer exactly as the app would:

- a GET of one of the cached replies: the banner list, the categories, a course, its chapters
  (``course=<id>``) and the course pages that ``luffy.course.cache`` keeps, each spelled as the
  app would cache it (:func:`cached_reply_lookup`);
- whose reply is in the cache. Otherwise (a miss, another route or method, Redis down, embedded
  mode without Redis) the request goes to the app unchanged, which reads the database and fills
  the cache. The app stays the single place that decides what a reply is; this layer only replays it.

Its headers are the app's: content type and length, then the security and CORS headers the app
adds (``luffy.http.AppReplyHeaders``).
``tests/test_cached_replies.py`` holds replies and headers to the app's own, byte for byte.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable

from litestar import Litestar
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis

from luffy.app import API_PREFIX
from luffy.cache import CACHE_ERRORS, CacheOutage
from luffy.course import cache as catalogue_cache
from luffy.home.controllers import cached_banner_reply
from luffy.http import AppReplyHeaders, taken_as_it_comes
from luffy.responses import requested_path
from luffy.settings import Settings

logger = logging.getLogger("luffy.cached_replies")

BANNER_PATH = f"{API_PREFIX}/home/banner/"
CATEGORIES_PATH = f"{API_PREFIX}/course/category/"
COURSE_LIST_PATHS = frozenset(f"{API_PREFIX}/course/{name}/" for name in ("actual", "list", "search"))
CHAPTERS_PATH = f"{API_PREFIX}/course/chapter/"
# Ids as the app writes them (no sign, no leading zero, at most MAX_ID's 16 digits); any other
# spelling goes to the app, which parses it.
COURSE_DETAIL = re.compile(rf"{API_PREFIX}/course/(?:actual|list)/([1-9][0-9]{{0,15}})/")
CHAPTERS_QUERY = re.compile(r"course=([1-9][0-9]{0,15})")


def cached_reply_lookup(redis: Redis, scope: Scope) -> Awaitable[bytes | None] | None:
    """The lookup of a GET's cached reply, or ``None`` when that request is left to the app."""
    path = scope["path"]
    query = scope["query_string"].decode("latin-1")
    if path in COURSE_LIST_PATHS:
        field = catalogue_cache.page_field(requested_path(scope), query)
        return None if field is None else catalogue_cache.cached(redis, field)
    if not query:
        if path == BANNER_PATH:
            return cached_banner_reply(redis)
        if path == CATEGORIES_PATH:
            return catalogue_cache.cached(redis, catalogue_cache.CATEGORIES_FIELD)
        if match := COURSE_DETAIL.fullmatch(path):
            return catalogue_cache.cached(redis, catalogue_cache.course_field(int(match.group(1))))
    if path == CHAPTERS_PATH and (match := CHAPTERS_QUERY.fullmatch(query)):
        return catalogue_cache.cached(redis, catalogue_cache.chapters_field(int(match.group(1))))
    return None


class CachedReplies:
    """An ASGI app: the replies :func:`cached_reply_lookup` finds in Redis, everything else to ``app``.

    It shares the app's cache reader (``state.cache_reader``: a read slower than 0.25 s fails) and
    its ``state.cache_outage``, so a slow or failing Redis is skipped here and in the app alike.
    """

    def __init__(self, app: ASGIApp, litestar: Litestar) -> None:
        self.app = app
        self.litestar = litestar
        self.reply_headers = AppReplyHeaders(litestar)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and taken_as_it_comes(scope):  # type: ignore[typeddict-item]
            body = await self._cached(scope)
            if body is not None:
                await self.reply_headers.send_json(scope, send, body)
                return
        await self.app(scope, receive, send)

    async def _cached(self, scope: Scope) -> bytes | None:
        state = self.litestar.state
        redis: Redis | None = state.get("cache_reader")
        outage: CacheOutage = state.cache_outage
        if redis is None or outage.ongoing:
            return None
        try:
            lookup = cached_reply_lookup(redis, scope)
            return None if lookup is None else await lookup
        except CACHE_ERRORS as exc:
            outage.record(exc)
        except Exception:
            # A fault of this layer must never cost the request: the app answers it as it would anyway.
            logger.exception("cached reply lookup failed; the app answers")
        return None


def with_cached_replies(app: ASGIApp, litestar: Litestar, settings: Settings) -> ASGIApp:
    """``app`` (``litestar`` or a layer around it) behind this layer in production; as it is in embedded
    mode (no Redis, nothing to replay)."""
    if settings.redis_url is None:
        return app
    return CachedReplies(app, litestar)
