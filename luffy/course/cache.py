"""The catalogue's replies, cached as the exact bytes sent (production only).

Categories, a course's detail, a course's chapters and the course pages change only when an
operator writes the catalogue, while they are read on every page view; so their encoded replies are
kept in Redis: the hash ``luffy:catalogue:<shape>``, fields ``categories``, ``course:<id>`` and
``chapters:<id>``, and the hash ``luffy:catalogue:<shape>:pages``, one field per request target of a page
(:func:`page_field` says which are kept; the hash is bounded by :data:`MAX_CACHED_PAGES`). A hit is
one round trip (a Lua script: the field, or on a miss the current epoch; or a plain HGET from
``luffy.cached_replies``) and no SQL; the reply goes out as the cached bytes, never decoded.

Correctness:

- Every catalogue write through Luffy (the admin's five catalogue views, ``luffy seed``) calls
  :meth:`CatalogueCache.invalidate` after its commit: the epoch counter ``luffy:catalogue:epoch``
  goes up and both hashes are deleted, in one script. Any write clears everything: writes are rare,
  and no reply can then mix old and new rows. (Nothing else writes these tables: orders read
  courses, ``luffy db adopt`` changes no row.)
- A miss reads the database and stores the reply only if the epoch is still the one it saw before
  the read, so a read that raced a write never puts the pre-write reply back after the write
  cleared it.
- The hash expires ``LUFFY_CATALOGUE_CACHE_SECONDS`` after its first field was stored (the expiry
  is set only when it has none), so no reply is older than that.
- A direct database edit, a migration that rewrites catalogue rows, or a writer that died between
  its commit and its invalidation is not seen: ``luffy catalogue clear-cache`` shows it at once,
  else the expiry does.
- An unknown or invisible course is not cached: ids that were never courses cannot grow the hash,
  which holds at most the categories and two replies per visible course.
- The replies hold absolute media URLs (``LUFFY_BACKEND_URL``): every API process sharing a Redis
  serves the same site, so they are the same in each.
- Redis unreachable: the reply comes from the database, and the cache is skipped for a few seconds
  with one warning (:class:`luffy.cache.CacheOutage`), never a 503.

Embedded mode (SQLite on the same machine, no Redis) has no catalogue cache:
:class:`NoCatalogueCache` reads the database every time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Protocol

import msgspec
from redis.asyncio import Redis

from luffy.cache import CACHE_ERRORS, CacheOutage
from luffy.course.schemas import CategoryList, ChapterItem, CourseDetail, CoursePage
from luffy.settings import Settings


def _shape_of_replies() -> str:
    """A digest of the cached replies' JSON schemas: a release that changes a reply's shape gets new keys.

    Without it, processes of the new release would serve the bytes the old one encoded until the
    expiry (and, during a rolling deploy, each would fill the cache for the other).
    """
    schemas = msgspec.json.schema_components([CategoryList, CourseDetail, list[ChapterItem], CoursePage])
    return hashlib.sha256(msgspec.json.encode(schemas, order="sorted")).hexdigest()[:12]


_SHAPE = _shape_of_replies()
CATALOGUE_KEY = f"luffy:catalogue:{_SHAPE}"
PAGES_KEY = f"luffy:catalogue:{_SHAPE}:pages"
# Shared by every shape: a write clears the current release's replies and stops any fill in flight.
EPOCH_KEY = "luffy:catalogue:epoch"
CATEGORIES_FIELD = "categories"
PAGE_FIELD_PREFIX = "page:"
# Course pages are cached per request target, which a client can vary at will (parameter order,
# page sizes that clamp alike): their hash holds at most this many, a few tens of MB. A fill that
# finds it full empties it first, so a client asking for odd pages can only make the hot ones be
# read once more from the database each time it has asked for this many others.
MAX_CACHED_PAGES = 1_000
# Pages past this are left to the database: deep pages are rare, and each would be a field.
MAX_CACHED_PAGE_NUMBER = 50
PAGE_PARAMETERS = frozenset({"course_category", "ordering", "page", "page_size", "size"})
# ASCII digits only (str.isdigit also takes "²", which int() refuses), and short: int() never fails on it.
_PAGE_NUMBER = re.compile(r"[1-9][0-9]?")

Read = Callable[[], Awaitable[bytes | None]]

# The cached reply (a string), or on a miss the epoch (an integer) that a fill must still find.
_GET = """
local reply = redis.call('HGET', KEYS[1], ARGV[1])
if reply then return reply end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""
_FILL = """
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
if tonumber(ARGV[5]) > 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[5]) then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
return 1
"""
_INVALIDATE = """
redis.call('DEL', KEYS[1], KEYS[3])
return redis.call('INCR', KEYS[2])
"""


def course_field(course_id: int) -> str:
    return f"course:{course_id}"


def chapters_field(course_id: int) -> str:
    return f"chapters:{course_id}"


def page_field(target: str, query: str) -> str | None:
    """The field of a course page's reply, or ``None`` when that page is not to be cached.

    The reply's ``next``/``previous`` links repeat the request's path and query, so the field is
    the request target as sent. Only the list's own parameters, each once, without a search (a
    search is any string) and within the first :data:`MAX_CACHED_PAGE_NUMBER` pages.
    """
    names = []
    for pair in query.split("&") if query else ():
        name, _, value = pair.partition("=")
        if name not in PAGE_PARAMETERS:
            return None
        if name == "page" and not (_PAGE_NUMBER.fullmatch(value) and int(value) <= MAX_CACHED_PAGE_NUMBER):
            return None
        names.append(name)
    if len(names) != len(set(names)):
        return None
    return f"{PAGE_FIELD_PREFIX}{target}?{query}"


def _hash_of(field: str) -> tuple[str, int]:
    """The hash holding ``field`` and the most fields a fill may grow it to (0: no bound)."""
    if field.startswith(PAGE_FIELD_PREFIX):
        return PAGES_KEY, MAX_CACHED_PAGES
    return CATALOGUE_KEY, 0


async def cached(redis: Redis, field: str) -> bytes | None:
    """The reply cached under ``field``, if any: one round trip, nothing filled."""
    found = await redis.hget(_hash_of(field)[0], field)
    return found if isinstance(found, bytes) else None


class CatalogueCache(Protocol):
    async def reply(self, field: str, read: Read, *, keep: Callable[[], bool] | None = None) -> bytes | None:
        """The reply cached under ``field``, else ``read()``'s: cached when it is not ``None`` and ``keep()`` agrees."""
        ...

    async def invalidate(self) -> None:
        """Forget every cached reply; call it after a catalogue write has committed.

        Raises one of ``luffy.cache.CACHE_ERRORS`` when Redis is unreachable: the caller says so,
        and the expiry bounds how long the old replies are served.
        """
        ...


class NoCatalogueCache:
    """Embedded mode: every read goes to the (local) database, so there is nothing to invalidate."""

    async def reply(self, field: str, read: Read, *, keep: Callable[[], bool] | None = None) -> bytes | None:
        return await read()

    async def invalidate(self) -> None:
        return None


class RedisCatalogueCache:
    def __init__(self, redis: Redis, ttl_seconds: int, outage: CacheOutage | None = None) -> None:
        self.ttl_seconds = ttl_seconds
        self.outage = outage or CacheOutage("catalogue cache")
        self._get = redis.register_script(_GET)
        self._fill = redis.register_script(_FILL)
        self._invalidate = redis.register_script(_INVALIDATE)

    async def reply(self, field: str, read: Read, *, keep: Callable[[], bool] | None = None) -> bytes | None:
        if self.outage.ongoing:
            return await read()
        key, most_fields = _hash_of(field)
        try:
            found = await self._get(keys=[key, EPOCH_KEY], args=[field])
        except CACHE_ERRORS as exc:
            self.outage.record(exc)
            return await read()
        if isinstance(found, bytes):
            return found
        body = await read()
        if body is not None and (keep is None or keep()):
            try:
                await self._fill(keys=[key, EPOCH_KEY], args=[found, field, body, self.ttl_seconds, most_fields])
            except CACHE_ERRORS as exc:
                self.outage.record(exc)
        return body

    async def invalidate(self) -> None:
        await self._invalidate(keys=[CATALOGUE_KEY, EPOCH_KEY, PAGES_KEY])


def make_catalogue_cache(redis: Redis | None, settings: Settings, outage: CacheOutage | None = None) -> CatalogueCache:
    """Redis's when there is one (production), else none (embedded)."""
    if redis is None:
        return NoCatalogueCache()
    return RedisCatalogueCache(redis, settings.catalogue_cache_seconds, outage)
