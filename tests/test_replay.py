"""Cycle replays (`cfssim.sched.replay`) change nothing but speed.

A CPU of CPU hogs that round-robin in a verified cycle plays its switches back instead of
deriving them. Runs with replays and the same runs without (``CFSSIM_REPLAY=0``) must give
byte-identical traces (every table), equal results, and the same state in every scheduling
field at any instant a run stops — on hand-picked machines and on random hog-heavy ones
(hypothesis), whether balancing moves tasks, sleepers interrupt, groups weigh, or nice levels
differ.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_invariants import FUZZ

import cfssim
from cfssim import Result
from cfssim.host import HostModel, uniform
from cfssim.sched.core import FAIR_POLICIES, REPLAY_VARIABLE
from cfssim.sched.entity import SchedEntity
from cfssim.sched.runqueue import CfsRunQueue
from cfssim.task import Task

POLICIES = sorted(FAIR_POLICIES)


def both(build: Callable[[], cfssim.Simulation], until: str) -> tuple[Result, Result, int]:
    """`build()` run with replays and without; the replayed switches of the first run."""
    results = []
    replayed = 0
    for value in ("1", "0"):
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(REPLAY_VARIABLE, value)
            sim = build()
            assert sim.machine.replay_enabled is (value == "1")
            results.append(sim.run(until))
            if value == "1":
                replayed = sim.machine.replayed_switches
    return results[0], results[1], replayed


def assert_identical(replayed: Result, derived: Result) -> None:
    assert replayed.trace is not None and derived.trace is not None
    assert replayed.trace.digest(every=True) == derived.trace.digest(every=True)
    assert replayed.to_dict() == derived.to_dict()


def hogs(cpus: int, n: int, policy: str, seed: int = 1) -> Callable[[], cfssim.Simulation]:
    def build() -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=cpus, policy=policy, seed=seed)
        sim.add_process("hog", threads=n, behaviour=cfssim.program(run="forever"))
        return sim

    return build


@pytest.mark.parametrize("policy", POLICIES)
def test_equal_hogs_replay_almost_every_switch(policy: str) -> None:
    # 2 CPUs × 5 hogs each, balanced: after two periods of 5 switches (the search) each CPU
    # plays its round robin back to the end of the run; nothing else happens (the balancer
    # finds equal loads), so all but the search's switches are replayed.
    replayed, derived, count = both(hogs(2, 10, policy), "3s")
    assert_identical(replayed, derived)
    switches = sum(t["nr_switches"] for t in derived.tasks.values())
    assert switches >= 3 * 2 * 250 * 0.95  # a switch per 4 ms tick on each CPU
    assert count >= 0.9 * switches


@pytest.mark.parametrize("policy", POLICIES)
def test_balancing_that_moves_hogs_stops_and_restarts_replays(policy: str) -> None:
    # 5 hogs on 2 CPUs: the periodic balancer rotates the solo slot (3 vs 2 on the CPUs), so
    # replays are cut at each move and searched for again between moves.
    replayed, derived, count = both(hogs(2, 5, policy), "10s")
    assert_identical(replayed, derived)
    migrations = sum(t["nr_migrations"] for t in derived.tasks.values())
    assert migrations >= 20
    assert count > 0


def test_a_sleeper_bounds_the_replays() -> None:
    # A task waking every 50 ms on CPU 1 is a foreign event each time: replays end before each
    # of its wakeups and resume after, on both CPUs.
    def build() -> cfssim.Simulation:
        sim = hogs(2, 6, "eevdf")()
        sim.add_process(
            "tick", behaviour=cfssim.program(run="1ms", sleep="49ms"), cpus=[1], start="5ms"
        )
        return sim

    replayed, derived, count = both(build, "2s")
    assert_identical(replayed, derived)
    assert count > 0


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("until_ms", [7, 101, 503, 1999])
def test_every_field_is_written_back_where_a_run_stops(policy: str, until_ms: int) -> None:
    # Stopping anywhere — mid-period, right after a leave, after a move — leaves every
    # scheduling field as the derived run has it.
    def state(value: str) -> dict[str, Any]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(REPLAY_VARIABLE, value)
            sim = cfssim.Simulation(cpus=2, policy=policy, seed=3)
            sim.add_process("hog", threads=5, behaviour=cfssim.program(run="forever"))
            sim.add_process("nice", threads=4, nice=3, behaviour=cfssim.program(run="forever"))
            sim.run(f"{until_ms}ms")
            return machine_state(sim.machine)

    assert state("1") == state("0")


def machine_state(machine: Any) -> dict[str, Any]:
    """Every number and reference of the CPUs, their queues (trees too) and their tasks."""
    out: dict[str, Any] = {}
    for rq in machine.rqs:
        out[f"rq{rq.cpu}"] = fields(rq, skip={"cycle", "cycle_wait", "cycle_backoff"})
        queues = {id(rq.cfs): rq.cfs}
        for task in rq.tasks.values():
            out[task.name] = fields(task, skip={"sim", "acct"})
            out[task.name]["acct"] = [list(usage) for usage in task.acct]
            se = task.se
            while se is not None:
                out[f"{task.name}.se{se.depth}"] = fields(se, skip={"node"})
                out[f"{task.name}.se{se.depth}"]["node"] = None if se.node is None else se.node[:2]
                queues[id(se.rq_of)] = se.rq_of
                se = se.parent
        for queue in queues.values():
            key = f"{queue.name}@{queue.cpu}"
            out[key] = fields(queue, skip={"tree"})
            out[key]["tree"] = [
                (k, n, s.task.name if s.task else "group") for k, n, s in queue.tree
            ]
    return out


def fields(obj: Any, skip: set[str]) -> dict[str, Any]:
    names = getattr(obj, "__slots__", None) or list(vars(obj))
    out = {}
    for name in names:
        if name in skip:
            continue
        out[name] = describe(getattr(obj, name))
    return out


def describe(value: Any) -> Any:
    """`value` comparable across two simulations: objects by their names."""
    if isinstance(value, (int, bool, str, type(None))):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Task):
        return value.name
    if isinstance(value, SchedEntity):
        return ("se", value.task.name if value.task else value.my_q.name, value.depth)
    if isinstance(value, CfsRunQueue):
        return (value.name, value.cpu)
    if isinstance(value, (set, frozenset)):
        return sorted(map(describe, value), key=repr)
    if isinstance(value, (tuple, list, array)):
        return [describe(item) for item in value]
    if isinstance(value, dict):
        return sorted(((describe(k), describe(v)) for k, v in value.items()), key=repr)
    return type(value).__name__


def test_a_noisy_host_never_replays() -> None:
    # Per-tick jitter moves every switch by its own draw: no two periods repeat, and the CPU
    # is not even searched.
    def build() -> cfssim.Simulation:
        host = HostModel(tick_jitter=(uniform(-20_000, 20_000),))
        sim = cfssim.Simulation(cpus=1, policy="eevdf", seed=1, host=host)
        sim.add_process("hog", threads=3, behaviour=cfssim.program(run="forever"))
        return sim

    replayed, derived, count = both(build, "1s")
    assert_identical(replayed, derived)
    assert count == 0


# ==== random hog-heavy machines =================================================================
@dataclass(frozen=True)
class HogMachine:
    policy: str
    cpus: int
    procs: tuple[tuple[int, int, str, tuple[int, ...] | None], ...]  # threads, nice, cgroup, cpus
    shares: tuple[int, int]
    sleeper: tuple[int, int] | None  # run µs, sleep µs
    seed: int
    until_ms: int

    def build(self) -> cfssim.Simulation:
        sim = cfssim.Simulation(cpus=self.cpus, policy=self.policy, seed=self.seed)
        sim.add_cgroup("/a", {"cpu.shares": self.shares[0]})
        sim.add_cgroup("/b", {"cpu.shares": self.shares[1]})
        for index, (threads, nice, cgroup, cpus) in enumerate(self.procs):
            sim.add_process(
                f"p{index}",
                threads=threads,
                nice=nice,
                cgroup=cgroup,
                cpus=cpus,
                behaviour=cfssim.program(run="forever"),
            )
        if self.sleeper is not None:
            run_us, sleep_us = self.sleeper
            sim.add_process(
                "sleeper", behaviour=cfssim.program(run=f"{run_us}us", sleep=f"{sleep_us}us")
            )
        return sim


@st.composite
def hog_machines(draw: st.DrawFn, policy: str) -> HogMachine:
    cpus = draw(st.integers(1, 4))
    procs = []
    for _ in range(draw(st.integers(1, 3))):
        pinned = draw(st.booleans()) and cpus > 1
        procs.append(
            (
                draw(st.integers(1, 7)),
                draw(st.sampled_from([0, 0, 0, 2, 5, -3])),
                draw(st.sampled_from(["/", "/", "/a", "/b"])),
                (draw(st.integers(0, cpus - 1)),) if pinned else None,
            )
        )
    sleeper = (
        (draw(st.integers(100, 3000)), draw(st.integers(5_000, 200_000)))
        if draw(st.booleans())
        else None
    )
    return HogMachine(
        policy=policy,
        cpus=cpus,
        procs=tuple(procs),
        shares=(draw(st.sampled_from([1024, 512, 2048])), draw(st.sampled_from([1024, 256]))),
        sleeper=sleeper,
        seed=draw(st.integers(1, 50)),
        until_ms=draw(st.integers(200, 1500)),
    )


@pytest.mark.parametrize("policy", POLICIES)
@FUZZ
@given(data=st.data())
def test_random_hog_machines_same_with_and_without_replays(
    policy: str, data: st.DataObject
) -> None:
    machine = data.draw(hog_machines(policy))
    replayed, derived, _ = both(machine.build, f"{machine.until_ms}ms")
    assert_identical(replayed, derived)
