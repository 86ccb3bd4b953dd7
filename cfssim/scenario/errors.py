"""Scenario errors: `ScenarioError` (messages that point into the file) and the pydantic errors
the models raise, whose text the YAML reader places at ``file:line:col: path.to.field``.

`Loc` is a path into the scenario's YAML shape (mapping keys and list indices), as pydantic's
``loc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]


class ScenarioError(Exception):
    """Invalid scenario; ``messages``: ``file:line:col: field: expected …, found …`` each."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


def fail(message: str, *, about_key: bool = False) -> PydanticCustomError:
    """A pydantic error whose text is exactly `message`; `about_key`: point at the key."""
    kind = "scenario_key" if about_key else "scenario"
    return PydanticCustomError(kind, "{message}", {"message": message})


def issue(
    loc: Loc, message: str, value: Any = None, *, about_key: bool = False
) -> InitErrorDetails:
    """One located finding of a validator that reports several at once."""
    return InitErrorDetails(type=fail(message, about_key=about_key), loc=loc, input=value)
