"""The real twin against the simulation: measured bundled scenarios agree with the simulated ones
within `compare`'s default tolerances, and ``--trace`` turns tracefs events into run segments.

Kernel tests need root and cgroups and a quiet machine: they are skipped (with the measured
figure) when the background load — CPU time used outside the scenario — exceeds 5% of capacity,
because noise changes bandwidth figures several-fold. Kernel facts are from the 2-CPU, HZ=250,
6.18 development machines (docs/kernel-facts.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from cfssim.cgroup.bandwidth import CfsBandwidth
from cfssim.compare import compare, rich_table
from cfssim.real import RealRunError, cgroupfs, measure
from cfssim.real.measure import (
    MeasuredThread,
    as_measured,
    measured_task_figures,
    on_period_grid,
    traced_latencies,
)
from cfssim.real.procfs import USER_HZ, machine_busy_ns, period_timers
from cfssim.real.tracefs import (
    EVENTS,
    FORK_EVENTS,
    TraceSession,
    buffer_kb_for,
    event_filter,
    events_to_tables,
    parse_trace,
)
from cfssim.result import Result, latency_figures
from cfssim.scenario import Scenario, bundled_scenarios, load_scenario
from cfssim.simulation import run_scenario
from cfssim.trace import Recorder

MS = 1_000_000
QUIET = 0.05  # of the machine's capacity
TWO_HOGS_ONE_CPU = """
name: two-hogs-one-cpu
duration: 1s
machine: {cpus: 2}
processes:
  - {name: hog, threads: 2, cpus: [1], repeat: forever, program: [{run: forever}]}
"""

# ---- tracefs text → tables (no kernel needed) --------------------------------------------------
TRACE_TEXT = """\
# tracer: nop
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
          python-962     [001] d..2.  1240.974878: sched_switch: prev_comm=python prev_pid=962 \
prev_prio=120 prev_state=R ==> next_comm=w next_pid=1005 next_prio=120
               w-1005    [001] d..2.  1240.974900: sched_switch: prev_comm=w prev_pid=1005 \
prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          <idle>-0       [001] dNh4.  1241.000100: sched_wakeup: comm=w pid=1005 prio=120 \
target_cpu=001
          <idle>-0       [001] dNh4.  1241.000110: sched_wakeup: comm=w pid=1006 prio=120 \
target_cpu=001
          <idle>-0       [001] d..2.  1241.000200: sched_switch: prev_comm=swapper/1 prev_pid=0 \
prev_prio=120 prev_state=R ==> next_comm=w next_pid=1006 next_prio=120
               w-1006    [001] d..2.  1241.004000: sched_switch: prev_comm=w prev_pid=1006 \
prev_prio=120 prev_state=R ==> next_comm=w next_pid=1005 next_prio=120
               w-1005    [001] d.s3.  1241.006000: sched_migrate_task: comm=w pid=1006 prio=120 \
orig_cpu=1 dest_cpu=0
               w-1005    [001] d..2.  1241.008000: sched_switch: prev_comm=w prev_pid=1005 \
prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
"""


def test_trace_text_becomes_segments_wakeups_and_migrations() -> None:
    events = list(parse_trace(TRACE_TEXT))
    assert [e.name for e in events][1:3] == ["sched_switch", "sched_wakeup"]
    assert events[0].time_ns == 1240_974_878_000 and events[0].fields["next_pid"] == 1005
    t0 = 1241_000_000_000
    tables = events_to_tables(events, {1005: 0, 1006: 1}, t0, end=10 * MS)
    # the run before t0 (at the barrier) is dropped; 1006 runs 0.2–4 ms, 1005 4–8 ms
    assert tables.segments == [(1, 1, 200_000, 4 * MS), (1, 0, 4 * MS, 8 * MS)]
    # woken at 0.1/0.11 ms: 1006 ran 90 µs later, 1005 after 3.9 ms
    assert sorted(tables.wakeups) == [(0, 1, 100_000, 3_900_000), (1, 1, 110_000, 90_000)]
    assert tables.migrations == [(1, 6 * MS, 1, 0)]


def test_event_filters_name_every_tid_once_as_ranges() -> None:
    assert event_filter("sched/sched_wakeup", [7, 5, 6, 9]) == "(pid >= 5 && pid <= 7) || pid == 9"
    assert event_filter("sched/sched_switch", [3]) == "prev_pid == 3 || next_pid == 3"
    assert event_filter("rseq/rseq_update", [4]) == "common_pid == 4"


def test_a_trace_session_records_its_events_with_their_filters() -> None:
    """measure: the scheduler events of its tids; capture (follow_forks): those and the fork
    events, unfiltered; calibrate: exactly the events and filters it gives."""
    measured = TraceSession("cfssim-1.2-0", [3], 1000 * MS)
    assert measured.events == list(EVENTS)
    assert measured.event_filter("sched/sched_switch") == "prev_pid == 3 || next_pid == 3"
    captured = TraceSession("cfssim-1.2-0", [3], 1000 * MS, follow_forks=True)
    assert captured.events == [*EVENTS, *FORK_EVENTS]
    assert captured.event_filter("sched/sched_switch") == ""
    ticks = {
        "timer/hrtimer_expire_entry": "function.function == tick_nohz_handler",
        "sched/sched_switch": "",
    }
    calibrating = TraceSession("cfssim-1.2-0", [], 1000 * MS, filters=ticks)
    assert calibrating.events == ["timer/hrtimer_expire_entry", "sched/sched_switch"]
    assert (
        calibrating.event_filter("timer/hrtimer_expire_entry")
        == "function.function == tick_nohz_handler"
    )
    assert calibrating.event_filter("sched/sched_switch") == ""


def test_trace_buffers_hold_the_whole_run_within_an_eighth_of_the_memory() -> None:
    # (duration + 0.5 s margin) at 4 MiB/s per CPU; 2 CPUs within 1/8 of 64 MiB; 1 MiB at least
    assert buffer_kb_for(3000 * MS, cpus=2, available_kb=1 << 30) == 14336
    assert buffer_kb_for(1 * MS, cpus=2, available_kb=1 << 30) == 2053  # 2052.1 KiB
    assert buffer_kb_for(3000 * MS, cpus=2, available_kb=64 * 1024) == 4096
    assert buffer_kb_for(3000 * MS, cpus=2, available_kb=8 * 1024) == 1024


#: CPU 1's idle task records no switch (see cfssim.real.tracefs): 2001 is woken by its timer,
#: returns to user (rseq_update) and sleeps; later it runs in the kernel only (no witness);
#: 2002 is still running at the end. 2002's wakeup of the running 2001 (ttwu_runnable) is no wait.
IDLE_CPU_TRACE_TEXT = """\
          <idle>-0       [001] dNh4.  1241.000100: sched_wakeup: comm=w pid=2001 prio=120 \
target_cpu=001
               w-2001    [001] .....  1241.000130: rseq_update: cpu_id=1 node_id=0 mm_cid=0
               w-2002    [000] d..4.  1241.000500: sched_wakeup: comm=w pid=2001 prio=120 \
target_cpu=001
               w-2001    [001] d..2.  1241.001130: sched_switch: prev_comm=w prev_pid=2001 \
prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          <idle>-0       [001] dNh4.  1241.002000: sched_wakeup: comm=w pid=2001 prio=120 \
target_cpu=001
               w-2001    [001] d..2.  1241.002050: sched_switch: prev_comm=w prev_pid=2001 \
prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
          <idle>-0       [001] dNh4.  1241.003000: sched_wakeup: comm=w pid=2002 prio=120 \
target_cpu=001
               w-2002    [001] .....  1241.003020: rseq_update: cpu_id=1 node_id=0 mm_cid=0
"""


def test_runs_without_a_recorded_switch_in_start_at_their_return_to_user() -> None:
    events = list(parse_trace(IDLE_CPU_TRACE_TEXT))
    assert (events[1].name, events[1].pid, events[0].pid) == ("rseq_update", 2001, 0)
    tables = events_to_tables(events, {2001: 0, 2002: 1}, 1241_000_000_000, end=5 * MS)
    assert tables.segments == [
        (1, 0, 130_000, 1_130_000),  # from its witness
        (1, 0, 2 * MS, 2_050_000),  # from its wakeup: no witness
        (1, 1, 3_020_000, 5 * MS),  # still running at the end
    ]
    assert tables.wakeups == [(0, 1, 100_000, 30_000), (0, 1, 2 * MS, 0), (1, 1, 3 * MS, 20_000)]


# ---- what the kernel taught the model (no kernel needed) --------------------------------------
def test_traced_wakeups_give_the_measured_tasks_their_wakeup_latency() -> None:
    """The twin's task figures take wakeup latency from the traced sched_wakeup → switch-in
    pairs (`latency_figures` of each task's rows); without --trace it stays unknown."""
    tables = events_to_tables(
        parse_trace(IDLE_CPU_TRACE_TEXT), {2001: 0, 2002: 1}, 1241_000_000_000, end=5 * MS
    )
    recorder = Recorder()
    tables.record(recorder)
    trace = recorder.freeze(["w/0", "w/1"], ["/"], 2)
    threads = [MeasuredThread("w/0", 0, 0, "/", 0), MeasuredThread("w/1", 0, 1, "/", 0)]
    first, second = (
        measured_task_figures(thread, "w", "normal", None, traced_latencies(trace, index))
        for index, thread in enumerate(threads)
    )
    # 2001 waited 30 µs, then 0 (woken as it ran in the kernel); 2002 waited 20 µs
    assert first["wakeup_latency_ns"] == {
        "p50": 15_000,
        "p99": 29_700,
        "max": 30_000,
        "mean": 15_000,
    }
    assert second["wakeup_latency_ns"] == {
        "p50": 20_000,
        "p99": 20_000,
        "max": 20_000,
        "mean": 20_000,
    }
    assert measured_task_figures(threads[0], "w", "normal", None)["wakeup_latency_ns"] is None


def test_quota_and_burst_written_together_fill_the_pool() -> None:
    """Every write of a bandwidth file is one ``tg_set_cfs_bandwidth`` and one refill; the
    burst is its own file, written after the quota, so the pool starts at quota + burst: on
    the kernel a 15 ms run under 10 ms/100 ms with a 10 ms burst is not throttled at start."""
    pool = CfsBandwidth(100 * MS, None, 0, 5 * MS)
    pool.set_limits(100 * MS, 10 * MS, 10 * MS)  # cpu.cfs_quota_us, then cpu.cfs_burst_us
    assert pool.runtime == 20 * MS and pool.stat.nr_bursts == 0
    no_burst = CfsBandwidth(100 * MS, None, 0, 5 * MS)
    no_burst.set_limits(100 * MS, 10 * MS, 0)
    assert no_burst.runtime == 10 * MS
    scenario = load_scenario(bundled_scenarios()["burst"]).model_copy(
        update={"duration_ns": 2000 * MS}
    )
    stat = run_scenario(scenario).cgroups["/bursty"]["cpu.stat"]
    # 8 runs of 15 ms, each inside one period (t0 on the period grid): 8 bursts of ≥ 5 ms
    assert (stat["nr_throttled"], stat["nr_bursts"]) == (0, 8)
    assert 40 * MS <= stat["burst_time"] <= 8 * 6 * MS


TIMER_LIST = """\
cpu: 1
 clock 1:
  .base:       00000000ad3a3b1e
active timers:
 #0: <00000000e5093fed>, sched_cfs_period_timer, S:01
 # expires at 3626905512290-3626905512290 nsecs [in 96167748 to 96167748 nsecs]
 #1: <000000009fd60f79>, watchdog_timer_fn, S:01
 # expires at 3628000000000-3628000000000 nsecs [in 1190655458 to 1190655458 nsecs]
"""


def test_the_real_run_starts_at_an_expiry_of_the_groups_period_timer() -> None:
    """Since 6.4 a group's period timer starts at a random phase (measured: fresh groups'
    timers 16.5, 28.2, 56.7 ms past a multiple of 100 ms): the real t0 is put on the grid of
    that timer's expiries, read from /proc/timer_list, so the periods end where the
    simulator's do (multiples of the period since t = 0)."""
    assert period_timers(TIMER_LIST) == {"<00000000e5093fed>": 3626_905_512_290}
    scenario = load_scenario(bundled_scenarios()["nested-quota"])
    configs = scenario.cgroups.values()
    assert on_period_grid(1_234_567_890, configs) == 1_300_000_000  # no timer: boot grid
    assert on_period_grid(1_234_567_890, configs, 3626_905_512_290) == 1_305_512_290
    assert on_period_grid(5, load_scenario(TWO_HOGS_ONE_CPU).cgroups.values(), 77) == 5


# ---- kernel ---------------------------------------------------------------------------------
def background_load(wall_s: float = 0.5) -> float:
    """Busy share of the machine's CPU capacity over `wall_s` while this test sleeps."""
    busy, start = machine_busy_ns(), time.monotonic_ns()
    time.sleep(wall_s)
    return (machine_busy_ns() - busy) / ((time.monotonic_ns() - start) * (os.cpu_count() or 1))


@pytest.fixture
def quiet_machine() -> None:
    try:
        cgroupfs.detect()
    except RealRunError as exc:
        pytest.skip(f"cannot measure on this machine: {exc.message}")
    load = background_load()
    if load > QUIET:
        pytest.skip(f"background load {load:.0%} > {QUIET:.0%}: kernel figures would be noise")


def measured(scenario: Scenario, **options: bool) -> Result:
    kernel = measure(scenario, **options)
    load = float(kernel.meta["background_cpu_fraction"])
    if load > QUIET:
        pytest.skip(f"background load during the run was {load:.0%} > {QUIET:.0%}")
    return kernel


@pytest.mark.kernel
@pytest.mark.usefixtures("quiet_machine")
def test_traced_hogs_on_one_cpu_alternate_at_the_tick() -> None:
    """Two nice-0 hogs pinned to CPU 1: the traced segments alternate between the two tids,
    cover their CPU time, and each lasts one tick (4 ms at HZ=250): EEVDF's 1.4 ms slice end
    is noticed at the tick on this kernel (no HRTICK), not timed precisely."""
    kernel = measured(load_scenario(TWO_HOGS_ONE_CPU), trace=True)
    assert kernel.trace is not None
    seg = kernel.trace["segments"]
    assert set(seg["cpu"].tolist()) == {1}
    order = seg["task"][np.argsort(seg["start"])]
    assert np.mean(order[1:] != order[:-1]) > 0.95  # A B A B …
    lengths = seg["end"] - seg["start"]
    for index, name in enumerate(kernel.trace.tasks):
        traced = int(lengths[seg["task"] == index].sum())
        assert abs(traced - kernel.tasks[name]["cpu_time_ns"]) < 10 * MS
    middle = np.sort(lengths)[len(lengths) // 10 : -len(lengths) // 10]
    assert 3.9 * MS < np.median(middle) < 4.1 * MS


TIMER_SLEEPER = """
name: timer-sleeper
duration: 400ms
machine: {{cpus: 2}}
processes:
  - name: s
    cpus: [{cpu}]
    repeat: 8
    program: [{{run: 10ms}}, {{sleep: 10ms}}, {{run: 10ms}}, {{timer: 40ms}}]
"""


def steal_ns(cpu: int) -> int:
    """Time the hypervisor took from `cpu` since boot (/proc/stat ``steal``, in ticks), ns."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            return int(line.split()[8]) * 1_000_000_000 // USER_HZ
    raise AssertionError(f"/proc/stat has no cpu{cpu} line")


@pytest.mark.kernel
@pytest.mark.usefixtures("quiet_machine")
@pytest.mark.parametrize("cpu", sorted({0, (os.cpu_count() or 1) - 1}))
def test_traced_sleeper_has_every_wakeup_and_every_run(cpu: int) -> None:
    """A thread alone on `cpu`, woken by timers from idle: the trace holds every wakeup and
    every run, also on CPU 1 of the development VMs, where the idle task records no switch.
    Segments follow the switches: schedstat counts from the waking interrupt (10–30 µs per
    wakeup earlier) and leaves out the time the hypervisor stole, which segments include."""
    stolen = steal_ns(cpu)
    kernel = measured(load_scenario(TIMER_SLEEPER.format(cpu=cpu)), trace=True)
    stolen = steal_ns(cpu) - stolen + 1_000_000_000 // USER_HZ  # counted in whole ticks
    assert kernel.trace is not None
    seg, woken = kernel.trace["segments"], kernel.trace["wakeups"]
    task = kernel.tasks["s/0"]
    # the wait for t0, then 8 sleeps and 8 timer waits: 17 wakeups, each followed by a run
    assert len(woken["time"]) == task["wakeups"] == 17
    assert set(seg["cpu"].tolist()) == {cpu} and (woken["latency"] >= 0).all()
    assert len(seg["start"]) - task["nr_involuntary_switches"] in (17, 18)
    traced, cpu_time = int((seg["end"] - seg["start"]).sum()), task["cpu_time_ns"]
    assert 0.99 * cpu_time <= traced <= 1.01 * cpu_time + stolen


SLEEPER = """
name: sleeper
duration: 300ms
machine: {cpus: 2}
processes:
  - {name: s, repeat: forever, program: [{run: 2ms}, {sleep: 8ms}]}
"""


@pytest.mark.kernel
def test_a_traced_run_fills_every_tasks_wakeup_latency() -> None:
    """``measure --trace``: each task's ``wakeup_latency_ns`` is `latency_figures` of its traced
    wakeups (sched_wakeup → switch-in), one per sleep; a sleeper woken by its timer preempts
    whatever runs at once (EEVDF places it with its lag), well within a tick."""
    try:
        kernel = measure(load_scenario(SLEEPER), trace=True)
    except RealRunError as exc:
        pytest.skip(f"cannot measure here: {exc}")
    assert kernel.trace is not None
    task = kernel.tasks["s/0"]
    latencies = traced_latencies(kernel.trace, 0)
    assert task["wakeup_latency_ns"] == latency_figures(latencies)
    # one per voluntary switch, but the release at t0 (woken just before it) and a last sleep
    # whose run falls after the end; at most 30 cycles of 10 ms, fewer when runs wait
    assert task["wakeups"] - 2 <= len(latencies) <= task["wakeups"]
    assert 15 <= len(latencies) <= 30 and (latencies >= 0).all()
    figures = task["wakeup_latency_ns"]
    assert figures is not None and figures["p50"] < 4 * MS


#: Short runs (≤ 2 s) of bundled scenarios, (name, duration).
# Known model gaps, measured on a quiet machine (2026-11-27) and kept visible here:
_SHARES_GAP = (
    "over 1 s the kernel's split of cpu.shares 2048:1024 (two hogs each, 2 CPUs) depends on "
    "where its balancer leaves the hogs: 1.57:1 to 2.16:1 in 11 quiet runs (worst task 0.8–4.5% "
    "of capacity off the simulation's 2:1, so this passes ~9 runs in 10); over 10 s 1.84–2.06:1. "
    "Its balancer leaves the balanced placement (one high + one low hog per CPU) every ~100 ms "
    "and the ratio follows the time spent in each placement; the simulator stays balanced. A "
    "PELT stand-in did not change that, nor does host steal (docs/kernel-facts.md#shares-balance)"
)
_NESTED_VARIANCE = (
    "/parent/batch's throttled_time depends steeply on its period phase against /parent's "
    "(the twin measures it and the simulation uses it) and the kernel does not repeat itself "
    "within 20%: 413 vs 607 ms at phases 41.3 and 43.3 ms, 713 vs 1445 ms at 21.3 and 22.4 ms "
    "(regime cliff near 22 ms; the simulation's at 24-28 ms). 22 of 27 quiet runs agree within "
    "20% (docs/kernel-facts.md#nested-quota-phase)"
)
FIDELITY_CASES = [
    pytest.param("shares", 1000 * MS, marks=pytest.mark.xfail(reason=_SHARES_GAP, strict=False)),
    ("memory-oom", 1000 * MS),
    ("nice-autogroup", 2000 * MS),
    ("seed-quota", 2000 * MS),
    ("k8s-throttling", 2000 * MS),
    pytest.param(
        "nested-quota", 2000 * MS, marks=pytest.mark.xfail(reason=_NESTED_VARIANCE, strict=False)
    ),
    ("burst", 2000 * MS),
]


@pytest.mark.kernel
@pytest.mark.usefixtures("quiet_machine")
@pytest.mark.parametrize(("name", "duration_ns"), FIDELITY_CASES)
def test_measured_bundled_scenario_agrees_with_the_simulation(name: str, duration_ns: int) -> None:
    scenario = load_scenario(bundled_scenarios()[name]).model_copy(
        update={"duration_ns": duration_ns}
    )
    kernel = measured(scenario)
    comparison = compare(run_scenario(as_measured(kernel, scenario)), kernel)
    if not comparison.ok:
        from rich.console import Console

        console = Console(width=150, record=True)
        console.print(rich_table(comparison, verdicts_only=True))
        pytest.fail(f"{name}: simulation and kernel disagree\n{console.export_text()}")
