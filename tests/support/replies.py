"""Holding a reply sent before the framework (``luffy.cached_replies``, ``luffy.purchase_lane``) to the app's own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from litestar import Litestar

VARYING_HEADERS = {"date", "server"}


def comparable(response: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    """Status, body bytes and headers (a sorted list of name/value pairs: their order aside; those
    that change from reply to reply left out)."""
    headers = sorted((name.lower(), value) for name, value in response.headers.items() if name not in VARYING_HEADERS)
    return response.status_code, response.content, headers


@contextmanager
def recording_app_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The paths of the HTTP requests that reached a Litestar app (a layer before it answered the others)."""
    calls: list[str] = []
    original = Litestar.__call__

    async def recording(self: Litestar, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            calls.append(scope["path"])
        await original(self, scope, receive, send)

    monkeypatch.setattr(Litestar, "__call__", recording)
    yield calls
