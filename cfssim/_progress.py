"""The commands' progress bar: rich, on stderr, gone when done, silent off a terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

ProgressHook = Callable[[int, int], None]  # (done, total)


@contextmanager
def progress_bar(
    label: str, *, enabled: bool, total: int | None = None, counted: bool = False
) -> Iterator[ProgressHook | None]:
    """A bar fed (done, total) — simulated ns, or points of a sweep when `counted` (shown as
    "m/n" rather than a percentage); yields None when not `enabled` or not on a terminal."""
    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    amount: ProgressColumn = (
        MofNCompleteColumn() if counted else TextColumn("{task.percentage:>3.0f}%")
    )
    columns = (TextColumn(label), BarColumn(), amount, TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        yield lambda done, total: progress.update(task, completed=done, total=total)
