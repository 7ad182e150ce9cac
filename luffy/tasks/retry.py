"""TaskIQ's ``SmartRetryMiddleware`` with a backoff that works without a schedule source.

Without a schedule source, ``SmartRetryMiddleware`` re-sends a failed task at once: the delay it
computes only becomes a ``delay`` label that no broker reads. This subclass waits out that delay
before re-sending. The wait happens before the failed message is acknowledged, so a worker
killed while waiting leaves the message to be redelivered rather than losing the retry.
"""

from __future__ import annotations

import asyncio
from typing import Any

from taskiq import SmartRetryMiddleware
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage


class BackoffRetryMiddleware(SmartRetryMiddleware):
    async def on_send(self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float) -> None:
        if self.schedule_source is not None:
            await super().on_send(kicker, message, delay)
            return
        await asyncio.sleep(delay)
        # The message keeps its own ``delay`` label: the base of the next backoff step.
        await kicker.kiq(*message.args, **message.kwargs)
