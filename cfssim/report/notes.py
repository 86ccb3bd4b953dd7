"""What a user must not miss about a run: its warnings and its failed timed writes.

`run_notes` gives one line each — the page lists them under "Warnings", the CLI prints them on
stderr.
"""

from __future__ import annotations

from typing import Any

from ..result import Result
from ..units import format_duration


def run_notes(result: Result) -> list[str]:
    """``warning: …`` per ``meta.warnings`` entry, ``write failed at T: …`` per ``meta.events``
    entry that carries an ``error`` (a write the kernel refused: EBUSY, EINVAL, …)."""
    lines = [f"warning: {warning}" for warning in result.meta.get("warnings") or []]
    for event in result.meta.get("events") or []:
        if isinstance(event, dict) and event.get("error"):
            error, path = str(event["error"]), str(event.get("path", ""))
            where = "" if path in error else f"{path}: "
            lines.append(f"write failed at {_when(event)}: {where}{error}")
    return lines


def _when(event: dict[str, Any]) -> str:
    time = event.get("time_ns")
    return format_duration(time) if isinstance(time, int | float) else "?"
