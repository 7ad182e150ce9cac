"""The production fast path: flash-sale stock and buyers in Redis, changed only by Lua scripts.

Per goods ``G`` (keys under ``luffy:seckill:``):

- ``goods:G``    hash: name, price, start, end (epoch seconds, ``""`` = open-ended), stock (units
                 that can still be reserved)
- ``buyers:G``   set: users holding a reservation or an order
- ``pending:G``  hash: task id -> ``user:admitted_at``, reservations whose order task has not settled
- ``names``      hash: goods name -> id;  ``task:T``: the user who owns task ``T`` (expires)
- ``loaded``     set once every goods on sale has been copied from the database. Redis that
                 restarted empty (no persistence) or failed over to a lagging replica lacks it:
                 admission then answers ``lost`` instead of taking an empty Redis for "no such
                 goods" or "sold out", until the state is rebuilt (``luffy.seckill.services``).

Admission also reads the users whose tokens are revoked (``luffy.user.revocation.REVOKED_KEY``).

While no task is in flight, ``stock`` equals the database's stock; in general
``stock + len(pending) == database stock`` and ``buyers == order users | pending users``.
Each script runs atomically, so any number of API workers can admit buyers concurrently
without overselling or admitting one user twice. (The scripts build key names from the
goods id, so they need a single Redis server, not a cluster.)
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

import msgspec
from redis.asyncio import Redis
from redis.asyncio.lock import Lock

from luffy.user.revocation import REVOKED_KEY

PREFIX = "luffy:seckill:"
NAMES_KEY = PREFIX + "names"
LOADED_KEY = PREFIX + "loaded"
REBUILD_LOCK_KEY = PREFIX + "rebuilding"
BUYERS_PER_CALL = 1_000

QUEUED = "queued"
UNKNOWN = "unknown"
NOT_STARTED = "not_started"
ENDED = "ended"
# A reservation whose task failed or was never enqueued: the unit goes back, the user may try again.
ABANDONED = "abandoned"
# The buyer's tokens are revoked (a disabled or deleted user): refused before anything is taken.
REVOKED = "revoked"
# Asked for "the goods on sale now" (neither name nor id) when none is.
NONE_ON_SALE = "none_on_sale"
# Redis has lost the sale's state (see ``loaded``); nobody is admitted until it is rebuilt.
LOST = "lost"

_ADMIT = """
local prefix, by, ref, user, task_id = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, owner_ttl = tonumber(ARGV[6]), ARGV[7]
if redis.call('SISMEMBER', KEYS[2], user) == 1 then return {'revoked', ''} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {'lost', ''} end
local id = ref
if by == 'name' then
  id = redis.call('HGET', KEYS[1], ref)
  if not id then return {'unknown', ''} end
elseif by == 'current' then
  -- the goods on sale now whose sale started last (then the highest id)
  local best_start = nil
  id = nil
  for _, candidate in ipairs(redis.call('HVALS', KEYS[1])) do
    local window = redis.call('HMGET', prefix .. 'goods:' .. candidate, 'start', 'end')
    local start = tonumber(window[1])
    if start and start <= now and (window[2] == '' or now <= tonumber(window[2])) then
      if not id or start > best_start or (start == best_start and tonumber(candidate) > tonumber(id)) then
        id, best_start = candidate, start
      end
    end
  end
  if not id then return {'none_on_sale', ''} end
end
local goods = prefix .. 'goods:' .. id
local info = redis.call('HMGET', goods, 'start', 'end', 'stock')
if not info[1] then return {'unknown', id} end
if now < tonumber(info[1]) then return {'not_started', id} end
if info[2] ~= '' and now > tonumber(info[2]) then return {'ended', id} end
local buyers = prefix .. 'buyers:' .. id
-- Run twice for one task (a client retry after a lost reply): the reservation already stands.
if redis.call('HEXISTS', prefix .. 'pending:' .. id, task_id) == 1 then return {'queued', id} end
if redis.call('SISMEMBER', buyers, user) == 1 then return {'duplicate', id} end
if tonumber(info[3]) <= 0 then return {'sold_out', id} end
-- The order task's stream entry, first: should adding it fail, nothing has been taken.
if ARGV[8] == '1' then
  local data = ARGV[11] .. id .. ARGV[12]
  if ARGV[9] == '' then
    redis.call('XADD', KEYS[4], '*', 'data', data)
  else
    redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[10], ARGV[9], '*', 'data', data)
  end
end
redis.call('HINCRBY', goods, 'stock', -1)
redis.call('SADD', buyers, user)
redis.call('HSET', prefix .. 'pending:' .. id, task_id, user .. ':' .. ARGV[6])
redis.call('SET', prefix .. 'task:' .. task_id, user, 'EX', owner_ttl)
return {'queued', id}
"""

# Settling twice (a redelivered task) is a no-op: only the first call finds the pending entry.
_SETTLE = """
local prefix, id, task_id, outcome = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pending = prefix .. 'pending:' .. id
local entry = redis.call('HGET', pending, task_id)
if not entry then return 0 end
redis.call('HDEL', pending, task_id)
if outcome == 'ordered' then return 1 end
local user = string.match(entry, '^[^:]+')
local goods = prefix .. 'goods:' .. id
-- sold_out: the database had no unit for this reservation, so there is none to give back.
if outcome ~= 'sold_out' and redis.call('EXISTS', goods) == 1 then
  redis.call('HINCRBY', goods, 'stock', 1)
end
-- duplicate: the user does hold an order, so stays a buyer.
if outcome ~= 'duplicate' then
  redis.call('SREM', prefix .. 'buyers:' .. id, user)
end
return 1
"""

# Rebuild one goods from the database's view, keeping the reservations still in flight.
_SYNC = """
local prefix, id, name = ARGV[1], ARGV[2], ARGV[3]
local goods = prefix .. 'goods:' .. id
if ARGV[8] == '1' and redis.call('EXISTS', goods) == 1 then return -1 end
local old_name = redis.call('HGET', goods, 'name')
if old_name and old_name ~= name and redis.call('HGET', KEYS[1], old_name) == id then
  redis.call('HDEL', KEYS[1], old_name)
end
local buyers = prefix .. 'buyers:' .. id
local pending = prefix .. 'pending:' .. id
local stale_before = tonumber(ARGV[9])
redis.call('DEL', buyers)
local live = 0
local entries = redis.call('HGETALL', pending)
for i = 1, #entries, 2 do
  local user, admitted = string.match(entries[i + 1], '^([^:]+):(.+)$')
  if tonumber(admitted) < stale_before then
    redis.call('HDEL', pending, entries[i])
  else
    live = live + 1
    redis.call('SADD', buyers, user)
  end
end
for i = 10, #ARGV, 1000 do
  redis.call('SADD', buyers, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local stock = math.max(tonumber(ARGV[7]) - live, 0)
redis.call('HSET', goods, 'name', name, 'price', ARGV[4], 'start', ARGV[5], 'end', ARGV[6], 'stock', stock)
redis.call('HSET', KEYS[1], name, id)
return stock
"""

_REMOVE = """
local prefix, id = ARGV[1], ARGV[2]
local goods = prefix .. 'goods:' .. id
local name = redis.call('HGET', goods, 'name')
if name and redis.call('HGET', KEYS[1], name) == id then redis.call('HDEL', KEYS[1], name) end
return redis.call('DEL', goods, prefix .. 'buyers:' .. id, prefix .. 'pending:' .. id)
"""


class Admission(msgspec.Struct, frozen=True):
    """The gate's answer: ``queued`` (a unit is held for the task) or why not.

    ``enqueued``: the order task's message was added to its stream by the admission itself.
    """

    status: str
    goods_id: int | None
    enqueued: bool = False


class TaskEntry(msgspec.Struct, frozen=True):
    """The order task's stream entry, which admission adds in the same script when it admits the buyer.

    Its ``data`` is ``head + goods id + tail`` (the goods is known only once the script has found it).
    """

    stream: str
    head: bytes
    tail: bytes
    maxlen: int | None
    approximate: bool


class GoodsState(msgspec.Struct, frozen=True):
    """The goods id, name, price, window and buyers as the database has them, for Redis."""

    id: int
    name: str
    price: Decimal
    stock: int
    start: float
    end: float | None
    buyers: list[int]


class RedisGoods(msgspec.Struct, frozen=True):
    stock: int
    pending: int
    buyers: int


def owner_key(task_id: str) -> str:
    return f"{PREFIX}task:{task_id}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisReservations:
    """Stock, buyers and task owners in Redis; every change is one atomic script."""

    def __init__(self, redis: Redis, *, owner_ttl_seconds: int) -> None:
        self.redis = redis
        self.owner_ttl_seconds = owner_ttl_seconds
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)
        self._sync = redis.register_script(_SYNC)
        self._remove = redis.register_script(_REMOVE)

    async def admit(
        self,
        *,
        name: str | None,
        goods_id: int | None,
        user_id: int,
        task_id: str,
        now: float,
        entry: TaskEntry | None = None,
    ) -> Admission:
        """Take one unit for ``user_id`` if any is left and they hold none, and record the task's owner.

        The goods is found by id, else by name, else (both ``None``) it is the one on sale now that
        started last. A user in the revocation list is refused first, in the same script. With an
        ``entry``, the order task is enqueued by the same script: one round trip, and a unit is
        never held for a task that was not sent.
        """
        if goods_id is not None:
            by, ref = "id", str(goods_id)
        elif name is not None:
            by, ref = "name", name
        else:
            by, ref = "current", ""
        keys = [NAMES_KEY, REVOKED_KEY, LOADED_KEY]
        args: list[str | int | bytes] = [PREFIX, by, ref, user_id, task_id, repr(now), self.owner_ttl_seconds]
        if entry is not None:
            keys.append(entry.stream)
            maxlen = "" if entry.maxlen is None else str(entry.maxlen)
            args += ["1", maxlen, "~" if entry.approximate else "=", entry.head, entry.tail]
        status, found = await self._admit(keys=keys, args=args)
        found_id = _text(found)
        status = _text(status)
        return Admission(
            status=status,
            goods_id=int(found_id) if found_id else None,
            enqueued=entry is not None and status == QUEUED,
        )

    async def settle(self, goods_id: int, task_id: str, outcome: str) -> None:
        """Close the task's reservation: kept as an order, or given back (see ``_SETTLE``)."""
        await self._settle(keys=[NAMES_KEY], args=[PREFIX, goods_id, task_id, outcome])

    async def owner(self, task_id: str) -> int | None:
        value = await self.redis.get(owner_key(task_id))
        return int(value) if value is not None else None

    async def sync(self, goods: GoodsState, *, only_if_missing: bool = False, stale_before: float = 0.0) -> int | None:
        """Write ``goods`` as the database has it; reservations admitted before ``stale_before`` are dropped.

        Returns the stock now reservable in Redis, or ``None`` when ``only_if_missing`` found it there.
        """
        args: list[str | int] = [
            PREFIX,
            goods.id,
            goods.name,
            f"{goods.price:.2f}",
            repr(goods.start),
            "" if goods.end is None else repr(goods.end),
            goods.stock,
            "1" if only_if_missing else "0",
            repr(stale_before),
            *goods.buyers,
        ]
        stock = await self._sync(keys=[NAMES_KEY], args=args)
        return None if stock == -1 else int(stock)

    async def mark_loaded(self, now: float) -> None:
        """Every goods on sale is in Redis now: admissions may go ahead."""
        await self.redis.set(LOADED_KEY, repr(now))

    async def is_loaded(self) -> bool:
        return bool(await self.redis.exists(LOADED_KEY))

    def rebuild_lock(self, timeout_seconds: float) -> Lock:
        """The lock one process holds while it rebuilds lost state (redis-py's, expiring if that process dies)."""
        return self.redis.lock(REBUILD_LOCK_KEY, timeout=timeout_seconds, blocking=False)

    async def remove(self, goods_id: int) -> None:
        await self._remove(keys=[NAMES_KEY], args=[PREFIX, goods_id])

    async def goods_ids(self) -> list[int]:
        ids = []
        async for key in self.redis.scan_iter(match=f"{PREFIX}goods:*", count=500):
            suffix = _text(key).rsplit(":", 1)[1]
            if suffix.isdigit():
                ids.append(int(suffix))
        return sorted(ids)

    async def state(self, goods_ids: Iterable[int]) -> dict[int, RedisGoods]:
        """Each goods' reservable stock, reservations in flight and buyers, as Redis has them."""
        ids = list(goods_ids)
        async with self.redis.pipeline(transaction=False) as pipe:
            for goods_id in ids:
                pipe.hget(f"{PREFIX}goods:{goods_id}", "stock")
                pipe.hlen(f"{PREFIX}pending:{goods_id}")
                pipe.scard(f"{PREFIX}buyers:{goods_id}")
            replies = await pipe.execute()
        states = {}
        for index, goods_id in enumerate(ids):
            stock, pending, buyers = replies[3 * index : 3 * index + 3]
            if stock is not None:
                states[goods_id] = RedisGoods(stock=int(stock), pending=int(pending), buyers=int(buyers))
        return states
