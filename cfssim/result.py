"""`Result`: what a run produced, in one shape for the simulator and the real kernel.

Per-task and per-cgroup figures are keyed like the kernel's files (``cpu.stat`` →
``nr_throttled``, ``memory.oom_control`` → ``oom_kill``), so a simulated result and a measured one
line up key by key and `compare` is a diff of two Results. Saved as ``result.json``; the trace
tables (run segments, throttles, memory samples…) sit beside it in ``trace.npz``.

Per-task fields (like ``/proc/<pid>/sched`` and ``schedstat``): ``cgroup``, ``process``,
``cpu_time_ns`` (se.sum_exec_runtime), ``wait_time_ns`` (run_delay), ``timeslices`` (pcount),
``nr_switches``,
``nr_voluntary_switches``, ``nr_involuntary_switches``, ``nr_migrations``, ``wakeups``,
``wakeup_latency_ns`` ({p50, p99, max, mean}), ``vruntime``, ``nice``, ``policy``, ``exit``
(null or {time_ns, reason}), ``max_rss_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .trace import Trace

RESULT_FILE = "result.json"
TRACE_FILE = "trace.npz"


class ResultError(ValueError):
    """A result directory that cannot be read back: names the file and what was expected."""

    def __init__(self, path: str | Path, expected: str, found: str) -> None:
        super().__init__(f"{path}: expected {expected}, found {found}")
        self.path, self.expected, self.found = str(path), expected, found


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: result.json's top-level fields that the tables, reports and comparisons compute with:
#: (field, whether it must be present, what it must be, check).
_FIELD_CHECKS: tuple[tuple[str, bool, str, Callable[[Any], bool]], ...] = (
    ("source", True, "'simulation' or 'kernel'", lambda v: v in ("simulation", "kernel")),
    ("scenario", True, "a string", lambda v: isinstance(v, str)),
    ("policy", True, "a string", lambda v: isinstance(v, str)),
    ("cpus", True, "a positive integer", lambda v: _is_int(v) and v > 0),
    ("duration_ns", True, "a non-negative integer", lambda v: _is_int(v) and v >= 0),
    ("seed", True, "an integer or null", lambda v: v is None or _is_int(v)),
    ("tasks", False, "an object", lambda v: isinstance(v, dict)),
    ("cgroups", False, "an object", lambda v: isinstance(v, dict)),
)


@dataclass
class Result:
    """Figures of one run. ``source`` is ``"simulation"`` or ``"kernel"``."""

    source: str
    scenario: str
    policy: str
    cpus: int
    duration_ns: int
    seed: int | None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    cgroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    cpu: dict[str, dict[str, int]] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    trace: Trace | None = field(default=None, repr=False, compare=False)

    # ---- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("trace")
        return data

    def to_json(self, path: str | Path | None = None) -> str:
        """The JSON text; also written to `path` when given (deterministic key order)."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=False) + "\n"
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Result:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "trace"}
        return cls(**known)

    @classmethod
    def from_json(cls, path: str | Path) -> Result:
        expected = "a cfssim result.json (an object with source, scenario, policy, cpus, …)"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise ResultError(path, expected, f"bytes that are not UTF-8 ({error.reason})") \
                from None
        except json.JSONDecodeError as error:
            found = f"invalid JSON ({error.msg} at line {error.lineno})"
            raise ResultError(path, expected, found) from None
        if not isinstance(data, dict):
            raise ResultError(path, expected, type(data).__name__)
        missing = [name for name, required, _, _ in _FIELD_CHECKS
                   if required and name not in data]
        if missing:
            raise ResultError(path, expected, f"no {', '.join(missing)}")
        for name, _, wanted, ok in _FIELD_CHECKS:
            if name in data and not ok(data[name]):
                raise ResultError(path, f"{name} to be {wanted}", json.dumps(data[name])[:60])
        return cls.from_dict(data)

    def save(self, directory: str | Path) -> Path:
        """Write ``result.json`` and, when there is one, ``trace.npz`` into `directory`."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.to_json(out / RESULT_FILE)
        if self.trace is not None:
            self.trace.save(out / TRACE_FILE)
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Result:
        """Read a directory written by `save` (the trace when present)."""
        src = Path(directory)
        result = cls.from_json(src / RESULT_FILE)
        if (src / TRACE_FILE).exists():
            try:
                result.trace = Trace.load(src / TRACE_FILE)
            except (ValueError, KeyError, OSError) as error:
                raise ResultError(src / TRACE_FILE, "a cfssim trace.npz", str(error)) from None
        return result

    # ---- tables ---------------------------------------------------------------------------
    def task_rows(self) -> list[dict[str, Any]]:
        """One flat row per task (nested dicts flattened with dots)."""
        return [{"task": name, **_flatten(fig)} for name, fig in self.tasks.items()]

    def cgroup_rows(self) -> list[dict[str, Any]]:
        """One flat row per cgroup (``cpu.stat.nr_throttled``, ``memory.failcnt``, …)."""
        return [{"cgroup": path, **_flatten(fig)} for path, fig in self.cgroups.items()]

    def tasks_frame(self) -> Any:
        """Per-task figures as a pandas DataFrame (needs the ``pandas`` extra)."""
        import pandas as pd

        return pd.DataFrame(self.task_rows()).set_index("task")

    def cgroups_frame(self) -> Any:
        """Per-cgroup figures as a pandas DataFrame (needs the ``pandas`` extra)."""
        import pandas as pd

        return pd.DataFrame(self.cgroup_rows()).set_index("cgroup")


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
