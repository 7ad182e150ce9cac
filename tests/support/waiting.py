"""Waiting on a condition instead of the clock: a test goes on as soon as what it needs is true.

A fixed ``sleep`` is either too short on a loaded machine (a flaky test) or longer than needed (a
slow one). The sync twin for process tests is ``tests.support.processes.wait_until``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


async def eventually(
    check: Callable[[], Awaitable[T]], *, within: float = 20, every: float = 0.05, what: str = "the condition"
) -> T:
    """``await check()`` until it gives a truthy value, and return that; fail naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within} s waiting for {what} (last: {value!r})")
        await asyncio.sleep(every)
