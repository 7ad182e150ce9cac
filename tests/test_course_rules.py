"""The catalogue's pure rules, without a database: ordering, tie-breaks and page arithmetic."""

from __future__ import annotations

import pytest

from luffy.course.schemas import display_name
from luffy.course.services import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CoursePageResult,
    OrderingError,
    clamp_page_size,
    order_keys_with_tie_break,
    parse_ordering,
)


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_no_ordering_means_display_order(raw: str | None) -> None:
    assert parse_ordering(raw) == (("orders", False),)


def test_ordering_fields_keep_their_order_and_a_minus_means_descending() -> None:
    assert parse_ordering("-price, students") == (("price", True), ("students", False))


def test_a_field_named_twice_counts_once_as_first_written() -> None:
    assert parse_ordering("-price,price,id") == (("price", True), ("id", False))


@pytest.mark.parametrize("raw", ["name", "price,-name", "--price", "price,"])
def test_an_unknown_ordering_field_is_refused_and_named(raw: str) -> None:
    with pytest.raises(OrderingError) as refused:
        parse_ordering(raw)
    assert "orders, price, students, id" in str(refused.value)


def test_id_breaks_ties_in_the_direction_of_the_last_field() -> None:
    assert order_keys_with_tie_break((("price", False), ("students", True))) == (
        ("price", False),
        ("students", True),
        ("id", True),
    )


def test_an_ordering_that_names_id_gets_no_second_id() -> None:
    assert order_keys_with_tie_break((("id", True), ("price", False))) == (("id", True), ("price", False))


@pytest.mark.parametrize(
    ("requested", "size"), [(None, DEFAULT_PAGE_SIZE), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE), (10_000, MAX_PAGE_SIZE)]
)
def test_page_size_defaults_and_is_capped(requested: int | None, size: int) -> None:
    assert clamp_page_size(requested) == size


@pytest.mark.parametrize(
    ("count", "page", "page_size", "has_next"),
    [(0, 1, 10, False), (10, 1, 10, False), (11, 1, 10, True), (21, 2, 10, True), (21, 3, 10, False)],
)
def test_a_next_page_exists_only_while_courses_remain(count: int, page: int, page_size: int, has_next: bool) -> None:
    assert CoursePageResult(count=count, page=page, page_size=page_size, courses=[]).has_next is has_next


def test_a_choice_shows_its_label_and_an_unknown_one_its_number() -> None:
    names = {0: "付费", 1: "VIP专享"}
    assert display_name(names, 1) == "VIP专享"
    assert display_name(names, 7) == "7"
