"""The SMS limits' arithmetic on the embedded store (a memory store here): which window refuses, and for how long."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.stores.memory import MemoryStore

from luffy.settings import load_settings
from luffy.user.limits import DAY_SECONDS, HOUR_SECONDS, LimitExceeded, StoreLimiter, Window, sms_windows


def test_a_code_request_counts_against_the_mobile_twice_and_the_ip_once(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "LUFFY_DATA_DIR": str(tmp_path),
            "LUFFY_SMS_MOBILE_INTERVAL_SECONDS": "45",
            "LUFFY_SMS_MOBILE_DAILY_LIMIT": "7",
            "LUFFY_SMS_IP_HOURLY_LIMIT": "30",
        }
    )
    assert sms_windows(settings, "13800138000", "10.0.0.1") == [
        Window("sms_limit:interval:13800138000", "mobile_interval", 1, 45),
        Window("sms_limit:daily:13800138000", "mobile_daily", 7, DAY_SECONDS),
        Window("sms_limit:ip:10.0.0.1", "ip_hourly", 30, HOUR_SECONDS),
    ]


async def test_a_window_lets_through_its_limit_then_refuses_until_it_resets() -> None:
    limiter = StoreLimiter(MemoryStore())
    window = Window("k", "three_a_minute", 3, 60)
    for _ in range(3):
        await limiter.acquire([window])
    with pytest.raises(LimitExceeded) as refused:
        await limiter.acquire([window])
    assert refused.value.limit == "three_a_minute"
    assert 59 <= refused.value.retry_after <= 60


async def test_the_longest_blocking_window_names_the_refusal() -> None:
    limiter = StoreLimiter(MemoryStore())
    short, long = Window("a", "per_minute", 1, 60), Window("b", "per_hour", 1, 3_600)
    await limiter.acquire([short, long])
    with pytest.raises(LimitExceeded) as refused:
        await limiter.acquire([short, long])
    assert refused.value.limit == "per_hour"
    assert 3_599 <= refused.value.retry_after <= 3_600


async def test_a_refused_request_uses_up_no_quota_in_the_other_windows() -> None:
    store = MemoryStore()
    limiter = StoreLimiter(store)
    full, roomy = Window("full", "full", 1, 60), Window("roomy", "roomy", 2, 60)
    await limiter.acquire([full])
    with pytest.raises(LimitExceeded):
        await limiter.acquire([full, roomy])
    await limiter.acquire([roomy])
    await limiter.acquire([roomy])  # both of roomy's requests were still free


async def test_a_released_request_gives_its_quota_back_and_never_goes_below_zero() -> None:
    limiter = StoreLimiter(MemoryStore())
    window = Window("k", "one", 1, 60)
    await limiter.acquire([window])
    await limiter.release([window])
    await limiter.release([window])
    await limiter.acquire([window])
    with pytest.raises(LimitExceeded):
        await limiter.acquire([window])


async def test_an_unreadable_counter_starts_a_fresh_window() -> None:
    store = MemoryStore()
    await store.set("k", b"not json")
    limiter = StoreLimiter(store)
    await limiter.acquire([Window("k", "one", 1, 60)])
    with pytest.raises(LimitExceeded):
        await limiter.acquire([Window("k", "one", 1, 60)])
