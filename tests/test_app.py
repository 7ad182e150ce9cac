"""The app factory: health, OpenAPI, the contract's error envelope, CORS and media."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
from litestar import Litestar, get, post
from litestar.testing import AsyncTestClient, TestClient

from luffy.app import create_app
from luffy.http import LuffyRequest
from luffy.responses import exception_handlers
from luffy.settings import Settings


async def test_health_reports_every_part(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "cache": "ok", "broker": "ok"}


async def test_health_names_the_database_when_it_is_down(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings("postgresql+asyncpg://luffy:luffy@127.0.0.1:1/nowhere")
    async with AsyncTestClient(app=create_app(settings)) as client:
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"] == "down"
    assert response.json()["status"] == "down"
    assert response.json()["cache"] == "ok"


async def test_openapi_document_at_schema(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/schema")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/health" in document["paths"]


async def test_unknown_path_is_a_404_in_the_envelope(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/api/v1/no/such/thing/")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"code": 999, "msg": "资源不存在"}


async def test_wrong_method_is_a_405_in_the_envelope(client: AsyncTestClient[Litestar]) -> None:
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.json()["code"] == 999


async def test_validation_error_is_a_400_naming_the_field(settings: Settings) -> None:
    @get("/probe", sync_to_thread=False)
    def probe(number: int) -> dict[str, int]:
        return {"number": number}

    app = create_app(settings)
    app.register(probe)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/probe", params={"number": "abc"})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 999
    assert body["msg"] == "请求参数错误"
    assert body["errors"][0]["field"] == "number"


async def test_unexpected_exception_is_a_500_without_trace(settings: Settings) -> None:
    @get("/boom", sync_to_thread=False)
    def boom() -> None:
        raise RuntimeError("secret internals")

    app = create_app(settings)
    app.register(boom)
    async with AsyncTestClient(app=app) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"code": 888, "msg": "服务器错误"}
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


async def test_cors_preflight_allows_the_front_end(make_settings: Callable[..., Settings], clean_database: str) -> None:
    settings = make_settings(clean_database, LUFFY_CORS_ORIGINS="http://localhost:8080,http://127.0.0.1:8080")
    async with AsyncTestClient(app=create_app(settings)) as client:
        preflight = await client.options(
            "/health",
            headers={
                "Origin": "http://localhost:8080",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        simple = await client.get("/health", headers={"Origin": "http://localhost:8080"})
        foreign = await client.get("/health", headers={"Origin": "http://evil.example"})
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:8080"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert simple.headers["access-control-allow-origin"] == "http://localhost:8080"
    assert "access-control-allow-origin" not in foreign.headers


async def test_media_is_served_under_the_prefix(client: AsyncTestClient[Litestar], seeded: Settings) -> None:
    response = await client.get("/media/courses/alex_python.png")
    assert response.status_code == 200
    assert response.content.startswith(b"\x89PNG")
    assert seeded.media_url("courses/alex_python.png") == "http://testserver.local/media/courses/alex_python.png"


async def test_framework_errors_speak_the_contract_not_litestar(settings: Settings) -> None:
    @get("/probe-required", sync_to_thread=False)
    def probe_required(course: int) -> dict[str, int]:
        return {"course": course}

    @post("/probe-body", sync_to_thread=False)
    def probe_body(data: dict[str, str]) -> dict[str, str]:
        return data

    app = create_app(settings)
    app.register(probe_required)
    app.register(probe_body)
    async with AsyncTestClient(app=app) as client:
        missing = await client.get("/probe-required")
        undecodable = await client.post(
            "/probe-body", content=b'{"mobile":"\xff"}', headers={"Content-Type": "application/json"}
        )
        truncated = await client.post("/probe-body", content=b"{", headers={"Content-Type": "application/json"})
        unauthorised = await client.get("/api/v1/user/me/")
    assert missing.status_code == 400
    assert missing.json()["msg"] == "请求参数错误"
    assert missing.json()["errors"][0]["field"] == "course"
    assert "/probe-required" not in missing.text
    assert undecodable.status_code == 400
    assert undecodable.json() == {"code": 999, "msg": "请求体不是有效的 UTF-8 JSON"}
    assert truncated.status_code == 400
    assert truncated.json()["msg"] == "请求参数错误"
    assert unauthorised.status_code == 401
    assert unauthorised.json() == {"code": 999, "msg": "未登录或登录已过期"}


class _Probe(msgspec.Struct):
    mobile: str


def test_error_details_name_the_field_in_the_wording_litestar_and_msgspec_use_today() -> None:
    """``responses._field_and_message`` is the one place that reads library text: Litestar names no key for a
    missing query parameter, msgspec none for a missing body field. An upgrade that rewords them fails here."""

    @get("/probe-required", sync_to_thread=False)
    def probe_required(course: int) -> dict[str, int]:
        return {"course": course}

    @post("/probe-struct", sync_to_thread=False)
    def probe_struct(data: _Probe) -> dict[str, str]:
        return {"mobile": data.mobile}

    app = Litestar([probe_required, probe_struct], exception_handlers=exception_handlers, request_class=LuffyRequest)
    with TestClient(app=app) as client:
        missing_parameter = client.get("/probe-required").json()
        missing_field = client.post("/probe-struct", json={}).json()
        not_utf8 = client.post(
            "/probe-struct", content=b'{"mobile":"\xff"}', headers={"Content-Type": "application/json"}
        )
    assert missing_parameter["errors"] == [{"field": "course", "message": "Missing required query parameter 'course'"}]
    assert missing_field["errors"] == [{"field": "mobile", "message": "Object missing required field `mobile`"}]
    assert not_utf8.json() == {"code": 999, "msg": "请求体不是有效的 UTF-8 JSON"}
