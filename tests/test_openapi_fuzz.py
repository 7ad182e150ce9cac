"""Fuzz every endpoint of our own OpenAPI document (``/schema``), in-process over ASGI.

Schemathesis generates requests from the published parameters and checks each reply: never a
5xx, a documented status code and content type, a body that matches the documented schema.
New endpoints are covered as soon as they are in the schema. Runs on SQLite and PostgreSQL with
the seed rows and a small generated catalogue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import schemathesis
from litestar import Litestar
from schemathesis.python import asgi

from luffy.app import create_app
from tests.support.course_oracle import catalogue_settings, load_catalogue
from tests.support.fuzz import fuzz


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzzed_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Litestar]:
    url = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")
    app_settings = catalogue_settings(url, str(tmp_path_factory.mktemp("fuzz")))
    asyncio.run(load_catalogue(app_settings, courses=30, random_seed=5))
    app = create_app(app_settings)
    try:
        yield app
    finally:
        # Schemathesis keeps each app's lifespan running; end it so the app's connections close.
        asgi.shutdown_lifespans()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: Litestar) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/schema/openapi.json", fuzzed_app)


def test_every_endpoint_answers_as_documented(api_schema: schemathesis.BaseSchema) -> None:
    """Every failing operation is reported (``tests.support.fuzz``)."""
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 5
    failures = fuzz(operations)
    assert not failures, "\n\n".join(f"{label}:\n{exc}" for label, exc in failures.items())


def test_the_schema_documents_the_error_envelope_and_only_the_protected_operations(fuzzed_app: Litestar) -> None:
    document = fuzzed_app.openapi_schema.to_schema()
    paths = document["paths"]
    me = paths["/api/v1/user/me"]["get"]
    assert me["security"] == [{"BearerToken": []}]
    assert "401" in me["responses"]
    for path in ("/api/v1/course/category", "/api/v1/course/actual", "/api/v1/home/banner", "/health"):
        assert "security" not in paths[path]["get"], path
    error_schema = paths["/api/v1/course/actual"]["get"]["responses"]["400"]["content"]["application/json"]["schema"]
    assert error_schema["$ref"].endswith("/ErrorReply")
    assert set(document["components"]["schemas"]["ErrorReply"]["properties"]) == {"code", "msg", "errors"}
