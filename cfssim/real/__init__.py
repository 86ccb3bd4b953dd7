"""The real twin: run a scenario as real processes under real cgroups and measure it.

`measure(scenario)` returns a `Result` shaped like a simulation's (``source: "kernel"``);
`cleanup_leftovers()` removes what a crashed run left behind. Errors are `RealRunError`
subclasses carrying the CLI exit status.
"""

from .cgroupfs import cleanup_leftovers, detect
from .errors import RealRunError, Refused
from .measure import measure

__all__ = ["RealRunError", "Refused", "cleanup_leftovers", "detect", "measure"]
