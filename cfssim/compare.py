"""Two `Result`s side by side: per task and per cgroup, value A, value B, absolute and relative
difference, and a verdict against `Tolerances`.

`compare(a, b)` treats `b` as the reference (typically ``a`` simulated, ``b`` measured on the
kernel): the relative difference is ``(a − b) / |b|``. Default tolerances are the real twin's
acceptance rules: per-task CPU time within 5% of the run's CPU capacity (CPUs ×
duration); ``nr_periods`` and ``nr_throttled`` within ±2; ``throttled_time`` within 20%; OOM
victims and their order identical, kill times within 10%. The same rules extend to the figures
they imply: a cgroup's ``cpuacct.usage`` is judged like a task's CPU time, ``nr_bursts`` like
``nr_periods``, ``burst_time`` like ``throttled_time``, ``oom_kill`` counts and exit reasons must be
equal, and exit times are judged like kill times. Wakeup latency (``wakeup_latency_ns``: the
simulation's, or the twin's from ``--trace``) is judged at p50 and p99 within the larger of one
scheduler tick and 30%: the tick is the kernel's unit of waiting here (a woken task that does not
preempt at once waits for the next tick's slice end), so a regime difference costs a tick while
wakeup costs of µs do not count. A percentile is judged only when both runs have enough wakeups
for it (`Tolerances.latency_min_wakeups`: 10 for p50, 100 for p99 — below that p99 is one sample);
otherwise, or when a run has no latency (measured without ``--trace``), it is ``info``; max and
mean are ``info``. Figures without a rule (wait time, timeslices, switches, memory peaks) are shown
with the verdict ``info``. All values are int ns, bytes, counts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .host import is_noise_process
from .result import Result, TaskFigures
from .units import NSEC_PER_MSEC, NSEC_PER_SEC, format_duration, format_size

PASS, FAIL, INFO = "pass", "fail", "info"
#: CONFIG_HZ of the measured machines, when neither run says its HZ
DEFAULT_HZ = 250


@dataclass(frozen=True)
class Tolerances:
    """How far A may be from the reference B before a figure fails.

    ``cpu_capacity_fraction`` is a fraction of the run's CPU capacity (CPUs × duration, ns);
    ``*_relative`` are fractions of |B|; ``count_absolute`` is in counts. A time difference
    below ``time_floor_ns`` always passes, so that 0 ns against 0.3 ms is not a 100% error.
    """

    cpu_capacity_fraction: float = 0.05
    count_absolute: int = 2
    throttled_time_relative: float = 0.20
    kill_time_relative: float = 0.10
    time_floor_ns: int = NSEC_PER_MSEC
    latency_relative: float = 0.30
    #: wakeups both runs need before a percentile of their latency is judged (p50, p99)
    latency_min_wakeups: tuple[tuple[str, int], ...] = (("p50", 10), ("p99", 100))


@dataclass(frozen=True)
class Row:
    """One compared figure. ``a``/``b`` are None when the figure is missing on that side."""

    kind: str  # "task" | "cgroup" | "kills"
    subject: str  # task name, cgroup path, or "order" / kill index for kills
    figure: str  # the kernel-file style key, e.g. "cpu.stat.nr_throttled"
    a: Any
    b: Any
    abs_diff: int | None
    rel_diff: float | None
    verdict: str  # PASS | FAIL | INFO
    rule: str  # the tolerance applied, in words ("" for INFO)


@dataclass
class Comparison:
    """The rows of a comparison and the two runs' labels."""

    labels: tuple[str, str]
    scenario: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Row]:
        return [row for row in self.rows if row.verdict == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "labels": list(self.labels),
            "ok": self.ok,
            "failures": len(self.failures),
            "notes": self.notes,
            "rows": [asdict(row) for row in self.rows],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"


# ---- rules -------------------------------------------------------------------------------------
#: A rule judges (a, b) and says in words what it allowed.
Rule = Callable[[int, int], tuple[bool, str]]


def within_capacity(capacity_ns: int, fraction: float) -> Rule:
    limit = int(capacity_ns * fraction)

    def rule(a: int, b: int) -> tuple[bool, str]:
        return abs(a - b) <= limit, f"±{format_duration(limit)} ({fraction:.0%} of capacity)"

    return rule


def within_count(limit: int) -> Rule:
    def rule(a: int, b: int) -> tuple[bool, str]:
        return abs(a - b) <= limit, f"±{limit}"

    return rule


def within_relative(fraction: float, floor_ns: int) -> Rule:
    def rule(a: int, b: int) -> tuple[bool, str]:
        allowed = max(int(abs(b) * fraction), floor_ns)
        return abs(a - b) <= allowed, f"±{fraction:.0%}, ≥ {format_duration(floor_ns)}"

    return rule


def identical(a: Any, b: Any) -> tuple[bool, str]:
    return a == b, "identical"


# ---- comparing ---------------------------------------------------------------------------------
def compare(
    a: Result,
    b: Result,
    tolerances: Tolerances | None = None,
    labels: tuple[str, str] | None = None,
) -> Comparison:
    """Compare `a` with the reference `b` figure by figure (tasks, cgroups, OOM kills)."""
    tol = tolerances or Tolerances()
    capacity = b.cpus * b.duration_ns
    cpu_rule = within_capacity(capacity, tol.cpu_capacity_fraction)
    count_rule = within_count(tol.count_absolute)
    time_rule = within_relative(tol.throttled_time_relative, tol.time_floor_ns)
    kill_rule = within_relative(tol.kill_time_relative, tol.time_floor_ns)
    task_rules: dict[str, Rule | None] = {
        "cpu_time_ns": cpu_rule,
        "wait_time_ns": None,
        "timeslices": None,
        "nr_switches": None,
        "exit.reason": identical,
        "exit.time_ns": kill_rule,
    }
    cgroup_rules: dict[str, Rule | None] = {
        "cpuacct.usage": cpu_rule,
        "cpu.stat.nr_periods": count_rule,
        "cpu.stat.nr_throttled": count_rule,
        "cpu.stat.throttled_time": time_rule,
        "cpu.stat.nr_bursts": count_rule,
        "cpu.stat.burst_time": time_rule,
        "memory.max_usage_in_bytes": None,
        "memory.failcnt": None,  # 36 in most kernel runs, more when the victim faults again
        "memory.oom_control.oom_kill": identical,
    }
    comparison = Comparison(labels or _labels(a, b), b.scenario or a.scenario)
    if (a.cpus, a.duration_ns) != (b.cpus, b.duration_ns):
        comparison.notes.append(
            f"the runs differ in shape: {a.cpus} CPUs × {format_duration(a.duration_ns)} against "
            f"{b.cpus} CPUs × {format_duration(b.duration_ns)}"
        )
    for warning in b.meta.get("warnings", []) + a.meta.get("warnings", []):
        comparison.notes.append(str(warning))
    rows = comparison.rows
    tasks_a, tasks_b = _workload(a, comparison.notes), _workload(b, comparison.notes)
    rows += _entities("task", tasks_a, tasks_b, task_rules)
    rows += _latencies(tasks_a, tasks_b, tol, tick_ns(a, b))
    rows += _entities("cgroup", a.cgroups, b.cgroups, cgroup_rules)
    rows += _kills(a.kills, b.kills, kill_rule)
    return comparison


def _workload(result: Result, notes: list[str]) -> dict[str, TaskFigures]:
    """`result`'s tasks less a simulated host's background noise, which the kernel side has as
    foreign tasks it does not report (their CPU time is in the note)."""
    noise = {name: t for name, t in result.tasks.items() if is_noise_process(t["process"])}
    if noise:
        total = sum(t["cpu_time_ns"] for t in noise.values())
        notes.append(
            f"{len(noise)} host-noise task(s) of the simulated host not compared "
            f"({format_duration(total)} of CPU)"
        )
    return {name: t for name, t in result.tasks.items() if name not in noise}


def tick_ns(a: Result, b: Result) -> int:
    """One scheduler tick of the runs, ns: the simulation's HZ (``meta.hz``), else HZ=250."""
    hz = a.meta.get("hz") or b.meta.get("hz") or DEFAULT_HZ
    return NSEC_PER_SEC // int(hz)


def _latencies(
    a: Mapping[str, Mapping[str, Any]],
    b: Mapping[str, Mapping[str, Any]],
    tol: Tolerances,
    tick: int,
) -> Iterator[Row]:
    """Each task's wakeup latency p50/p99 within max(one tick, ``latency_relative``) when both
    runs have it from enough wakeups (`Tolerances.latency_min_wakeups`); else, and for max and
    mean, ``info``."""
    rule = within_relative(tol.latency_relative, tick)
    needed = dict(tol.latency_min_wakeups)
    for name in dict.fromkeys([*b, *a]):
        fig_a, fig_b = a.get(name) or {}, b.get(name) or {}
        lat_a, lat_b = fig_a.get("wakeup_latency_ns"), fig_b.get("wakeup_latency_ns")
        if lat_a is None and lat_b is None:
            continue
        wakeups = min(int(fig_a.get("wakeups") or 0), int(fig_b.get("wakeups") or 0))
        for key in ("p50", "p99", "max", "mean"):
            value_a = None if lat_a is None else lat_a.get(key)
            value_b = None if lat_b is None else lat_b.get(key)
            judged = key in needed and wakeups >= needed[key]
            yield judge(
                "task",
                name,
                f"wakeup_latency_ns.{key}",
                value_a,
                value_b,
                rule if judged and None not in (value_a, value_b) else None,
            )


def _labels(a: Result, b: Result) -> tuple[str, str]:
    if a.source != b.source:
        return a.source, b.source
    return f"a ({a.source})", f"b ({b.source})"


def _entities(
    kind: str,
    a: Mapping[str, Mapping[str, Any]],
    b: Mapping[str, Mapping[str, Any]],
    rules: dict[str, Rule | None],
) -> Iterator[Row]:
    for name in dict.fromkeys([*b, *a]):
        fig_a, fig_b = a.get(name), b.get(name)
        for figure, rule in rules.items():
            value_a = None if fig_a is None else lookup(fig_a, figure)
            value_b = None if fig_b is None else lookup(fig_b, figure)
            if value_a is None and value_b is None and (fig_a is not None and fig_b is not None):
                continue  # a figure neither run has (no memory controller, no exit)
            yield judge(kind, name, figure, value_a, value_b, rule)


def lookup(figures: Mapping[str, Any], dotted: str) -> Any:
    """``figures["cpu.stat"]["nr_periods"]`` for ``"cpu.stat.nr_periods"`` (keys may hold dots)."""
    if dotted in figures:
        return figures[dotted]
    for key, value in figures.items():
        if dotted.startswith(key + ".") and isinstance(value, dict):
            return lookup(value, dotted[len(key) + 1 :])
    if dotted.startswith("exit.") and "exit" in figures and figures["exit"] is None:
        return "running" if dotted == "exit.reason" else None
    return None


def judge(kind: str, subject: str, figure: str, a: Any, b: Any, rule: Rule | None) -> Row:
    """One row: differences, and the verdict of `rule` (missing on one side fails)."""
    numeric = isinstance(a, int) and isinstance(b, int) and not isinstance(a, bool)
    abs_diff = a - b if numeric else None
    rel_diff = (a - b) / abs(b) if numeric and b else None
    if rule is None:
        return Row(kind, subject, figure, a, b, abs_diff, rel_diff, INFO, "")
    if a is None or b is None:
        if a is None and b is None:
            return Row(kind, subject, figure, a, b, None, None, PASS, "identical")
        return Row(kind, subject, figure, a, b, None, None, FAIL, "present in both")
    ok, words = rule(a, b)
    return Row(kind, subject, figure, a, b, abs_diff, rel_diff, PASS if ok else FAIL, words)


def oom_kills(kills: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """(time ns, process) of each OOM kill in order; kills by an event are not OOM kills. A
    process's threads killed at one instant are one kill (the simulator lists each thread, the
    twin the process; ``oom_kill_process`` kills the thread group and ``memory.oom_control``'s
    ``oom_kill`` counts it once)."""
    found = {
        (int(k.get("time_ns", 0)), str(k.get("process")))
        for k in kills
        if str(k.get("reason", "")).startswith("oom")
    }
    return sorted(found)


def kill_order(kills: list[dict[str, Any]]) -> list[str]:
    """The OOM victims (process names) in kill order."""
    return [process for _, process in oom_kills(kills)]


def _kills(a: list[dict[str, Any]], b: list[dict[str, Any]], time_rule: Rule) -> Iterator[Row]:
    """Victims and order must be identical; the n-th kill's time within the kill rule."""
    order_a, order_b = kill_order(a), kill_order(b)
    if not order_a and not order_b:
        return
    yield judge("kills", "order", "victims", " → ".join(order_a), " → ".join(order_b), identical)
    times_a = _oom_times(a)
    times_b = _oom_times(b)
    for index in range(max(len(times_a), len(times_b))):
        time_a = times_a[index] if index < len(times_a) else None
        time_b = times_b[index] if index < len(times_b) else None
        yield judge("kills", f"#{index + 1}", "time_ns", time_a, time_b, time_rule)


def _oom_times(kills: list[dict[str, Any]]) -> list[int]:
    return [time_ns for time_ns, _ in oom_kills(kills)]


# ---- formatting --------------------------------------------------------------------------------
def format_value(figure: str, value: Any) -> str:
    """A compared value in human units, judged by its figure name."""
    if value is None:
        return "–"
    if isinstance(value, bool) or not isinstance(value, int):
        return str(value)
    if figure.endswith(("_ns", "_time", "usage", "time_ns")):
        return format_duration(value)
    if figure.endswith("bytes"):
        return format_size(value) if value >= 0 else "unlimited"
    return f"{value:,}"


def format_difference(row: Row) -> tuple[str, str]:
    """(absolute, relative) difference as text."""
    if row.abs_diff is None:
        return "", ""
    sign = "+" if row.abs_diff > 0 else "−" if row.abs_diff < 0 else ""
    absolute = sign + format_value(row.figure, abs(row.abs_diff))
    relative = "" if row.rel_diff is None else f"{row.rel_diff:+.1%}"
    return absolute, relative


def rich_table(comparison: Comparison, *, verdicts_only: bool = False) -> Any:
    """A `rich.table.Table` of the comparison (only judged rows when `verdicts_only`)."""
    from rich.table import Table

    label_a, label_b = comparison.labels
    table = Table(title=f"{comparison.scenario}: {label_a} vs {label_b}")
    for column in ("", "figure", label_a, label_b, "difference", "relative", "verdict", "rule"):
        table.add_column(column, justify="left" if column in ("", "figure", "rule") else "right")
    styles = {PASS: "green", FAIL: "bold red", INFO: "dim"}
    subject = None
    for row in comparison.rows:
        if verdicts_only and row.verdict == INFO:
            continue
        shown = row.subject if row.subject != subject else ""
        subject = row.subject
        absolute, relative = format_difference(row)
        table.add_row(
            shown,
            row.figure,
            format_value(row.figure, row.a),
            format_value(row.figure, row.b),
            absolute,
            relative,
            f"[{styles[row.verdict]}]{row.verdict}[/]",
            row.rule,
        )
    return table
