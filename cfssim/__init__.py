"""cfssim: a discrete-event simulator of the Linux CFS/EEVDF fair scheduler and of cgroups.

    import cfssim
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("batch", nice=5, behaviour=cfssim.program(run="forever"))
    result = sim.run(until="10s")

Times are integer nanoseconds (`ms`, `us`, `s` convert), sizes integer bytes.
"""

from .behaviour import program
from .result import Result
from .scenario import Scenario, ScenarioError, load_scenario
from .simulation import Simulation, from_scenario, run_scenario
from .trace import Trace
from .units import ms, ns, s, us

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
