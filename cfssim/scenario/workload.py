"""The one loader every command uses: `load_workload` takes a scenario YAML or an rt-app JSON
workload (a file or text) and returns a `Workload` — its `Scenario`, the warnings of what was
approximated, and how to run it exactly. YAML goes straight to `load_scenario`; only JSON
workloads import the rt-app reader (`cfssim.scenario.rtapp`).

A file is rt-app JSON when its name ends in ``.json``; text is rt-app JSON when it is a JSON
object (optionally led by C comments, as rt-app's json-c allows) with a ``"tasks"`` key — a key
no scenario has.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .checks import Limits
from .model import Scenario
from .yaml_io import is_file_name, load_scenario

if TYPE_CHECKING:
    from ..behaviour import Behaviour
    from ..result import Result

#: rt-app JSON text: an object (after blanks and C comments) that has a "tasks" key somewhere.
_RTAPP_TEXT = re.compile(r'\A(\s|/\*.*?\*/|//[^\n]*)*\{.*"tasks"\s*:', re.S)


@dataclass
class Workload:
    """A runnable workload: its scenario, the warnings of loading it, and `behaviours` for what
    the scenario's steps cannot say (rt-app's shared timers, phase changes, memory growth)."""

    scenario: Scenario
    warnings: list[str] = field(default_factory=list)

    def behaviours(self) -> dict[str, Behaviour]:
        """Fresh exact behaviours by process name, for the processes that need them (none for a
        YAML scenario: its program steps say everything)."""
        return {}

    def run(
        self,
        *,
        seed: int | None = None,
        policy: str | None = None,
        duration_ns: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Result:
        """Simulate the workload exactly (behaviours included); warnings go into the result."""
        from ..simulation import run_scenario  # the simulator is the heavy part

        result = run_scenario(
            self.scenario,
            seed=seed,
            policy=policy,
            duration_ns=duration_ns,
            progress=progress,
            behaviours=self.behaviours(),
        )
        result.meta.setdefault("warnings", []).extend(self.warnings)
        return result


def load_workload(
    source: str | Path,
    *,
    limits: Limits | None = None,
    cpus: int | None = None,
    duration_ns: int | None = None,
    name: str | None = None,
    strict: bool | str = False,
) -> Workload:
    """A `Workload` from scenario YAML or an rt-app JSON workload, a file or text.

    `cpus`, `duration_ns` and `name` apply to rt-app JSON only, which may lack them (see
    `cfssim.scenario.rtapp.load_rtapp`); a YAML scenario carries its own. `strict` refuses
    what cfssim does not model (rt-app events and properties; ``"convert"``: also what the YAML
    view of rt-app JSON approximates) — a YAML scenario has nothing unmodelled. Raises
    `ScenarioError`.
    """
    if is_rtapp(source):
        from .rtapp import load_rtapp

        return load_rtapp(
            source, cpus=cpus, duration_ns=duration_ns, name=name, limits=limits, strict=strict
        )
    return Workload(load_scenario(source, limits=limits))


def is_rtapp(source: str | Path) -> bool:
    """Whether `source` (a file or text) is an rt-app JSON workload rather than scenario YAML."""
    if isinstance(source, Path):
        return source.suffix.lower() == ".json"
    if "\n" not in source and source.lower().endswith(".json"):
        return True  # a file name, existing or not (a missing one is then named as rt-app JSON)
    return not is_file_name(source) and _RTAPP_TEXT.match(source) is not None
