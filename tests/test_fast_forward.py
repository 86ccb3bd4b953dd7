"""The fast paths change nothing but speed: a run with them (the machine's timer calendar drained
between SimPy events, idle-CPU bookkeeping for wakeups) and the same run on the plain path
(``fast_forward=False`` / ``CFSSIM_FAST_FORWARD=0``: one SimPy timeout per timer start, CPUs
scanned) give byte-identical traces and equal results — on every bundled scenario under both
policies, and on random workloads (hypothesis, the generators of test_invariants).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_invariants import FUZZ, Workload, workloads

import cfssim
from cfssim import Result, load_scenario, run_scenario
from cfssim.hrtimer import Calendar, HrTimer
from cfssim.scenario import bundled_scenarios
from cfssim.sched.core import FAIR_POLICIES
from cfssim.simulation import FAST_FORWARD_VARIABLE

SCENARIOS = bundled_scenarios()


def both_paths(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Result]) -> tuple[Result, Result]:
    """`run()` on the fast path, then on the plain one (chosen by the environment variable)."""
    results = []
    for value in ("1", "0"):
        monkeypatch.setenv(FAST_FORWARD_VARIABLE, value)
        results.append(run())
    return results[0], results[1]


def assert_identical(fast: Result, plain: Result) -> None:
    assert fast.trace is not None and plain.trace is not None
    assert fast.trace.digest(every=True) == plain.trace.digest(every=True)
    assert fast.to_dict() == plain.to_dict()
    assert len(fast.trace["segments"]["start"]) > 0


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_bundled_scenario_same_on_both_paths(
    name: str, policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = load_scenario(SCENARIOS[name])
    fast, plain = both_paths(monkeypatch, lambda: run_scenario(scenario, policy=policy))
    assert_identical(fast, plain)


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
@FUZZ
@given(data=st.data())
def test_random_workload_same_on_both_paths(policy: str, data: st.DataObject) -> None:
    workload: Workload = data.draw(workloads(policy))
    fast, plain = (built(workload, path).run(workload.duration_ns) for path in (True, False))
    assert_identical(fast, plain)


def built(workload: Workload, fast_forward: bool) -> cfssim.Simulation:
    """`workload`'s simulation with the fast paths on or off (the constructor's switch)."""
    original = cfssim.Simulation.__init__

    def init(self: cfssim.Simulation, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **{**kwargs, "fast_forward": fast_forward})

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cfssim.Simulation, "__init__", init)
        sim = workload.build()
    assert sim.machine.calendar.fast is fast_forward
    return sim


def test_environment_variable_selects_the_plain_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FAST_FORWARD_VARIABLE, "0")
    assert not cfssim.Simulation().machine.calendar.fast
    monkeypatch.setenv(FAST_FORWARD_VARIABLE, "1")
    assert cfssim.Simulation().machine.calendar.fast
    assert not cfssim.Simulation(fast_forward=False).machine.calendar.fast


@pytest.mark.parametrize("fast", [True, False])
def test_timers_and_simpy_events_at_one_instant_keep_start_order(fast: bool) -> None:
    """Timers started and SimPy events scheduled for the same instant fire in the order they
    were started/scheduled (SimPy's (time, priority, id) order), whichever path holds them;
    a re-started timer takes its new place, a cancelled one never fires; a timer started by
    a firing timer for the same instant runs after events scheduled before it."""
    import simpy

    env = simpy.Environment()
    calendar = Calendar(env, fast)
    fired: list[str] = []

    def note(name: str) -> Callable[[], None]:
        return lambda: fired.append(name)

    a, b, c, d = (HrTimer(calendar, note(name)) for name in "abcd")
    a.start(10)
    env.timeout(10).callbacks.append(lambda _: fired.append("simpy1"))
    b.start(10)
    c.start(5)
    c.start(10)  # re-armed: now after b
    d.start(10)
    d.cancel()
    late = HrTimer(calendar, note("late"))

    def chain() -> None:
        fired.append("e")
        env.event().succeed()  # scheduled at 10 before `late`
        env.timeout(0).callbacks.append(lambda _: fired.append("simpy2"))
        late.start(10)

    e = HrTimer(calendar, chain)
    e.start(10)
    env.timeout(10).callbacks.append(lambda _: fired.append("simpy3"))
    env.run(until=20)
    assert fired == ["a", "simpy1", "b", "c", "e", "simpy3", "simpy2", "late"]
    assert env.now == 20


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_many_cpus_quota_groups_same_on_both_paths(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """24 CPUs, mostly busy (wakeups choose among few idle CPUs), 3 ``cpu.max`` groups that
    throttle: CPU selection, newidle and nohz balancing take the same decisions on both paths."""

    def run() -> Result:
        sim = cfssim.Simulation(cpus=24, policy=policy, seed=3)
        for group in range(3):
            path = f"/g{group}"
            sim.add_cgroup(path, {"cpu.max": "700000 100000"})
            sim.add_process(
                f"hog{group}", threads=6, cgroup=path, behaviour=cfssim.program(run="forever")
            )
            sim.add_process(
                f"io{group}",
                threads=8,
                cgroup=path,
                behaviour=cfssim.program(run="2ms", sleep="8ms"),
            )
        return sim.run("300ms")

    fast, plain = both_paths(monkeypatch, run)
    assert_identical(fast, plain)
    assert fast.trace is not None and len(fast.trace["migrations"]["time"]) > 0
    assert len(fast.trace["throttles"]["start"]) > 0


def throttling_groups(policy: str, cpus: int, quota_us: int, hogs: int, ios: int) -> Any:
    """Three ``cpu.max`` groups (`quota_us` per 100 ms) on `cpus` CPUs, each with `hogs` hogs
    and `ios` tasks running 2 ms then sleeping 8 ms: throttling, unthrottling, newidle pulls."""
    sim = cfssim.Simulation(cpus=cpus, policy=policy, seed=3)
    for group in range(3):
        path = f"/g{group}"
        sim.add_cgroup(path, {"cpu.max": f"{quota_us} 100000"})
        sim.add_process(
            f"hog{group}", threads=hogs, cgroup=path, behaviour=cfssim.program(run="forever")
        )
        sim.add_process(
            f"io{group}", threads=ios, cgroup=path, behaviour=cfssim.program(run="2ms", sleep="8ms")
        )
    return sim


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_newidle_source_search_matches_the_generic_one(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`newidle_src_rq` (newidle's own search) answers as the plain search it stands for
    would — keys (``h_nr_running``, load) from the greatest down, the first level with CPUs
    holding a task the idle CPU may take, a seeded draw among them — drawing the same
    tie-breaks from the machine's generator: compared at every newidle balance of a throttling
    24-CPU run."""
    from cfssim.sched import balance
    from cfssim.sched.newidle import newidle_src_rq

    compared = {"calls": 0, "found": 0}

    def movable(machine: Any, src: Any, dst: Any) -> bool:
        """Some task of `src` may move to `dst` (`_can_migrate`, task by task)."""
        return any(machine._can_migrate(t, src, dst) for t in src.tasks.values())

    def plain(machine: Any, rq: Any) -> Any:
        by_key: dict[tuple[int, int], list[Any]] = {}
        for other in machine.rqs:
            if other is not rq and other.cfs.h_nr_running >= 2:
                by_key.setdefault((other.cfs.h_nr_running, other.cfs.load), []).append(other)
        for level in sorted(by_key, reverse=True):
            tied = [other for other in by_key[level] if movable(machine, other, rq)]
            if tied:
                return tied[0] if len(tied) == 1 else tied[int(machine.rng.integers(len(tied)))]
        return None

    def both(machine: Any, rq: Any) -> Any:
        state = machine.rng.bit_generator.state
        generic = plain(machine, rq)
        after = machine.rng.bit_generator.state
        machine.rng.bit_generator.state = state
        own = newidle_src_rq(machine, rq)
        assert own is generic
        assert machine.rng.bit_generator.state == after
        compared["calls"] += 1
        compared["found"] += own is not None
        return own

    monkeypatch.setattr(balance, "newidle_src_rq", both)
    sim = throttling_groups(policy, cpus=24, quota_us=700_000, hogs=6, ios=8)
    sim.run("300ms")
    assert compared["calls"] > 100 and 0 < compared["found"] < compared["calls"]


def check_listing(machine: Any) -> int:
    """Assert that the movable-set counters (`FairClass.list_task`) equal a recount from
    ``rq.tasks`` and the queues' ``throttle_count``, and that the prefilter they feed
    (`FairClass.may_pull_from`) never rules out a pair some task may move between
    (`_can_migrate`); returns how many tasks were listed."""
    groups = machine.root.subtree()
    total = 0
    for rq in machine.rqs:
        on_queue: dict[int, int] = {}
        listed: dict[Any, int] = {}
        for task in rq.tasks.values():
            cfs_rq = task.se.rq_of
            on_queue[id(cfs_rq)] = on_queue.get(id(cfs_rq), 0) + 1
            if not cfs_rq.throttle_count:
                listed[cfs_rq.tg] = listed.get(cfs_rq.tg, 0) + 1
        assert rq.listed_unthrottled == listed
        assert rq.throttled_groups == {g for g in groups if g.cfs_rq[rq.cpu].throttle_count}
        assert [g.cfs_rq[rq.cpu].nr_listed for g in groups] == [
            on_queue.get(id(g.cfs_rq[rq.cpu]), 0) for g in groups
        ]
        total += len(rq.tasks)
    for src in machine.rqs:
        for dst in machine.rqs:
            if src is not dst and not machine.may_pull_from(src, dst):
                assert not any(machine._can_migrate(t, src, dst) for t in src.tasks.values())
    return total


def checking_listing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Check the movable-set counters after every `Machine.flush`; the list counts the checks
    and the tasks seen listed."""
    from cfssim.sched.core import Machine

    original = Machine.flush
    seen = [0, 0]

    def flush(self: Machine) -> None:
        original(self)
        seen[0] += 1
        seen[1] += check_listing(self)

    monkeypatch.setattr(Machine, "flush", flush)
    return seen


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_movable_set_counters_follow_queues_and_throttling(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Rq.listed_unthrottled``, ``Rq.throttled_groups`` and ``CfsRunQueue.nr_listed`` — which
    let `FairClass.may_pull_from` rule a CPU out without scanning its tasks — match a
    recount after every flush of a run that throttles, unthrottles and migrates."""
    seen = checking_listing(monkeypatch)
    sim = throttling_groups(policy, cpus=8, quota_us=250_000, hogs=3, ios=4)
    result = sim.run("300ms")
    assert seen[0] > 1000 and seen[1] > 0
    assert result.trace is not None and len(result.trace["throttles"]["start"]) > 0
    assert len(result.trace["migrations"]["time"]) > 0


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
@FUZZ
@given(data=st.data())
def test_movable_set_counters_on_random_workloads(policy: str, data: st.DataObject) -> None:
    """The same counters on random workloads (test_invariants' generator: cgroups with
    shares and quotas, affinity, nice levels)."""
    workload: Workload = data.draw(workloads(policy))
    with pytest.MonkeyPatch.context() as patch:
        seen = checking_listing(patch)
        workload.build().run(workload.duration_ns)
    assert seen[0] > 0


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_noisy_host_sync_steps_and_yield_same_on_both_paths(
    policy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real host's per-CPU skewed, jittered ticks and background noise (`cfssim.host`), mutex
    and condvar steps (`cfssim.sync`) and ``sched_yield``: identical on both paths."""
    from cfssim.host import HostModel, HostNoise, lognormal, uniform
    from cfssim.scenario import load_workload

    host = HostModel(
        tick_offset_ns=(0, 20_000),
        tick_jitter=(uniform(-30_000, 30_000),),
        noise=(HostNoise(200, lognormal(50_000, 1.0)),),
    )

    def noisy() -> Result:
        sim = cfssim.Simulation(cpus=2, policy=policy, seed=5, host=host)
        sim.add_process("web", cfssim.program(run="2ms", sleep="8ms"), threads=3)
        sim.add_process("hog", cfssim.program(run="forever"), threads=2)
        return sim.run("400ms")

    def synchronised() -> Result:
        text = (
            f"name: t\nduration: 200ms\nmachine: {{cpus: 2, policy: {policy}}}\nprocesses:\n"
            "  - name: consumer\n    threads: 2\n    program: [{run: 1ms}, {lock: m}, "
            "{loop: {repeat: 5, program: [{wait: {cond: c, mutex: m}}, {run: 1ms}]}}, "
            "{unlock: m}]\n"
            "  - name: producer\n    program: [{loop: {repeat: 10, program: [{sleep: 10ms}, "
            "{lock: m}, {run: 500us}, {broadcast: c}, {unlock: m}, {yield: true}]}}]\n"
            "  - name: hog\n    threads: 2\n    program: [{run: 3ms}, {yield: true}, "
            "{run: 2ms}, {yield: true}, {run: 40ms}]\n"
        )
        return load_workload(text).run()

    for run in (noisy, synchronised):
        fast, plain = both_paths(monkeypatch, run)
        assert_identical(fast, plain)


def counting_round_robin(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the ticks `Machine.switch_round_robin` handled (the list's one element)."""
    from cfssim.sched.core import Machine

    original = Machine.switch_round_robin
    handled = [0]

    def counted(self: Machine, rq: Any, prev: Any) -> bool:
        done = original(self, rq, prev)
        handled[0] += done
        return done

    monkeypatch.setattr(Machine, "switch_round_robin", counted)
    return handled


@pytest.mark.parametrize("slice_ends", ["tick", "precise"])
@pytest.mark.parametrize("autogroup", [True, False])
@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_round_robin_fast_path_same_on_both_paths(
    policy: str, autogroup: bool, slice_ends: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tick's round-robin switch (`Machine.switch_round_robin`) on what it is for and on
    what it must hand back: hog-only CPUs with a mix of nice levels, cgroups weighted by
    ``cpu.shares``, a ``cpu.max`` group whose queues throttle, hogs pinned to one CPU, balance
    ticks moving hogs, a waker joining a round robin of pinned hogs mid-cycle, a renice — the
    same trace and results as the plain path, and the fast path did handle ticks."""
    handled = counting_round_robin(monkeypatch)

    def run() -> Result:
        sim = cfssim.Simulation(
            cpus=3, policy=policy, seed=7, autogroup=autogroup, slice_ends=slice_ends
        )
        hog = cfssim.program(run="forever")
        both = [0, 1]
        sim.add_cgroup("/heavy", {"cpu.shares": 3072})
        sim.add_cgroup("/light", {"cpu.shares": 256})
        sim.add_cgroup("/capped", {"cpu.max": "10000 100000"})
        sim.add_process("plain", hog, threads=4, cpus=both)
        sim.add_process("niced", hog, threads=3, nice=5, cpus=both)
        sim.add_process("eager", hog, threads=2, nice=-3, cpus=both)
        sim.add_process("heavy", hog, threads=2, cgroup="/heavy", cpus=both)
        sim.add_process("light", hog, threads=2, cgroup="/light", nice=2, cpus=both)
        sim.add_process("capped", hog, threads=2, cgroup="/capped", cpus=both)
        sim.add_process("pinned", hog, threads=3, cpus=[2])  # CPU 2: one process's hogs
        sim.add_process("waker", cfssim.program(run="1300us", sleep="7ms"), start="45ms")
        sim.at("210ms", lambda: sim.set_nice("niced", -2))
        return sim.run("500ms")

    fast, plain = both_paths(monkeypatch, run)
    assert_identical(fast, plain)
    assert handled[0] > 0  # taken on the fast path only: the plain one never calls it
    assert fast.trace is not None and len(fast.trace["migrations"]["time"]) > 0
    assert len(fast.trace["throttles"]["start"]) > 0


@pytest.mark.parametrize("policy", sorted(FAIR_POLICIES))
def test_round_robin_of_hogs_alone_on_a_cpu(policy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One CPU, five hogs of four nice levels in one cgroup (two levels, the upper one lone):
    after the first switches every tick's reschedule takes the fast path, and the trace is
    the plain path's."""
    handled = counting_round_robin(monkeypatch)

    def run() -> Result:
        sim = cfssim.Simulation(cpus=1, policy=policy, seed=2, autogroup=False)
        sim.add_cgroup("/box", {"cpu.shares": 512})
        for index, nice in enumerate((0, 0, 3, -4, 7)):
            sim.add_process(f"hog{index}", cfssim.program(run="forever"), nice=nice, cgroup="/box")
        return sim.run("300ms")

    fast, plain = both_paths(monkeypatch, run)
    assert_identical(fast, plain)
    switches = len(fast.trace["segments"]["start"]) if fast.trace is not None else 0
    assert handled[0] >= switches - 10  # all but the start-up switches
