"""What the front end's two flash-sale pages send, from a browser on the API's own origin.

The original ``Seckill.vue`` GETs ``user/seckill/`` and polls ``user/get_result/?id=`` until 100 or
101; the seed's ``Sckill.vue`` POSTs ``user/sckill/`` and polls ``user/sckill/?task_id=`` until 100
or 101. Neither sends an ``Authorization`` header: the browser carries the ``token`` cookie and,
the page being served from the API's origin, ``Sec-Fetch-Site: same-origin``.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.waiting import eventually

SECKILL = "/api/v1/user/seckill/"
GET_RESULT = "/api/v1/user/get_result/"
SCKILL = "/api/v1/user/sckill/"
FINISHED = (100, 101)


def same_origin(token: str) -> dict[str, str]:
    return {"Cookie": f"token={token}", "Sec-Fetch-Site": "same-origin"}


class Browser:
    """One logged-in user's browser tab on the front end, served from the API's origin."""

    def __init__(self, client: httpx.AsyncClient, token: str, *, poll_seconds: float = 0.05) -> None:
        self.client = client
        self.headers = same_origin(token)
        self.poll_seconds = poll_seconds

    async def poll_until_finished(self, path: str, params: dict[str, str], within_seconds: float) -> dict[str, Any]:
        """What the page's timer does: poll ``path`` until the reply's code is 100 or 101."""

        async def finished() -> dict[str, Any] | None:
            response = await self.client.get(path, params=params, headers=self.headers)
            assert response.status_code == 200, response.text
            reply: dict[str, Any] = response.json()
            return reply if reply["code"] in FINISHED else None

        return await eventually(finished, within=within_seconds, every=self.poll_seconds, what=f"{path} to finish")

    async def seckill_vue(self, *, within_seconds: float = 30) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``Seckill.vue``'s click: the buy reply, and the final poll reply when the page polls."""
        bought = await self.client.get(SECKILL, headers=self.headers)
        assert bought.status_code == 200, bought.text
        reply = bought.json()
        if reply["code"] != 100:
            return reply, None
        return reply, await self.poll_until_finished(GET_RESULT, {"id": reply["id"]}, within_seconds)

    async def sckill_vue(
        self, name: str, *, within_seconds: float = 30
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """``Sckill.vue``'s click: the buy reply, and the final poll reply when the page polls."""
        bought = await self.client.post(SCKILL, json={"name": name}, headers=self.headers)
        assert bought.status_code == 200, bought.text
        reply = bought.json()
        if reply["code"] != 100:
            return reply, None
        return reply, await self.poll_until_finished(SCKILL, {"task_id": reply["task_id"]}, within_seconds)
