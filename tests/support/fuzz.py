"""Fuzzing operations of our own OpenAPI document with schemathesis: the settings and checks every fuzz test shares."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import allow_header_conformance, positive_data_acceptance

MAX_EXAMPLES = 30

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    # The same examples on every run: a CI failure can be replayed exactly. Widen the search by hand with
    # a larger MAX_EXAMPLES (400 per operation found nothing on 2026-11-28).
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
EXCLUDED_CHECKS = [
    # Business rules rightly refuse some schema-valid requests: a wrong SMS code, a page past the last.
    positive_data_acceptance,
    # Litestar's automatic OPTIONS reply lists only one handler's methods when two handlers share a
    # path (GET and POST /user/mobile/send_sms); CORS preflights use Access-Control-Allow-Methods.
    allow_header_conformance,
]


def fuzz(operations: list[Any], headers: dict[str, str] | None = None) -> dict[str, Exception]:
    """Each operation gets its own Hypothesis run, valid and invalid requests alike (sent with
    ``headers``); the failures by operation. Driven through schemathesis's strategy API rather than
    its pytest plugin, which reaches into pytest's private node attributes (pytest 9.2 removed the
    one it used)."""
    failures: dict[str, Exception] = {}
    for operation in operations:
        cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

        @FUZZ_SETTINGS
        @given(case=cases)
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=EXCLUDED_CHECKS)

        try:
            answers_as_documented()
        except Exception as exc:
            failures[operation.label] = exc
    return failures
