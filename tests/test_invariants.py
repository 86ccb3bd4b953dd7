"""Invariants that hold for every run, checked on random small workloads with hypothesis and
on one fixed mixed workload: conservation of CPU time, a sane trace (no overlaps, affinity),
per-task figures that agree with the trace, work conservation, and determinism.

Set CFSSIM_FUZZ_EXAMPLES=500 to explore more (random examples, failures shrunk); by default
30 derandomized examples per policy keep the suite reproducible and fast (no shrinking: a
failure is reported as found).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import cfssim
from cfssim import Result, ms
from cfssim.sched.core import FAIR_POLICIES

TICK = ms(4)  # HZ=250 everywhere here
EXAMPLES = int(os.environ.get("CFSSIM_FUZZ_EXAMPLES", "30"))
EXPLORING = "CFSSIM_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not EXPLORING,
    phases=tuple(Phase) if EXPLORING else (Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow],
)


# ==== random workloads ==========================================================================
@dataclass(frozen=True)
class ProcSpec:
    name: str
    threads: int
    nice: int
    policy: str
    cpus: tuple[int, ...] | None
    start_ns: int
    steps: tuple[dict[str, Any], ...]  # begins with a run step (see `waits`)
    repeat: int | None
    cgroup: str


@dataclass(frozen=True)
class Workload:
    cpus: int
    policy: str
    slice_ends: str
    seed: int
    duration_ns: int
    cgroups: dict[str, dict[str, int]] = field(default_factory=dict)
    procs: tuple[ProcSpec, ...] = ()

    def build(self) -> cfssim.Simulation:
        sim = cfssim.Simulation(
            cpus=self.cpus, policy=self.policy, seed=self.seed, slice_ends=self.slice_ends
        )
        for path, files in self.cgroups.items():
            sim.add_cgroup(path, files)
        for p in self.procs:
            sim.add_process(
                p.name,
                cfssim.program(*p.steps, repeat=p.repeat),
                threads=p.threads,
                nice=p.nice,
                policy=p.policy,
                cpus=p.cpus,
                start=p.start_ns,
                cgroup=p.cgroup,
            )
        return sim

    def run(self) -> Result:
        return self.build().run(self.duration_ns)


MS_100US = st.integers(1, 200).map(lambda n: n * 100_000)  # 0.1 ms .. 20 ms


@st.composite
def programs(draw: st.DrawFn) -> tuple[tuple[dict[str, Any], ...], int | None]:
    if draw(st.booleans()):
        return ({"run": "forever"},), None
    steps: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(1, 3))):
        steps.append({"run": f"{draw(MS_100US)}ns"})
        steps.append({"sleep": f"{draw(MS_100US)}ns"})
    repeat = draw(st.one_of(st.none(), st.integers(1, 6)))
    return tuple(steps), repeat


@st.composite
def workloads(draw: st.DrawFn, policy: str, with_cgroups: bool = True) -> Workload:
    ncpus = draw(st.integers(2, 4))
    cgroups: dict[str, dict[str, int]] = {}
    if with_cgroups:
        for index in range(draw(st.integers(0, 2))):
            files = {"cpu.shares": draw(st.sampled_from([2, 256, 1024, 3072]))}
            if draw(st.booleans()):
                period_ms = draw(st.sampled_from([20, 50, 100]))
                files["cpu.cfs_period_us"] = period_ms * 1000
                files["cpu.cfs_quota_us"] = draw(st.integers(2, 2 * period_ms)) * 1000
            cgroups[f"/g{index}"] = files
    procs = []
    total = 0
    for index in range(draw(st.integers(1, 6))):
        threads = draw(st.integers(1, min(2, 8 - total)))
        total += threads
        steps, repeat = draw(programs())
        affinity = draw(
            st.one_of(
                st.none(),
                st.lists(st.integers(0, ncpus - 1), min_size=1, max_size=ncpus, unique=True),
            )
        )
        procs.append(
            ProcSpec(
                name=f"p{index}",
                threads=threads,
                nice=draw(st.sampled_from([-5, 0, 0, 3, 10, 19])),
                policy=draw(st.sampled_from(["normal", "normal", "normal", "batch", "idle"])),
                cpus=None if affinity is None else tuple(sorted(affinity)),
                start_ns=draw(st.integers(0, 40)) * ms(1),
                steps=steps,
                repeat=repeat,
                cgroup=draw(st.sampled_from(["/", *cgroups])),
            )
        )
        if total >= 8:
            break
    return Workload(
        cpus=ncpus,
        policy=policy,
        slice_ends=draw(st.sampled_from(["precise", "tick"])),
        seed=draw(st.integers(0, 2**16)),
        duration_ns=draw(st.integers(50, 200)) * ms(1),
        cgroups=cgroups,
        procs=tuple(procs),
    )


# ==== trace helpers =============================================================================
def intervals_overlap(starts: np.ndarray, ends: np.ndarray) -> bool:
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    return bool((s[1:] < e[:-1]).any())


def idle_intervals(result: Result, cpu: int) -> list[tuple[int, int]]:
    """[start, end) intervals in which `cpu` ran nothing."""
    assert result.trace is not None
    seg = result.trace["segments"]
    mask = seg["cpu"] == cpu
    order = np.argsort(seg["start"][mask], kind="stable")
    idle, at = [], 0
    for start, end in zip(seg["start"][mask][order], seg["end"][mask][order], strict=True):
        if start > at:
            idle.append((at, int(start)))
        at = max(at, int(end))
    if at < result.duration_ns:
        idle.append((at, result.duration_ns))
    return idle


def waits(result: Result, task: str, ready_at: int) -> list[tuple[int, int, int]]:
    """Intervals (start, end, cpu) in which `task` was certainly runnable but not running,
    queued on `cpu`, reconstructed from the trace. `ready_at` is when it first became runnable
    (its start time: every generated program begins with a run step).

    - before its first segment: [ready_at, first start);
    - in a gap between two segments: from the last wakeup in the gap (a wakeup row's time)
      or, without one, from the end of the previous segment (it was preempted) to the start of
      the next; the tail after the last segment is unknown (asleep, exited or waiting) and
      skipped;
    - the queue CPU is the CPU it next ran on or, before a migration inside the wait, that
      migration's source CPU.
    """
    assert result.trace is not None
    tid = result.trace.tasks.index(task)
    seg, wake, mig = (result.trace[name] for name in ("segments", "wakeups", "migrations"))
    mine = seg["task"] == tid
    order = np.argsort(seg["start"][mine], kind="stable")
    starts, ends, cpus = (seg[col][mine][order].tolist() for col in ("start", "end", "cpu"))
    wake_times = np.sort(wake["time"][wake["task"] == tid])
    mig_time, mig_src = (mig[col][mig["task"] == tid] for col in ("time", "src"))
    out: list[tuple[int, int, int]] = []
    prev_end: int | None = None
    for start, end, cpu in zip(starts, ends, cpus, strict=True):
        begin = ready_at
        if prev_end is not None:
            woken = wake_times[(wake_times >= prev_end) & (wake_times <= start)]
            begin = int(woken[-1]) if len(woken) else prev_end
        cut = start
        for row in np.nonzero((mig_time > begin) & (mig_time <= start))[0][::-1]:
            out.append((int(mig_time[row]), cut, cpu))
            cut, cpu = int(mig_time[row]), int(mig_src[row])
        out.append((begin, cut, cpu))
        prev_end = end
    return [w for w in out if w[0] < w[1]]


def subtract(piece: tuple[int, int], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`piece` minus the union of `holes` (all [start, end))."""
    parts = [piece]
    for h0, h1 in holes:
        parts = [
            part
            for a, b in parts
            for part in ((a, min(b, h0)), (max(a, h1), b))
            if part[0] < part[1]
        ]
    return parts


def throttled_on(result: Result, cgroup: str, cpu: int) -> list[tuple[int, int]]:
    """Intervals in which `cgroup` or an ancestor was throttled on `cpu`."""
    assert result.trace is not None
    th = result.trace["throttles"]
    chain = {i for i, path in enumerate(result.trace.cgroups) if _within(cgroup, path)}
    mask = np.isin(th["cgroup"], list(chain)) & (th["cpu"] == cpu)
    return list(zip(th["start"][mask].tolist(), th["end"][mask].tolist(), strict=True))


def _within(path: str, ancestor: str) -> bool:
    return ancestor == "/" or path == ancestor or path.startswith(ancestor + "/")


# ==== the invariants ============================================================================
def check_conservation(result: Result) -> None:
    """busy + idle = elapsed per CPU; Σ task CPU time = Σ busy = Σ segment lengths; every
    cgroup's cpuacct.usage = Σ CPU time of the tasks inside it."""
    assert result.trace is not None
    seg = result.trace["segments"]
    lengths = seg["end"] - seg["start"]
    for cpu, fig in result.cpu.items():
        assert fig["busy_ns"] + fig["idle_ns"] == result.duration_ns
        assert fig["busy_ns"] == int(lengths[seg["cpu"] == int(cpu)].sum())
    busy = sum(fig["busy_ns"] for fig in result.cpu.values())
    assert sum(fig["cpu_time_ns"] for fig in result.tasks.values()) == busy == int(lengths.sum())
    for path, fig in result.cgroups.items():
        inside = [t["cpu_time_ns"] for t in result.tasks.values() if _within(t["cgroup"], path)]
        assert fig["cpuacct.usage"] == sum(inside), path
        assert sum(fig["cpuacct.usage_percpu"]) == fig["cpuacct.usage"]


def check_segments(result: Result, allowed: dict[str, frozenset[int]]) -> None:
    """Segments lie in [0, duration), never overlap on one CPU, a task never runs on two CPUs
    at once, and every segment is on a CPU the task may use."""
    assert result.trace is not None
    seg = result.trace["segments"]
    assert (seg["start"] < seg["end"]).all()
    assert (seg["start"] >= 0).all() and (seg["end"] <= result.duration_ns).all()
    for cpu in range(result.cpus):
        mask = seg["cpu"] == cpu
        assert not intervals_overlap(seg["start"][mask], seg["end"][mask]), f"cpu {cpu}"
    for tid, name in enumerate(result.trace.tasks):
        mask = seg["task"] == tid
        assert not intervals_overlap(seg["start"][mask], seg["end"][mask]), name
        assert set(seg["cpu"][mask].tolist()) <= allowed[name], name


def check_figures(result: Result) -> None:
    """Per-task figures agree with the trace: CPU time, migrations, timeslices and switches,
    wakeups and the latency percentiles."""
    assert result.trace is not None
    seg, wake, mig = (result.trace[name] for name in ("segments", "wakeups", "migrations"))
    for tid, name in enumerate(result.trace.tasks):
        fig = result.tasks[name]
        mine = seg["task"] == tid
        assert fig["cpu_time_ns"] == int((seg["end"][mine] - seg["start"][mine]).sum())
        assert fig["nr_migrations"] == int((mig["task"] == tid).sum())
        assert fig["nr_switches"] == fig["nr_voluntary_switches"] + fig["nr_involuntary_switches"]
        running_at_end = bool((seg["end"][mine] == result.duration_ns).any())
        assert fig["timeslices"] == fig["nr_switches"] + running_at_end
        assert fig["timeslices"] >= int(mine.sum())
        latencies = wake["latency"][wake["task"] == tid]
        assert fig["wakeups"] - len(latencies) in (0, 1)  # woken, not yet run at the end
        if not len(latencies):
            assert fig["wakeup_latency_ns"] is None
            continue
        p50, p99 = np.percentile(latencies, [50, 99])
        assert fig["wakeup_latency_ns"] == {
            "p50": round(p50),
            "p99": round(p99),
            "max": int(latencies.max()),
            "mean": round(latencies.mean()),
        }


def check_work_conserving(
    result: Result, allowed: dict[str, frozenset[int]], ready_at: dict[str, int]
) -> None:
    """No CPU idles while a task that may run on it waits.

    Precisely: take every interval in which a task was certainly runnable, queued on CPU c and
    not throttled (its cgroup and ancestors unthrottled on c) — see `waits`. Then (1) c itself
    is never idle during it (overlap 0), and (2) no other allowed CPU d is idle during it for
    more than one tick: an idle CPU pulls at once when it goes idle (sched_balance_newidle); a CPU
    already idle learns of waiting work from the busy CPU's nohz kick, which the kernel sends
    from the tick, so it may take until the next tick boundary (≤ 1 tick). A CPU on which the
    task's cgroup (or an ancestor) is throttled cannot take it (``can_migrate_task`` refuses a
    throttled destination), so those intervals of d do not count as idle for that task.
    """
    assert result.trace is not None
    idle = {cpu: idle_intervals(result, cpu) for cpu in range(result.cpus)}
    for name in result.trace.tasks:
        cgroup = result.tasks[name]["cgroup"]
        usable = {
            other: [
                part
                for span in idle[other]
                for part in subtract(span, throttled_on(result, cgroup, other))
            ]
            for other in allowed[name]
        }
        for start, end, cpu in waits(result, name, ready_at[name]):
            for a, b in subtract((start, end), throttled_on(result, cgroup, cpu)):
                for other in allowed[name]:
                    limit = 0 if other == cpu else TICK
                    for x, y in usable[other]:
                        overlap = min(b, y) - max(a, x)
                        assert overlap <= limit, (
                            f"{name} waited on cpu {cpu} in [{a}, {b}) while cpu {other} "
                            f"idled in [{x}, {y})"
                        )


def check_all(workload: Workload, result: Result) -> None:
    everything = frozenset(range(workload.cpus))
    allowed, ready_at = {}, {}
    for p in workload.procs:
        for index in range(p.threads):
            name = f"{p.name}/{index}"
            allowed[name] = frozenset(p.cpus) if p.cpus is not None else everything
            ready_at[name] = p.start_ns
    check_conservation(result)
    check_segments(result, allowed)
    check_figures(result)
    check_work_conserving(result, allowed, ready_at)


# ==== tests =====================================================================================
@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
@FUZZ
@given(data=st.data())
def test_random_workloads_keep_every_invariant(policy: str, data: st.DataObject) -> None:
    workload = data.draw(workloads(policy))
    result = workload.run()
    check_all(workload, result)
    again = workload.run()
    assert result.trace is not None and again.trace is not None
    assert again.trace.digest() == result.trace.digest()


MIXED = Workload(
    cpus=3,
    policy="cfs",
    slice_ends="precise",
    seed=11,
    duration_ns=ms(400),
    cgroups={"/lim": {"cpu.cfs_quota_us": 40000, "cpu.shares": 512}},
    procs=(
        ProcSpec("web", 3, 0, "normal", None, 0, ({"run": "2ms"}, {"sleep": "5ms"}), None, "/"),
        ProcSpec("hog", 3, 5, "normal", None, ms(3), ({"run": "forever"},), None, "/lim"),
        ProcSpec("pin", 1, -3, "normal", (1,), 0, ({"run": "4ms"}, {"sleep": "1ms"}), 30, "/"),
        ProcSpec("bg", 1, 0, "idle", (0, 2), ms(10), ({"run": "forever"},), None, "/"),
    ),
)


def test_fixed_mixed_workload_keeps_every_invariant() -> None:
    # a busier case than the random ones: quota throttling, wakeups, migrations, an exit
    result = MIXED.run()
    assert result.tasks["pin/0"]["exit"] is not None
    assert result.cgroups["/lim"]["cpu.stat"]["nr_throttled"] > 0
    assert sum(t["nr_migrations"] for t in result.tasks.values()) > 0
    check_all(MIXED, result)


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_same_seed_same_digest_different_seed_different_digest(policy: str) -> None:
    # the seed drives the balance intervals: a different seed gives a different trace
    def digest(seed: int) -> str:
        workload = Workload(**{**MIXED.__dict__, "seed": seed, "policy": policy})
        trace = workload.run().trace
        assert trace is not None
        return trace.digest()

    assert digest(5) == digest(5)
    assert digest(5) != digest(6)


def test_eevdf_short_sleepers_in_a_light_group_do_not_livelock() -> None:
    # found by the fuzzer (shrunk by hand): the run must simply complete, and keep the invariants
    sim = cfssim.Simulation(cpus=2, policy="eevdf", seed=0, slice_ends="precise")
    sim.add_cgroup("/g1", {"cpu.shares": 256})
    sim.add_process("hog", nice=-5, behaviour=cfssim.program(run="forever"))
    sim.add_process("a", threads=2, nice=-5, behaviour=cfssim.program(run="100us", sleep="100us"))
    sim.add_process(
        "b", threads=2, cgroup="/g1", behaviour=cfssim.program(run="100us", sleep="100us")
    )
    result = sim.run("50ms")
    check_conservation(result)
