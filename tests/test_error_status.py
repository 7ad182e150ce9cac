"""The one map from domain errors to HTTP statuses, without a request."""

from __future__ import annotations

import pytest

from luffy import errors
from luffy.responses import domain_error_status


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidInput("x"), 400),
        (errors.NotAuthenticated("x"), 401),
        (errors.Forbidden("x"), 403),
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.TooManyRequests("x", retry_after=3), 429),
        (errors.Unavailable("x"), 503),
    ],
)
def test_each_domain_error_has_its_contract_status(error: errors.DomainError, status: int) -> None:
    assert domain_error_status(error) == status


def test_a_subclass_takes_the_status_of_the_error_it_refines() -> None:
    class SoldOut(errors.Conflict):
        pass

    assert domain_error_status(SoldOut("售罄")) == 409


def test_an_error_outside_the_map_is_a_bad_request() -> None:
    class Odd(errors.DomainError):
        pass

    assert domain_error_status(Odd("?")) == 400
