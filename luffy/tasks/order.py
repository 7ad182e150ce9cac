"""``close_expired_orders``: the scheduled sweep that times out unpaid orders (rules in ``luffy.order.services``)."""

from __future__ import annotations

import datetime

from luffy.order.services import close_expired_orders as close_expired
from luffy.tasks.broker import default_broker
from luffy.tasks.deps import SessionDep, SettingsDep


@default_broker.task(task_name="close_expired_orders")
async def close_expired_orders(session: SessionDep, settings: SettingsDep) -> list[str]:
    """Mark 超时取消 every order unpaid for longer than ``LUFFY_ORDER_TIMEOUT_SECONDS``; returns their numbers."""
    return await close_expired(
        session, timeout_seconds=settings.order_timeout_seconds, now=datetime.datetime.now(datetime.UTC)
    )
