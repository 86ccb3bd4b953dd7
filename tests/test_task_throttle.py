"""6.18's task-based CFS bandwidth throttle (``TASK_THROTTLE``, the eevdf default) against ≤ 6.17's
group dequeue (docs/kernel-facts.md#task-throttle).

Rules (kernel/sched/fair.c, 6.18: ``throttle_cfs_rq``, ``pick_task_fair``,
``throttle_cfs_rq_work``, ``record_throttle_clock``, ``tg_unthrottle_up``):
- a queue out of runtime is only marked throttled; its group entity stays on its parent;
- a task picked through a throttled level is switched in, returns to user mode (0 ns here) and
  is dequeued onto its queue's limbo list; the pick starts over;
- the throttled clock starts when the first task enters limbo, not at the throttle;
- at the refill the limbo tasks are enqueued again without a wakeup (no latency sample).
≤ 6.17 takes the group entity off its parent at the throttle and starts the clock then if
anything is queued (or at the first enqueue), so a wakeup into a throttled group waits for the
refill. Machine: 1 CPU, HZ=250 (ticks every 4 ms from 0), ``/app`` 10 ms per 100 ms; runtime
comes in 5 ms slices and running out is noticed at the next tick.
"""

from __future__ import annotations

import pytest

import cfssim
from cfssim import Result, ms

FOREVER = cfssim.program(run="forever")


def segments(result: Result) -> list[tuple[str, int, int]]:
    """(task, start, end) of every run segment, in time order (0 ns switch-ins leave none)."""
    assert result.trace is not None
    seg = result.trace["segments"]
    names = result.trace.tasks
    rows = zip(seg["task"].tolist(), seg["start"].tolist(), seg["end"].tolist(), strict=True)
    return sorted(((names[t], a, b) for t, a, b in rows), key=lambda r: r[1])


def throttles(result: Result) -> list[tuple[int, int]]:
    assert result.trace is not None
    th = result.trace["throttles"]
    return sorted(zip(th["start"].tolist(), th["end"].tolist(), strict=True))


def wakeups(result: Result) -> list[tuple[str, int, int]]:
    """(task, wake time, latency) of every wakeup."""
    assert result.trace is not None
    w = result.trace["wakeups"]
    names = result.trace.tasks
    rows = zip(w["task"].tolist(), w["time"].tolist(), w["latency"].tolist(), strict=True)
    return [(names[t], a, b) for t, a, b in rows]


def hog_and_sleeper(task_throttle: bool, policy: str = "eevdf") -> Result:
    """A hog in /app exhausts the quota; a sleeper of /app wakes at 34 ms into the throttled
    group. Timeline: hog 0–4 ms, sleeper 4–5 ms (its 1 ms run), hog 5–12 ms: 12 ms used, the
    10 ms pool ran dry at 11 ms and the 12 ms tick notices it — throttled at 12 ms (2 ms debt,
    repaid at the 100 ms refill, which leaves 8 ms)."""
    sim = cfssim.Simulation(
        cpus=1, policy=policy, seed=1, features={"TASK_THROTTLE": task_throttle}
    )
    sim.add_cgroup("/app", {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 10_000})
    sim.add_process("hog", cgroup="/app", behaviour=FOREVER)
    sim.add_process(
        "s",
        cgroup="/app",
        behaviour=cfssim.program(
            {"run": "1ms"}, {"sleep": "29ms"}, {"run": "1ms"}, {"sleep": "10s"}
        ),
    )
    return sim.run("150ms")


def test_a_wakeup_into_a_throttled_group_is_switched_in_and_out_at_once() -> None:
    # 6.18: the sleeper wakes at 34 ms on the idle CPU, is picked at once (latency 0: the pick
    # delay), returns to user mode and goes to limbo (a timeslice of 0 ns). Its run happens at
    # the refill, 100–101 ms, as before; the hog's throttled interval is still 12–100 ms: its
    # own limbo entry at 12 ms started the clock. The refill's re-enqueue is no wakeup: one
    # wakeup row only. Waits: 0–4 ms and 34–100 ms (in limbo, runnable) = 70 ms.
    result = hog_and_sleeper(True)
    assert wakeups(result) == [("s/0", ms(34), 0)]
    assert result.tasks["s/0"]["timeslices"] == 3  # 4 ms, the 0 ns switch-in at 34 ms, 100 ms
    assert result.tasks["s/0"]["wait_time_ns"] == ms(70)
    assert segments(result) == [
        ("hog/0", 0, ms(4)),
        ("s/0", ms(4), ms(5)),
        ("hog/0", ms(5), ms(12)),
        ("s/0", ms(100), ms(101)),
        ("hog/0", ms(101), ms(108)),
    ]
    assert throttles(result) == [(ms(12), ms(100))]
    assert result.cgroups["/app"]["cpu.stat"]["throttled_time"] == ms(88)


@pytest.mark.parametrize(("task_throttle", "policy"), [(False, "eevdf"), (True, "cfs")])
def test_the_old_model_holds_the_wakeup_until_the_refill(task_throttle: bool, policy: str) -> None:
    # ≤ 6.17 (TASK_THROTTLE off, or the cfs policy whatever the flag): the group entity left
    # the root at the throttle, so the sleeper's wakeup waits for the refill at 100 ms (eevdf:
    # woken at 34 ms, latency 66 ms; cfs slices differently but the same rule), with no 0 ns
    # timeslice. Under eevdf usage and throttled time are the same as 6.18's here.
    result = hog_and_sleeper(task_throttle, policy)
    [(name, woken, latency)] = wakeups(result)
    assert name == "s/0" and woken < ms(100) and latency == ms(100) - woken
    assert result.tasks["s/0"]["timeslices"] == 2
    assert result.tasks["s/0"]["cpu_time_ns"] == ms(2)
    if policy == "eevdf":
        assert woken == ms(34)
        assert result.tasks["s/0"]["wait_time_ns"] == ms(70)
        assert throttles(result) == [(ms(12), ms(100))]


def hog_beside_a_root_hog(task_throttle: bool) -> Result:
    sim = cfssim.Simulation(
        cpus=1, policy="eevdf", seed=1, features={"TASK_THROTTLE": task_throttle}
    )
    sim.add_cgroup("/app", {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 10_000})
    sim.add_process("a", cgroup="/app", behaviour=FOREVER)
    sim.add_process("c", behaviour=FOREVER)
    return sim.run("200ms")


def test_the_throttled_clock_starts_when_the_first_task_enters_limbo() -> None:
    # a (in /app) and c (root) alternate per 4 ms tick: a runs 0–4, 8–12, 16–20 ms = 12 ms and
    # the 20 ms tick finds the pool dry. 6.18 only marks /app: the pick at 20 ms takes c (a's
    # request ended), and /app's entity, still queued on the root, is picked at the 24 ms tick:
    # a is switched in, enters limbo, and the clock starts — 24 ms, not 20 ms: throttled_time
    # = 100 − 24 = 76 ms (the second period's throttle, from a's limbo entry at 120 ms, is
    # still open at the 200 ms end: not counted). Each limbo entry is a 0 ns timeslice of a
    # and a switch back to c: 2 more timeslices each than ≤ 6.17.
    new = hog_beside_a_root_hog(True)
    assert throttles(new) == [(ms(24), ms(100))]
    assert new.cgroups["/app"]["cpu.stat"]["throttled_time"] == ms(76)
    assert [r for r in segments(new) if r[1] < ms(30)] == [
        ("a/0", 0, ms(4)),
        ("c/0", ms(4), ms(8)),
        ("a/0", ms(8), ms(12)),
        ("c/0", ms(12), ms(16)),
        ("a/0", ms(16), ms(20)),
        ("c/0", ms(20), ms(24)),
        ("c/0", ms(24), ms(104)),
    ]
    assert (new.tasks["a/0"]["timeslices"], new.tasks["c/0"]["timeslices"]) == (7, 7)
    # ≤ 6.17: the throttle at 20 ms dequeues /app's entity with a queued, and the clock starts
    old = hog_beside_a_root_hog(False)
    assert throttles(old) == [(ms(20), ms(100))]
    assert old.cgroups["/app"]["cpu.stat"]["throttled_time"] == ms(80)
    assert (old.tasks["a/0"]["timeslices"], old.tasks["c/0"]["timeslices"]) == (5, 5)
    # both: a gets its 10 ms per period (+ the first period's 2 ms overrun, repaid)
    assert new.tasks["a/0"]["cpu_time_ns"] == old.tasks["a/0"]["cpu_time_ns"] == ms(20)


def test_a_group_throttled_while_its_task_sleeps_accrues_nothing_until_it_wakes() -> None:
    # s runs 10 ms (the whole quota) then sleeps 30 ms: the pool is dry when it blocks at 10 ms
    # and /app is throttled with nothing queued. Nothing is in limbo until s wakes at 40 ms
    # and is picked (0 ns in, then limbo): throttled_time = 100 − 40 = 60 ms; its run resumes
    # at the refill: 1 ms at 100–101 ms. Wakeup latency 0 (6.18) — the pick delay on an idle CPU.
    sim = cfssim.Simulation(cpus=1, policy="eevdf", seed=1)
    sim.add_cgroup("/app", {"cpu.cfs_period_us": 100_000, "cpu.cfs_quota_us": 10_000})
    sim.add_process(
        "s",
        cgroup="/app",
        behaviour=cfssim.program(
            {"run": "10ms"}, {"sleep": "30ms"}, {"run": "1ms"}, {"sleep": "10s"}
        ),
    )
    result = sim.run("150ms")
    assert throttles(result) == [(ms(40), ms(100))]
    assert result.cgroups["/app"]["cpu.stat"]["throttled_time"] == ms(60)
    assert wakeups(result) == [("s/0", ms(40), 0)]
    assert segments(result) == [("s/0", 0, ms(10)), ("s/0", ms(100), ms(101))]
