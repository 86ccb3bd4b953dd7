"""Small helpers shared by the error messages of cgroup files and scenarios.

Every user-facing message reads ``expected …, found …``; `describe` renders the "found" part and
`did_you_mean` the suggestion for a misspelt key.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

_MAX_FOUND_CHARS = 60
#: The longest user value echoed in a message (longer ones end in "…").
MAX_ECHO_CHARS = 80
#: The most names a message lists (the rest are counted).
MAX_LISTED_NAMES = 10
#: The most choices a suggestion is looked for among (difflib is quadratic in the word).
_MAX_SUGGESTION_CHOICES = 1000


def shorten(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """`text` cut to `limit` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(value: object, limit: int = MAX_ECHO_CHARS) -> str:
    """A user's word without quotes, control characters escaped (``\\x1b``), shortened."""
    return shorten(repr(str(value))[1:-1], limit)


def quoted(value: object) -> str:
    """A user's word for a message: repr-style (control characters escaped), shortened."""
    return shorten(repr(str(value)))


def name_list(names: Iterable[object]) -> str:
    """``"a, b, c"``: at most `MAX_LISTED_NAMES` names, each shortened, then "… and N more"."""
    items = list(names)
    shown = [shorten(str(name), 40) for name in items[:MAX_LISTED_NAMES]]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f", … and {more} more" if more > 0 else "")


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """``" (did you mean 'cgroup'?)"`` for the closest choice, or ``""`` when none is close."""
    text = str(word)
    if len(text) > MAX_ECHO_CHARS:
        return ""
    options = list(choices)[:_MAX_SUGGESTION_CHOICES]
    matches = difflib.get_close_matches(text, options, n=1, cutoff=0.6)
    return f" (did you mean {quoted(matches[0])}?)" if matches else ""


def describe(value: Any) -> str:
    """A short human rendering of a YAML value for the "found …" part of a message."""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return quoted(value) if value else "an empty string"
    if isinstance(value, dict):
        kind, text = "a mapping", repr(dict(value))
    elif isinstance(value, (list, tuple)):
        kind, text = "a list", repr(list(value))
    else:
        kind, text = type(value).__name__, repr(value)
    if len(text) > _MAX_FOUND_CHARS:
        text = text[: _MAX_FOUND_CHARS - 1] + "…"
    return f"{kind} {text}"
