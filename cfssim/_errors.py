"""Small helpers shared by the error messages of cgroup files and scenarios.

Every user-facing message reads ``expected …, found …``; `describe` renders the "found" part and
`did_you_mean` the suggestion for a misspelt key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

_MAX_FOUND_CHARS = 60


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'cgroup'?)"`` for the closest choice, or ``""`` when none is close."""
    matches = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def describe(value: Any) -> str:
    """A short human rendering of a YAML value for the "found …" part of a message."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return repr(value) if value else "an empty string"
    if isinstance(value, dict):
        kind, text = "a mapping", repr(dict(value))
    elif isinstance(value, (list, tuple)):
        kind, text = "a list", repr(list(value))
    else:
        kind, text = type(value).__name__, repr(value)
    if len(text) > _MAX_FOUND_CHARS:
        text = text[: _MAX_FOUND_CHARS - 1] + "…"
    return f"{kind} {text}"
