"""The core simulator: weights, fair shares, slices, wakeup preemption, task life
(start, affinity, exit, loops, generator behaviours), Result round trips and determinism.

Every expected number is derived from the kernel's rules in the comment beside it (kernel
references are to kernel/sched/fair.c and core.c, see ../shared/kernel-reference.md §1–2).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cfssim
from cfssim import Result, ms, s
from cfssim.behaviour import always_takes_time
from cfssim.sched.core import FAIR_POLICIES
from cfssim.sched.weights import (
    PRIO_TO_WEIGHT,
    calc_delta_fair,
    inverse_calc_delta_fair,
    inverse_weight,
)

REPO = Path(__file__).resolve().parent.parent
FOREVER = cfssim.program(run="forever")
ALL_POLICIES = sorted(FAIR_POLICIES)  # policy-independent properties are checked for every policy

TICK = ms(4)  # HZ=250


def share(result: Result, task: str) -> float:
    """The task's CPU time as a fraction of the run (of one CPU)."""
    return result.tasks[task]["cpu_time_ns"] / result.duration_ns


def segments(result: Result, task: str | None = None, cpu: int | None = None) -> np.ndarray:
    """Run segments as rows (cpu, task, start, end), in start order, optionally filtered."""
    assert result.trace is not None
    seg = result.trace["segments"]
    rows = np.stack([seg["cpu"], seg["task"], seg["start"], seg["end"]], axis=1)
    if task is not None:
        rows = rows[rows[:, 1] == result.trace.tasks.index(task)]
    if cpu is not None:
        rows = rows[rows[:, 0] == cpu]
    return rows[np.argsort(rows[:, 2], kind="stable")]


# ==== the run queue =============================================================================
def test_equal_keys_are_picked_in_insertion_order_like_the_rbtree() -> None:
    """``rb_add_cached`` sends a node equal to an existing one to its right, so among entities
    with the same vruntime (CFS) or deadline (EEVDF) the one queued first is picked first —
    whatever order the entities were created in. (An entity put back at the deadline of a
    sleeper that just woke goes behind it: the wakee runs.)"""
    from cfssim.sched.entity import SchedEntity
    from cfssim.sched.runqueue import CfsRunQueue

    cfs_rq = CfsRunQueue(None, 0, "/")
    older, newer, other = SchedEntity(), SchedEntity(), SchedEntity()
    cfs_rq.insert(newer, 500)
    cfs_rq.insert(older, 500)
    cfs_rq.insert(other, 499)
    assert cfs_rq.entities() == [other, newer, older]
    cfs_rq.remove(newer)
    cfs_rq.insert(newer, 500)  # re-queued (put back, reweighted): behind its equal
    assert cfs_rq.entities() == [other, older, newer]


# ==== weights ===================================================================================
@given(
    vdelta=st.integers(1, 2**40),
    weight=st.one_of(st.sampled_from(PRIO_TO_WEIGHT), st.integers(2, 2**20)),
)
def test_a_decision_is_timed_by_the_least_wall_delta_reaching_its_virtual_one(
    vdelta: int, weight: int
) -> None:
    """`inverse_calc_delta_fair`: the first wall ns at which `calc_delta_fair` — the vruntime an
    entity of `weight` gains — reaches `vdelta`, for nice weights and group weights alike."""
    inv = inverse_weight(weight)
    wall = inverse_calc_delta_fair(vdelta, weight, inv)
    assert calc_delta_fair(wall, weight, inv) >= vdelta
    assert wall == 1 or calc_delta_fair(wall - 1, weight, inv) < vdelta


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_nice_0_vs_nice_5_share_one_cpu_1024_to_335(policy: str) -> None:
    # sched_prio_to_weight: nice 0 → 1024, nice 5 → 335. Two hogs on one CPU receive CPU in
    # proportion to weight: 1024/1359 = 75.35 %, 335/1359 = 24.65 %.
    sim = cfssim.Simulation(cpus=2, policy=policy, seed=1)
    sim.add_process("n0", behaviour=FOREVER, cpus=[0])
    sim.add_process("n5", nice=5, behaviour=FOREVER, cpus=[0])
    result = sim.run("10s")
    assert share(result, "n0/0") == pytest.approx(1024 / 1359, abs=0.005)
    assert share(result, "n5/0") == pytest.approx(335 / 1359, abs=0.005)
    assert share(result, "n0/0") + share(result, "n5/0") == pytest.approx(1.0, abs=1e-9)


def test_sched_idle_weighs_3_against_nice_0() -> None:
    # set_load_weight: SCHED_IDLE → weight 3 (WEIGHT_IDLEPRIO). Long-run share 3/1027 = 0.292 %.
    # The idle task runs in quanta of at least min_granularity (BASE_SLICE floor, 1.5 ms on 2
    # CPUs) every ~1024/3 × 1.5 ms ≈ 0.5 s, so over 10 s the share is exact to ±1 quantum
    # (0.015 pp).
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("normal", behaviour=FOREVER, cpus=[0])
    sim.add_process("idle", policy="idle", behaviour=FOREVER, cpus=[0])
    result = sim.run("10s")
    assert share(result, "idle/0") == pytest.approx(3 / 1027, abs=0.0002)


def test_normal_wakee_always_preempts_sched_idle_curr() -> None:
    # check_preempt_wakeup: a SCHED_IDLE curr is preempted by any non-idle wakee at once, so
    # a 1 ms / 9 ms task beside an idle-policy hog gets its full 10 % with zero latency.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("idle", policy="idle", behaviour=FOREVER, cpus=[0])
    sim.add_process("io", behaviour=cfssim.program(run="1ms", sleep="9ms"), cpus=[0])
    result = sim.run("1s")
    io = result.tasks["io/0"]
    assert io["cpu_time_ns"] == 100 * ms(1)
    assert io["wakeup_latency_ns"]["max"] == 0


# ==== SMP fair shares ===========================================================================
def run_hogs(n: int, m: int, seed: int = 1, duration: str = "10s") -> Result:
    sim = cfssim.Simulation(cpus=m, policy="cfs", seed=seed)
    sim.add_process("hog", threads=n, behaviour=FOREVER)
    return sim.run(duration)


# Known failure of a 2 % bound, shared by the reference kernel: which hog holds the single
# "solo" CPU slot is decided by periodic balancing, so over 10 s the shares drift from M/N when
# N is not a multiple of M — here 2–7 % over seeds 1–5; on the 6.18 reference (quiet, 10 s,
# docs/kernel-facts.md#hogs-over-cpus) 3 hogs on 2 CPUs deviated 2.0, 2.5, 2.9, 4.1 %, 5 hogs
# 1.5, 1.7 and 2.9 %. Checked over seeds 1–5 so that a pass means fair rotation, not luck.
_ROTATION = (
    "balancing rotates the solo slot: 10 s shares deviate up to 2-7 % from M/N (the reference "
    "kernel: 2.0-4.1 % for 3 hogs on 2 CPUs)"
)
HOG_CASES = [
    pytest.param(3, 2, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
    pytest.param(5, 2, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
    pytest.param(4, 2),
    pytest.param(6, 3),
    pytest.param(4, 3, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
    pytest.param(5, 3, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
    pytest.param(7, 4, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
    pytest.param(6, 4, marks=pytest.mark.xfail(reason=_ROTATION, strict=True)),
]


@pytest.mark.parametrize(("n", "m"), HOG_CASES)
def test_n_equal_hogs_on_m_cpus_each_get_m_over_n(n: int, m: int) -> None:
    # N ≥ M equal hogs: the machine's M CPUs are busy all the time and equal weights get equal
    # service, so each hog gets M/N of a CPU. Checked within 2 % (relative) for seeds 1–5 so a
    # pass cannot be luck of one seed.
    for seed in range(1, 6):
        result = run_hogs(n, m, seed)
        for name in result.tasks:
            assert share(result, name) == pytest.approx(m / n, rel=0.02), (seed, name)
        busy = sum(c["busy_ns"] for c in result.cpu.values())
        assert busy == m * result.duration_ns


@pytest.mark.parametrize(("n", "m", "kernel_spread"), [(3, 2, 0.009), (5, 2, 0.024)])
def test_hogs_rotating_over_two_cpus_stay_near_m_over_n(
    n: int, m: int, kernel_spread: float
) -> None:
    # The reference kernel (docs/kernel-facts.md#hogs-over-cpus, quiet machine, 10 s, 7 runs):
    # 3 hogs on 2 CPUs end 0.9–4.1 % from M/N, 5 hogs 1.5–2.9 %, with ~25 (3 hogs) and ~30 (5
    # hogs) migrations per hog. Our balancer rotates the solo slot at seeded-random moments;
    # hold it to 5 % (or twice the kernel's first measured spread) for every seed.
    for seed in range(1, 6):
        result = run_hogs(n, m, seed)
        shares = [share(result, name) for name in result.tasks]
        assert sum(shares) == pytest.approx(m, abs=1e-9)
        assert max(abs(x / (m / n) - 1) for x in shares) < max(0.05, 2 * kernel_spread), seed


@pytest.mark.parametrize(("n", "m"), [(1, 2), (2, 4), (3, 4), (4, 4)])
def test_fewer_hogs_than_cpus_each_run_alone(n: int, m: int) -> None:
    # N ≤ M: select_task_rq_fair places each new task on an idle CPU; nothing ever waits, so
    # each hog owns one CPU for the whole run and never migrates.
    result = run_hogs(n, m, duration="2s")
    cpus_used = set()
    for name, fig in result.tasks.items():
        assert fig["cpu_time_ns"] == result.duration_ns
        assert fig["wait_time_ns"] == 0
        assert fig["nr_migrations"] == 0
        cpus_used |= set(segments(result, name)[:, 0].tolist())
    assert len(cpus_used) == n


# ==== slices ====================================================================================
def two_hogs_on_cpu0(slice_ends: str) -> Result:
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1, slice_ends=slice_ends)
    sim.add_process("hog", threads=2, behaviour=FOREVER, cpus=[0])
    return sim.run("1s")


def test_cfs_two_hogs_switch_every_6ms_with_precise_slice_ends() -> None:
    # 2 CPUs → factor 1 + ilog2(2) = 2: sched_latency 12 ms. Two runnable (ALT_PERIOD counts
    # rq->cfs.h_nr_running = 2 ≤ nr_latency 8) → period 12 ms; sched_slice takes __calc_delta
    # at each level with the kernel's inverse-weight truncation: period × 1024 / 2048 in the
    # process's autogroup → 5_999_997 ns, then × 1024 / 1024 for the autogroup's entity, alone
    # at the root → 5_999_995 ns. HRTICK ends each slice exactly there.
    slice_ns = (12_000_000 * 1024 * ((2**32 - 1) // 2048)) >> 32
    assert slice_ns == 5_999_997
    slice_ns = (slice_ns * 1024 * ((2**32 - 1) // 1024)) >> 32
    assert slice_ns == 5_999_995
    rows = segments(two_hogs_on_cpu0("precise"), cpu=0)
    steady = rows[rows[:, 2] >= ms(100)]
    assert len(steady) > 100
    assert (steady[:-1, 3] - steady[:-1, 2] == slice_ns).all()  # the last one is cut by the end
    assert (np.diff(steady[:, 1]) != 0).all()  # the two hogs alternate
    assert (steady[1:, 2] == steady[:-1, 3]).all()  # no idle gap


def test_cfs_two_hogs_switch_every_8ms_with_tick_slice_ends() -> None:
    # Without HRTICK, check_preempt_tick runs at ticks (every 4 ms): at the 4 ms tick ran = 4 <
    # ideal 6 and the vruntime test needs ran ≥ min_gran and curr.v − left.v > ideal (false: the
    # other hog is only 4 ms behind); at the 8 ms tick ran = 8 > 6 → resched. Every switch is on
    # the tick grid, every slice 8 ms.
    rows = segments(two_hogs_on_cpu0("tick"), cpu=0)
    assert (rows[:-1, 3] - rows[:-1, 2] == ms(8)).all()
    assert (rows[:, 2] % TICK == 0).all()
    assert (np.diff(rows[:, 1]) != 0).all()


def test_short_sleeper_beside_three_hogs_gets_its_share_without_latency() -> None:
    # io runs 1 ms then sleeps 9 ms beside three hogs on CPU 0 of a 2-CPU machine.
    # place_entity on wakeup: v = max(v_own, min_vruntime − sched_latency/2) = max(v_own,
    # min_v − 6 ms) (GENTLE_FAIR_SLEEPERS). io gains ~1 ms of vruntime per 10 ms cycle while
    # min_vruntime (the hogs') gains ~3 ms, so io is placed at min_v − 6 ms. curr is a hog with
    # curr.v ≥ min_v, so curr.v − io.v ≥ 6 ms > wakeup_gran(io) = 2 ms (weight 1024): the
    # wakeup preempts at once (latency 0) and io, still ≥ 5 ms left of every hog after its
    # 1 ms, runs it uninterrupted. Hence exactly 1000 cycles of 10 ms in 10 s: 1 s of CPU (10 %),
    # 999 wakeups (the first run is not a wakeup) and 1000 voluntary switches. Without the
    # preemption the worst case would be curr's slice, 12 ms × 1/4 = 3 ms (4 ms at tick grain).
    for slice_ends in ("precise", "tick"):
        sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1, slice_ends=slice_ends)
        sim.add_process("hog", threads=3, behaviour=FOREVER, cpus=[0])
        sim.add_process("io", behaviour=cfssim.program(run="1ms", sleep="9ms"), cpus=[0])
        result = sim.run("10s")
        io = result.tasks["io/0"]
        assert io["cpu_time_ns"] == s(1)
        assert io["wakeups"] == 999
        assert io["nr_voluntary_switches"] == 1000
        assert io["nr_involuntary_switches"] == 0
        assert io["wakeup_latency_ns"] == {"p50": 0, "p99": 0, "max": 0, "mean": 0}
        hogs = [share(result, f"hog/{i}") for i in range(3)]
        assert sum(hogs) == pytest.approx(0.9, abs=1e-9)
        assert max(hogs) - min(hogs) < 0.01


# ==== task life =================================================================================
def test_affinity_confines_threads_and_they_share_their_cpus() -> None:
    # 3 threads allowed on CPUs {1, 2} of 4: they never run elsewhere and split 2 CPUs three
    # ways (balancing stays within the mask); CPUs 0 and 3 stay idle.
    sim = cfssim.Simulation(cpus=4, policy="cfs", seed=1)
    sim.add_process("pinned", threads=3, behaviour=FOREVER, cpus=[1, 2])
    result = sim.run("2s")
    rows = segments(result)
    assert set(rows[:, 0].tolist()) == {1, 2}
    assert result.cpu["0"]["busy_ns"] == result.cpu["3"]["busy_ns"] == 0
    assert sum(share(result, t) for t in result.tasks) == pytest.approx(2.0)


def test_start_time_delays_the_first_run() -> None:
    # A hog starting at 250 ms on an idle machine runs from exactly 250 ms to the end.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("late", behaviour=FOREVER, start="250ms")
    result = sim.run("1s")
    rows = segments(result, "late/0")
    assert rows[0, 2] == ms(250)
    assert result.tasks["late/0"]["cpu_time_ns"] == ms(750)


def test_exit_step_ends_the_thread_with_its_code() -> None:
    # {run: 10ms}, {exit: 3} alone on a CPU: runs [0, 10 ms), then do_exit with code 3.
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("quitter", behaviour=cfssim.program({"run": "10ms"}, {"exit": 3}))
    result = sim.run("100ms")
    fig = result.tasks["quitter/0"]
    assert fig["exit"] == {"time_ns": ms(10), "reason": "exited", "code": 3}
    assert fig["cpu_time_ns"] == ms(10)
    assert segments(result, "quitter/0")[:, 2:].tolist() == [[0, ms(10)]]


def test_loop_and_repeat_run_the_program_the_given_number_of_times() -> None:
    # (loop 3 × [run 1 ms, sleep 1 ms]) then run 5 ms, the whole program twice, alone on a CPU:
    # runs at [0,1) [2,3) [4,5) [6,11); the second pass's first run follows the 5 ms run without
    # a sleep, so the task keeps the CPU: [6,12) is one segment; then [13,14) [15,16) [17,22);
    # 2 × (3 + 5) = 16 ms of CPU; the thread exits at 22 ms with code 0.
    behaviour = cfssim.program(
        {"loop": {"repeat": 3, "program": [{"run": "1ms"}, {"sleep": "1ms"}]}},
        {"run": "5ms"},
        repeat=2,
    )
    sim = cfssim.Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_process("looper", behaviour=behaviour, cpus=[0])
    result = sim.run("100ms")
    expected = [(0, 1), (2, 3), (4, 5), (6, 12), (13, 14), (15, 16), (17, 22)]
    assert segments(result, "looper/0")[:, 2:].tolist() == [[ms(a), ms(b)] for a, b in expected]
    fig = result.tasks["looper/0"]
    assert fig["cpu_time_ns"] == ms(16)
    assert fig["exit"] == {"time_ns": ms(22), "reason": "exited", "code": 0}


_LOOP_STEP = st.one_of(
    st.builds(lambda ns: {"run": ns}, st.sampled_from([0, 250_000])),
    st.builds(lambda ns: {"sleep": ns}, st.sampled_from([0, 250_000])),
    st.just({"free": "all"}),
    st.just({"timer": {"period": "1ms"}}),
)


@settings(deadline=None, max_examples=40)
@given(st.lists(_LOOP_STEP, min_size=1, max_size=4))
def test_a_forever_loop_ends_with_a_warning_exactly_when_a_pass_takes_no_time(
    steps: list[dict[str, Any]],
) -> None:
    # Alone on its CPU, a pass takes time iff it runs or sleeps a positive length (a run moves
    # sum_exec, a sleep the clock) or has a timer step (its first expiry is one period after
    # the start, each next one a period on); otherwise the first pass already ends the
    # thread at 0 with the documented warning and exit code None.
    sim = cfssim.Simulation(cpus=1, policy="eevdf", seed=1)
    sim.add_process("looper", behaviour=cfssim.program(*steps))
    result = sim.run("2ms")
    passes_take_time = any(
        (("run" in step or "sleep" in step) and next(iter(step.values())) > 0) or "timer" in step
        for step in steps
    )
    fig = result.tasks["looper/0"]
    if passes_take_time:
        assert fig["exit"] is None and result.meta["warnings"] == []
    else:
        assert fig["exit"] == {"time_ns": 0, "reason": "exited", "code": None}
        assert result.meta["warnings"] == [
            "looper/0: a 'forever' loop whose iteration takes no time would never end "
            "(add a run, sleep or timer step)"
        ]


def test_always_takes_time_needs_a_positive_run_or_sleep_at_the_top_level() -> None:
    # the check of each pass may be skipped only when every pass surely lets time pass: a
    # timer (whose expiry may already be reached) or a loop inside do not count
    def steps(*raw: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(cfssim.program(*raw).steps)  # type: ignore[attr-defined]

    assert always_takes_time(steps({"run": "forever"}))
    assert always_takes_time(steps({"free": "all"}, {"sleep": 1}))
    assert always_takes_time(steps({"run": 0}, {"run": 1}))
    assert not always_takes_time(steps({"run": 0}, {"sleep": 0}))
    assert not always_takes_time(steps({"timer": {"period": "1ms"}}))
    assert not always_takes_time(steps({"loop": {"repeat": 2, "program": [{"run": "1ms"}]}}))


def test_python_generator_behaviours() -> None:
    # Research code yields task.run / task.sleep, or any SimPy event (the task blocks during
    # it), and ends by returning. Alone on their CPUs:
    #  custom: 3 ms run / 7 ms sleep forever → 30 % over 1 s, 100 runs, 99 wakeups;
    #  waiter: 2 ms run / 8 ms env.timeout → 20 %;
    #  finite: run 4 ms, sleep 1 ms, run 4 ms, return → exits at 9 ms with code 0.
    def custom(task: Any) -> Any:
        while True:
            yield task.run(cfssim.ms(3))
            yield task.sleep(cfssim.ms(7))

    def waiter(task: Any) -> Any:
        while True:
            yield task.run(cfssim.ms(2))
            yield task.sim.env.timeout(cfssim.ms(8))

    def finite(task: Any) -> Any:
        yield task.run(cfssim.ms(4))
        yield task.sleep(cfssim.ms(1))
        yield task.run(cfssim.ms(4))

    sim = cfssim.Simulation(cpus=3, policy="cfs", seed=1)
    sim.add_process("custom", behaviour=custom, cpus=[0])
    sim.add_process("waiter", behaviour=waiter, cpus=[1])
    sim.add_process("finite", behaviour=finite, cpus=[2])
    result = sim.run("1s")
    custom_fig = result.tasks["custom/0"]
    assert custom_fig["cpu_time_ns"] == ms(300)
    assert custom_fig["timeslices"] == 100
    assert custom_fig["wakeups"] == 99
    assert custom_fig["nr_voluntary_switches"] == 100
    assert result.tasks["waiter/0"]["cpu_time_ns"] == ms(200)
    assert result.tasks["waiter/0"]["nr_voluntary_switches"] == 100
    assert result.tasks["finite/0"]["exit"] == {"time_ns": ms(9), "reason": "exited", "code": 0}
    assert result.tasks["finite/0"]["cpu_time_ns"] == ms(8)


def test_per_task_figures_of_two_hogs_on_one_cpu() -> None:
    # Two hogs sharing CPU 0 for 1 s, precise 6 ms slices: each is runnable the whole second,
    # so cpu_time + wait_time (run_delay) = 1 s; every switch-out is involuntary (preemption);
    # timeslices (pcount) = switch-ins = switch-outs + 1 for the one running at the end.
    result = two_hogs_on_cpu0("precise")
    running_at_end = {int(segments(result, cpu=0)[-1, 1])}
    for index, name in enumerate(result.trace.tasks):  # type: ignore[union-attr]
        fig = result.tasks[name]
        assert fig["cpu_time_ns"] + fig["wait_time_ns"] == s(1)
        assert fig["nr_voluntary_switches"] == 0
        assert fig["nr_switches"] == fig["nr_involuntary_switches"]
        assert fig["timeslices"] == fig["nr_switches"] + (index in running_at_end)
        assert fig["wakeups"] == 0 and fig["wakeup_latency_ns"] is None


# ==== results ===================================================================================
def mixed_simulation(seed: int = 7) -> cfssim.Simulation:
    sim = cfssim.Simulation(cpus=3, policy="cfs", seed=seed)
    sim.add_cgroup("/batch", {"cpu.shares": 512, "cpu.cfs_quota_us": 60000})
    sim.add_process("web", threads=4, behaviour=cfssim.program(run="2ms", sleep="8ms"))
    sim.add_process("batch", threads=3, nice=5, cgroup="/batch", behaviour=FOREVER)
    sim.add_process("pinned", behaviour=cfssim.program(run="7ms", sleep="3ms"), cpus=[2])
    sim.at("300ms", lambda: sim.set_nice("web", -2))
    return sim


def test_result_json_round_trip_and_pandas_frame(tmp_path: Path) -> None:
    result = mixed_simulation().run("500ms")
    path = tmp_path / "result.json"
    result.to_json(path)
    back = Result.from_json(path)
    assert back == result  # every field but the trace
    assert (
        json.loads(path.read_text())["tasks"]["web/0"]["cpu_time_ns"]
        == (result.tasks["web/0"]["cpu_time_ns"])
    )
    result.save(tmp_path / "run")
    loaded = Result.load(tmp_path / "run")
    assert loaded == result
    assert loaded.trace is not None and result.trace is not None
    assert loaded.trace.digest() == result.trace.digest()

    frame = result.tasks_frame()
    assert list(frame.index) == list(result.tasks)
    for name, fig in result.tasks.items():
        assert frame.loc[name, "cpu_time_ns"] == fig["cpu_time_ns"]
        assert frame.loc[name, "cgroup"] == fig["cgroup"]
    assert frame.loc["batch/0", "cgroup"] == "/batch"
    assert "wakeup_latency_ns.p99" in frame.columns


def test_same_seed_same_trace_in_one_process() -> None:
    first = mixed_simulation().run("500ms")
    second = mixed_simulation().run("500ms")
    assert first.trace is not None and second.trace is not None
    assert first.trace.digest() == second.trace.digest()
    assert first.to_json() == second.to_json()


MIXED_YAML = """
name: determinism
duration: 600ms
seed: 3
machine: {cpus: 3, policy: cfs}
cgroups:
  /batch: {cpu.shares: 512, cpu.cfs_quota_us: 70000}
  /web: {cpu.shares: 3072}
processes:
  - {name: web, cgroup: /web, threads: 4, repeat: forever, program: [{run: 2ms}, {sleep: 6ms}]}
  - {name: batch, cgroup: /batch, threads: 3, nice: 4, repeat: forever, program: [{run: forever}]}
  - {name: cron, start: 100ms, repeat: 5, program: [{run: 9ms}, {sleep: 31ms}]}
  - {name: pinned, cpus: [2], repeat: forever, program: [{run: 5ms}, {sleep: 1ms}]}
events:
  - {at: 250ms, write: {/batch: {cpu.cfs_quota_us: 30000}}}
  - {at: 400ms, move: {process: cron, to: /web}}
"""

_DIGEST_SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
import cfssim
print(cfssim.run_scenario(cfssim.load_scenario(sys.stdin.read())).trace.digest())
"""


def test_same_seed_same_trace_across_processes() -> None:
    # Two interpreters with different hash seeds (the order of str-keyed sets differs between
    # them) must produce byte-identical traces, equal to this process's.
    script = _DIGEST_SCRIPT.format(repo=str(REPO))
    digests = []
    for hash_seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=MIXED_YAML,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.append(out.stdout.strip())
    here = cfssim.run_scenario(cfssim.load_scenario(MIXED_YAML))
    assert here.trace is not None
    assert len(here.trace["segments"]["start"]) > 300  # a busy trace, not a trivial one
    assert digests[0] == digests[1] == here.trace.digest()


@pytest.mark.parametrize("policy", ALL_POLICIES)
def test_nothing_under_a_wakeup_or_a_block_batches_or_flushes(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Machine.wake_up` and `Machine.block` flush once, after `try_to_wake_up` /
    `block_task`, without a batch of their own: that holds only while nothing under those two
    opens a batch or flushes (a flush there would reschedule a CPU half-way through a change).
    Checked on every bundled scenario."""
    from cfssim.scenario import bundled_scenarios
    from cfssim.sched.core import Machine

    inside = [0]  # try_to_wake_up / block_task frames open
    entered = {"try_to_wake_up": 0, "block_task": 0}
    violations: list[str] = []

    def watched(name: str) -> None:
        original = getattr(Machine, name)

        def wrapper(self: Machine, *args: Any, **kwargs: Any) -> Any:
            entered[name] += 1
            inside[0] += 1
            try:
                return original(self, *args, **kwargs)
            finally:
                inside[0] -= 1

        monkeypatch.setattr(Machine, name, wrapper)

    def forbidden(name: str) -> None:
        original = getattr(Machine, name)

        def wrapper(self: Machine, *args: Any, **kwargs: Any) -> Any:
            if inside[0]:
                violations.append(name)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(Machine, name, wrapper)

    for name in ("try_to_wake_up", "block_task"):
        watched(name)
    for name in ("flush", "batch", "flush_unless_batched"):
        forbidden(name)
    for path in bundled_scenarios().values():
        cfssim.run_scenario(cfssim.load_scenario(path), policy=policy)
    assert violations == []
    assert entered["try_to_wake_up"] > 100 and entered["block_task"] > 100
