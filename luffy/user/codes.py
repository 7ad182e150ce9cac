"""Where SMS verification codes live until they are used: the cache key ``send_sms_code_<mobile>``.

The value is a small JSON record: the code, the id of the send task that delivers it, and the
wrong tries so far. In production every change is one Lua script on Redis, so two API workers
can never both accept one code, nor lose a wrong try. Embedded mode keeps the same record in
the cache store, changed under a lock of this process.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import time
from typing import Protocol

import msgspec
from litestar.stores.base import Store
from redis.asyncio import Redis

CODE_KEY_PREFIX = "send_sms_code_"


def code_key(mobile: str) -> str:
    return CODE_KEY_PREFIX + mobile


class CodeRecord(msgspec.Struct, kw_only=True):
    code: str
    send_id: str
    wrong: int = 0
    expires_at: int


class Verdict(enum.Enum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    # The wrong try that used up the allowance: the code is gone.
    VOIDED = "voided"
    MISSING = "missing"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CodeRecord)


def new_record(code: str, send_id: str, ttl_seconds: int) -> bytes:
    """The encoded record of a fresh code, expiring ``ttl_seconds`` from now."""
    return _encoder.encode(CodeRecord(code=code, send_id=send_id, expires_at=int(time.time()) + ttl_seconds))


def decode_record(raw: bytes | str | None) -> CodeRecord | None:
    if raw is None:
        return None
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return None


class CodeStore(Protocol):
    async def put(self, mobile: str, code: str, send_id: str, ttl_seconds: int) -> None: ...

    async def discard(self, mobile: str, send_id: str) -> None:
        """Remove the code only if it is still the one ``send_id`` delivers (compensation)."""
        ...

    async def verify(self, mobile: str, code: str, max_wrong_tries: int) -> Verdict:
        """Accept and burn the code, or count a wrong try (voiding the code at the limit)."""
        ...


async def code_for_send(store: Store, mobile: str, send_id: str) -> str | None:
    """The code a send task must deliver, or ``None`` when it expired, was used or was replaced.

    Reads through the cache ``Store`` so the worker needs nothing but its cache.
    """
    record = decode_record(await store.get(code_key(mobile)))
    if record is None or record.send_id != send_id:
        return None
    return record.code


_VERIFY = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 'missing' end
local ok, record = pcall(cjson.decode, raw)
if not ok or type(record) ~= 'table' then
  redis.call('DEL', KEYS[1])
  return 'missing'
end
if record['code'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 'accepted'
end
record['wrong'] = (tonumber(record['wrong']) or 0) + 1
if record['wrong'] >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 'voided'
end
redis.call('SET', KEYS[1], cjson.encode(record), 'KEEPTTL')
return 'wrong'
"""

_DISCARD = """
local raw = redis.call('GET', KEYS[1])
if not raw then return 0 end
local ok, record = pcall(cjson.decode, raw)
if ok and type(record) == 'table' and record['send_id'] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class RedisCodeStore:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._verify = redis.register_script(_VERIFY)
        self._discard = redis.register_script(_DISCARD)

    async def put(self, mobile: str, code: str, send_id: str, ttl_seconds: int) -> None:
        await self.redis.set(code_key(mobile), new_record(code, send_id, ttl_seconds), ex=ttl_seconds)

    async def discard(self, mobile: str, send_id: str) -> None:
        await self._discard(keys=[code_key(mobile)], args=[send_id])

    async def verify(self, mobile: str, code: str, max_wrong_tries: int) -> Verdict:
        verdict = await self._verify(keys=[code_key(mobile)], args=[code, max_wrong_tries])
        return Verdict(verdict.decode() if isinstance(verdict, bytes) else verdict)


class StoreCodeStore:
    """Embedded mode: the record in the cache store; one process changes it at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = asyncio.Lock()

    async def put(self, mobile: str, code: str, send_id: str, ttl_seconds: int) -> None:
        record = new_record(code, send_id, ttl_seconds)
        async with self._lock:
            await self.store.set(code_key(mobile), record, expires_in=ttl_seconds)

    async def discard(self, mobile: str, send_id: str) -> None:
        async with self._lock:
            record = decode_record(await self.store.get(code_key(mobile)))
            if record is not None and record.send_id == send_id:
                await self.store.delete(code_key(mobile))

    async def verify(self, mobile: str, code: str, max_wrong_tries: int) -> Verdict:
        key = code_key(mobile)
        async with self._lock:
            record = decode_record(await self.store.get(key))
            remaining = record.expires_at - int(time.time()) if record else 0
            if record is None or remaining <= 0:
                await self.store.delete(key)
                return Verdict.MISSING
            if hmac.compare_digest(record.code, code):
                await self.store.delete(key)
                return Verdict.ACCEPTED
            record.wrong += 1
            if record.wrong >= max_wrong_tries:
                await self.store.delete(key)
                return Verdict.VOIDED
            await self.store.set(key, _encoder.encode(record), expires_in=remaining)
            return Verdict.WRONG
