"""cfssim.units: Go-syntax durations → int ns, sizes → int bytes, and formatting back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cfssim.units import (
    NSEC_PER_MSEC,
    format_duration,
    format_size,
    ms,
    parse_duration,
    parse_size,
    s,
    us,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100ms", 100_000_000),
        ("1.5ms", 1_500_000),
        ("5us", 5_000),
        ("5µs", 5_000),
        ("250ns", 250),
        ("1m30s", 90_000_000_000),
        ("1h", 3_600_000_000_000),
        ("0", 0),
        (".5s", 500_000_000),
        ("-1s", -1_000_000_000),
        (42, 42),
    ],
)
def test_parse_duration(text: str | int, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10 parsecs", "ms", "1.5", True, "1s2"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64MiB", 64 << 20),
        ("1.5GiB", 3 << 29),
        ("100MB", 100_000_000),
        ("4kB", 4000),
        ("4096", 4096),
        ("10 B", 10),
        (123, 123),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["64M", "lots", "-1MiB", False])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(text)


def test_helpers_are_exact() -> None:
    assert (ms(1.5), us(2), s(0.25)) == (1_500_000, 2_000, 250_000_000)


def test_formatting() -> None:
    assert format_duration(1_500_000) == "1.5ms"
    assert format_duration(3 * 10**9) == "3s"
    assert format_duration(999) == "999ns"
    assert format_size(64 << 20) == "64MiB"
    assert format_size(512) == "512B"


@given(st.integers(min_value=0, max_value=10**6))
def test_millisecond_strings_round_trip(count: int) -> None:
    assert parse_duration(f"{count}ms") == count * NSEC_PER_MSEC
