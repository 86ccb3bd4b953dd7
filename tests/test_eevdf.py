"""EEVDF (`policy: eevdf`): lag and eligibility invariants, shares, slice ends, custom slices,
delayed dequeue, groups and bandwidth — and, where the real twin can run, the kernel itself.

Numbers follow from kernel-reference.md §3: base slice 0.7 ms × (1 + ilog2(2)) = 1.4 ms on
2 CPUs; HZ=250 → 4 ms ticks; nice 0 : nice 5 = 1024 : 335.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cfssim
from cfssim.sched.core import FAIR_POLICIES
from cfssim.sched.eevdf import Eevdf, queue_sums
from cfssim.sched.entity import SchedEntity
from cfssim.sched.policy import SchedTunables
from cfssim.sched.runqueue import CfsRunQueue

MS = 1_000_000


def hogs_on_cpu0(n: int, **machine: object) -> cfssim.Simulation:
    sim = cfssim.Simulation(cpus=2, policy="eevdf", **machine)  # type: ignore[arg-type]
    sim.add_process("hog", threads=n, behaviour=cfssim.program(run="forever"), cpus=[0])
    return sim


def slice_lengths(result: cfssim.Result, tid: int) -> np.ndarray:
    assert result.trace is not None
    seg = result.trace["segments"]
    mask = seg["task"] == tid
    return (seg["end"] - seg["start"])[mask][:-1]  # the last one is cut by the end of the run


# ---- invariants ------------------------------------------------------------------------------
class Checked(Eevdf):
    """Eevdf that checks, at every pick, Σ wᵢ·lagᵢ = 0 and that the pick is eligible."""

    picks = 0

    def pick_next_entity(self, cfs_rq):  # type: ignore[no-untyped-def]
        se = super().pick_next_entity(cfs_rq)
        avg, load = queue_sums(cfs_rq)
        if load:
            v_avg = cfs_rq.min_vruntime + avg // load
            lag_sum = sum(e.weight * (v_avg - e.vruntime) for e in cfs_rq.entities())
            # V is floored: W·V − Σ w·v lies in (−W, 0]
            assert -load < lag_sum <= 0, (lag_sum, load)
        if cfs_rq.nr_running > 1:
            assert avg >= (se.vruntime - cfs_rq.min_vruntime) * load, "picked an ineligible entity"
        Checked.picks += 1
        return se


task_spec = st.tuples(
    st.integers(-5, 10),  # nice
    st.integers(1, 6),  # run ms
    st.integers(0, 8),  # sleep ms (0: a hog)
    st.sampled_from([None, "100us", "3ms"]),  # custom slice
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    tasks=st.lists(task_spec, min_size=2, max_size=6),
    cpus=st.integers(1, 2),
    grouped=st.booleans(),
    delay=st.booleans(),
    parity=st.booleans(),
)
def test_lag_sums_to_zero_and_only_eligible_entities_are_picked(
    tasks: list[tuple[int, int, int, str | None]],
    cpus: int,
    grouped: bool,
    delay: bool,
    parity: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(FAIR_POLICIES, "eevdf", Checked)
    sim = cfssim.Simulation(cpus=cpus, features={"DELAY_DEQUEUE": delay, "RUN_TO_PARITY": parity})
    for i, (nice, run, sleep, slice_) in enumerate(tasks):
        steps = {"run": f"{run}ms", "sleep": f"{sleep}ms"} if sleep else {"run": "forever"}
        sim.add_process(
            f"t{i}",
            behaviour=cfssim.program(**steps),
            nice=nice,
            slice=slice_,
            cgroup=f"/g{i % 2}" if grouped else "/",
        )
    before = Checked.picks
    sim.run("150ms")
    assert Checked.picks > before


def test_long_run_shares_follow_the_weights() -> None:
    sim = cfssim.Simulation(cpus=2, policy="eevdf")
    sim.add_process("a", behaviour=cfssim.program(run="forever"), cpus=[0])
    sim.add_process("b", behaviour=cfssim.program(run="forever"), cpus=[0], nice=5)
    result = sim.run("10s")
    share = result.tasks["a/0"]["cpu_time_ns"] / 10e9
    assert share == pytest.approx(1024 / (1024 + 335), abs=0.005)


# ---- slice ends --------------------------------------------------------------------------
def test_two_hogs_swap_every_base_slice_with_precise_slice_ends() -> None:
    result = hogs_on_cpu0(2, slice_ends="precise").run("1s")
    lengths = slice_lengths(result, 0)
    assert np.median(lengths) == 1_400_000
    assert result.tasks["hog/0"]["timeslices"] == pytest.approx(1e9 / 2.8e6, abs=2)


def test_two_hogs_swap_about_every_tick_with_tick_slice_ends() -> None:
    result = hogs_on_cpu0(2, slice_ends="tick").run("1s")
    assert np.median(slice_lengths(result, 0)) == 4 * MS


def test_base_slice_is_tunable() -> None:
    result = hogs_on_cpu0(2, slice_ends="precise", tunables={"sched_base_slice_ns": 3 * MS}).run(
        "1s"
    )
    assert np.median(slice_lengths(result, 0)) == 3 * MS


# ---- custom slices and PREEMPT_SHORT ---------------------------------------------------
def wakeup_latency(slice_: str | None, slice_ends: str, preempt_short: bool = True) -> float:
    sim = cfssim.Simulation(
        cpus=2, slice_ends=slice_ends, features={"PREEMPT_SHORT": preempt_short}
    )
    sim.add_process("hog", threads=2, behaviour=cfssim.program(run="forever"), cpus=[0])
    sim.add_process(
        "ticker", behaviour=cfssim.program(run="300us", sleep="7ms"), cpus=[0], slice=slice_
    )
    latency = sim.run("3s").tasks["ticker/0"]["wakeup_latency_ns"]
    assert latency is not None
    return float(latency["mean"])


@pytest.mark.parametrize("slice_ends", ["precise", "tick"])
def test_a_short_custom_slice_lowers_wakeup_latency_and_preempt_short_is_why(
    slice_ends: str,
) -> None:
    default, short = wakeup_latency(None, slice_ends), wakeup_latency("100us", slice_ends)
    # precise: the wakee preempts at once (~0.6 ms → ~2 µs); tick: only when it is eligible
    assert short < (default / 100 if slice_ends == "precise" else default * 0.9)
    gain_with = default - short
    gain_without = wakeup_latency(None, slice_ends, False) - wakeup_latency(
        "100us", slice_ends, False
    )
    assert gain_without < gain_with


# ---- delayed dequeue ------------------------------------------------------------------------
def eevdf_queue(*entities: tuple[int, int]) -> tuple[Eevdf, CfsRunQueue, list[SchedEntity]]:
    """An EEVDF policy and a queue holding nice-0 entities of (slice, vruntime) ns, each with a
    request one slice on; none is curr nor in the tree yet."""
    cfs_rq = CfsRunQueue(None, 0, "rq")
    policy = Eevdf(SchedTunables.for_machine(2), [cfs_rq])
    made = []
    for slice_ns, vruntime in entities:
        se = SchedEntity()
        se.rq_of, se.on_rq, se.slice, se.vruntime = cfs_rq, True, slice_ns, vruntime
        se.deadline = vruntime + slice_ns
        cfs_rq.nr_running += 1
        cfs_rq.load += se.weight
        made.append(se)
    return policy, cfs_rq, made


def wakeup_beside_protected_curr(
    wakee_slice: int, wakee_vruntime: int, resched_pending: bool = False
) -> tuple[bool, int]:
    """Wake an entity (`wakee_slice` ns, at `wakee_vruntime`) on a queue whose curr has a 3 ms
    slice, protected for all of it, beside a queued 0.5 ms-slice entity (e.g. a group whose slice
    shrank since curr's pick): (preempt?, curr's vprot afterwards)."""
    policy, cfs_rq, (curr, queued, wakee) = eevdf_queue(
        (3 * MS, 0), (MS // 2, 0), (wakee_slice, wakee_vruntime)
    )
    cfs_rq.curr = curr
    curr.vprot = curr.deadline
    cfs_rq.insert(queued, queued.deadline)
    cfs_rq.insert(wakee, wakee.deadline)
    preempt = policy.wakeup_preempts(
        cfs_rq, curr, wakee, False, wakee, curr, resched_pending=resched_pending
    )
    return preempt, curr.vprot


def test_only_a_shorter_wakee_shrinks_the_protection_of_curr() -> None:
    """6.17–6.18 ``check_preempt_wakeup_fair``: a wakee that does not preempt shrinks curr's
    protection to the shortest queued slice (``update_protect_slice``) only when its own slice
    is shorter than curr's (6.19 does it for every wakee). The wakees here are ineligible."""
    assert wakeup_beside_protected_curr(3 * MS, 50 * MS) == (False, 3 * MS)  # left alone
    assert wakeup_beside_protected_curr(MS // 10, 50 * MS) == (False, MS // 10)  # cut short


def test_a_pending_reschedule_skips_the_wakeup_check() -> None:
    """``test_tsk_need_resched(curr)``: with a reschedule already pending, a short eligible wakee
    (which would preempt and cancel curr's protection) changes nothing."""
    assert wakeup_beside_protected_curr(MS // 10, 0) == (True, 0)
    assert wakeup_beside_protected_curr(MS // 10, 0, resched_pending=True) == (False, 3 * MS)


def reweighted_curr(weight: int, vprot: int, picking: bool = False) -> SchedEntity:
    """A nice-0 curr (vruntime 1 ms, 3 ms request) with protection up to `vprot`, beside a
    queued nice-0 entity at the same vruntime, given `weight` (the machine's part of
    ``reweight_entity`` — the queue's load — done by hand). `picking`: reweighted while a pick
    runs, when the machine has put curr back (``prev_curr``) and the kernel's curr is still it
    (a picked delayed entity's dequeue reweights the groups above it; the machine takes it out
    of the tree first, as it does any entity it reweights)."""
    policy, cfs_rq, (curr, queued) = eevdf_queue((3 * MS, MS), (3 * MS, MS))
    if picking:
        cfs_rq.prev_curr = curr
    else:
        cfs_rq.curr = curr
    curr.vprot = vprot
    cfs_rq.insert(queued, queued.deadline)
    cfs_rq.load += weight - curr.weight
    policy.reweight_entity(cfs_rq, curr, weight)
    return curr


@pytest.mark.parametrize("picking", [False, True])
@pytest.mark.parametrize("weight", [335, 3121, 88761])
def test_a_reweight_scales_the_protection_left_like_the_request(weight: int, picking: bool) -> None:
    """``reweight_entity`` (6.18.y with ff38424030f9): the running entity's live protection is
    carried relative to its vruntime and scaled by w_old/w_new like its relative deadline, so
    w·(vprot − v) — the wall time of protection left — survives a renice or a group's new
    shares (up to one ns of truncation), also while a pick runs."""
    curr = reweighted_curr(weight, vprot=3 * MS, picking=picking)  # 2 ms left at nice 0
    assert curr.vprot - curr.vruntime == 2 * MS * 1024 // weight
    assert curr.deadline - curr.vruntime == 3 * MS * 1024 // weight


def test_a_reweight_leaves_an_ended_protection_where_it_was() -> None:
    """``protect_slice(se)`` is false once vprot ≤ v: the kernel leaves that vprot as it is."""
    assert reweighted_curr(3121, vprot=MS // 2).vprot == MS // 2


def reniced_share(nice: int, every_ns: int, duration_ns: int) -> float:
    """Two hogs pinned on CPU 0; hog `a` is reniced 0 → `nice` → 0 … every `every_ns` for
    `duration_ns`, after 300 ms together: its share of their CPU time while it is reniced."""

    def machine(duration: int) -> cfssim.Result:
        sim = cfssim.Simulation(cpus=2, policy="eevdf", seed=1)
        sim.add_process("a", behaviour=cfssim.program(run="forever"), cpus=[0])
        sim.add_process("b", behaviour=cfssim.program(run="forever"), cpus=[0])
        for k, at in enumerate(range(300 * MS, duration, every_ns)):
            sim.at(at, lambda value=0 if k % 2 else nice: sim.set_nice("a", value))
        return sim.run(duration)

    start, end = machine(300 * MS), machine(300 * MS + duration_ns)
    a, b = (end.tasks[t]["cpu_time_ns"] - start.tasks[t]["cpu_time_ns"] for t in ("a/0", "b/0"))
    return a / (a + b)


def test_a_hog_reniced_while_it_runs_keeps_its_lag() -> None:
    """``reweight_entity`` of the running entity places it where its lag survives, V unchanged
    (upstream 101f3498, the model's placement): a hog reniced 0 ↔ 10 every millisecond beside a
    nice-0 hog gets 29.8% of their CPU. 6.18.0's placement, which counts the running entity in
    its own V and W, would give it 16.9%; the reference kernel gave it 29.70–29.88% (5 runs of
    3–5 s, docs/kernel-facts.md#reweight-protection)."""
    assert reniced_share(10, MS, 3000 * MS) == pytest.approx(0.2987, abs=0.005)


def first_run_of_a_newcomer(start: str) -> int:
    """Where a task started at `start` beside a lone hog on CPU 0 first runs (ns)."""
    sim = cfssim.Simulation(cpus=2, policy="eevdf")
    sim.add_process("hog", behaviour=cfssim.program(run="forever"), cpus=[0])
    sim.add_process("new", behaviour=cfssim.program(run="forever"), cpus=[0], start=start)
    result = sim.run("20ms")
    assert result.trace is not None
    seg = result.trace["segments"]
    return int(seg["start"][seg["task"] == result.trace.tasks.index("new/0")][0])


def test_a_new_task_preempts_an_unprotected_hog_at_once() -> None:
    """6.18's ``check_preempt_wakeup_fair`` checks a fork like any wakeup: the newcomer, placed
    at V with half a request (PLACE_DEADLINE_INITIAL), has the earliest deadline and runs at
    once — unless the hog is still protected (picked at 0, 1.4 ms request): then it waits for
    the tick that ends the protection (4 ms)."""
    assert first_run_of_a_newcomer("10.5ms") == 10_500_000
    assert first_run_of_a_newcomer("0.5ms") == 4 * MS


def test_an_ineligible_sleeper_stays_queued_until_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    """DELAY_DEQUEUE: a napper that sleeps while ineligible stays queued (``sched_delayed``) and
    leaves only when picked or woken. Watched through a policy subclass (the machine itself
    may be compiled)."""
    events: list[str] = []
    napper: list[SchedEntity] = []

    class Watched(Eevdf):
        def dequeue_entity(self, cfs_rq, se, sleep, may_delay=False):  # type: ignore[no-untyped-def]
            dequeued = super().dequeue_entity(cfs_rq, se, sleep, may_delay)
            if not dequeued and se.task is not None and se.task.name == "napper/0":
                events.append("delayed")
            return dequeued

        def pick_next_entity(self, cfs_rq):  # type: ignore[no-untyped-def]
            for se in napper:  # delayed, it must still be queued: in the tree or running
                if se.sched_delayed:
                    assert se.on_rq and (se.node is not None or se.rq_of.curr is se), events
            se = super().pick_next_entity(cfs_rq)
            if se is not None and se.sched_delayed:
                events.append("picked")
            return se

        def requeue_delayed_entity(self, cfs_rq, se):  # type: ignore[no-untyped-def]
            events.append("woken")
            super().requeue_delayed_entity(cfs_rq, se)

    monkeypatch.setitem(FAIR_POLICIES, "eevdf", Watched)
    sim = cfssim.Simulation(cpus=1, policy="eevdf")
    sim.add_process("hog", behaviour=cfssim.program(run="forever"))
    sim.add_process("napper", behaviour=cfssim.program(run="5ms", sleep="50ms"))
    napper.append(sim.processes["napper"].threads[0].se)
    sim.run("1s")
    assert events.count("delayed") >= 5, events
    # every delay ends with a pick or a wakeup before the next one (the last may still be open)
    pairs = "".join("d" if e == "delayed" else "e" for e in events)
    assert "dd" not in pairs and "ee" not in pairs and pairs.startswith("d"), events


def test_without_delay_dequeue_no_entity_is_ever_delayed(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[bool] = []  # per dequeue that could be delayed: dequeued at once?

    class Watched(Eevdf):
        def dequeue_entity(self, cfs_rq, se, sleep, may_delay=False):  # type: ignore[no-untyped-def]
            dequeued = super().dequeue_entity(cfs_rq, se, sleep, may_delay)
            if may_delay:
                sleeps.append(dequeued)
            return dequeued

    monkeypatch.setitem(FAIR_POLICIES, "eevdf", Watched)
    sim = cfssim.Simulation(cpus=1, policy="eevdf", features={"DELAY_DEQUEUE": False})
    sim.add_process("hog", behaviour=cfssim.program(run="forever"))
    sim.add_process("napper", behaviour=cfssim.program(run="5ms", sleep="50ms"))
    result = sim.run("1s")
    assert len(sleeps) >= 15 and all(sleeps)  # each of the napper's ≈ 17 sleeps (55–60 ms cycles)
    # each cycle: 50 ms asleep, then 5 ms of CPU shared with the hog (≈ 5–10 ms of wall time)
    assert 5 * MS * 1000 // 60 <= result.tasks["napper/0"]["cpu_time_ns"] <= 5 * MS * 1000 // 55


# ---- groups and bandwidth --------------------------------------------------------------------
def test_groups_and_quota_work_as_under_cfs() -> None:
    sim = cfssim.Simulation(cpus=2, policy="eevdf")
    sim.add_cgroup("/half", {"cpu.cfs_quota_us": 50000, "cpu.cfs_period_us": 100000})
    sim.add_cgroup("/big", {"cpu.shares": 2048})
    sim.add_cgroup("/small", {"cpu.shares": 1024})
    sim.add_process("capped", behaviour=cfssim.program(run="forever"), cgroup="/half", cpus=[1])
    sim.add_process("big", behaviour=cfssim.program(run="forever"), cgroup="/big", cpus=[0])
    sim.add_process("small", behaviour=cfssim.program(run="forever"), cgroup="/small", cpus=[0])
    result = sim.run("2s")
    assert result.tasks["capped/0"]["cpu_time_ns"] == pytest.approx(1e9, rel=0.02)
    assert result.cgroups["/half"]["cpu.stat"]["nr_throttled"] >= 19
    big, small = result.tasks["big/0"]["cpu_time_ns"], result.tasks["small/0"]["cpu_time_ns"]
    assert big / small == pytest.approx(2.0, rel=0.02)


def test_renice_keeps_shares_following_the_new_weight() -> None:
    sim = cfssim.Simulation(cpus=1, policy="eevdf")
    sim.add_process("a", behaviour=cfssim.program(run="forever"))
    sim.add_process("b", behaviour=cfssim.program(run="forever"))
    sim.at("1s", lambda: sim.set_nice("b", 5))
    result = sim.run("11s")
    b_after = result.tasks["b/0"]["cpu_time_ns"] - 0.5e9
    assert b_after / 10e9 == pytest.approx(335 / 1359, abs=0.005)


def test_eevdf_is_the_default_policy() -> None:
    assert cfssim.Simulation().machine.policy.name == "eevdf"
    text = "duration: 1s\nmachine: {cpus: 2}\nprocesses: [{name: a, program: [{run: 1ms}]}]\n"
    assert cfssim.load_scenario(text).machine.policy == "eevdf"


# ---- against the real kernel -------------------------------------------------------------
TWIN = """
name: eevdf-twin
duration: 3s
machine: {cpus: 2}
processes:
  - {name: hog, threads: 4, repeat: forever, program: [{run: forever}]}
  - {name: ticker, repeat: forever, program: [{run: 2ms}, {sleep: 18ms}]}
"""


def background_load(seconds: float = 0.5) -> float:
    """Fraction of the machine's CPU time used by others over `seconds` (/proc/stat)."""

    def busy_total() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    b0, t0 = busy_total()
    time.sleep(seconds)
    b1, t1 = busy_total()
    return (b1 - b0) / max(1, t1 - t0)


@dataclass
class TickerWakeups:
    """The ticker's wakeups in a traced run: how long after a tick each came (ns), its wait
    until it ran (ns), and how many hogs had run on its CPU in the 8 ms before."""

    phase: np.ndarray
    latency: np.ndarray
    hogs: np.ndarray

    @classmethod
    def of(cls, result: cfssim.Result, offset: int, tick_ns: int = 4_000_000) -> TickerWakeups:
        """`result`'s ticker wakeups; `offset` is where its ticks fall (ns mod `tick_ns`)."""
        assert result.trace is not None
        segments, wakeups = result.trace["segments"], result.trace["wakeups"]
        names = list(result.trace.tasks)
        ticker = names.index("ticker/0")
        hog_ids = [i for i, name in enumerate(names) if name.startswith("hog/")]
        mine = (wakeups["task"] == ticker) & (wakeups["time"] > 100_000_000)  # after start-up
        times, cpus = wakeups["time"][mine], wakeups["cpu"][mine]
        hogs = [
            len(
                set(
                    segments["task"][
                        (segments["cpu"] == cpu)
                        & (segments["end"] > t - 8_000_000)
                        & (segments["start"] < t)
                        & np.isin(segments["task"], hog_ids)
                    ].tolist()
                )
            )
            for t, cpu in zip(times, cpus, strict=True)
        ]
        return cls((times - offset) % tick_ns, wakeups["latency"][mine], np.array(hogs))

    def waits_a_tick(self, hogs: int) -> float:
        """Of the wakeups with `hogs` hogs on the ticker's CPU, the share that waited for the
        next tick (> 3 ms) rather than preempting at once."""
        return float(np.mean(self.latency[self.hogs == hogs] > 3_000_000))


def measure_ticker_twice() -> list[cfssim.Result]:
    from cfssim.real import measure
    from cfssim.real.errors import RealRunError

    if os.geteuid() != 0:
        pytest.skip("the real twin needs root")
    load = background_load()
    if load > 0.05:
        pytest.skip(f"machine busy ({load:.0%} background load > 5%)")
    scenario = cfssim.load_scenario(TWIN)
    try:
        # the twin's sampler wakes on a CPU every interval and, once a hog's slice has expired,
        # splits its run (update_curr at the wakeup reschedules): each sample adds a hog
        # timeslice the simulation cannot see — at 10 ms, +130 each for the two hogs sharing
        # the sampler's CPU. One sample per second leaves the workload to itself.
        return [measure(scenario, trace=True, sample_interval_ns=1_000_000_000) for _ in range(2)]
    except RealRunError as exc:
        pytest.skip(f"cannot measure here: {exc}")


def hog_timeslices(result: cfssim.Result) -> list[int]:
    """The twin's four hogs' timeslices, fewest first."""
    return sorted(result.tasks[f"hog/{i}"]["timeslices"] for i in range(4))


@pytest.mark.kernel
def test_a_periodic_task_among_hogs_matches_the_kernel() -> None:
    """A run 2ms / sleep 18ms ticker among four hogs (docs/kernel-facts.md#ticker-among-hogs),
    on the reference host's profile: the kernel's timer interrupts are late and a tick's
    switch comes ~20 µs after the grid, so the ticker's sleep timer never fires inside a tick
    but alone, 70–100 µs after one (2 ms from its switch at +20 µs, 18 ms, 50 µs slack, ~10 µs
    latency); with two hogs on its CPU it then mostly waits for the next tick, the hog picked
    at the tick being protected (RUN_TO_PARITY). 2026-12-03, 6 traced runs: 83–94% of wakeups
    60–150 µs after the grid, 66–99% of the two-hog ones wait a tick (9 runs); simulation 94–99%,
    96–100%."""
    from cfssim.real.measure import as_measured

    runs = measure_ticker_twice()
    sim = cfssim.run_scenario(as_measured(runs[0], cfssim.load_scenario(TWIN), profile="default"))

    def kernel(task: str, figure: str) -> float:
        return sum(run.tasks[task][figure] for run in runs) / len(runs)

    s = sim.tasks["ticker/0"]
    assert s["cpu_time_ns"] == pytest.approx(kernel("ticker/0", "cpu_time_ns"), rel=0.05)
    # the hogs are interchangeable: which two share the ticker's CPU (and have their runs split
    # by its wakeups) is the balancer's choice, another in each run — compared by rank
    ranked = np.mean([hog_timeslices(run) for run in runs], axis=0)
    assert hog_timeslices(sim) == pytest.approx(list(ranked), rel=0.20), ranked
    offsets = [int(run.meta["tick_offset_ns"]) for run in runs]
    # the simulation has the first run's tick phase (as_measured)
    for result, offset in zip((*runs, sim), (*offsets, offsets[0]), strict=True):
        wakeups = TickerWakeups.of(result, offset)
        near = wakeups.phase < 150_000  # the wakeups that came just after a tick…
        alone = near & (wakeups.phase >= 60_000)  # …fired alone, after its handler and switch
        # 7 traced kernel runs: 71–94% of all wakeups alone (the rest drift away from the tick
        # after a preemption at once), and of those near a tick ≥ 97%; 66–99% of the two-hog
        # wakeups wait for the next tick (9 runs: most of them, the kernel's own spread wide)
        assert np.mean(alone) >= 0.5, np.percentile(wakeups.phase, [10, 50, 90])
        assert alone.sum() >= 0.9 * near.sum(), np.percentile(wakeups.phase[near], [5, 50, 95])
        assert wakeups.waits_a_tick(2) >= 0.5


@pytest.mark.kernel
@pytest.mark.xfail(
    strict=False,
    reason="the kernel's balancer leaves the ticker's CPU with one hog for ~18% of its "
    "wakeups (the simulator's: 2%), where it preempts at once in 55%: kernel wait per "
    "timeslice 2.4–3.7 ms, simulated 3.8 ms (docs/kernel-facts.md#ticker-among-hogs)",
)
def test_the_tickers_wait_per_timeslice_matches_the_kernel() -> None:
    from cfssim.real.measure import as_measured

    runs = measure_ticker_twice()
    sim = cfssim.run_scenario(as_measured(runs[0], cfssim.load_scenario(TWIN), profile="default"))

    def wait_per_timeslice(figures: dict[str, int]) -> float:
        return figures["wait_time_ns"] / max(1, figures["timeslices"])

    kernel = [wait_per_timeslice(run.tasks["ticker/0"]) for run in runs]
    assert wait_per_timeslice(sim.tasks["ticker/0"]) == pytest.approx(
        sum(kernel) / len(kernel), rel=0.20
    ), kernel


def kernel_reniced_share(nice: int, every_s: float, duration_s: float) -> float:
    """`reniced_share` on this kernel: two shell busy loops pinned to CPU 0 (one session: one
    autogroup), reniced from this process, which keeps to CPU 1; CPU time from schedstat. The
    loops are killed whatever happens."""
    import subprocess

    if os.geteuid() != 0:
        pytest.skip("renicing back to nice 0 needs root (CAP_SYS_NICE)")
    if (os.cpu_count() or 1) < 2:
        pytest.skip("needs 2 CPUs")
    load = background_load()
    if load > 0.05:
        pytest.skip(f"machine busy ({load:.0%} background load > 5%)")
    mine = os.sched_getaffinity(0)
    hogs = [
        subprocess.Popen(
            ["sh", "-c", "while :; do :; done"], preexec_fn=lambda: os.sched_setaffinity(0, {0})
        )
        for _ in range(2)
    ]
    try:
        os.sched_setaffinity(0, {1})
        time.sleep(0.3)

        def cpu_ns(proc: subprocess.Popen[bytes]) -> int:
            with open(f"/proc/{proc.pid}/schedstat") as f:
                return int(f.read().split()[0])

        before = [cpu_ns(h) for h in hogs]
        start = time.monotonic()
        k = 0
        while (now := time.monotonic()) < start + duration_s:
            os.setpriority(os.PRIO_PROCESS, hogs[0].pid, 0 if k % 2 else nice)
            k += 1
            time.sleep(max(0.0, start + k * every_s - now))
        a, b = (cpu_ns(h) - t0 for h, t0 in zip(hogs, before, strict=True))
    finally:
        os.sched_setaffinity(0, mine)
        for h in hogs:
            h.kill()
            h.wait()
    return a / (a + b)


@pytest.mark.kernel
def test_a_hog_reniced_while_it_runs_gets_the_kernels_share() -> None:
    """The kernel places a reniced running entity as the model does (V unchanged, its lag kept):
    reniced 0 ↔ 10 every millisecond beside a nice-0 hog, the simulation's share and the
    kernel's agree to a point (2026-12-03: 29.70–29.88% measured, 29.8% simulated; 6.18.0's
    placement would give 16.9%)."""
    kernel = kernel_reniced_share(10, 0.001, 3.0)
    assert kernel == pytest.approx(reniced_share(10, MS, 3000 * MS), abs=0.01)
