"""The fair policies' hot fixed-point arithmetic, written inline for speed, against the
`cfssim.sched.weights` helpers it stands for: EEVDF's ``preempt_after`` (the wall delay until
curr's protection or request ends, `inverse_calc_delta_fair`) and CFS's ``sched_slice``
(``__sched_period`` shared down the hierarchy by `calc_delta` with `inverse_weight`)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cfssim.sched.cfs import Cfs
from cfssim.sched.eevdf import Eevdf
from cfssim.sched.entity import SchedEntity
from cfssim.sched.policy import SchedTunables
from cfssim.sched.runqueue import CfsRunQueue
from cfssim.sched.weights import (
    PRIO_TO_WEIGHT,
    calc_delta,
    calc_delta_fair,
    inverse_calc_delta_fair,
    inverse_weight,
)

WEIGHTS = st.one_of(st.sampled_from(PRIO_TO_WEIGHT), st.integers(2, 2**20))


def running(
    weight: int, vruntime: int, vprot: int, deadline: int
) -> tuple[CfsRunQueue, SchedEntity]:
    """A queue of two with curr running: vruntime, protection end and deadline in virtual ns."""
    cfs_rq = CfsRunQueue(None, 0, "/")
    cfs_rq.nr_running = 2
    curr = SchedEntity(weight)
    curr.vruntime, curr.vprot, curr.deadline = vruntime, vprot, deadline
    cfs_rq.curr = curr
    return cfs_rq, curr


def test_eevdf_times_a_nice_5_protection_end_in_wall_ns() -> None:
    """1 ms of protection left in virtual time is 1e6 × 335/1024 = 327,148.4 wall ns at nice 5
    (weight 335): the timer fires at the first whole ns that reaches it, 327,149; the tick,
    which only reschedules an unprotected curr, is not asked for."""
    policy = Eevdf(SchedTunables.for_machine(2), [])
    cfs_rq, curr = running(335, vruntime=5_000_000, vprot=6_000_000, deadline=7_000_000)
    assert policy.preempt_after(cfs_rq, curr) == (327_149, None)
    curr.vprot = curr.vruntime  # protection used up: the deadline, 2 ms virtual, and every tick
    assert policy.preempt_after(cfs_rq, curr) == (654_297, 1)


@given(
    weight=WEIGHTS,
    vruntime=st.integers(-(2**50), 2**50),
    to_vprot=st.integers(-(2**30), 2**30),
    to_deadline=st.integers(-(2**30), 2**30),
)
def test_eevdf_preempt_after_is_the_least_wall_delta_reaching_the_end(
    weight: int, vruntime: int, to_vprot: int, to_deadline: int
) -> None:
    """Protected (vprot > v): the delay to vprot, no tick; else to the deadline and the next
    tick — at least 1 ns either way, like max(1, `inverse_calc_delta_fair`)."""
    policy = Eevdf(SchedTunables.for_machine(2), [])
    cfs_rq, curr = running(weight, vruntime, vruntime + to_vprot, vruntime + to_deadline)
    vdelta = to_vprot if to_vprot > 0 else to_deadline
    wall = max(1, inverse_calc_delta_fair(vdelta, weight, curr.inv_weight))
    assert policy.preempt_after(cfs_rq, curr) == (wall, None if to_vprot > 0 else 1)
    assert calc_delta_fair(wall, weight, curr.inv_weight) >= vdelta


def hierarchy(
    task_weight: int, group_weight: int, beside_task: int, beside_group: int, nr: int
) -> tuple[Cfs, CfsRunQueue, SchedEntity]:
    """A task in a group queue beside `beside_task` load, the group entity on the root beside
    `beside_group` load; `nr` tasks on the CPU. Returns (Cfs policy, group queue, task)."""
    root = CfsRunQueue(None, 0, "/")
    root.h_nr_running = nr
    group = SchedEntity(group_weight)
    group.rq_of, group.on_rq = root, True
    root.load = group_weight + beside_group
    group_rq = CfsRunQueue(None, 0, "/g")
    group_rq.se = group
    group.my_q = group_rq
    task = SchedEntity(task_weight, parent=group)
    task.rq_of, task.on_rq = group_rq, True
    group_rq.load = task_weight + beside_task
    return Cfs(SchedTunables.for_machine(2), [root]), group_rq, task


def test_cfs_sched_slice_shares_the_period_by_weight_at_each_level() -> None:
    """2 CPUs: latency 6 ms × (1 + ilog2 2) = 12 ms, 3 tasks ≤ nr_latency 8 → period 12 ms; half
    of it in the group (1024 of 2048), two thirds of that on the root (2048 of 3072): 4 ms,
    less the truncations of two fixed-point steps: 12e6·1024·⌊(2³²−1)/2048⌋ >> 32 = 5,999,997,
    then ·2048·⌊(2³²−1)/3072⌋ >> 32 = 3,999,997 ns."""
    policy, group_rq, task = hierarchy(1024, 2048, 1024, 1024, nr=3)
    assert policy.sched_slice(group_rq, task) == 3_999_997


@given(
    task_weight=WEIGHTS,
    group_weight=WEIGHTS,
    beside_task=st.integers(0, 2**21),
    beside_group=st.integers(0, 2**21),
    nr=st.integers(1, 40),
)
def test_cfs_sched_slice_is_calc_delta_at_every_level(
    task_weight: int, group_weight: int, beside_task: int, beside_group: int, nr: int
) -> None:
    """``sched_slice``: ``__sched_period`` then, from the task up, ``__calc_delta`` by each
    level's weight over its queue's load (also where the entity is the whole load: the
    inverse's truncation trims a few ns), never below min_granularity (BASE_SLICE)."""
    policy, group_rq, task = hierarchy(task_weight, group_weight, beside_task, beside_group, nr)
    tun = policy.tun
    slice_ns = nr * tun.sched_min_granularity_ns if nr > tun.nr_latency else tun.sched_latency_ns
    for weight, load in (
        (task_weight, task_weight + beside_task),
        (group_weight, group_weight + beside_group),
    ):
        slice_ns = calc_delta(slice_ns, weight, inverse_weight(load))
    assert policy.sched_slice(group_rq, task) == max(slice_ns, tun.sched_min_granularity_ns)
