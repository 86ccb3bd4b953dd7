"""Simulator speed: scheduling events and simulated seconds per wall-clock second.

Run: ``python benchmarks/speed.py [--quick] [--repeat N] [--profile] [--floor] [--calls]``.
Cases and their targets (interpreted core, quiet 2-core machine, median of 3):

1. 2 CPUs × 10 hogs × 60 s, for every policy (target: ≥ 300k context switches per wall-second);
2. 8 CPUs × 200 mixed tasks × 10 s (hogs, run/sleep tasks, niced batch, quota'd cgroups;
   target: ≥ 50k switches per wall-second);
3. 64 CPUs × 1000 tasks in 10 ``cpu.max`` groups (half hogs, half 2 ms run / 8 ms sleep),
   10 s (eevdf; target: ≤ 5 s wall, memory growth ≤ 2 MB per simulated second — the resident
   set's growth over the timed span, the largest of the runs' (later runs reuse the heap the
   earlier ones freed); "trace MB" is how much of it the recorded columns are, per simulated
   second);
4. 1 CPU with 10, 100, 1k, 10k runnable hogs: the cost per context switch, which must grow
   roughly like log n (a sorted run queue; target: ≤ ×1.5 from 10 to 10k); printed next to
   log2 n. Cycle replays are off here: this case prices the run queue, which a replay skips.
5. 2 CPUs, 4 hogs pinned on CPU 0, and on CPU 1 hogs beside a pinned task running 50 µs per
   sleep, 20 s, replays on and off (eevdf): what watching for cycles costs where none gets
   replayed — 4 hogs beside a 7 ms sleeper (each wake-up cuts CPU 1's search short), 1 hog
   beside a 3 ms sleeper (CPU 0 finds its cycle, but the sleeper's next wake-up always comes
   before CPU 0's next switch: every resume is refused). The gap between on and off is what
   the search costs there (target: replays on at most 15% slower than off).

"replayed" is the share of the context switches a CPU played back from a verified round-robin
cycle (`cfssim.sched.replay`) instead of deriving them.

When a compiled (mypyc) build of the core is present beside the interpreted one imported here
(found on the path, or named by ``--compiled-site DIR``), the cases run a second time on it, in
a subprocess, and its table is printed after the interpreted one (``--no-compiled`` skips it).
``CFSSIM_FAST_FORWARD=0`` times the plain path (no timer calendar, no idle-CPU bookkeeping).

"events" are SimPy events scheduled (timers, process steps, zero-delay settles): the engine's
unit of work. Each case runs ``--repeat`` times (default 3): the table shows the median run and
the best rate (the development VMs vary by ±20% from run to run). ``--profile`` runs case 1 (CFS)
under cProfile and prints the top 10 functions by own time (functions of a compiled core are
invisible to cProfile; use ``perf`` there). Times are wall-clock; the simulation itself is
deterministic. The header says whether the core is the mypyc-compiled build
(``HATCH_BUILD_HOOK_ENABLE_MYPYC=true pip install .``) or interpreted.

``--calls`` counts what a context switch of cases 2 and 3 executes — bytecodes and Python
calls, by layer (the scheduler model, the rest of cfssim, sortedcontainers, SimPy) — and, with
the timed µs per switch, the mean cost of a bytecode and how many bytecodes per switch the
target allows at that cost. The counts are deterministic: they price the model's shape.

``--floor`` prices what every context switch costs in the libraries the design fixes, before any
scheduling logic: one SimPy timer event (create, schedule, step, callback), one SortedList insert
and one remove (the previous task back into the tree, the next one out of it, a 5-entity queue),
and the segment's four column appends — the time per switch below which no core written on them
can go.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import site
import subprocess
import sys
import time
import timeit
import types
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy
from sortedcontainers import SortedList

import cfssim
from cfssim.hrtimer import scheduled_events
from cfssim.sched.core import FAIR_POLICIES
from cfssim.trace import RECORDED, typecode


@dataclass
class Measurement:
    name: str
    policy: str
    simulated_ns: int
    wall_s: float
    context_switches: int
    events: int
    replayed: int = 0  # context switches played back from a cycle (`cfssim.sched.replay`)
    rss_growth: int = 0  # bytes the resident set grew by over the timed span
    trace_growth: int = 0  # bytes the recorder's columns grew by over the timed span

    @property
    def mb_per_sim_s(self) -> float:
        return self.rss_growth / 1e6 / (self.simulated_ns / 1e9)

    @property
    def trace_mb_per_sim_s(self) -> float:
        return self.trace_growth / 1e6 / (self.simulated_ns / 1e9)

    @property
    def switches_per_s(self) -> float:
        return self.context_switches / self.wall_s

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s

    @property
    def sim_s_per_s(self) -> float:
        return self.simulated_ns / 1e9 / self.wall_s

    @property
    def us_per_switch(self) -> float:
        return self.wall_s / max(1, self.context_switches) * 1e6


def measure(
    name: str, policy: str, build: Callable[[], cfssim.Simulation], warmup: int, span: int
) -> Measurement:
    """Run `build()`'s simulation to `warmup` ns (start-up: tasks created and spread), then time
    the engine alone over the next `span` ns."""
    sim = build()
    sim.run(warmup) if warmup else sim._start()
    switches, events = sim.machine.context_switches, scheduled_events(sim.env)
    replayed = sim.machine.replayed_switches
    recorded = trace_bytes(sim)
    gc.collect()
    rss = resident_bytes()
    started = time.perf_counter()
    sim.env.run(until=warmup + span)
    wall = time.perf_counter() - started
    return Measurement(
        name,
        policy,
        span,
        wall,
        sim.machine.context_switches - switches,
        scheduled_events(sim.env) - events,
        sim.machine.replayed_switches - replayed,
        max(0, resident_bytes() - rss),
        trace_bytes(sim) - recorded,
    )


def trace_bytes(sim: cfssim.Simulation) -> int:
    """Bytes held by the simulation's recorded columns (`cfssim.trace.Recorder`)."""
    columns = sim.machine.rec.columns.values()
    return sum(len(column) * column.itemsize for table in columns for column in table)


def resident_bytes() -> int:
    """The process's resident set (bytes), from /proc/self/statm (0 where there is none)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


# ==== the cases =================================================================================
def hogs(cpus: int, n: int, policy: str, replay: bool = True) -> Callable[[], cfssim.Simulation]:
    def build() -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=cpus, policy=policy, seed=1)
        sim.add_process("hog", threads=n, behaviour=cfssim.program(run="forever"))
        sim.machine.replay_enabled = replay
        return sim

    return build


def pinned_sleeper(
    hogs_on_1: int, sleep: str, replay: bool, policy: str = "eevdf"
) -> Callable[[], cfssim.Simulation]:
    """Case 5: 4 hogs pinned on CPU 0; `hogs_on_1` hogs and a task running 50 µs per `sleep`
    pinned on CPU 1."""

    def build() -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=2, policy=policy, seed=1)
        sim.add_process("hog", threads=4, cpus=[0], behaviour=cfssim.program(run="forever"))
        sim.add_process(
            "hog1", threads=hogs_on_1, cpus=[1], behaviour=cfssim.program(run="forever")
        )
        sim.add_process("sleeper", cpus=[1], behaviour=cfssim.program(run="50us", sleep=sleep))
        sim.machine.replay_enabled = replay
        return sim

    return build


def mixed(policy: str) -> cfssim.Simulation:
    """200 tasks on 8 CPUs: 40 hogs (half in a quota'd cgroup), 40 niced batch hogs, 120
    run/sleep tasks of 0.2–8 ms bursts and 1–40 ms sleeps in weighted cgroups."""
    sim = cfssim.Simulation(cpus=8, policy=policy, seed=1)
    sim.add_cgroup("/batch", {"cpu.shares": 512, "cpu.cfs_quota_us": 300_000})
    sim.add_cgroup("/web", {"cpu.shares": 2048})
    sim.add_cgroup("/svc", {"cpu.cfs_quota_us": 200_000, "cpu.cfs_period_us": 50_000})
    sim.add_process("hog", threads=20, behaviour=cfssim.program(run="forever"))
    sim.add_process("qhog", threads=20, cgroup="/batch", behaviour=cfssim.program(run="forever"))
    sim.add_process("nice", threads=40, nice=10, behaviour=cfssim.program(run="forever"))
    for index in range(120):
        run_us = 200 + (index * 397) % 7800
        sleep_us = 1000 + (index * 7919) % 39_000
        sim.add_process(
            f"io{index}",
            behaviour=cfssim.program(run=f"{run_us}us", sleep=f"{sleep_us}us"),
            cgroup=("/web", "/svc", "/")[index % 3],
            nice=(index % 7) - 3,
        )
    return sim


def quota_groups(policy: str) -> cfssim.Simulation:
    """1000 tasks on 64 CPUs in 10 groups limited by ``cpu.max`` to 6 CPUs each: per group 50
    hogs and 50 tasks running 2 ms then sleeping 8 ms."""
    sim = cfssim.Simulation(cpus=64, policy=policy, seed=1)
    for group in range(10):
        path = f"/g{group}"
        sim.add_cgroup(path, {"cpu.max": "600000 100000"})
        sim.add_process(
            f"hog{group}", threads=50, cgroup=path, behaviour=cfssim.program(run="forever")
        )
        sim.add_process(
            f"io{group}", threads=50, cgroup=path, behaviour=cfssim.program(run="2ms", sleep="8ms")
        )
    return sim


def median_of(runs: Callable[[], Measurement], repeat: int) -> tuple[Measurement, float]:
    """The median of `repeat` measurements (by wall time) and the best switch rate among them.
    Its memory growth is the largest of the runs': a run after the first reuses the heap the
    earlier ones freed, and its resident set may grow by a third of a fresh run's."""
    done = sorted((runs() for _ in range(repeat)), key=lambda m: m.wall_s)
    median = done[len(done) // 2]
    median.rss_growth = max(m.rss_growth for m in done)
    return median, max(m.switches_per_s for m in done)


CASES = ("hogs", "mixed", "quota", "scaling", "sleeper")


def run_cases(
    quick: bool, repeat: int = 3, cases: tuple[str, ...] = CASES, policies: tuple[str, ...] = ()
) -> list[tuple[Measurement, float]]:
    """The `cases` (names from CASES) for `policies` (default: every fair policy), in order."""
    scale = 10 if quick else 1
    chosen = sorted(policies or FAIR_POLICIES)
    out = []
    for policy in chosen if "hogs" in cases else ():
        out.append(
            median_of(
                lambda p=policy: measure(  # type: ignore[misc]
                    "2 CPUs x 10 hogs", p, hogs(2, 10, p), cfssim.ms(100), cfssim.s(60) // scale
                ),
                repeat,
            )
        )
    for policy in chosen if "mixed" in cases else ():
        out.append(
            median_of(
                lambda p=policy: measure(  # type: ignore[misc]
                    "8 CPUs x 200 mixed", p, lambda: mixed(p), cfssim.ms(100), cfssim.s(10) // scale
                ),
                repeat,
            )
        )
    if "quota" in cases:
        out.append(
            median_of(
                lambda: measure(
                    "64 CPUs x 1000 in 10 q",
                    "eevdf",
                    lambda: quota_groups("eevdf"),
                    cfssim.ms(100),
                    cfssim.s(10) // scale,
                ),
                repeat,
            )
        )
    for n in (10, 100, 1000, 10_000) if "scaling" in cases else ():
        # each hog runs ≥ min_granularity per turn: ~1300 switches per simulated second on 1
        # CPU whatever n; run long enough to give every task several turns
        span = max(cfssim.s(5), n * cfssim.ms(3)) // scale
        out.append(
            median_of(
                lambda n=n, span=span: measure(  # type: ignore[misc]
                    f"1 CPU x {n} runnable",
                    "cfs",
                    hogs(1, n, "cfs", replay=False),
                    cfssim.ms(50),
                    span,
                ),
                repeat,
            )
        )
    for hogs_on_1, sleep in ((4, "7ms"), (1, "3ms")) if "sleeper" in cases else ():
        for replay in (True, False):
            out.append(
                median_of(
                    lambda h=hogs_on_1, s=sleep, r=replay: measure(  # type: ignore[misc]
                        f"{h}+{s} sleeper, rp {'on' if r else 'off'}",
                        "eevdf",
                        pinned_sleeper(h, s, r),
                        cfssim.ms(100),
                        cfssim.s(20) // scale,
                    ),
                    repeat,
                )
            )
    return out


COLUMNS = (
    ("case", "<22"),
    ("policy", "<6"),
    ("sim s", ">6"),
    ("wall s", ">7"),
    ("switches", ">9"),
    ("switch/s", ">9"),
    ("events/s", ">9"),
    ("sim s/s", ">8"),
    ("us/switch", ">9"),
    ("best sw/s", ">9"),
    ("replayed", ">8"),
    ("MB/sim s", ">8"),
    ("trace MB", ">8"),
)


def core_kind() -> str:
    """Whether the simulator's core (cfssim.sched.core) is the mypyc-compiled build."""
    compiled = not cfssim.sched.core.__file__.endswith(".py")
    return "compiled (mypyc)" if compiled else "interpreted"


def print_table(results: list[tuple[Measurement, float]]) -> None:
    rows = [m for m, _ in results]
    print(f"core: {core_kind()}")
    header = " ".join(f"{title:{align}}" for title, align in COLUMNS)
    print(header)
    print("-" * len(header))
    for m, best in results:
        cells = (
            m.name,
            m.policy,
            f"{m.simulated_ns / 1e9:.1f}",
            f"{m.wall_s:.2f}",
            m.context_switches,
            f"{m.switches_per_s:.0f}",
            f"{m.events_per_s:.0f}",
            f"{m.sim_s_per_s:.2f}",
            f"{m.us_per_switch:.2f}",
            f"{best:.0f}",
            f"{m.replayed / max(1, m.context_switches):.0%}",
            f"{m.mb_per_sim_s:.2f}",
            f"{m.trace_mb_per_sim_s:.2f}",
        )
        print(" ".join(f"{cell:{align}}" for cell, (_, align) in zip(cells, COLUMNS, strict=True)))
    one_cpu = [m for m in rows if m.name.startswith("1 CPU")]
    if one_cpu:
        base = one_cpu[0]
        print("\ncost per context switch against log2 n (1 CPU, normalised to n = 10):")
        for m in one_cpu:
            n = int(m.name.split("x ")[1].split()[0])
            ratio = m.us_per_switch / base.us_per_switch
            log_ratio = math.log2(n) / math.log2(10)
            print(
                f"  n = {n:>6}: {m.us_per_switch:7.2f} us"
                f"  ratio {ratio:5.2f}  log2 ratio {log_ratio:5.2f}"
            )


def library_floor(rounds: int = 200_000) -> dict[str, float]:
    """µs per context switch spent in SimPy, sortedcontainers and the trace's arrays alone."""
    env = simpy.Environment()

    def rearm(_: simpy.Event) -> None:
        timer = env.timeout(1_000)
        timer.callbacks.append(rearm)

    rearm(env.timeout(0))
    started = time.perf_counter()
    env.run(until=rounds * 1_000)
    event_us = (time.perf_counter() - started) / rounds * 1e6

    tree = SortedList((key * 1_000, key, None) for key in range(5))
    node = (2_500, 99, None)

    def requeue() -> None:
        tree.add(node)
        tree.remove(node)

    tree_us = timeit.timeit(requeue, number=rounds) / rounds * 1e6
    columns = [array(typecode(col)).append for col in RECORDED["segments"]]

    def record() -> None:
        for append in columns:
            append(1)

    record_us = timeit.timeit(record, number=rounds) / rounds * 1e6
    return {
        "SimPy timer event": event_us,
        "SortedList insert + remove": tree_us,
        "segment: 4 column appends": record_us,
    }


def print_floor() -> None:
    costs = library_floor()
    print("\nlibrary floor per context switch (no scheduling logic yet):")
    for name, us in costs.items():
        print(f"  {name:<28} {us:5.2f} us")
    total = sum(costs.values())
    print(
        f"  {'total':<28} {total:5.2f} us  -> at most {1e6 / total / 1e3:.0f}k switches/s; "
        f"the 300k/s target allows {1e6 / 300e3:.2f} us per switch in all"
    )


#: where a Python function lives, by the first path fragment that matches its file
LAYERS = (
    ("cfssim scheduler (sched/)", f"cfssim{os.sep}sched{os.sep}"),
    ("SimPy", f"simpy{os.sep}"),
    ("sortedcontainers", f"sortedcontainers{os.sep}"),
    ("cfssim rest (behaviours, timers, trace)", f"cfssim{os.sep}"),
)


@dataclass
class Shape:
    """What a context switch executes, averaged over a span, by `LAYERS`: Python calls and
    bytecodes (C functions are not counted)."""

    calls: dict[str, float]
    bytecodes: dict[str, float]


def layer_of(code: types.CodeType) -> str:
    return next((name for name, part in LAYERS if part in code.co_filename), "other")


def shape_per_switch(build: Callable[[], cfssim.Simulation], warmup: int, span: int) -> Shape:
    """`Shape` of `build()`'s context switches over `span` ns after `warmup` (``sys.settrace``
    with opcode events: slow, and deterministic — a figure of the model, not of the machine)."""
    sim = build()
    sim.run(warmup) if warmup else sim._start()
    switches = sim.machine.context_switches
    calls: Counter[types.CodeType] = Counter()
    bytecodes: Counter[types.CodeType] = Counter()

    def local(frame: types.FrameType, event: str, _arg: object) -> Any:
        if event == "opcode":
            bytecodes[frame.f_code] += 1
        return local

    def call(frame: types.FrameType, event: str, _arg: object) -> Any:
        calls[frame.f_code] += 1
        frame.f_trace_opcodes = True
        return local

    sys.settrace(call)
    try:
        sim.env.run(until=warmup + span)
    finally:
        sys.settrace(None)
    switched = max(1, sim.machine.context_switches - switches)

    def by_layer(counts: Counter[types.CodeType]) -> dict[str, float]:
        layers: Counter[str] = Counter()
        for code, n in counts.items():
            layers[layer_of(code)] += n
        return {layer: n / switched for layer, n in layers.most_common()}

    return Shape(by_layer(calls), by_layer(bytecodes))


def print_calls(measured: list[tuple[Measurement, float]]) -> None:
    """`Shape` of cases 2 and 3 beside their timed µs per switch (when measured): the mean
    cost of a bytecode, and how many bytecodes per switch their targets allow at that cost."""
    timed = {m.name: m for m, _ in measured}
    cases = [
        ("8 CPUs x 200 mixed", lambda: mixed("eevdf"), cfssim.ms(500), 1e6 / 50e3),
        ("64 CPUs x 1000 in 10 q", lambda: quota_groups("eevdf"), cfssim.ms(100), None),
    ]
    print("\nper context switch (eevdf; sys.settrace):")
    for name, build, span, target_us in cases:
        shape = shape_per_switch(build, cfssim.ms(100), span)
        bytecodes = sum(shape.bytecodes.values())
        print(
            f"  {name}: {bytecodes:.0f} bytecodes in {sum(shape.calls.values()):.0f} Python calls"
        )
        for layer, n in shape.bytecodes.items():
            print(f"    {layer:<40} {n:6.0f} bytecodes {shape.calls[layer]:5.0f} calls")
        m = timed.get(name)
        if m is None or m.policy != "eevdf":
            continue
        if target_us is None:  # case 3's target is a wall time: 5 s for its timed switches
            target_us = 5e6 / max(1, m.context_switches) * (m.simulated_ns / cfssim.s(10))
        per_bytecode = m.us_per_switch / bytecodes
        print(
            f"    timed {m.us_per_switch:.1f} us per switch = {per_bytecode * 1e3:.1f} ns per "
            f"bytecode; the target's {target_us:.1f} us allows {target_us / per_bytecode:.0f}"
        )


def profile_first_case(quick: bool) -> None:
    span = cfssim.s(60) // (10 if quick else 1)
    profiler = cProfile.Profile()
    build = hogs(2, 10, "cfs")
    profiler.enable()
    measure("profile", "cfs", build, cfssim.ms(100), span)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(10)
    print("\ncProfile, 2 CPUs x 10 hogs (cfs), top 10 by own time:")
    print(text.getvalue())


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive count, found {text!r}")
    return value


def compiled_site() -> str | None:
    """A directory on the path holding a mypyc-compiled cfssim (its ``sched/core`` an extension
    module) other than the one imported here, or None."""
    imported = os.path.dirname(os.path.dirname(os.path.abspath(cfssim.__file__)))
    if core_kind().startswith("compiled"):
        return None
    candidates = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    for directory in dict.fromkeys(os.path.abspath(d) for d in candidates if d):
        if directory == imported:
            continue
        core = os.path.join(directory, "cfssim", "sched")
        if any(
            name.startswith("core.") and name.endswith((".so", ".pyd"))
            for name in (os.listdir(core) if os.path.isdir(core) else ())
        ):
            return directory
    return None


def run_compiled(site_dir: str, argv: list[str]) -> None:
    """Run this benchmark again on the compiled core in `site_dir` (a subprocess whose path
    starts there) and print its table."""
    env = dict(os.environ, PYTHONPATH=site_dir)
    print(f"\ncompiled core from {site_dir}:", flush=True)
    subprocess.run(
        [sys.executable, os.path.abspath(__file__), *argv, "--no-compiled"], env=env, check=True
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the simulated time")
    parser.add_argument(
        "--repeat", type=positive, default=3, help="runs per case (the median one is shown)"
    )
    parser.add_argument("--profile", action="store_true", help="cProfile case 1 (CFS)")
    parser.add_argument("--floor", action="store_true", help="the libraries' cost per switch")
    parser.add_argument(
        "--calls",
        action="store_true",
        help="bytecodes, lines and Python calls per switch of cases 2 and 3 (eevdf)",
    )
    parser.add_argument(
        "--compiled-site",
        help="a site directory holding a compiled build (default: found on the path)",
    )
    parser.add_argument("--no-compiled", action="store_true", help="skip the compiled core's table")
    parser.add_argument(
        "--case",
        action="append",
        choices=CASES,
        help="run only this case (repeatable; default: all): hogs (1), mixed (2), quota (3), "
        "scaling (4), sleeper (5)",
    )
    parser.add_argument(
        "--policy",
        action="append",
        choices=sorted(FAIR_POLICIES),
        help="only this policy for cases 1 and 2 (repeatable; default: all)",
    )
    args = parser.parse_args()
    cases = tuple(args.case or CASES)
    policies = tuple(args.policy or ())
    measured = run_cases(args.quick, args.repeat, cases, policies)
    print_table(measured)
    site_dir = None if args.no_compiled else (args.compiled_site or compiled_site())
    if site_dir is not None:
        selection = [f"--case={c}" for c in args.case or ()]
        selection += [f"--policy={p}" for p in policies]
        run_compiled(
            site_dir,
            [*(["--quick"] if args.quick else []), "--repeat", str(args.repeat), *selection],
        )
    if args.floor:
        print_floor()
    if args.calls:
        print_calls(measured)
    if args.profile:
        profile_first_case(args.quick)


if __name__ == "__main__":
    main()
