"""Random-scenario fidelity: scenarios nobody picked by hand, each run several times on this
kernel and simulated with the calibrated machine profile and on the ideal machine; the pass rate
per figure class — and the pass rate the same judging gives one more run of the kernel itself.

    python benchmarks/fidelity_random.py [--count 100] [--seed 1] [--duration 2.5s] [--quick]
                                         [--runs 4] [--out DIR] [--profile default|FILE]
    python benchmarks/fidelity_random.py --from DIR [--complete] [--simulate]

The scenarios have the shapes users write: 1–8 processes (1–3 threads, at most 8 threads in
all) of hogs, run/sleep loops, periodic timers and allocators; nice −10…19; affinity to one CPU;
0–3 cgroups (v1 or v2 files) with shares/weight, quota/period, burst, nesting and memory limits.
Each lasts 2–3 s (``--duration`` fixes it); scenario *i* of ``--seed N`` is a pure function of
(N, i), so ``--seed N`` reproduces the set and ``--out`` keeps every scenario's YAML, its kernel
runs and simulations for a re-run (``--from DIR``; ``cfssim compare DIR/NAME/scenario.yaml``).

Judging (`judge_scenario`): every figure `cfssim.compare.compare` judges, by its verdicts, plus
rules for the figures it shows as ``info``: wait time within 20% (≥ 1 ms), timeslices within
20% (≥ 2), wakeup latency p50/p99 within 20% (≥ 1 ms; the kernel's from a tracefs capture),
memory peak within 10% (≥ 1 MiB). A figure passes within the rule of some reference run, or
where another run of the kernel could be (`within_kernel_spread`): with three or more reference
runs, inside their 95% prediction interval. Why not a fixed tolerance alone: scheduling figures
of mixed workloads are chaotic — two runs of the kernel differ by more than 20% in a third of
their wait and timeslice figures (docs/kernel-facts.md#random-fidelity), so under a fixed rule
the kernel fails against itself. With ``--runs N`` (default 4) the first N − 1 runs are the
reference and the last is judged like a simulation: its column ("kernel replica") is what the
judging gives a perfect simulator, the ceiling against which the simulation's rate reads. A
scenario whose kernel runs saw more than 10% background load (CPU time outside the scenario ÷
capacity, ``meta.background_cpu_fraction``) is measured but not judged, and the output says so;
a run so loaded is measured again up to ``--retries`` times first, and ``--from DIR --complete``
brings a saved set to ``--runs`` quiet runs per scenario before judging it.

**Target: ≥ 95% of judged figures within tolerance over ≥ 100 random scenarios on a quiet
machine** (overall; each class is printed beside the kernel replica's, which shows how much of a
class's shortfall is the kernel's own noise; the last run is in
docs/kernel-facts.md#random-fidelity).
Needs root and cgroups.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from cfssim.compare import INFO, PASS, Row, Rule, compare, judge, lookup, within_relative
from cfssim.real import RealRunError, measure
from cfssim.real.errors import Refused
from cfssim.real.measure import as_measured
from cfssim.result import Result, latency_figures
from cfssim.scenario import Scenario, load_scenario
from cfssim.scenario.yaml_io import dump_data
from cfssim.sched.core import FAIR_POLICIES
from cfssim.simulation import run_scenario
from cfssim.units import NSEC_PER_MSEC, NSEC_PER_SEC, format_duration, parse_duration

FALLBACK_POLICY = "cfs"
MAX_BACKGROUND = 0.10  # of capacity: above it a scenario is not judged
#: the sampler splits timeslices (docs/kernel-facts.md#twin-sampler-timeslices): sample seldom
SAMPLE_INTERVAL_NS = NSEC_PER_SEC
MAX_THREADS = 8
MIB = 1 << 20

# ---- the generator -----------------------------------------------------------------------------
PERIODS_US = (100_000, 100_000, 100_000, 50_000, 200_000, 20_000)
CPU_RATIOS = (0.1, 0.2, 0.3, 0.5, 0.5, 0.7, 1.0, 1.5)
MEMORY_LIMITS_MIB = (48, 64, 100, 128, 200)
SHARES = (128, 256, 512, 1024, 1024, 2048, 4096)
WEIGHTS = (10, 50, 100, 100, 200, 400)
RUNS_MS = (0.5, 1, 2, 5, 10, 20)
SLEEPS_MS = (1, 2, 5, 10, 20, 50)
TIMER_PERIODS_MS = (10, 20, 50, 100, 200)
KINDS = ("hog",) * 3 + ("runsleep",) * 3 + ("timer",) * 2 + ("alloc",) * 2


def _ms(value: float) -> str:
    return f"{value:g}ms"


@dataclass
class _Group:
    path: str
    ratio: float | None  # the tightest quota/period on the path (None: unlimited)
    memory: bool  # a memory limit on itself or an ancestor


def random_scenario(seed: int, index: int, duration_ns: int | None = None) -> dict[str, Any]:
    """Scenario `index` of set `seed` as YAML-shaped data: a pure function of its arguments."""
    rng = random.Random(f"cfssim-fidelity-random:{seed}:{index}")
    duration_ns = duration_ns or rng.choice((4, 5, 6)) * NSEC_PER_SEC // 2
    v2 = rng.random() < 0.3
    cgroups: dict[str, dict[str, Any]] = {}
    groups: list[_Group] = []
    for number in range(rng.choice((0, 1, 1, 2, 2, 3))):
        parent = rng.choice(groups) if groups and rng.random() < 0.35 else None
        path = f"{parent.path if parent else ''}/g{number}"
        files: dict[str, Any] = {}
        if rng.random() < 0.5:
            files.update(
                {"cpu.weight": rng.choice(WEIGHTS)} if v2 else {"cpu.shares": rng.choice(SHARES)}
            )
        ratio = parent.ratio if parent else None
        if rng.random() < 0.55:
            # v1 refuses a child ratio above its ancestors' (__cfs_schedulable): stay at or under
            own = min(rng.choice(CPU_RATIOS), ratio if ratio is not None else 2.0)
            period_us = rng.choice(PERIODS_US)
            quota_us = max(1000, int(own * period_us))
            burst_us = rng.randint(1, quota_us // 1000) * 1000 if rng.random() < 0.3 else 0
            if v2:
                files["cpu.max"] = f"{quota_us} {period_us}"
                if burst_us:
                    files["cpu.max.burst"] = burst_us
            else:
                files.update({"cpu.cfs_period_us": period_us, "cpu.cfs_quota_us": quota_us})
                if burst_us:
                    files["cpu.cfs_burst_us"] = burst_us
            ratio = quota_us / period_us
        memory = parent.memory if parent else False
        if rng.random() < 0.3:
            limit = f"{rng.choice(MEMORY_LIMITS_MIB)}M"
            files["memory.max" if v2 else "memory.limit_in_bytes"] = limit
            memory = True
        cgroups[path] = files
        groups.append(_Group(path, ratio, memory))
    processes: list[dict[str, Any]] = []
    threads_left = MAX_THREADS
    for number in range(rng.randint(1, MAX_THREADS)):
        if threads_left == 0:
            break
        kind = rng.choice(KINDS)
        threads = min(threads_left, rng.choice((1, 1, 1, 2, 3)))
        threads_left -= threads
        spec: dict[str, Any] = {"name": f"{kind}{number}"}
        if kind == "alloc":
            limited = [g for g in groups if g.memory]
            if not limited:  # the twin refuses an allocator without a memory limit above it
                path = f"/mem{number}"
                cgroups[path] = {
                    (
                        "memory.max" if v2 else "memory.limit_in_bytes"
                    ): f"{rng.choice(MEMORY_LIMITS_MIB)}M"
                }
                limited = [_Group(path, None, True)]
                groups.append(limited[0])
            spec["cgroup"] = rng.choice(limited).path
        else:
            choices = ["/", *(g.path for g in groups)]
            spec["cgroup"] = rng.choice(choices)
        if spec["cgroup"] == "/":
            del spec["cgroup"]
        if threads > 1:
            spec["threads"] = threads
        if rng.random() < 0.4:
            spec["nice"] = rng.randint(-10, 19)
        if rng.random() < 0.25:
            spec["cpus"] = [rng.randint(0, 1)]
        spec.update(_program(rng, kind, duration_ns))
        processes.append(spec)
    data: dict[str, Any] = {
        "name": f"random-{seed}-{index}",
        "description": f"random scenario {index} of seed {seed} (benchmarks/fidelity_random.py)",
        "duration": format_duration(int(duration_ns)).replace(" ", ""),
        "seed": seed,
        "machine": {"cpus": 2},
    }
    if cgroups:
        data["cgroups"] = cgroups
    data["processes"] = processes
    return data


def _program(rng: random.Random, kind: str, duration_ns: int) -> dict[str, Any]:
    """The `repeat`/`program` keys of one process of `kind`."""
    if kind == "hog":
        return {"repeat": "forever", "program": [{"run": "forever"}]}
    if kind == "runsleep":
        run, sleep = rng.choice(RUNS_MS), rng.choice(SLEEPS_MS)
        return {"repeat": "forever", "program": [{"run": _ms(run)}, {"sleep": _ms(sleep)}]}
    if kind == "timer":
        period = rng.choice(TIMER_PERIODS_MS)
        run = rng.choice([r for r in RUNS_MS if r < period * 0.6])
        return {"repeat": "forever", "program": [{"run": _ms(run)}, {"timer": _ms(period)}]}
    chunk = rng.choice((1, 2, 4, 8))
    pause = rng.choice((10, 20, 50))
    rounds = max(1, min(int(duration_ns / NSEC_PER_MSEC * 0.8) // (pause + 1), 256 // chunk))
    return {
        "program": [
            {
                "loop": {
                    "repeat": rounds,
                    "program": [{"alloc": f"{chunk}MiB"}, {"run": "1ms"}, {"sleep": _ms(pause)}],
                }
            },
            {"sleep": "60s"},
        ]
    }


def scenario_text(seed: int, index: int, duration_ns: int | None = None) -> str:
    """Scenario `index` of set `seed` as scenario YAML."""
    return dump_data(random_scenario(seed, index, duration_ns))


def scenario_set(count: int, seed: int, duration_ns: int | None = None) -> list[Scenario]:
    """The `count` scenarios of set `seed`, validated by the project's loader."""
    return [load_scenario(scenario_text(seed, index, duration_ns)) for index in range(count)]


# ---- judging -----------------------------------------------------------------------------------
#: figure class → the figures in it (compare.py's names; wakeup latency's are this module's)
CLASSES: dict[str, tuple[str, ...]] = {
    "CPU time": ("cpu_time_ns", "cpuacct.usage"),
    "wait": ("wait_time_ns",),
    "timeslices": ("timeslices",),
    "wakeup latency": ("wakeup_latency_ns.p50", "wakeup_latency_ns.p99"),
    "bandwidth": ("cpu.stat.nr_periods", "cpu.stat.nr_throttled", "cpu.stat.throttled_time"),
    "bursts": ("cpu.stat.nr_bursts", "cpu.stat.burst_time"),
    "OOM": ("victims", "time_ns", "exit.reason", "exit.time_ns", "memory.oom_control.oom_kill"),
    "memory peak": ("memory.max_usage_in_bytes",),
}
CLASS_OF = {figure: name for name, figures in CLASSES.items() for figure in figures}
#: rules for what compare.py shows as info
EXTRA_RULES: dict[str, Rule] = {
    "wait_time_ns": within_relative(0.20, NSEC_PER_MSEC),
    "timeslices": within_relative(0.20, 2),
    "wakeup_latency_ns.p50": within_relative(0.20, NSEC_PER_MSEC),
    "wakeup_latency_ns.p99": within_relative(0.20, NSEC_PER_MSEC),
    "memory.max_usage_in_bytes": within_relative(0.10, MIB),
}
Key = tuple[str, str, str]  # kind, subject, figure
#: wakeup latency is judged for a task the kernel woke at least this often (a hog's one wakeup
#: at the start barrier is no latency figure)
MIN_WAKEUPS = 5


def with_trace_latencies(result: Result) -> Result:
    """`result` with each task's wakeup latency (p50/p99/max/mean) from its trace's wakeups, where
    its figures have none (the twin's come from a tracefs capture)."""
    if result.trace is None:
        return result
    wakeups = result.trace["wakeups"]
    names = list(result.trace.tasks)
    for name, figures in result.tasks.items():
        if figures.get("wakeup_latency_ns") is None and name in names:
            mine = wakeups["latency"][
                (wakeups["task"] == names.index(name)) & (wakeups["latency"] >= 0)
            ]
            figures["wakeup_latency_ns"] = latency_figures(np.asarray(mine, dtype=np.int64))
    return result


def judged_rows(a: Result, b: Result) -> dict[Key, Row]:
    """compare.py's rows of `a` against `b`, its info rows judged by `EXTRA_RULES`, and wakeup
    latency rows of the tasks `b` woke `MIN_WAKEUPS` times; only figures in a class (compare
    leaves the simulated host's noise tasks out)."""
    rows: dict[Key, Row] = {}
    for row in compare(a, b).rows:
        if row.figure in CLASSES["wakeup latency"]:
            continue  # judged below, for the tasks the kernel woke often enough
        rule = EXTRA_RULES.get(row.figure)
        if row.verdict == INFO and rule is not None:
            row = judge(row.kind, row.subject, row.figure, row.a, row.b, rule)
        if row.figure in CLASS_OF and row.verdict != INFO:  # (compare leaves host noise out)
            rows[(row.kind, row.subject, row.figure)] = row
    for name, figures in b.tasks.items():
        if figures.get("wakeups", 0) < MIN_WAKEUPS:
            continue
        for figure in CLASSES["wakeup latency"]:
            fig_a = _latency(a.tasks.get(name), figure)
            fig_b = _latency(figures, figure)
            rows[("task", name, figure)] = judge(
                "task", name, figure, fig_a, fig_b, EXTRA_RULES[figure]
            )
    return rows


def _latency(figures: Mapping[str, Any] | None, figure: str) -> int | None:
    if figures is None or figures.get("wakeup_latency_ns") is None:
        return None
    value = lookup(figures, figure)
    return int(value) if value is not None else None


@dataclass
class Verdict:
    """One judged figure of one scenario: a simulation (or a kernel replica) against the
    reference kernel runs."""

    scenario: str
    kind: str
    subject: str
    figure: str
    sim: Any
    kernel: tuple[Any, ...]
    passed: bool
    rule: str

    @property
    def figure_class(self) -> str:
        return CLASS_OF[self.figure]


def judge_scenario(sim: Result, kernel: Sequence[Result]) -> list[Verdict]:
    """Every classed figure of `sim` against the reference kernel runs: it passes within the
    rule of some run, or where the runs themselves disagree, as one more run would
    (`within_kernel_spread`)."""
    per_run = [judged_rows(sim, run) for run in kernel]
    verdicts = []
    for key in dict.fromkeys(k for rows in per_run for k in rows):
        rows = [r[key] for r in per_run if key in r]
        refs = tuple(r[key].b if key in r else None for r in per_run)
        passed = any(r.verdict == PASS for r in rows) or within_kernel_spread(rows[0].a, refs)
        verdicts.append(Verdict(sim.scenario, *key, rows[0].a, refs, passed, rows[0].rule))
    return verdicts


#: two-sided 95% quantiles of Student's t by degrees of freedom (k reference runs: k − 1)
T_975 = {
    1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
    10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
    18: 2.101, 19: 2.093, 20: 2.086,
}  # fmt: skip
MAX_RUNS = max(T_975) + 2  # reference runs + the replica


def within_kernel_spread(sim: Any, refs: Sequence[Any]) -> bool:
    """Is `sim` where another kernel run could be, given the reference runs `refs`?

    Two runs: no further from the nearer run than they are from each other. Three or more:
    inside their 95% prediction interval, mean ± t(0.975, k−1)·s·√(1 + 1/k) (s the runs'
    sample standard deviation) — the interval a further run of the same kernel falls in 95%
    of the time, so a perfect simulator fails a figure 5% of the time, not the one in three
    the two-run rule gives a figure whose noise exceeds the tolerance."""
    values = [sim, *refs]
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return False
    k = len(refs)
    if k == 2:
        return min(abs(sim - refs[0]), abs(sim - refs[1])) <= abs(refs[0] - refs[1])
    if k < 2:
        return False
    mean = sum(refs) / k
    sd = math.sqrt(sum((r - mean) ** 2 for r in refs) / (k - 1))
    t = T_975.get(k - 1, T_975[max(T_975)])  # beyond the table: its last, a little wide
    return abs(sim - mean) <= t * sd * math.sqrt(1 + 1 / k)


# ---- running -----------------------------------------------------------------------------------
#: the label of the last kernel run, judged against the others like a simulation
REPLICA = "kernel replica"
RUNS = 4  # kernel runs per scenario: the last is the replica when there are three or more
RETRIES = 3  # re-measurements of a run the host's background load spoiled
RETRY_PAUSE_S = 2.0  # between them: others' work on a shared machine comes and goes


@dataclass
class Outcome:
    """One scenario's runs: background load of each kernel run, verdicts per label (each
    profile's simulation, and the kernel replica)."""

    name: str
    background: tuple[float, ...]
    verdicts: dict[str, list[Verdict]] = field(default_factory=dict)  # label → verdicts
    skipped: str | None = None

    max_background: float = MAX_BACKGROUND

    @property
    def judged(self) -> bool:
        return self.skipped is None and max(self.background) <= self.max_background


def background_of(result: Result) -> float:
    return float(result.meta.get("background_cpu_fraction", 0.0))


def phase_run(kernel: Sequence[Result]) -> Result:
    """The kernel run whose tick and period phases a simulation takes (`as_measured`): the
    replica's when there is one, so that the simulation, like the replica, is judged against
    reference runs it did not start from; else the first."""
    return kernel[-1] if len(kernel) >= 3 else kernel[0]


def simulate(scenario: Scenario, kernel: Result, profile: str | None) -> Result:
    """`scenario` simulated as the kernel ran it (its tick phase: `as_measured`) on `profile`."""
    policy: str = scenario.machine.policy
    policy = policy if policy in FAIR_POLICIES else FALLBACK_POLICY
    return run_scenario(as_measured(kernel, scenario, profile=profile), policy=policy)


def judge_runs(
    name: str,
    kernel: Sequence[Result],
    sims: Mapping[str, Result],
    max_background: float = MAX_BACKGROUND,
) -> Outcome:
    """Judge each simulation against the reference runs: all kernel runs but the last when
    there are three or more (the last is then judged too, as `REPLICA`: what the rule gives
    the kernel itself), else both."""
    refs = kernel[:-1] if len(kernel) >= 3 else kernel
    outcome = Outcome(name, tuple(background_of(k) for k in kernel), max_background=max_background)
    for label, sim in sims.items():
        outcome.verdicts[label] = judge_scenario(sim, refs)
    if len(kernel) >= 3:
        outcome.verdicts[REPLICA] = judge_scenario(kernel[-1], refs)
    return outcome


def measure_quiet(scenario: Scenario, max_background: float, retries: int) -> Result:
    """One traced kernel run of `scenario`, measured again up to `retries` times while the
    host's background load exceeds `max_background` (others' work on a shared machine comes
    and goes); the least loaded run is kept."""
    best: Result | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(RETRY_PAUSE_S)
        run = with_trace_latencies(
            measure(scenario, trace=True, sample_interval_ns=SAMPLE_INTERVAL_NS)
        )
        if best is None or background_of(run) < background_of(best):
            best = run
        if background_of(best) <= max_background:
            break
    assert best is not None
    return best


def run_one(
    scenario: Scenario,
    text: str,
    profiles: Mapping[str, str | None],
    out: Path | None,
    max_background: float = MAX_BACKGROUND,
    runs: int = RUNS,
    retries: int = RETRIES,
) -> Outcome:
    """Measure `scenario` `runs` times (`measure_quiet`), simulate it once per profile, judge
    (`judge_runs`)."""
    kernel = [measure_quiet(scenario, max_background, retries) for _ in range(runs)]
    sims = {
        label: simulate(scenario, phase_run(kernel), profile) for label, profile in profiles.items()
    }
    outcome = judge_runs(scenario.name, kernel, sims, max_background)
    if out is not None:
        where = out / scenario.name
        where.mkdir(parents=True, exist_ok=True)
        (where / "scenario.yaml").write_text(text)
        for number, result in enumerate(kernel, 1):
            result.save(where / f"kernel-{number}")
        for label, sim in sims.items():
            sim.save(where / f"sim-{label}")
        (where / "verdicts.json").write_text(
            json.dumps(
                {
                    "background": outcome.background,
                    **{label: [v.__dict__ for v in vs] for label, vs in outcome.verdicts.items()},
                },
                indent=1,
                default=str,
            )
            + "\n"
        )
    return outcome


def complete(
    directory: Path,
    runs: int,
    max_background: float = MAX_BACKGROUND,
    retries: int = RETRIES,
    echo: Callable[[str], None] = print,
) -> None:
    """Bring every scenario an earlier ``--out`` saved in `directory` to `runs` kernel runs
    at most `max_background` each: measure the missing ones and again those measured above
    it (`measure_quiet`; a run is replaced only by a quieter one)."""
    for where in sorted(p for p in directory.iterdir() if (p / "scenario.yaml").is_file()):
        scenario = load_scenario((where / "scenario.yaml").read_text())
        for number in range(1, runs + 1):
            path = where / f"kernel-{number}"
            saved = Result.load(path) if path.is_dir() else None
            if saved is not None and background_of(saved) <= max_background:
                continue
            run = measure_quiet(scenario, max_background, retries)
            if saved is None or background_of(run) < background_of(saved):
                shutil.rmtree(path, ignore_errors=True)
                run.save(path)
                saved = run
            echo(f"{where.name}: kernel-{number} background {background_of(saved):.0%}")


def pass_rates(
    outcomes: Iterable[Outcome], label: str, loaded: bool = False
) -> dict[str, tuple[int, int]]:
    """figure class → (passed, judged) over the judged scenarios (with `loaded`, also those
    measured above the background cap); "all" for every class."""
    counts = {name: [0, 0] for name in [*CLASSES, "all"]}
    for outcome in outcomes:
        if outcome.skipped or not (outcome.judged or loaded):
            continue
        for verdict in outcome.verdicts.get(label, []):
            for name in (verdict.figure_class, "all"):
                counts[name][0] += verdict.passed
                counts[name][1] += 1
    return {name: (passed, judged) for name, (passed, judged) in counts.items()}


def rate_table(
    outcomes: list[Outcome],
    labels: Iterable[str],
    max_background: float = MAX_BACKGROUND,
    loaded: bool = False,
) -> Table:
    """Pass rates per class and profile; with `loaded`, over every measured scenario whatever
    its background load (what a loaded machine gives: not a fidelity figure)."""
    if loaded:
        title = (
            f"every measured scenario, background load ignored ({len(outcomes)}; "
            "the host's load is in the kernel's figures: not a fidelity figure)"
        )
    else:
        judged = sum(o.judged for o in outcomes)
        title = (
            f"random-scenario fidelity: {judged} of {len(outcomes)} scenarios judged "
            f"(background ≤ {max_background:.0%})"
        )
    board = Table(title=title)
    board.add_column("figure class")
    rates = {label: pass_rates(outcomes, label, loaded) for label in labels}
    for label in rates:
        board.add_column(f"pass ({label})", justify="right")
    for name in [*CLASSES, "all"]:
        cells = []
        for label in rates:
            passed, total = rates[label][name]
            cells.append("–" if not total else f"{passed}/{total} {passed / total:.0%}")
        board.add_row(name, *cells)
    return board


def failure_lines(
    outcomes: list[Outcome], label: str, per_class: int = 3, loaded: bool = False
) -> list[str]:
    """The worst failures of each class under profile `label` (largest relative miss first), of
    the judged scenarios (with `loaded`, of every measured one)."""
    lines = []
    for name in CLASSES:
        failed = [
            v
            for o in outcomes
            if o.judged or (loaded and not o.skipped)
            for v in o.verdicts.get(label, [])
            if v.figure_class == name and not v.passed
        ]
        failed.sort(key=_miss, reverse=True)
        for verdict in failed[:per_class]:
            lines.append(
                f"  [{name}] {verdict.scenario}: {verdict.subject} {verdict.figure}: "
                f"sim {_show(verdict.sim)} vs kernel "
                f"{', '.join(_show(k) for k in verdict.kernel)} (rule {verdict.rule})"
            )
    return lines


def rejudge(
    directory: Path,
    max_background: float = MAX_BACKGROUND,
    profiles: dict[str, str | None] | None = None,
) -> list[Outcome]:
    """The outcomes of the runs an earlier ``--out`` saved in `directory` (``kernel-1``,
    ``kernel-2``, …), judged again (no kernel run): the saved simulations, or — given
    `profiles` — simulations of the saved scenarios made now (the current simulator)."""
    outcomes = []
    for where in sorted(p for p in directory.iterdir() if (p / "kernel-2").is_dir()):
        kernel: list[Result] = []
        while (where / f"kernel-{len(kernel) + 1}").is_dir():
            kernel.append(with_trace_latencies(Result.load(where / f"kernel-{len(kernel) + 1}")))
        if profiles is None:
            sims = {
                p.name.removeprefix("sim-"): Result.load(p) for p in sorted(where.glob("sim-*"))
            }
        else:
            scenario = load_scenario((where / "scenario.yaml").read_text())
            sims = {
                label: simulate(scenario, phase_run(kernel), profile)
                for label, profile in profiles.items()
            }
        outcomes.append(judge_runs(where.name, kernel, sims, max_background))
    return outcomes


def _miss(verdict: Verdict) -> float:
    k = [v for v in verdict.kernel if isinstance(v, int)]
    if not isinstance(verdict.sim, int) or not k:
        return float("inf")
    ref = min(k, key=lambda v: abs(verdict.sim - v))
    return abs(verdict.sim - ref) / max(abs(ref), 1)


def _show(value: Any) -> str:
    return "–" if value is None else str(value)


def main(argv: list[str] | None = None, echo: Callable[[str], None] = print) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--count", type=int, help="how many scenarios (default 100; 5 --quick)")
    parser.add_argument("--seed", type=int, default=1, help="the set (default 1)")
    parser.add_argument("--duration", help="every scenario's duration (default 2–3 s; 1s --quick)")
    parser.add_argument("--quick", action="store_true", help="5 scenarios of 1 s unless told")
    parser.add_argument("--out", type=Path, help="save each scenario's YAML, runs and verdicts")
    parser.add_argument(
        "--runs",
        type=int,
        default=RUNS,
        help=f"kernel runs per scenario (default {RUNS}; 2 or more): from three on, the last "
        "is judged against the others as a simulation is (the 'kernel replica' column)",
    )
    parser.add_argument(
        "--max-background",
        type=float,
        default=MAX_BACKGROUND,
        help="judge only scenarios whose kernel runs saw at most this background "
        "load (fraction of capacity; default 0.10: above it the kernel's "
        "figures are the host's as much as the scenario's)",
    )
    parser.add_argument(
        "--from",
        dest="saved",
        type=Path,
        metavar="DIR",
        help="judge again the runs an earlier --out saved in DIR (no runs)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=RETRIES,
        help=f"measure a run again up to this many times while the background load is above "
        f"--max-background (default {RETRIES}; the least loaded run is kept)",
    )
    parser.add_argument(
        "--complete",
        action="store_true",
        help="with --from: first bring every saved scenario to --runs kernel runs under the "
        "background cap (measure what is missing or loaded), then simulate and judge",
    )
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="with --from: simulate the saved scenarios again with this "
        "simulator and profile instead of judging the saved simulations",
    )
    parser.add_argument(
        "--profile",
        default="default",
        help="the calibrated profile: 'default' or a profile YAML file",
    )
    args = parser.parse_args(argv)
    count = args.count if args.count is not None else 5 if args.quick else 100
    if args.retries < 0:
        parser.error(f"--retries: expected 0 or more, found {args.retries}")
    if not 2 <= args.runs <= MAX_RUNS:
        parser.error(f"--runs: expected 2 to {MAX_RUNS} kernel runs, found {args.runs}")
    duration = args.duration or ("1s" if args.quick else None)
    duration_ns = parse_duration(duration) if duration else None
    profile = args.profile if args.profile == "default" else str(Path(args.profile).resolve())
    profiles: dict[str, str | None] = {"profile": profile, "ideal": None}
    console = Console(width=160)
    if args.saved is not None:
        if args.complete:  # replaced runs move the phases: the saved simulations are stale
            complete(args.saved, args.runs, args.max_background, args.retries, echo)
        simulate_now = args.simulate or args.complete
        outcomes = rejudge(args.saved, args.max_background, profiles if simulate_now else None)
        counts = sorted({len(o.background) for o in outcomes})
        if len(counts) > 1:
            echo(
                f"note: the saved scenarios have {', '.join(map(str, counts))} kernel runs: "
                "each is judged by its own count's rule (--complete evens them)"
            )
        labels = list(dict.fromkeys(label for o in outcomes for label in o.verdicts))
        report(console, outcomes, labels, args.max_background, echo)
        return 0
    labels = [*profiles, *([REPLICA] if args.runs >= 3 else [])]
    outcomes = []
    for index in range(count):
        text = scenario_text(args.seed, index, duration_ns)
        scenario = load_scenario(text)
        started = time.monotonic()
        try:
            outcome = run_one(
                scenario, text, profiles, args.out, args.max_background, args.runs, args.retries
            )
        except Refused as exc:
            outcome = Outcome(scenario.name, (0.0,) * args.runs, skipped=exc.message)
        except RealRunError as exc:  # the set so far is still worth its table
            report(console, outcomes, labels, args.max_background, echo)
            print(f"{scenario.name}: cannot measure: {exc.message}", file=sys.stderr)
            return exc.exit_status
        outcomes.append(outcome)
        echo(_progress_line(outcome, time.monotonic() - started))
    report(console, outcomes, labels, args.max_background, echo)
    return 0


def report(
    console: Console,
    outcomes: list[Outcome],
    labels: list[str],
    max_background: float,
    echo: Callable[[str], None],
) -> None:
    """The pass-rate table(s) and the worst failures per class."""
    console.print(rate_table(outcomes, labels, max_background))
    loaded = any(not o.judged and not o.skipped for o in outcomes)
    if loaded:
        console.print(rate_table(outcomes, labels, max_background, loaded=True))
    for label in labels:
        lines = failure_lines(outcomes, label, loaded=loaded)
        if lines:
            echo(f"worst failures ({label}{', background load ignored' if loaded else ''}):")
            for line in lines:
                echo(line)


def _progress_line(outcome: Outcome, seconds: float) -> str:
    bg = "/".join(f"{b:.0%}" for b in outcome.background)
    if outcome.skipped:
        return f"{outcome.name}: skipped: {outcome.skipped}"
    if not outcome.judged:
        return (
            f"{outcome.name}: background {bg} > {outcome.max_background:.0%}: not judged "
            f"({seconds:.0f} s)"
        )
    parts = []
    for label, verdicts in outcome.verdicts.items():
        parts.append(f"{label} {sum(v.passed for v in verdicts)}/{len(verdicts)}")
    return f"{outcome.name}: background {bg}, pass {', '.join(parts)} ({seconds:.0f} s)"


if __name__ == "__main__":
    raise SystemExit(main())
