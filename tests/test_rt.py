"""SCHED_FIFO / SCHED_RR above the fair class, the 6.12+ fair server, per-class CPU time.

Kernel rules (kernel-reference.md §8): RT wakeups preempt fair tasks at once; RR slices are
100 ms; fair tasks starved by RT get 50 ms per second (fair server, = period − rt_runtime of the
sched_rt_* tunables); bandwidth control ignores RT tasks while cpuacct counts them.
"""

from __future__ import annotations

import numpy as np
import pytest

import cfssim

MS = 1_000_000


def test_an_rt_hog_leaves_the_fair_class_50ms_per_second() -> None:
    sim = cfssim.Simulation(cpus=2)
    sim.add_process(
        "rt", behaviour=cfssim.program(run="forever"), cpus=[0], policy="fifo", rt_priority=50
    )
    sim.add_process("fair", threads=2, behaviour=cfssim.program(run="forever"), cpus=[0])
    result = sim.run("5s")
    cpu0 = result.cpu["0"]
    assert cpu0["fair_ns"] == 5 * 50 * MS
    assert cpu0["rt_ns"] == 5 * 950 * MS
    fair = [result.tasks[f"fair/{i}"]["cpu_time_ns"] for i in range(2)]
    assert sum(fair) == 250 * MS
    assert fair[0] == pytest.approx(fair[1], rel=0.05)  # shared fairly among themselves
    assert result.tasks["rt/0"]["sched_class"] == "rt"
    assert result.tasks["fair/0"]["sched_class"] == "fair"


def test_the_fair_server_follows_the_rt_tunables() -> None:
    sim = cfssim.Simulation(cpus=1, tunables={"sched_rt_runtime_us": 900_000})
    sim.add_process("rt", behaviour=cfssim.program(run="forever"), policy="rr", rt_priority=1)
    sim.add_process("fair", behaviour=cfssim.program(run="forever"))
    assert sim.run("3s").cpu["0"]["fair_ns"] == 3 * 100 * MS


def test_an_rr_pair_alternates_every_100ms() -> None:
    sim = cfssim.Simulation(cpus=2)
    sim.add_process(
        "rr",
        threads=2,
        behaviour=cfssim.program(run="forever"),
        cpus=[0],
        policy="rr",
        rt_priority=10,
    )
    result = sim.run("1s")
    assert result.trace is not None
    seg = result.trace["segments"]
    assert list(seg["task"][:6]) == [0, 1, 0, 1, 0, 1]
    assert set((seg["end"] - seg["start"])[:-1]) == {100 * MS}


def test_fifo_runs_until_it_blocks_and_higher_priority_preempts() -> None:
    sim = cfssim.Simulation(cpus=1)
    sim.add_process(
        "low", threads=2, behaviour=cfssim.program(run="forever"), policy="fifo", rt_priority=10
    )
    sim.add_process(
        "high",
        behaviour=cfssim.program(run="2ms", sleep="8ms"),
        policy="fifo",
        rt_priority=20,
        start="1ms",
    )
    result = sim.run("1s")
    assert result.tasks["low/1"]["cpu_time_ns"] == 0  # FIFO: low/0 never yields to its peer
    assert result.tasks["high/0"]["cpu_time_ns"] == pytest.approx(200 * MS, rel=0.01)
    latency = result.tasks["high/0"]["wakeup_latency_ns"]
    assert latency is not None and latency["max"] == 0


def test_an_rt_wakeup_preempts_fair_tasks_at_once() -> None:
    sim = cfssim.Simulation(cpus=1)
    sim.add_process("hog", threads=3, behaviour=cfssim.program(run="forever"))
    sim.add_process(
        "rt", behaviour=cfssim.program(run="1ms", sleep="9ms"), policy="fifo", rt_priority=1
    )
    result = sim.run("1s")
    latency = result.tasks["rt/0"]["wakeup_latency_ns"]
    assert latency is not None and latency["max"] == 0
    assert result.cpu["0"]["rt_ns"] == pytest.approx(100 * MS, rel=0.01)


def test_bandwidth_ignores_rt_tasks_while_cpuacct_counts_them() -> None:
    sim = cfssim.Simulation(cpus=2)
    sim.add_cgroup("/capped", {"cpu.cfs_quota_us": 10000, "cpu.cfs_period_us": 100000})
    sim.add_process(
        "rt",
        behaviour=cfssim.program(run="forever"),
        cgroup="/capped",
        cpus=[0],
        policy="fifo",
        rt_priority=5,
    )
    sim.add_process("fair", behaviour=cfssim.program(run="forever"), cgroup="/capped", cpus=[1])
    result = sim.run("1s")
    assert result.tasks["rt/0"]["cpu_time_ns"] == 1000 * MS
    assert result.tasks["fair/0"]["cpu_time_ns"] == pytest.approx(100 * MS, rel=0.05)
    usage = result.cgroups["/capped"]["cpuacct.usage"]
    assert usage == result.tasks["rt/0"]["cpu_time_ns"] + result.tasks["fair/0"]["cpu_time_ns"]


def test_rt_tasks_spread_to_the_cpu_running_the_lowest_priority() -> None:
    sim = cfssim.Simulation(cpus=2)
    sim.add_process("fair", behaviour=cfssim.program(run="forever"), cpus=[1])
    sim.add_process(
        "rt", threads=2, behaviour=cfssim.program(run="forever"), policy="fifo", rt_priority=3
    )
    result = sim.run("1s")
    times = np.array([result.tasks[f"rt/{i}"]["cpu_time_ns"] for i in range(2)])
    assert set(times) == {1000 * MS, 950 * MS}  # one per CPU; CPU 1's fair task gets its 5%
