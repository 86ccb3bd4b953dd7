"""The fair-policy interface and the scheduler tunables both policies read.

A `FairPolicy` decides four things per run queue level, like the pieces of kernel/sched/fair.c
that differ between classic CFS (≤6.5) and EEVDF (6.6+): where an entity is placed when it is
enqueued (``place_entity``), which entity runs next (``pick_next_entity``), when the running
entity should give the CPU up (``check_preempt_tick`` / ``update_deadline``, returned here as a
*time* so the machine can arm one exact timer instead of polling every tick), and whether a
waking entity preempts the running one (``check_preempt_wakeup_fair``). The machine does the rest:
accounting (``update_curr``), the hierarchy, bandwidth control, SMP.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mypy_extensions import mypyc_attr

from .entity import SchedEntity
from .runqueue import CfsRunQueue

# enqueue flags (subset of ENQUEUE_* in kernel/sched/sched.h)
ENQUEUE_WAKEUP = 0x01
ENQUEUE_INITIAL = 0x80  # a new task (wake_up_new_task)
ENQUEUE_MIGRATED = 0x40  # arrives from another CPU (vruntime was made relative)

NEVER = 1 << 62  # "no deadline": farther than any simulated time (ns)

#: defaults of /sys/kernel/debug/sched/features that matter to the model
DEFAULT_FEATURES: dict[str, bool] = {
    # classic CFS (as of 5.13–6.5)
    "GENTLE_FAIR_SLEEPERS": True,
    "ALT_PERIOD": True,
    "BASE_SLICE": True,
    "START_DEBIT": True,
    "NEXT_BUDDY": False,
    "LAST_BUDDY": True,
    "WAKEUP_PREEMPTION": True,
    # off in the kernel source, and measured: two hogs on one CPU of the 6.18 reference machine
    # switch every 4.000 ms (the HZ=250 tick), not every 1.4 ms base slice
    # (docs/kernel-facts.md#tick-slice-ends)
    "HRTICK": False,
    # EEVDF (6.18)
    "PLACE_LAG": True,
    "PLACE_DEADLINE_INITIAL": True,
    "PLACE_REL_DEADLINE": True,
    "RUN_TO_PARITY": True,
    "PREEMPT_SHORT": True,
    "PICK_BUDDY": True,
    "DELAY_DEQUEUE": True,
    "DELAY_ZERO": True,
    # not a kernel feature: 6.18's task-based CFS bandwidth throttle (a throttled task leaves
    # for its queue's limbo list on its return to user mode); off, ≤ 6.17's, which takes the
    # throttled group entity off its parent. The `cfs` policy (≤ 6.5) always throttles that
    # way (docs/kernel-facts.md#task-throttle)
    "TASK_THROTTLE": True,
}


def ilog2(n: int) -> int:
    return n.bit_length() - 1


# mypyc: a ClassVar dict in a compiled dataclass is seen by dataclasses as a mutable field default
NORMALIZED: dict[str, int] = {
    "sched_latency_ns": 6_000_000,
    "sched_min_granularity_ns": 750_000,
    "sched_wakeup_granularity_ns": 1_000_000,
    "sched_base_slice_ns": 700_000,
}


@dataclass
class SchedTunables:
    """Scheduler tunables with the kernel's defaults, scaled for the CPU count.

    Normalised values are scaled by ``factor`` per ``sched_tunable_scaling`` (0 none, 1 log =
    1 + ilog2(min(ncpus, 8)), 2 linear = min(ncpus, 8)), as ``update_sysctl()`` does. Passing
    an explicit value in `overrides` (kernel names, ns) sets the effective value directly.
    """

    cpus: int
    hz: int = 250
    slice_ends: str = "tick"  # "tick" (measured on 6.18, HZ=250) or "precise" (HRTICK)
    sched_tunable_scaling: int = 1
    sched_latency_ns: int = 0
    sched_min_granularity_ns: int = 0
    sched_wakeup_granularity_ns: int = 0
    sched_base_slice_ns: int = 0
    sched_migration_cost_ns: int = 500_000
    sched_cfs_bandwidth_slice_us: int = 5_000
    sched_rt_runtime_us: int = 950_000
    sched_rt_period_us: int = 1_000_000
    #: ``timer_slack_ns`` of normal tasks (init_task's 50 µs; RT tasks get 0): how late a sleep's
    #: hrtimer may fire — measured on 6.18: an 18 ms nanosleep among hogs lasts 18.058–18.071 ms
    timer_slack_ns: int = 0
    #: where the tick grid starts (0 ≤ offset < tick): ticks at offset + k × tick_ns. The real
    #: twin measures it (the scenario's t0 against the CPUs' tick_sched_timer).
    tick_offset_ns: int = 0
    features: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_FEATURES))

    @classmethod
    def for_machine(
        cls,
        cpus: int,
        *,
        hz: int = 250,
        slice_ends: str = "tick",
        overrides: dict[str, int] | None = None,
        features: dict[str, bool] | None = None,
    ) -> SchedTunables:
        overrides = dict(overrides or {})
        scaling = overrides.pop("sched_tunable_scaling", 1)
        tun = cls(cpus=cpus, hz=hz, slice_ends=slice_ends, sched_tunable_scaling=scaling)
        factor = tun.factor
        for name, normalized in NORMALIZED.items():
            setattr(tun, name, normalized * factor)
        for name, value in overrides.items():
            if not hasattr(tun, name) or name in ("cpus", "hz", "features"):
                raise ValueError(f"unknown scheduler tunable {name!r}")
            setattr(tun, name, int(value))
        if features:
            unknown = set(features) - set(DEFAULT_FEATURES)
            if unknown:
                raise ValueError(f"unknown scheduler feature(s): {', '.join(sorted(unknown))}")
            tun.features.update(features)
        return tun

    @property
    def factor(self) -> int:
        ncpus = min(self.cpus, 8)
        if self.sched_tunable_scaling == 0:
            return 1
        if self.sched_tunable_scaling == 2:
            return ncpus
        return 1 + ilog2(ncpus)

    @property
    def tick_ns(self) -> int:
        return 1_000_000_000 // self.hz

    @property
    def nr_latency(self) -> int:
        """``sched_nr_latency`` = latency / min_granularity (8 by default)."""
        return max(1, self.sched_latency_ns // max(1, self.sched_min_granularity_ns))

    @property
    def bandwidth_slice_ns(self) -> int:
        return self.sched_cfs_bandwidth_slice_us * 1000

    @property
    def precise(self) -> bool:
        """Slice ends timed exactly (``slice_ends: precise`` or the HRTICK feature) rather than
        noticed at the next tick."""
        return self.slice_ends == "precise" or self.features.get("HRTICK", False)


@mypyc_attr(allow_interpreted_subclasses=True)  # tests subclass the policies
class FairPolicy:
    """What differs between fair policies. Subclasses: `fair.Cfs`, `eevdf.Eevdf`.

    All delays are wall-clock ns from ``now``; ``None`` means "never, unless something changes".
    """

    name: ClassVar[str] = "abstract"
    #: the policy reads ``cfs_rq.prev_curr`` while picking (the machine skips it otherwise)
    uses_prev_curr: ClassVar[bool] = False
    #: the policy has lag, a virtual deadline and eligibility to sample with vruntime
    samples_lag: ClassVar[bool] = False
    #: the entity and queue fields the policy keeps in virtual time (virtual ns): a cycle
    #: replay moves them together (`cfssim.sched.replay`)
    virtual_fields: ClassVar[frozenset[str]] = frozenset({"vruntime", "min_vruntime"})

    def __init__(self, tunables: SchedTunables, roots: list[CfsRunQueue]) -> None:
        self.tun = tunables
        self.feat = tunables.features
        self.roots = roots  # each CPU's root cfs_rq (rq->cfs), for CPU-wide counts

    def lag_sample(self, se: SchedEntity) -> tuple[int, int, int]:
        """(lag, virtual deadline, eligible 0/1) of `se`, recorded beside its vruntime sample
        when `samples_lag` (the ``eevdf`` trace table)."""
        raise NotImplementedError

    def key(self, se: SchedEntity) -> int:
        """The run-queue ordering key (vruntime for CFS, deadline for EEVDF)."""
        raise NotImplementedError

    def place_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity, flags: int) -> None:
        """Set `se`'s vruntime (and request) as it is enqueued on `cfs_rq`."""
        raise NotImplementedError

    def pick_next_entity(self, cfs_rq: CfsRunQueue) -> SchedEntity | None:
        """Choose among the queued entities of `cfs_rq` (curr has been put back already;
        ``cfs_rq.prev_curr`` names it when it ran here until this schedule)."""
        raise NotImplementedError

    def set_next_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """`se` starts running at this level (after ``prev_sum_exec`` was snapshotted).
        ``cfs_rq.prev_curr is se`` when the pick kept the entity that was already running."""

    def update_curr(self, cfs_rq: CfsRunQueue, curr: SchedEntity) -> bool:
        """After curr's vruntime advanced: True asks for a reschedule (``update_deadline``)."""
        return False

    def dequeue_entity(
        self, cfs_rq: CfsRunQueue, se: SchedEntity, sleep: bool, may_delay: bool = False
    ) -> bool:
        """The policy's part of ``dequeue_entity``, before `se` leaves `cfs_rq` (still counted
        there). False keeps it queued as ``sched_delayed`` instead (DELAY_DEQUEUE), which only
        `may_delay` allows: a sleep, not ``DEQUEUE_SPECIAL``, not delayed already."""
        return True

    def requeue_delayed_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """A ``sched_delayed`` entity becomes runnable again where it is queued."""
        se.sched_delayed = False

    def update_group_slice(self, se: SchedEntity) -> None:
        """A group entity's queue changed: refresh what the group entity derives from it."""

    def group_slice_stale(self, se: SchedEntity) -> bool:
        """Would `update_group_slice` change the group entity `se`?"""
        return False

    def preempt_after(
        self, cfs_rq: CfsRunQueue, curr: SchedEntity
    ) -> tuple[int | None, int | None]:
        """What the machine asks when it arms its timer: (exact, ticked) — the delay until
        curr's request/slice at this level is used up (timed exactly with HRTICK), and the
        delay until a condition the kernel only checks at a tick first holds."""
        raise NotImplementedError

    def wakeup_preempts(
        self,
        cfs_rq: CfsRunQueue,
        curr: SchedEntity,
        se: SchedEntity,
        fork: bool,
        wakee: SchedEntity,
        running: SchedEntity,
        resched_pending: bool = False,
    ) -> bool:
        """`se` (now queued) is woken — or forked, with `fork` — beside running `curr` at the
        same level (``find_matching_se``): preempt? `wakee` and `running` are the two tasks'
        own entities, which the kernel's buddy rules use. With `resched_pending` the running
        task is already to be rescheduled (``test_tsk_need_resched``): only buddies are marked."""
        raise NotImplementedError

    def tick_preempted(self, cfs_rq: CfsRunQueue, curr: SchedEntity) -> None:
        """The tick decided to preempt `curr` at this level (CFS clears its buddies)."""

    def migrate_out(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """`se` leaves `cfs_rq` for another CPU (``migrate_task_rq_fair``)."""

    def yield_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """Running `se` yields (``yield_task_fair``, after ``update_curr``). Classic CFS marks a
        skip buddy, which is not modelled: the yield only reschedules."""

    def reweight_entity(self, cfs_rq: CfsRunQueue | None, se: SchedEntity, weight: int) -> None:
        """Change a queued or sleeping entity's weight (renice, group shares). `cfs_rq` is None
        for a task not yet placed on any CPU (created, never woken)."""
        se.set_weight(weight)


# ---- buddies (``cfs_rq->next`` / ``->last``), shared by both policies ----------------------


def set_buddy(se: SchedEntity, which: str) -> None:
    """``set_next_buddy`` / ``set_last_buddy``: mark `se` at its level and every level above."""
    level: SchedEntity | None = se
    while level is not None:
        rq = level.rq_of
        if rq is not None:
            setattr(rq, which, level)
        level = level.parent


def clear_buddies(cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
    """``clear_buddies``: forget `se` as a buddy here and, while it is the buddy, above."""
    rq = se.rq_of
    if rq is None or (rq.next is not se and rq.last is not se):  # the common case: no buddy
        return
    for which in ("next", "last"):
        level: SchedEntity | None = se
        while (
            level is not None and level.rq_of is not None and getattr(level.rq_of, which) is level
        ):
            setattr(level.rq_of, which, None)
            level = level.parent
