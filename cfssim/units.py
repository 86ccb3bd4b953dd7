"""Units: durations in integer nanoseconds and sizes in integer bytes, like the kernel.

`parse_duration("1.5ms") == 1_500_000` (Go syntax: ``ns us µs ms s m h``, fractions and
sequences such as ``"1m30s"``); `parse_size("64MiB") == 67108864` (``B KiB MiB GiB TiB`` and the
decimal ``kB MB GB TB``). Formatting goes back the other way for tables and reports.
"""

from __future__ import annotations

import re
from fractions import Fraction

NSEC_PER_USEC = 1_000
NSEC_PER_MSEC = 1_000_000
NSEC_PER_SEC = 1_000_000_000

_DURATION_UNITS = {
    "ns": 1,
    "us": NSEC_PER_USEC,
    "µs": NSEC_PER_USEC,
    "μs": NSEC_PER_USEC,
    "ms": NSEC_PER_MSEC,
    "s": NSEC_PER_SEC,
    "m": 60 * NSEC_PER_SEC,
    "h": 3600 * NSEC_PER_SEC,
}
_SIZE_UNITS = {
    "B": 1,
    "KiB": 1 << 10,
    "MiB": 1 << 20,
    "GiB": 1 << 30,
    "TiB": 1 << 40,
    "kB": 10**3,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
}
_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION_PART = re.compile(_NUMBER + r"(ns|us|µs|μs|ms|s|m|h)")
_SIZE = re.compile(r"\s*" + _NUMBER + r"\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?\s*")


def ns(value: float) -> int:
    """Nanoseconds, as an int."""
    return int(value)


def us(value: float) -> int:
    """Microseconds → int ns."""
    return int(Fraction(value) * NSEC_PER_USEC)


def ms(value: float) -> int:
    """Milliseconds → int ns."""
    return int(Fraction(value) * NSEC_PER_MSEC)


def s(value: float) -> int:
    """Seconds → int ns."""
    return int(Fraction(value) * NSEC_PER_SEC)


def parse_duration(text: str | int) -> int:
    """A Go-syntax duration (``"100ms"``, ``"1.5s"``, ``"1m30s"``, ``"0"``) → int ns.

    An int is taken as nanoseconds. Raises ValueError naming what was expected.
    """
    if isinstance(text, bool):
        raise ValueError(f"expected a duration such as '100ms', found {text!r}")
    if isinstance(text, int):
        return text
    raw = str(text).strip()
    sign = 1
    if raw.startswith(("-", "+")):
        sign = -1 if raw[0] == "-" else 1
        raw = raw[1:]
    if raw == "0":
        return 0
    pos, total = 0, Fraction(0)
    while pos < len(raw):
        match = _DURATION_PART.match(raw, pos)
        if match is None:
            raise ValueError(
                f"expected a duration such as '100ms' or '1.5s' (units ns, us, ms, s, m, h), "
                f"found {text!r}"
            )
        total += Fraction(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not raw:
        raise ValueError(f"expected a duration such as '100ms', found {text!r}")
    return sign * int(total)


def parse_size(text: str | int) -> int:
    """A size (``"64MiB"``, ``"1.5GiB"``, ``"100MB"``, ``4096``) → int bytes."""
    if isinstance(text, bool):
        raise ValueError(f"expected a size such as '64MiB', found {text!r}")
    if isinstance(text, int):
        return text
    match = _SIZE.fullmatch(str(text))
    if match is None:
        raise ValueError(
            f"expected a size such as '64MiB' or '100MB' (units B, KiB, MiB, GiB, kB, MB, GB), "
            f"found {text!r}"
        )
    size = Fraction(match.group(1)) * _SIZE_UNITS[match.group(2) or "B"]
    if size.denominator != 1:  # "0.1B": the kernel's memparse refuses "0.1" too
        raise ValueError(f"expected a whole number of bytes, found {text!r}")
    return int(size)


def format_duration(value_ns: int | float) -> str:
    """Int ns → a short human string (``"1.5ms"``)."""
    value = float(value_ns)
    for unit, scale in (("h", 3600 * NSEC_PER_SEC), ("m", 60 * NSEC_PER_SEC)):
        if abs(value) >= scale and value % scale == 0:
            return f"{int(value // scale)}{unit}"
    for unit, scale in (("s", NSEC_PER_SEC), ("ms", NSEC_PER_MSEC), ("us", NSEC_PER_USEC)):
        if abs(value) >= scale:
            return f"{value / scale:.6g}{unit}"
    return f"{value:.4g}ns"


def format_size(value_bytes: int | float) -> str:
    """Int bytes → a short binary-unit string (``"64MiB"``)."""
    value = float(value_bytes)
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        scale = _SIZE_UNITS[unit]
        if abs(value) >= scale:
            return f"{value / scale:.4g}{unit}"
    return f"{int(value)}B"
