"""cfssim: a discrete-event simulator of the Linux CFS/EEVDF fair scheduler and of cgroups.

    import cfssim
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("batch", nice=5, behaviour=cfssim.program(run="forever"))
    result = sim.run(until="10s")

Times are integer nanoseconds (`ms`, `us`, `s` convert), sizes integer bytes.

The names below are imported on first use (PEP 562), so that ``python -m cfssim`` and the
``cfssim`` script can install their signal handlers before numpy, SimPy and pydantic load.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .behaviour import program
    from .result import Result
    from .scenario import Scenario, ScenarioError, load_scenario
    from .simulation import Simulation, from_scenario, run_scenario
    from .trace import Trace
    from .units import ms, ns, s, us

_WHERE = {
    "program": "behaviour",
    "Result": "result",
    "Scenario": "scenario",
    "ScenarioError": "scenario",
    "load_scenario": "scenario",
    "Simulation": "simulation",
    "from_scenario": "simulation",
    "run_scenario": "simulation",
    "Trace": "trace",
    "ms": "units",
    "ns": "units",
    "s": "units",
    "us": "units",
}

__all__ = [
    "Result",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "Trace",
    "from_scenario",
    "load_scenario",
    "ms",
    "ns",
    "program",
    "run_scenario",
    "s",
    "us",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'cfssim' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})
