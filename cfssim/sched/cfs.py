"""Classic CFS (Linux ≤ 6.5): vruntime order, latency-derived slices, sleeper credit, buddies.

Follows kernel/sched/fair.c of the 5.13–6.5 era (verified against 5.4 for the common parts):
``sched_slice``/``__sched_period``, ``place_entity`` with START_DEBIT and GENTLE_FAIR_SLEEPERS,
``check_preempt_tick``, ``check_preempt_wakeup``/``wakeup_preempt_entity``, ``pick_next_entity``
with next/last buddies, and the relative-vruntime hand-over on migration.
"""

from __future__ import annotations

from mypy_extensions import mypyc_attr

from .entity import SchedEntity
from .policy import (
    ENQUEUE_INITIAL,
    ENQUEUE_MIGRATED,
    ENQUEUE_WAKEUP,
    FairPolicy,
    SchedTunables,
    clear_buddies,
    set_buddy,
)
from .runqueue import CfsRunQueue
from .weights import WMULT_CONST, WMULT_SHIFT, calc_delta_fair, inverse_calc_delta_fair


@mypyc_attr(allow_interpreted_subclasses=True)  # tests subclass the policies
class Cfs(FairPolicy):
    """The Completely Fair Scheduler policy."""

    name = "cfs"

    def __init__(self, tunables: SchedTunables, roots: list[CfsRunQueue]) -> None:
        super().__init__(tunables, roots)
        # fixed for the run, read at every slice computation (ns)
        self.latency = tunables.sched_latency_ns
        self.min_granularity = tunables.sched_min_granularity_ns
        self.nr_latency = tunables.nr_latency
        self.wakeup_gran_ns = tunables.sched_wakeup_granularity_ns
        self.alt_period = self.feat["ALT_PERIOD"]
        self.slice_floor = self.feat["BASE_SLICE"]  # BASE_SLICE: never below min_granularity
        self.next_buddy = self.feat["NEXT_BUDDY"]
        self.last_buddy = self.feat["LAST_BUDDY"]
        self.wakeup_preemption = self.feat["WAKEUP_PREEMPTION"]
        self.start_debit = self.feat["START_DEBIT"]
        # place_entity's sleeper credit: the latency, halved with GENTLE_FAIR_SLEEPERS (ns)
        self.sleeper_thresh = (
            self.latency >> 1 if self.feat["GENTLE_FAIR_SLEEPERS"] else self.latency
        )

    def key(self, se: SchedEntity) -> int:
        return se.vruntime

    # ---- slices -------------------------------------------------------------------------
    def sched_slice(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> int:
        """``sched_slice``: the period (``__sched_period``: latency, stretched to
        nr × min_granularity past nr_latency) shared by weight at every level up to the root
        (ns)."""
        nr_running = cfs_rq.nr_running
        if self.alt_period:
            nr_running = self.roots[cfs_rq.cpu].h_nr_running
        if not se.on_rq:
            nr_running += 1
        min_granularity = self.min_granularity
        slice_ns = nr_running * min_granularity if nr_running > self.nr_latency else self.latency
        level: SchedEntity | None = se
        while level is not None:
            rq = level.rq_of
            assert rq is not None
            weight = level.weight
            load = rq.load if level.on_rq else rq.load + weight
            # calc_delta(slice_ns, weight, inverse_weight(load)), inlined: hot (every arm); at
            # every level, even where the entity is the whole load (the inverse's truncation
            # trims a few ns: 12 ms → 11,999,997 ns); load ≥ weight > 0: no saturation
            slice_ns = (slice_ns * weight * (WMULT_CONST // load)) >> WMULT_SHIFT
            level = level.parent
        if self.slice_floor and slice_ns < min_granularity:
            slice_ns = min_granularity
        return slice_ns

    def sched_vslice(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> int:
        return calc_delta_fair(self.sched_slice(cfs_rq, se), se.weight, se.inv_weight)

    # ---- enqueue ------------------------------------------------------------------------
    def place_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity, flags: int) -> None:
        """Renormalise a migrated vruntime, then ``place_entity`` for new and waking entities."""
        if flags & ENQUEUE_MIGRATED:
            se.vruntime += cfs_rq.min_vruntime
        if flags & ENQUEUE_INITIAL:
            vruntime = cfs_rq.min_vruntime
            if self.start_debit:
                vruntime += self.sched_vslice(cfs_rq, se)
            se.vruntime = max(se.vruntime, vruntime)
        elif flags & ENQUEUE_WAKEUP:
            se.vruntime = max(se.vruntime, cfs_rq.min_vruntime - self.sleeper_thresh)

    def migrate_out(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``migrate_task_rq_fair``: carry vruntime relative to the old queue's min_vruntime."""
        se.vruntime -= cfs_rq.min_vruntime

    def dequeue_entity(
        self, cfs_rq: CfsRunQueue, se: SchedEntity, sleep: bool, may_delay: bool = False
    ) -> bool:
        clear_buddies(cfs_rq, se)
        return True

    # ---- pick ---------------------------------------------------------------------------
    def wakeup_gran(self, se: SchedEntity) -> int:
        return calc_delta_fair(self.wakeup_gran_ns, se.weight, se.inv_weight)

    def wakeup_preempt_entity(self, curr: SchedEntity, se: SchedEntity) -> int:
        """``wakeup_preempt_entity``: −1 if `se` is not left of `curr`, 1 if by more than the
        wakee's granularity, else 0."""
        vdiff = curr.vruntime - se.vruntime
        if vdiff <= 0:
            return -1
        return 1 if vdiff > self.wakeup_gran(se) else 0

    def pick_next_entity(self, cfs_rq: CfsRunQueue) -> SchedEntity | None:
        """``pick_next_entity``: the leftmost, unless a last/next buddy is close enough to it.
        An empty tree leaves curr, when the machine kept it running alone on this queue."""
        left = cfs_rq.leftmost  # __pick_first_entity
        if left is None:
            curr = cfs_rq.curr
            if curr is None or not curr.on_rq:
                return None
            left = curr
        se = left
        last, nxt = cfs_rq.last, cfs_rq.next
        if last is not None and last.on_rq and self.wakeup_preempt_entity(last, left) < 1:
            se = last
        if nxt is not None and nxt.on_rq and self.wakeup_preempt_entity(nxt, left) < 1:
            se = nxt
        if se is last or se is nxt:  # clear_buddies' common case (no buddy) without the call
            clear_buddies(cfs_rq, se)
        return se

    # ---- preemption ---------------------------------------------------------------------
    def preempt_after(
        self, cfs_rq: CfsRunQueue, curr: SchedEntity
    ) -> tuple[int | None, int | None]:
        """``check_preempt_tick`` as delays, both from one ``sched_slice``: exact (HRTICK) when
        the slice is used up, ticked when the tick would find it used up or curr more than
        a slice right of the leftmost."""
        hrtick = curr.my_q is None and self.roots[cfs_rq.cpu].h_nr_running > 1
        ticked = cfs_rq.nr_running > 1
        if not (hrtick or ticked):
            return None, None
        ideal = self.sched_slice(cfs_rq, curr)
        ran = curr.sum_exec - curr.prev_sum_exec
        precise = (ideal - ran if ideal > ran else 0) if hrtick else None
        if not ticked:
            return precise, None
        after = ideal - ran + 1
        left = cfs_rq.leftmost  # __pick_first_entity
        if left is not None:
            need = ideal + left.vruntime - curr.vruntime + 1
            by_vruntime = inverse_calc_delta_fair(need, curr.weight, curr.inv_weight)
            if by_vruntime < self.min_granularity - ran:
                by_vruntime = self.min_granularity - ran
            if by_vruntime < after:
                after = by_vruntime
        return precise, (after if after > 0 else 0)

    def tick_preempted(self, cfs_rq: CfsRunQueue, curr: SchedEntity) -> None:
        clear_buddies(cfs_rq, curr)

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
        """``check_preempt_wakeup`` at the matching level: preempt when the wakee is more than
        one wakeup granularity left of curr; the wakee becomes the next buddy. The buddy rules
        scale with ``task_cfs_rq(curr)->nr_running`` (the running task's own queue)."""
        assert running.rq_of is not None
        scale = running.rq_of.nr_running >= self.nr_latency
        next_buddy_marked = False
        if self.next_buddy and scale and not fork:
            set_buddy(wakee, "next")
            next_buddy_marked = True
        if resched_pending or not self.wakeup_preemption:
            return False
        if self.wakeup_preempt_entity(curr, se) == 1:
            if not next_buddy_marked:
                set_buddy(wakee, "next")
            if self.last_buddy and scale and curr.is_task:
                set_buddy(curr, "last")
            return True
        return False
