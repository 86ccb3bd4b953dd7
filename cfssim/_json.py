"""JSON read defensively: bounded nesting, finite numbers, integers that fit 64 bits.

`loads` is ``json.loads`` for files a user hands over (saved results, rt-app workloads): it
refuses, with the line and column, what the standard parser either accepts silently (``NaN``,
``Infinity``, ``1e999`` → inf, integers of thousands of digits) or fails on with an exception
that is not a JSON error (a ``RecursionError`` for deep nesting, a ``ValueError`` past Python's
4300-digit limit).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

#: Deepest nesting of arrays and objects accepted by default (results and rt-app documents
#: need fewer than 10 levels).
MAX_DEPTH = 32
#: The 64-bit range every integer must fit (the numpy columns and ns arithmetic are int64).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class JsonInputError(ValueError):
    """Text that is not acceptable JSON: what was `expected` and `found` at `line`:`col`
    (1-based)."""

    def __init__(self, expected: str, found: str, line: int, col: int) -> None:
        super().__init__(f"line {line}, column {col}: expected {expected}, found {found}")
        self.expected, self.found, self.line, self.col = expected, found, line, col


class _Refused(Exception):
    def __init__(self, token: str, expected: str, found: str) -> None:
        super().__init__(expected)
        self.token, self.expected, self.found = token, expected, found


def _blank_strings(text: str) -> str:
    """`text` with every string's contents blanked (same length): what is left is structure."""
    return _STRING.sub(lambda m: '"' + " " * (len(m.group(0)) - 2) + '"', text)


def _line_col(text: str, pos: int) -> tuple[int, int]:
    return text.count("\n", 0, pos) + 1, pos - (text.rfind("\n", 0, pos) + 1) + 1


def nesting_depth(text: str, limit: int) -> tuple[int, int]:
    """The deepest nesting of arrays/objects in the JSON `text` and the offset where it first
    goes deeper than `limit` (or where it is deepest); brackets inside strings do not count."""
    structure = _blank_strings(text).encode("utf-8", "surrogatepass")
    codes = np.frombuffer(structure, dtype=np.uint8)
    step = np.isin(codes, (ord("["), ord("{"))).astype(np.int32) - np.isin(
        codes, (ord("]"), ord("}"))
    ).astype(np.int32)
    if not len(step):
        return 0, 0
    depth = np.cumsum(step)
    over = np.flatnonzero(depth > limit)
    at = int(over[0]) if len(over) else int(np.argmax(depth))
    # strings were blanked to ASCII, so this byte offset is a character offset but for
    # non-ASCII text outside strings (invalid JSON anyway): decode to be exact
    return int(depth.max()), len(structure[:at].decode("utf-8", "replace"))


def _parse_int(token: str) -> int:
    if len(token.lstrip("-")) > 19:  # 2**63 has 19 digits
        shown = token if len(token) <= 30 else f"one of {len(token)} digits"
        raise _Refused(token, "an integer that fits 64 bits", shown)
    value = int(token)
    if not INT64_MIN <= value <= INT64_MAX:
        raise _Refused(token, "an integer that fits 64 bits", token)
    return value


def _parse_float(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        shown = token if len(token) <= 30 else token[:29] + "…"
        raise _Refused(token, "a finite number", f"{shown} (beyond a double's range)")
    return value


def _parse_constant(token: str) -> Any:
    raise _Refused(token, "a number", f"{token} (not JSON)")


def loads(text: str, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads(text, **kwargs)`` that raises `JsonInputError` (with the line and column)
    for invalid JSON, nesting deeper than `max_depth`, NaN/Infinity, numbers beyond a double
    and integers beyond 64 bits."""
    depth, offset = nesting_depth(text, max_depth)
    if depth > max_depth:
        line, col = _line_col(text, offset)
        raise JsonInputError(
            f"at most {max_depth} levels of nested arrays and objects", f"{depth} levels", line, col
        )
    try:
        return json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
            **kwargs,
        )
    except json.JSONDecodeError as error:
        raise JsonInputError("valid JSON", error.msg.lower(), error.lineno, error.colno) from None
    except _Refused as refused:
        pos = _blank_strings(text).find(refused.token)
        line, col = _line_col(text, max(pos, 0))
        raise JsonInputError(refused.expected, refused.found, line, col) from None
    except RecursionError:  # nesting_depth bounds it; a tiny stack could still overflow
        raise JsonInputError(
            f"at most {max_depth} levels of nested arrays and objects", "more", 1, 1
        ) from None
