"""`Result`: what a run produced, in one shape for the simulator and the real kernel.

Per-task and per-cgroup figures are keyed like the kernel's files (``cpu.stat`` →
``nr_throttled``, ``memory.oom_control`` → ``oom_kill``), so a simulated result and a measured one
line up key by key and `compare` is a diff of two Results. Saved as ``result.json``; the trace
tables (run segments, throttles, memory samples…) sit beside it in ``trace.npz``.

The contract is typed: `TaskFigures` (like ``/proc/<pid>/sched`` and ``schedstat``),
`CgroupFigures` (like the cgroup files) and `RunMeta` (how the run was made). Both sides build
their figures with the same builders — `task_figures`, `latency_figures`, `exit_figures`,
`cpu_stat_figures`, `cgroup_figures` — so they emit the same keys in the same order, and
`Result.from_json` checks a file against these types (`check_contract`) before anything computes
with it.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

import numpy as np

from . import _json
from .task import RT_POLICIES
from .trace import Trace, TraceFormatError

RESULT_FILE = "result.json"
TRACE_FILE = "trace.npz"
#: The largest result.json read (a run of thousands of threads writes a few MiB).
MAX_RESULT_BYTES = 256 * 2**20


class ResultError(ValueError):
    """A result directory that cannot be read back: names the file and what was expected."""

    def __init__(self, path: str | Path, expected: str, found: str) -> None:
        super().__init__(f"{path}: expected {expected}, found {found}")
        self.path, self.expected, self.found = str(path), expected, found


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ---- the contract -----------------------------------------------------------------------------
class LatencyFigures(TypedDict):
    """Wakeup latency of a task, ns: wakeup to running (``sched_wakeup`` → ``sched_switch``)."""

    p50: int
    p99: int
    max: int
    mean: int


class _ExitRequired(TypedDict):
    time_ns: int
    reason: str


class ExitFigures(_ExitRequired, total=False):
    """How a thread ended: ns since t0, ``exited``/``oom_kill``/``killed``/…, exit code (None when
    it was killed by a signal)."""

    code: int | None


class TaskFigures(TypedDict):
    """One thread's figures, like ``/proc/<pid>/sched`` and ``schedstat``: ``cpu_time_ns`` is
    se.sum_exec_runtime, ``wait_time_ns`` run_delay, ``timeslices`` pcount; ``sched_class`` is
    ``"rt"`` for the FIFO/RR policies, else ``"fair"``; ``vruntime`` ns."""

    process: str
    cgroup: str
    nice: int
    policy: str
    sched_class: Literal["fair", "rt"]
    cpu_time_ns: int
    wait_time_ns: int
    timeslices: int
    nr_switches: int
    nr_voluntary_switches: int
    nr_involuntary_switches: int
    nr_migrations: int
    wakeups: int
    wakeup_latency_ns: LatencyFigures | None
    vruntime: int
    max_rss_bytes: int | None
    exit: ExitFigures | None


class _CpuStatRequired(TypedDict):
    nr_periods: int
    nr_throttled: int
    throttled_time: int
    nr_bursts: int
    burst_time: int


class CpuStat(_CpuStatRequired, total=False):
    """``cpu.stat``: the v1 keys (times ns) always; the v2 ``*_usec`` keys where they are known."""

    usage_usec: int
    user_usec: int
    system_usec: int
    throttled_usec: int
    burst_usec: int


class _KillRequired(TypedDict):
    time_ns: int
    process: str
    cgroup: str
    reason: str


class KillFigures(_KillRequired, total=False):
    """One kill: ns since t0, the process and its cgroup, ``oom_kill``/``oom_group_kill``/
    ``killed``; the simulation also names the thread (``task``)."""

    task: str


#: One cgroup's figures by kernel file name: v1 and v2 files, each where the side that made the
#: result has it (the simulation models both interfaces; the twin reads the mounted one).
CgroupFigures = TypedDict(
    "CgroupFigures",
    {
        "cpu.shares": int,
        "cpu.weight": int,
        "cpu.cfs_period_us": int,
        "cpu.cfs_quota_us": int,
        "cpu.cfs_burst_us": int,
        "cpu.max": str | None,
        "cpuset.cpus": str,
        "cpu.stat": CpuStat,
        "cpuacct.usage": int,
        "cpuacct.usage_percpu": list[int],
        "memory.usage_in_bytes": int,
        "memory.max_usage_in_bytes": int,
        "memory.limit_in_bytes": int,
        "memory.failcnt": int,
        "memory.oom_control": dict[str, int],
        "memory.current": int,
        "memory.max": int | str,
        "memory.high": int | str,
        "memory.peak": int,
        "memory.events": dict[str, int],
        "memory.events.local": dict[str, int],
    },
    total=False,
)


class RunMeta(TypedDict, total=False):
    """How the run was made. Both sides: ``warnings``. Simulation: ``description``, ``hz``,
    ``slice_ends``, ``autogroup``, ``tunables``, ``context_switches``, ``events``, ``host`` (the
    simulated host's tick skew, noise and fault cost, when not the ideal machine). Kernel: the
    release, cgroup interface and mounts, t0 (CLOCK_MONOTONIC ns), each quota'd group's period
    phase and the tick offset (ns since t0), wall time, background load, sampling interval,
    ``host_root``, and the threads' hrtimer slack (ns) — what `as_measured` gives a simulation."""

    warnings: list[str]
    description: str
    hz: int
    slice_ends: str
    autogroup: bool
    tunables: dict[str, int]
    context_switches: int
    events: list[dict[str, Any]]
    host: dict[str, Any]
    kernel_release: str
    cgroup_version: int
    cgroup_root: dict[str, str]
    t0_monotonic_ns: int
    period_phase_ns: dict[str, int]
    wall_ns: int
    background_cpu_ns: int
    background_cpu_fraction: float
    sample_interval_ns: int
    host_root: bool
    tick_offset_ns: int
    timer_slack_ns: int | None


# ---- the builders (both sides) -------------------------------------------------------------------
def sched_class(policy: str) -> Literal["fair", "rt"]:
    """The scheduling class a policy runs in: ``rt`` for FIFO/RR, ``fair`` for the others."""
    return "rt" if policy in RT_POLICIES else "fair"


def latency_figures(latencies: Any) -> LatencyFigures | None:
    """p50/p99/max/mean of wakeup latencies (ns; a buffer or array of int64), None without
    wakeups."""
    if not len(latencies):
        return None
    values = (
        np.frombuffer(latencies, dtype=np.int64)
        if not isinstance(latencies, np.ndarray)
        else latencies
    )
    p50, p99 = np.percentile(values, [50, 99])
    return {
        "p50": round(float(p50)),
        "p99": round(float(p99)),
        "max": int(values.max()),
        "mean": round(float(values.mean())),
    }


def exit_figures(end: Mapping[str, Any] | None) -> ExitFigures | None:
    """A thread's end as the contract has it (time_ns, reason, and code when known)."""
    if end is None:
        return None
    figures: ExitFigures = {"time_ns": end["time_ns"], "reason": end["reason"]}
    if "code" in end:
        figures["code"] = end["code"]
    return figures


def task_figures(
    *,
    process: str,
    cgroup: str,
    nice: int,
    policy: str,
    cpu_time_ns: int,
    wait_time_ns: int,
    timeslices: int,
    nr_switches: int,
    nr_voluntary_switches: int,
    nr_involuntary_switches: int,
    nr_migrations: int,
    wakeups: int,
    wakeup_latency_ns: LatencyFigures | None,
    vruntime: int,
    max_rss_bytes: int | None,
    exit: Mapping[str, Any] | None,
) -> TaskFigures:
    """One thread's `TaskFigures` (``sched_class`` follows from `policy`)."""
    return {
        "process": process,
        "cgroup": cgroup,
        "nice": nice,
        "policy": policy,
        "sched_class": sched_class(policy),
        "cpu_time_ns": cpu_time_ns,
        "wait_time_ns": wait_time_ns,
        "timeslices": timeslices,
        "nr_switches": nr_switches,
        "nr_voluntary_switches": nr_voluntary_switches,
        "nr_involuntary_switches": nr_involuntary_switches,
        "nr_migrations": nr_migrations,
        "wakeups": wakeups,
        "wakeup_latency_ns": wakeup_latency_ns,
        "vruntime": vruntime,
        "max_rss_bytes": max_rss_bytes,
        "exit": exit_figures(exit),
    }


def cpu_stat_figures(
    *,
    nr_periods: int,
    nr_throttled: int,
    throttled_time: int,
    nr_bursts: int,
    burst_time: int,
    usage_ns: int | None = None,
) -> CpuStat:
    """``cpu.stat`` (times ns); with `usage_ns`, also v2's ``usage_usec`` … ``burst_usec`` (all
    usage counted as user time)."""
    stat: CpuStat = {
        "nr_periods": nr_periods,
        "nr_throttled": nr_throttled,
        "throttled_time": throttled_time,
        "nr_bursts": nr_bursts,
        "burst_time": burst_time,
    }
    if usage_ns is not None:
        stat["usage_usec"] = usage_ns // 1000
        stat["user_usec"] = usage_ns // 1000
        stat["system_usec"] = 0
        stat["throttled_usec"] = throttled_time // 1000
        stat["burst_usec"] = burst_time // 1000
    return stat


def cgroup_figures(files: Mapping[str, Any], where: str = "cgroup") -> CgroupFigures:
    """`files` (kernel file name → value) as `CgroupFigures`, after checking each against the
    contract: a builder that breaks it fails here, naming the file (`ContractError`)."""
    check_contract(files, CgroupFigures, where)
    return cast(CgroupFigures, files)


# ---- checking a value against the contract ----------------------------------------------------
class ContractError(ValueError):
    """A value that does not fit the result contract: where it is, what was expected, what was
    found (JSON text, shortened)."""

    def __init__(self, where: str, expected: str, found: str) -> None:
        super().__init__(f"expected {where} to be {expected}, found {found}")
        self.where, self.expected, self.found = where, expected, found


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__required_keys__")


def _describe(tp: Any) -> str:
    """A reader's name for the JSON values of type `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return "anything"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is Literal:
        return " or ".join(repr(arg) for arg in args)
    if origin is list:
        return "a list"
    if origin is dict or _is_typeddict(tp):
        return "an object"
    names = {
        int: "an integer",
        float: "a number",
        str: "a string",
        bool: "true or false",
        type(None): "null",
    }
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _fits(value: Any, tp: Any, where: str) -> bool:
    """Whether `value` has the JSON shape of `tp`; raises `ContractError` for a mismatch inside
    a list or object (so the innermost field is named)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return True
    if tp is type(None) or tp is None:
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is str:
        return isinstance(value, str)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if _fits_quietly(value, arg):
                return True
        # one non-null alternative that is a container: name the field inside it
        containers = [a for a in args if a is not type(None)]
        return len(containers) == 1 and _fits(value, containers[0], where)
    if origin is Literal:
        return value in args
    if origin is list:
        if not isinstance(value, list):
            return False
        for index, item in enumerate(value):
            check_contract(item, args[0], f"{where}[{index}]")
        return True
    if origin is dict:
        if not isinstance(value, dict):
            return False
        for key, item in value.items():
            check_contract(item, args[1], f"{where}[{json.dumps(key)}]")
        return True
    if _is_typeddict(tp):
        if not isinstance(value, Mapping):
            return False
        hints = typing.get_type_hints(tp)
        for key in hints:
            if key in tp.__required_keys__ and key not in value:
                raise ContractError(f"{where}[{json.dumps(key)}]", _describe(hints[key]), "nothing")
        for key, item in value.items():
            if key in hints:  # unknown keys (a newer writer's) are kept, not judged
                check_contract(item, hints[key], f"{where}[{json.dumps(key)}]")
        return True
    raise TypeError(f"the result contract has a type it cannot check: {tp!r}")


def _fits_quietly(value: Any, tp: Any) -> bool:
    try:
        return _fits(value, tp, "")
    except ContractError:
        return False


def check_contract(value: Any, tp: Any, where: str) -> None:
    """Raise `ContractError` naming the innermost field of `value` (at `where`) that does not
    fit the type `tp` (a contract TypedDict, or a JSON-shaped type)."""
    if not _fits(value, tp, where):
        raise ContractError(where, _describe(tp), _shown(value))


def _shown(value: Any) -> str:
    try:
        return json.dumps(value)[:60]
    except (TypeError, ValueError):
        return f"a Python {type(value).__name__}"


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
#: The typed fields, checked against the contract after `_FIELD_CHECKS`.
_CONTRACT: tuple[tuple[str, Any], ...] = (
    ("tasks", dict[str, TaskFigures]),
    ("cgroups", dict[str, CgroupFigures]),
    ("cpu", dict[str, dict[str, int]]),
    ("kills", list[KillFigures]),
    ("meta", RunMeta),
)
#: TaskFigures' counters (never negative).
_TASK_COUNTERS = (
    "cpu_time_ns",
    "wait_time_ns",
    "timeslices",
    "nr_switches",
    "nr_voluntary_switches",
    "nr_involuntary_switches",
    "nr_migrations",
    "wakeups",
)
#: The kernel's nice range (MIN_NICE, MAX_NICE).
_NICE_RANGE = (-20, 19)


def _check_ranges(data: Mapping[str, Any]) -> None:
    """Beyond the types (`check_contract`): counters, times and sizes not negative, nice within
    the kernel's range, latency percentiles ordered (p50 ≤ p99 ≤ max), CPU numbers below
    ``cpus``. Raises `ContractError` naming the field."""

    def at_least(where: str, value: Any, low: int, high: int | None = None) -> None:
        if _is_int(value) and (value < low or (high is not None and value > high)):
            span = f"an integer ≥ {low}" if high is None else f"an integer from {low} to {high}"
            raise ContractError(where, span, str(value))

    for name, fig in (data.get("tasks") or {}).items():
        where = f"tasks[{json.dumps(name)}]"
        for key in _TASK_COUNTERS:
            at_least(f'{where}["{key}"]', fig[key], 0)
        at_least(f'{where}["nice"]', fig["nice"], *_NICE_RANGE)
        at_least(f'{where}["max_rss_bytes"]', fig.get("max_rss_bytes"), 0)
        if fig.get("exit") is not None:
            at_least(f'{where}["exit"]["time_ns"]', fig["exit"]["time_ns"], 0)
        latency = fig.get("wakeup_latency_ns")
        if latency is not None:
            previous = 0
            for key in ("p50", "p99", "max"):
                at_least(f'{where}["wakeup_latency_ns"]["{key}"]', latency[key], previous)
                previous = latency[key]
            at_least(f'{where}["wakeup_latency_ns"]["mean"]', latency["mean"], 0, latency["max"])
    for path, fig in (data.get("cgroups") or {}).items():
        for key, value in (fig.get("cpu.stat") or {}).items():
            at_least(f'cgroups[{json.dumps(path)}]["cpu.stat"]["{key}"]', value, 0)
    cpus = data["cpus"]
    for cpu in data.get("cpu") or {}:
        if not (cpu.isdigit() and int(cpu) < cpus):
            raise ContractError(
                f"cpu[{json.dumps(cpu)[:40]}]",
                f"a CPU number from 0 to {cpus - 1}",
                json.dumps(cpu)[:40],
            )
    for index, kill in enumerate(data.get("kills") or ()):
        at_least(f'kills[{index}]["time_ns"]', kill["time_ns"], 0)


def _upgrade(data: dict[str, Any]) -> None:
    """Fill in what results written by older versions lack and can be derived: the twin's tasks
    had no ``sched_class`` (it follows from ``policy``)."""
    tasks = data.get("tasks")
    if not isinstance(tasks, dict):
        return
    for figures in tasks.values():
        if (
            isinstance(figures, dict)
            and "sched_class" not in figures
            and isinstance(figures.get("policy"), str)
        ):
            figures["sched_class"] = sched_class(figures["policy"])


@dataclass
class Result:
    """Figures of one run. ``source`` is ``"simulation"`` or ``"kernel"``."""

    source: str
    scenario: str
    policy: str
    cpus: int
    duration_ns: int
    seed: int | None
    tasks: dict[str, TaskFigures] = field(default_factory=dict)
    cgroups: dict[str, CgroupFigures] = field(default_factory=dict)
    cpu: dict[str, dict[str, int]] = field(default_factory=dict)
    kills: list[dict[str, Any]] = field(default_factory=list)
    meta: RunMeta = field(default_factory=lambda: RunMeta())
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
        source = Path(path)
        size = source.stat().st_size
        if size > MAX_RESULT_BYTES:
            raise ResultError(
                path, f"at most {MAX_RESULT_BYTES // 2**20} MiB of JSON", f"{size} bytes"
            )
        try:
            data = _json.loads(source.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            raise ResultError(
                path, expected, f"bytes that are not UTF-8 ({error.reason} at byte {error.start})"
            ) from None
        except _json.JsonInputError as error:
            raise ResultError(
                f"{path}:{error.line}:{error.col}", error.expected, error.found
            ) from None
        if not isinstance(data, dict):
            raise ResultError(path, expected, type(data).__name__)
        missing = [name for name, required, _, _ in _FIELD_CHECKS if required and name not in data]
        if missing:
            raise ResultError(path, expected, f"no {', '.join(missing)}")
        for name, _, wanted, ok in _FIELD_CHECKS:
            if name in data and not ok(data[name]):
                raise ResultError(path, f"{name} to be {wanted}", json.dumps(data[name])[:60])
        _upgrade(data)
        try:
            for name, tp in _CONTRACT:
                if name in data:
                    check_contract(data[name], tp, name)
            _check_ranges(data)
        except ContractError as error:
            raise ResultError(path, f"{error.where} to be {error.expected}", error.found) from None
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
            except TraceFormatError as error:
                raise ResultError(
                    src / TRACE_FILE, f"{error.where} to be {error.expected}", error.found
                ) from None
        return result

    def task_figure(self, name: str, key: str, default: Any = None) -> Any:
        """Figure `key` of task `name`, or `default` when the task or the figure is absent."""
        figures: Mapping[str, Any] = self.tasks.get(name) or {}
        return figures.get(key, default)

    # ---- tables ---------------------------------------------------------------------------
    def task_rows(self) -> list[dict[str, Any]]:
        """One flat row per task (nested dicts flattened with dots). A task without wakeups or
        an exit has the same columns as one with them (``wakeup_latency_ns.p50`` … ``.mean``,
        ``exit.time_ns``, ``exit.reason``, ``exit.code``), None there: never a column holding
        dicts and Nones."""
        return [
            {"task": name, **_flatten(fig, shapes=_TASK_SHAPES)} for name, fig in self.tasks.items()
        ]

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

    def trace_frame(self, table: str) -> Any:
        """One trace table (``segments``, ``wakeups``, ``migrations``, ``throttles``,
        ``periods``, ``memory``, ``kills``, ``vruntime``) as a pandas DataFrame: its int64
        columns (times ns, sizes bytes) with the ``task`` and ``cgroup`` indices replaced by
        their names, and kill ``reason`` codes by their words. Needs the trace (simulated runs,
        or ``measure --trace``) and the ``pandas`` extra."""
        import pandas as pd

        from .trace import KILL_REASONS, TABLES

        if table not in TABLES:
            raise ValueError(f"table: expected one of {', '.join(TABLES)}, found {table!r}")
        if self.trace is None:
            raise ValueError(
                "this result has no trace (measure with --trace, or load a "
                "directory with trace.npz)"
            )
        columns = dict(self.trace[table])
        names = {"task": self.trace.tasks, "cgroup": self.trace.cgroups}
        for column, labels in names.items():
            if column in columns:
                columns[column] = (
                    np.asarray(labels, dtype=object)[columns[column]]
                    if len(labels)
                    else columns[column].astype(object)
                )
        if table == "kills":
            columns["reason"] = np.asarray(KILL_REASONS, dtype=object)[columns["reason"]]
        return pd.DataFrame(columns)


#: TaskFigures' fields that may be null, and the keys they have when they are not.
_TASK_SHAPES: dict[str, tuple[str, ...]] = {
    "wakeup_latency_ns": tuple(LatencyFigures.__annotations__),
    "exit": ("time_ns", "reason", "code"),
}


def _flatten(
    data: Mapping[str, Any], prefix: str = "", shapes: Mapping[str, tuple[str, ...]] | None = None
) -> dict[str, Any]:
    """Nested dicts flattened with dots; a key of `shapes` always gives its keys' columns
    (None where the value is null or lacks one)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if shapes and key in shapes:
            inner = value if isinstance(value, Mapping) else {}
            flat.update({f"{name}.{sub}": inner.get(sub) for sub in shapes[key]})
        elif isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
