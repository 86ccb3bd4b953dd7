"""How much memory a scenario's real run may hold at most, against what the host has.

The bound is taken over the cgroup tree, bottom-up: a cgroup holds at most its largest memory
limit over the run (the initial one or any written by an event; none: unlimited) and at most
what its processes allocate plus what its children hold. A process allocates at most the sum of
its ``alloc`` steps, loops multiplied out (frees ignored), times its threads; one that moves is
counted in every cgroup it can be in. The total is compared with ``MemAvailable``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..cgroup.files import apply_write, format_cpulist, parent_path
from ..scenario import Alloc, Loop, Move, Step, Write
from ..units import format_size

if TYPE_CHECKING:
    from ..scenario import Scenario


def allocated_bytes(program: Sequence[Step], repeat: int | None = 1) -> float:
    """The sum of `program`'s alloc steps, loops multiplied out, bytes (``math.inf`` when an
    alloc repeats forever); `repeat` wraps the whole program (None: forever)."""
    total = 0.0
    for step in program:
        if isinstance(step, Alloc):
            total += step.bytes
        elif isinstance(step, Loop):
            total += allocated_bytes(step.program, step.repeat)
    if total == 0:
        return 0.0
    return math.inf if repeat is None else total * repeat


def largest_limits(scenario: Scenario) -> dict[str, float]:
    """Each cgroup's largest memory limit over the run, bytes (``math.inf``: unlimited at some
    point), from its initial files and the events that write them."""
    configs = dict(scenario.cgroups)
    largest = {path: _limit(config.memory_limit) for path, config in configs.items()}
    for event in sorted(scenario.events, key=lambda e: e.at_ns):
        action = event.action
        if not isinstance(action, Write) or action.path not in configs:
            continue
        config = configs[action.path]
        for file, value in action.files.items():
            text = format_cpulist(value) if isinstance(value, list) else value
            try:
                config = apply_write(config, file, text, is_root=action.path == "/")
            except ValueError:
                continue  # refused by the kernel's rules: the limit stays
        configs[action.path] = config
        largest[action.path] = max(largest[action.path], _limit(config.memory_limit))
    return largest


def _limit(value: int | None) -> float:
    return math.inf if value is None else float(value)


def memory_bound(scenario: Scenario) -> tuple[float, list[str]]:
    """(most bytes the run may hold, one line per top-level cgroup saying what bounds it)."""
    limits = largest_limits(scenario)
    own: dict[str, float] = dict.fromkeys([*limits, "/"], 0.0)
    moves = [e.action for e in scenario.events if isinstance(e.action, Move)]
    for proc in scenario.processes:
        demand = allocated_bytes(proc.program, proc.repeat) * proc.threads
        if demand:
            for path in {proc.cgroup, *(m.to for m in moves if m.process == proc.name)}:
                own[path] = own.get(path, 0.0) + demand
    held: dict[str, float] = {}
    for path in sorted(own, key=lambda p: -p.count("/") if p != "/" else 1):
        children = sum(held[c] for c in held if parent_path(c) == path)
        held[path] = min(limits.get(path, math.inf), own[path] + children)
    lines = [f"processes in / allocate {_size(own['/'])}"] if own["/"] else []
    for path in sorted(p for p in held if held[p] and parent_path(p) == "/"):
        limit = limits.get(path, math.inf)
        how = "its limit" if held[path] == limit else "allocated"
        lines.append(f"{path} {_size(held[path])} ({how})")
    total = held["/"]
    if total == limits["/"]:
        lines.append(f"/ is limited to {_size(total)}")
    return total, lines


def _size(value: float) -> str:
    return "unbounded" if math.isinf(value) else format_size(int(value))


def capacity_problem(scenario: Scenario, available: int | None) -> str | None:
    """Why the host cannot hold what the scenario may allocate (None: it can, or the bound is
    infinite — an unlimited alloc, refused elsewhere unless forced — or unknown)."""
    if available is None:
        return None
    total, lines = memory_bound(scenario)
    if math.isinf(total) or total <= available:
        return None
    return (
        f"the scenario may hold up to {_size(total)} of memory ({'; '.join(lines)}), but this "
        f"machine has {format_size(available)} available (MemAvailable in /proc/meminfo): lower "
        "the memory limits or the alloc sizes"
    )
