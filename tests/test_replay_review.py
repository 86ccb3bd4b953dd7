"""Review of cycle replays (`cfssim.sched.replay`): scenarios where a replaying CPU's stale
state was read or changed before the replay left. Each compares replays on and off
(``CFSSIM_REPLAY``): the same trace, results and final scheduling state."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_invariants import FUZZ
from test_replay import assert_identical, both, machine_state

import cfssim
from cfssim.sched.core import REPLAY_VARIABLE


def final_state(build: Any, until: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """`machine_state` after `build().run(until)` with replays and without."""
    states = []
    for value in ("1", "0"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(REPLAY_VARIABLE, value)
            sim = build()
            sim.run(until)
            states.append(machine_state(sim.machine))
    return states[0], states[1]


def delayed_sleeper() -> cfssim.Simulation:
    # One autogroup: CPU 0's two hogs share its weight with CPU 1's two hogs and sleeper.
    # The sleeper's DELAY_DEQUEUE completes at a later pick on CPU 1 (a tick of a CPU whose
    # listed tasks are all hogs), which changes the group's load: CPU 0's group entity must
    # be reweighted at its next tick, replaying or not.
    sim = cfssim.Simulation(cpus=2, policy="eevdf", seed=1)
    hog = cfssim.program(run="forever")
    sim.add_process("a", threads=2, cpus=[0], behaviour=hog)
    sim.add_process("b", threads=2, cpus=[1], behaviour=hog)
    sim.add_process("m", behaviour=hog)
    sim.add_process(
        "sl", cpus=[1], behaviour=cfssim.program(run="300ms", sleep="300ms"), start="3ms"
    )
    return sim


def test_a_delayed_dequeue_on_another_cpu_reweights_a_replaying_group() -> None:
    replayed, derived = final_state(delayed_sleeper, "920001us")
    assert replayed == derived
    assert derived["a/0.se0"]["weight"] == 614  # 1024 × 3072 / 5120, after the dequeue


def nice_hogs() -> cfssim.Simulation:
    # hypothesis (CFSSIM_FUZZ_EXAMPLES=300, test_replay's random machines) found this one
    sim = cfssim.Simulation(cpus=4, policy="eevdf", seed=17)
    hog = cfssim.program(run="forever")
    sim.add_process("p0", threads=5, nice=-3, behaviour=hog)
    sim.add_process("p1", threads=2, cpus=[2], behaviour=hog)
    return sim


def test_a_balance_that_finds_no_busier_cpu_resets_a_replaying_cpus_failures() -> None:
    # CPU 3 failed a balance, then replays; its next balance finds nothing busier and resets
    # nr_balance_failed, which the replay's write-back must not undo (else a later balance
    # relaxes its threshold and migrates a hog the derived run keeps: a different trace).
    replayed, derived = final_state(nice_hogs, "188001us")
    assert replayed["rq3"]["nr_balance_failed"] == derived["rq3"]["nr_balance_failed"] == 0
    assert replayed == derived
    replayed_run, derived_run, count = both(nice_hogs, "253ms")
    assert_identical(replayed_run, derived_run)
    assert count > 0


def nested_groups() -> cfssim.Simulation:
    # /a/b spans CPUs 0 (two hogs), 1 (a lone hog: no timer armed) and 2 (a sleeper beside a
    # hog of another session). The sleeper's dequeue changes /a/b's load: CPU 1's weight of
    # /a/b goes stale until a periodic balance refreshes it (`refresh_group_weights`), which
    # changes /a's load and so CPU 0's weight of /a — to be re-derived at CPU 0's next tick.
    sim = cfssim.Simulation(cpus=3, policy="eevdf", seed=2)
    sim.add_cgroup("/a/b")
    hog = cfssim.program(run="forever")
    sim.add_process("h", threads=2, cgroup="/a/b", cpus=[0], behaviour=hog)
    sim.add_process("solo", cgroup="/a/b", cpus=[1], behaviour=hog)
    sim.add_process("root", cpus=[2], behaviour=hog, session="s2")
    sim.add_process(
        "sl",
        cgroup="/a/b",
        cpus=[2],
        behaviour=cfssim.program(run="150ms", sleep="400ms"),
        start="10ms",
    )
    return sim


def test_a_balance_refreshing_a_stale_cpu_reweights_a_replaying_group() -> None:
    replayed, derived = final_state(nested_groups, "2s")
    assert replayed == derived
    replayed_run, derived_run, count = both(nested_groups, "2s")
    assert_identical(replayed_run, derived_run)
    assert count > 0


@pytest.mark.parametrize("policy", ["eevdf", "cfs"])
def test_a_custom_slice_among_hogs_leaves_the_slice_counts_of_the_tree(policy: str) -> None:
    # The queue counts its tree's slices (`CfsRunQueue.slices`, for min/max_slice): which
    # slices are in the tree depends on who runs, so the counts a replay leaves must be those
    # of the tree it writes back (else a later remove of the custom slice finds no count).
    def build() -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=1, policy=policy, seed=1)
        hog = cfssim.program(run="forever")
        sim.add_process("h", threads=3, behaviour=hog)
        sim.add_process("short", slice="1ms", behaviour=hog)
        sim.add_process("tick", behaviour=cfssim.program(run="1ms", sleep="300ms"), start="5ms")
        return sim

    replayed, derived = final_state(build, "1303ms")
    assert replayed == derived
    queue = derived["/autogroup-cfssim@0"]  # the hogs' (autogroup) queue: 3 of 4 in its tree
    assert sum(count for _, count in queue["slices"]) == len(queue["tree"]) == 3
    assert (1_000_000, 1) in queue["slices"]  # "short" waits (a hog runs at 1303 ms)
    replayed_run, derived_run, count = both(build, "2s")
    assert_identical(replayed_run, derived_run)
    assert count > 0


@st.composite
def mixed_machines(draw: st.DrawFn) -> Any:
    """A builder of a machine mixing pinned hogs (nice levels, custom slices) in nested
    groups with pinned sleepers; the run's length."""
    policy = draw(st.sampled_from(["eevdf", "cfs"]))
    cpus = draw(st.integers(1, 3))
    seed = draw(st.integers(1, 50))
    hogs = [
        (
            draw(st.integers(1, 4)),
            draw(st.sampled_from([0, 0, 3, -2])),
            draw(st.sampled_from(["/", "/a", "/a/b", "/c"])),
            draw(st.integers(0, cpus - 1)),
            draw(st.sampled_from([None, None, "1ms", "5ms"])),
        )
        for _ in range(draw(st.integers(1, 4)))
    ]
    sleepers = [
        (
            draw(st.integers(1, 200)),
            draw(st.integers(1, 400)),
            draw(st.sampled_from(["/", "/a/b", "/c"])),
            draw(st.integers(0, cpus - 1)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]

    def build() -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=cpus, policy=policy, seed=seed)
        sim.add_cgroup("/a/b", {"cpu.shares": 512})
        sim.add_cgroup("/c", {"cpu.shares": 2048})
        hog = cfssim.program(run="forever")
        for index, (threads, nice, cgroup, cpu, slice_) in enumerate(hogs):
            sim.add_process(
                f"h{index}", hog, threads=threads, nice=nice, cgroup=cgroup, cpus=[cpu],
                slice=slice_,
            )  # fmt: skip
        for index, (run_ms, sleep_ms, cgroup, cpu) in enumerate(sleepers):
            sim.add_process(
                f"s{index}",
                cfssim.program(run=f"{run_ms}ms", sleep=f"{sleep_ms}ms"),
                cgroup=cgroup,
                cpus=[cpu],
            )
        return sim

    return build, f"{draw(st.integers(100, 2000))}ms"


@FUZZ
@given(machine=mixed_machines())
def test_random_mixed_machines_same_state_with_and_without_replays(machine: Any) -> None:
    build, until = machine
    replayed, derived = final_state(build, until)
    assert replayed == derived
