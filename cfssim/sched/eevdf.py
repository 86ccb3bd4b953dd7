"""EEVDF (Linux 6.6+, with 6.18 semantics): lag, eligibility, virtual deadlines, slice protection,
delayed dequeue.

Follows kernel/sched/fair.c of 6.18: ``avg_vruntime``/``vruntime_eligible``, ``update_deadline``,
``__pick_eevdf``, ``place_entity`` (PLACE_LAG, PLACE_DEADLINE_INITIAL, PLACE_REL_DEADLINE),
``update_entity_lag`` (clamped to ±calc_delta_fair(max queued slice + TICK)),
``set_protect_slice``/``update_protect_slice``/``cancel_protect_slice`` (RUN_TO_PARITY, 6.17+),
``check_preempt_wakeup_fair`` (PREEMPT_SHORT), ``dequeue_entity`` with DELAY_DEQUEUE/DELAY_ZERO,
``requeue_delayed_entity`` and ``reweight_entity``. Virtual times are virtual ns; slices are ns.

The run-queue tree is ordered by virtual deadline; ``pick_eevdf`` walks it from the left and
takes the first eligible entity. Typical cost: O(log n) (the walk starts at the leftmost node,
which is usually eligible, or stops after a few); worst case O(n), when many entities with
earlier deadlines are ineligible (short-slice tasks that ran ahead). The kernel's rbtree,
augmented with each subtree's minimum vruntime, bounds that case at O(log n); a SortedList
cannot prune subtrees, and the case is rare enough not to warrant a second index.
"""

from __future__ import annotations

from itertools import islice

from mypy_extensions import mypyc_attr

from .entity import SchedEntity
from .policy import ENQUEUE_INITIAL, NORMALIZED, FairPolicy, SchedTunables, clear_buddies, set_buddy
from .runqueue import CfsRunQueue
from .weights import NICE_0_LOAD, WMULT_SHIFT, calc_delta_fair

#: ``normalized_sysctl_sched_base_slice``: protection without RUN_TO_PARITY (ns)
NORMALIZED_BASE_SLICE = NORMALIZED["sched_base_slice_ns"]


def div_s64(a: int, b: int) -> int:
    """The kernel's ``div_s64``: integer division truncating toward zero."""
    q = abs(a) // b
    return q if a >= 0 else -q


def queue_sums(
    cfs_rq: CfsRunQueue, se: SchedEntity | None = None, with_se: bool = True
) -> tuple[int, int]:
    """(Σ w·(v − min_vruntime), Σ w) over the entities queued on `cfs_rq`, curr included, with
    `se` counted (`with_se`) or left out wherever it currently is."""
    avg, load = cfs_rq.avg_vruntime, cfs_rq.avg_load
    base = cfs_rq.min_vruntime
    curr = cfs_rq.curr
    if curr is not None and curr.on_rq and curr is not se:
        avg += curr.weight * (curr.vruntime - base)
        load += curr.weight
    if se is not None:
        in_tree = se.node is not None
        if in_tree != with_se:
            sign = 1 if with_se else -1
            avg += sign * se.weight * (se.vruntime - base)
            load += sign * se.weight
    return avg, load


def avg_vruntime(cfs_rq: CfsRunQueue, avg: int, load: int) -> int:
    """``avg_vruntime``: V from `queue_sums` (floored, like the kernel)."""
    return cfs_rq.min_vruntime + avg // load if load else cfs_rq.min_vruntime


def entity_eligible(cfs_rq: CfsRunQueue, se: SchedEntity) -> bool:
    """``entity_eligible``: v ≤ V, tested without division (``vruntime_eligible``)."""
    avg, load = queue_sums(cfs_rq)
    return avg >= (se.vruntime - cfs_rq.min_vruntime) * load


@mypyc_attr(allow_interpreted_subclasses=True)  # tests subclass the policies
class Eevdf(FairPolicy):
    """Earliest Eligible Virtual Deadline First, as in Linux 6.18."""

    name = "eevdf"
    uses_prev_curr = True
    samples_lag = True
    virtual_fields = frozenset({"vruntime", "min_vruntime", "deadline", "vprot"})

    def __init__(self, tunables: SchedTunables, roots: list[CfsRunQueue]) -> None:
        super().__init__(tunables, roots)
        feat = self.feat
        self.base_slice = tunables.sched_base_slice_ns
        self.tick_ns = tunables.tick_ns
        self.place_lag = feat["PLACE_LAG"]
        self.deadline_initial = feat["PLACE_DEADLINE_INITIAL"]
        self.rel_deadline_feat = feat["PLACE_REL_DEADLINE"]
        self.run_to_parity = feat["RUN_TO_PARITY"]
        self.preempt_short = feat["PREEMPT_SHORT"]
        self.pick_buddy = feat["PICK_BUDDY"]
        self.next_buddy = feat["NEXT_BUDDY"]
        self.delays_dequeue = feat["DELAY_DEQUEUE"]
        self.delay_zero = feat["DELAY_ZERO"]
        self.wakeup_preemption = feat["WAKEUP_PREEMPTION"]

    def key(self, se: SchedEntity) -> int:
        return se.deadline

    # ---- requests -----------------------------------------------------------------------
    def update_curr(self, cfs_rq: CfsRunQueue, curr: SchedEntity) -> bool:
        """The tail of ``update_curr``: renew the request once v ≥ vd (``update_deadline``: the
        base slice unless custom, a deadline one vslice on); reschedule then, or whenever curr
        is unprotected with others queued."""
        v = curr.vruntime
        if v >= curr.deadline:  # update_deadline
            if curr.my_q is None and not curr.custom_slice:
                curr.slice = self.base_slice
            vslice = curr.slice  # calc_delta_fair, inlined
            if curr.weight != NICE_0_LOAD:
                vslice = (vslice * NICE_0_LOAD * curr.inv_weight) >> WMULT_SHIFT
            curr.deadline = v + vslice
            return cfs_rq.nr_running != 1
        return cfs_rq.nr_running != 1 and curr.vprot <= v

    def update_group_slice(self, se: SchedEntity) -> None:
        """A group entity's slice is the shortest slice queued inside it."""
        my_q = se.my_q
        if my_q is None:
            return
        slice_ns = my_q.min_slice()
        if slice_ns is not None and slice_ns != se.slice:
            rq = se.rq_of
            assert rq is not None
            rq.set_slice(se, slice_ns)

    def group_slice_stale(self, se: SchedEntity) -> bool:
        my_q = se.my_q
        slice_ns = None if my_q is None else my_q.min_slice()
        return slice_ns is not None and slice_ns != se.slice

    # ---- protection (RUN_TO_PARITY, 6.17+) ------------------------------------------------
    def set_protect_slice(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``set_protect_slice``: vprot = min(vd, v + calc_delta_fair(q)), q = min(own slice,
        shortest queued slice) with RUN_TO_PARITY, else min(own slice, 0.7 ms)."""
        q = cfs_rq.min_slice() if self.run_to_parity else NORMALIZED_BASE_SLICE
        vprot = se.deadline
        if q is not None and q < se.slice:  # q = min(q, slice) differs from the slice
            protect = se.vruntime + calc_delta_fair(q, se.weight, se.inv_weight)
            if protect < vprot:
                vprot = protect
        se.vprot = vprot

    def update_protect_slice(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``update_protect_slice``: shrink protection to the shortest queued slice."""
        least = cfs_rq.min_slice()
        if least is not None:
            se.vprot = min(se.vprot, se.vruntime + calc_delta_fair(least, se.weight, se.inv_weight))

    @staticmethod
    def cancel_protect_slice(se: SchedEntity) -> None:
        if se.vprot - se.vruntime > 0:
            se.vprot = se.vruntime

    # ---- enqueue / dequeue ----------------------------------------------------------------
    def place_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity, flags: int) -> None:
        """``place_entity``: v = V − lag·(W + w)/W (PLACE_LAG), then a fresh request — half a
        slice for new tasks (PLACE_DEADLINE_INITIAL) — or the kept relative deadline. A task
        takes the base slice unless custom; a group entity's slice is its caller's to refresh
        (`update_cfs_group` on enqueue, `requeue_delayed_entity`)."""
        if se.my_q is None and not se.custom_slice:
            se.slice = self.base_slice
        avg, load = queue_sums(cfs_rq, se, False)
        se.vruntime = vruntime = self.placed_vruntime(cfs_rq, se, avg, load)
        if se.rel_deadline:
            se.rel_deadline = False
            se.deadline += vruntime
            return
        vslice = calc_delta_fair(se.slice, se.weight, se.inv_weight)  # vslice
        if self.deadline_initial and flags & ENQUEUE_INITIAL:
            vslice //= 2
        se.deadline = vruntime + vslice

    def placed_vruntime(self, cfs_rq: CfsRunQueue, se: SchedEntity, avg: int, load: int) -> int:
        """The vruntime `place_entity` gives `se`: V − lag·(W + w)/W (PLACE_LAG), from the
        queue's `queue_sums` without `se` (`avg`, `load`); virtual ns."""
        lag = 0
        vlag = se.vlag
        if self.place_lag and load and vlag:
            lag = vlag * (load + se.weight)  # div_s64, inlined: truncate toward zero
            lag = lag // load if lag >= 0 else -(-lag // load)
        base = cfs_rq.min_vruntime  # avg_vruntime, inlined
        return (base + avg // load if load else base) - lag

    def entity_lag(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> int:
        """``entity_lag`` (6.18): V − v (with `se` counted), clamped to
        ±calc_delta_fair(max queued slice + TICK); virtual ns."""
        avg, load = queue_sums(cfs_rq, se, with_se=True)
        return self.lag_on(cfs_rq, se, avg, load)

    def lag_on(self, cfs_rq: CfsRunQueue, se: SchedEntity, avg: int, load: int) -> int:
        """`entity_lag` from the queue's `queue_sums` with `se` counted (`avg`, `load`)."""
        return self.clamped_lag(cfs_rq, se, avg_vruntime(cfs_rq, avg, load) - se.vruntime)

    def clamped_lag(self, cfs_rq: CfsRunQueue, se: SchedEntity, vlag: int) -> int:
        """`vlag` (V − v, virtual ns) clamped as `entity_lag` clamps it."""
        longest = cfs_rq.max_slice()
        if longest is None or longest < se.slice:
            longest = se.slice
        limit = longest + self.tick_ns
        weight = se.weight
        if weight != NICE_0_LOAD:  # calc_delta_fair, inlined
            limit = (limit * NICE_0_LOAD * se.inv_weight) >> WMULT_SHIFT
        return limit if vlag > limit else -limit if vlag < -limit else vlag

    def update_entity_lag(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``update_entity_lag``: se->vlag = `entity_lag`."""
        se.vlag = self.entity_lag(cfs_rq, se)

    def lag_sample(self, se: SchedEntity) -> tuple[int, int, int]:
        """(lag, absolute virtual deadline, eligible): a queued entity's `entity_lag` and
        ``entity_eligible`` now; a dequeued one's kept vlag (eligible when ≥ 0)."""
        cfs_rq = se.rq_of
        if se.on_rq and cfs_rq is not None:
            # a queued entity is curr or in the tree: counted once by queue_sums either way,
            # so one sum serves entity_lag and entity_eligible
            avg, load = queue_sums(cfs_rq)
            lag = self.lag_on(cfs_rq, se, avg, load)
            eligible = avg >= (se.vruntime - cfs_rq.min_vruntime) * load
        else:
            lag, eligible = se.vlag, se.vlag >= 0
        deadline = se.deadline + se.vruntime if se.rel_deadline else se.deadline
        return lag, deadline, int(eligible)

    def dequeue_entity(
        self, cfs_rq: CfsRunQueue, se: SchedEntity, sleep: bool, may_delay: bool = False
    ) -> bool:
        """``dequeue_entity``: with DELAY_DEQUEUE an ineligible sleeper (`may_delay`) stays
        queued (``set_delayed``: False). Otherwise keep the lag; a non-sleep dequeue
        (migration, group move) keeps the relative deadline (PLACE_REL_DEADLINE); a delayed
        entity's positive lag is dropped (DELAY_ZERO). A task sleeping inside a group that
        stays busy makes the group the next buddy (``dequeue_entities``)."""
        if may_delay and self.delays_dequeue:
            # queued, `se` is counted once by this sum: it serves entity_eligible and the lag
            avg, load = queue_sums(cfs_rq)
            if avg < (se.vruntime - cfs_rq.min_vruntime) * load:  # not entity_eligible
                clear_buddies(cfs_rq, se)
                return False
            se.vlag = self.lag_on(cfs_rq, se, avg, load)  # update_entity_lag on that sum
        else:
            self.update_entity_lag(cfs_rq, se)
        clear_buddies(cfs_rq, se)
        if self.rel_deadline_feat and not sleep:
            se.deadline -= se.vruntime
            se.rel_deadline = True
        if se.sched_delayed:
            se.sched_delayed = False
            if self.delay_zero and se.vlag > 0:
                se.vlag = 0
        group = cfs_rq.se
        if sleep and group is not None and cfs_rq.load > se.weight and not cfs_rq.throttle_count:
            set_buddy(group, "next")
        return True

    def requeue_delayed_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``requeue_delayed_entity``: a delayed entity wakes where it is queued; with
        DELAY_ZERO a lag that became positive is dropped and the entity placed afresh."""
        if self.delay_zero:
            self.update_entity_lag(cfs_rq, se)
            if se.vlag > 0:
                in_tree = se.node is not None
                if in_tree:
                    cfs_rq.remove(se)
                se.vlag = 0
                self.update_group_slice(se)
                self.place_entity(cfs_rq, se, 0)
                if in_tree:
                    cfs_rq.insert(se, se.deadline)
        se.sched_delayed = False

    def yield_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``yield_task_fair`` (6.18): an eligible entity forfeits the rest of its request —
        vruntime = deadline, and a new deadline one slice on."""
        if entity_eligible(cfs_rq, se):
            se.vruntime = se.deadline
            se.deadline += calc_delta_fair(se.slice, se.weight, se.inv_weight)

    def reweight_entity(self, cfs_rq: CfsRunQueue | None, se: SchedEntity, weight: int) -> None:
        """``reweight_entity``: scale vlag, a relative deadline and a running entity's live
        protection (vprot − v) by w_old/w_new; a queued entity is re-placed so its lag survives
        with V unchanged — `place_entity` with it out of V and W (the machine took it out of
        the tree), the kernel's kept V, curr included (docs/kernel-facts.md#reweight-protection).
        An entity off every queue (`cfs_rq` None: a task never woken) only scales its vlag."""
        if not se.on_rq:
            old = se.weight
            se.vlag = div_s64(se.vlag * old, weight)
            if se.rel_deadline:
                se.deadline = div_s64(se.deadline * old, weight)
            se.set_weight(weight)
            return
        assert cfs_rq is not None
        # one queue sum serves update_entity_lag (`se` counted at its old weight) and
        # place_entity (`se` left out); nothing between them moves the other entities
        avg, load = queue_sums(cfs_rq, se, False)
        old = se.weight
        v = se.vruntime
        base = cfs_rq.min_vruntime
        # update_entity_lag with `se` counted at its old weight
        vlag = self.lag_on(cfs_rq, se, avg + old * (v - base), load + old) * old
        deadline = (se.deadline - v) * old
        # div_s64 twice, inlined: truncate toward zero
        se.vlag = vlag // weight if vlag >= 0 else -(-vlag // weight)
        deadline = deadline // weight if deadline >= 0 else -(-deadline // weight)
        # a running entity's live protection goes relative too, scaled alike (6.18.y since
        # ff38424030f9, "sched/eevdf: Update se->vprot in reweight_entity()"); vprot − v > 0.
        # While a pick runs, the kernel's curr is still the entity that ran (`prev_curr`)
        rel_vprot = (cfs_rq.curr is se or cfs_rq.prev_curr is se) and se.vprot > v
        if rel_vprot:
            vprot = (se.vprot - v) * old // weight
        se.set_weight(weight)
        # place_entity with the relative deadline (rel_deadline set and cleared at once); the
        # slice it would refresh is current: a task's was set when it was placed, a group's by
        # update_cfs_group just before it reweights
        se.vruntime = vruntime = self.placed_vruntime(cfs_rq, se, avg, load)
        se.deadline = deadline + vruntime
        if rel_vprot:
            se.vprot = vruntime + vprot

    # ---- pick -----------------------------------------------------------------------------
    def pick_next_entity(self, cfs_rq: CfsRunQueue) -> SchedEntity | None:
        curr = cfs_rq.prev_curr
        if cfs_rq.nr_running == 1:  # pick_eevdf's lone-entity answer, without the call
            return curr if curr is not None and curr.on_rq else cfs_rq.leftmost
        return self.pick_eevdf(cfs_rq, curr, protect=True)

    def pick_eevdf(
        self, cfs_rq: CfsRunQueue, curr: SchedEntity | None, protect: bool
    ) -> SchedEntity | None:
        """``__pick_eevdf``: an eligible next buddy (PICK_BUDDY); else curr while protected;
        else the eligible entity with the earliest deadline — curr only if strictly earlier.
        `curr` is the entity running at this level (in the tree while a pick runs)."""
        if cfs_rq.nr_running == 1:
            if curr is not None and curr.on_rq:
                return curr
            return cfs_rq.leftmost
        avg, load = cfs_rq.avg_vruntime, cfs_rq.avg_load  # queue_sums(cfs_rq), inlined: hot
        base = cfs_rq.min_vruntime
        queued = cfs_rq.curr
        if queued is not None and queued.on_rq:
            avg += queued.weight * (queued.vruntime - base)
            load += queued.weight
        nxt = cfs_rq.next
        if (
            self.pick_buddy
            and nxt is not None
            and nxt.on_rq
            and avg >= (nxt.vruntime - base) * load
        ):
            return nxt
        if curr is not None:
            if not curr.on_rq or avg < (curr.vruntime - base) * load:
                curr = None  # not eligible
            elif protect and curr.vprot > curr.vruntime:
                return curr
        best = cfs_rq.leftmost  # the leftmost entity if eligible, else the first eligible one
        if best is not None and avg < (best.vruntime - base) * load:
            best = None
            for node in islice(cfs_rq.tree, 1, None):  # the tree's iterator: cheap to start
                se = node[2]
                if avg >= (se.vruntime - base) * load:
                    best = se
                    break
        if curr is not None and (best is None or curr.deadline < best.deadline):
            return curr
        if best is None and cfs_rq.tree:  # only rounding can leave nothing eligible
            return cfs_rq.leftmost
        return best

    def set_next_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity) -> None:
        """``set_next_entity``: forget `se` as a buddy; a newly picked entity gets its slice
        protection (a re-picked one keeps what is left of it)."""
        if cfs_rq.next is se or cfs_rq.last is se:  # clear_buddies' common case inlined
            clear_buddies(cfs_rq, se)
        if cfs_rq.prev_curr is not se:
            self.set_protect_slice(cfs_rq, se)

    # ---- preemption -----------------------------------------------------------------------
    def preempt_after(
        self, cfs_rq: CfsRunQueue, curr: SchedEntity
    ) -> tuple[int | None, int | None]:
        """With others queued: wall ns until curr's vruntime reaches the end of its protection,
        or its deadline when unprotected (HRTICK-exact slice ends) — at least 1 ns, since a
        request already used up is renewed by the next ``update_curr`` that accounts some time
        (``update_deadline`` needs a positive delta); and, unprotected, the next tick (1 ns:
        ``update_curr`` reschedules at every tick)."""
        if cfs_rq.nr_running <= 1:
            return None, None
        v = curr.vruntime
        vprot = curr.vprot
        if vprot > v:
            vdelta, ticked = vprot - v, None
        else:
            vdelta, ticked = curr.deadline - v, 1
        if curr.weight != NICE_0_LOAD:
            # inverse_calc_delta_fair, inlined: hot (every arm); nice-0 is its own inverse, and
            # an end already passed (vdelta ≤ 0) stays ≤ 0, which the max below makes 1
            vdelta = -(-(vdelta << WMULT_SHIFT) // (NICE_0_LOAD * curr.inv_weight))
        return (vdelta if vdelta > 1 else 1), ticked

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
        """``check_preempt_wakeup_fair``: preempt iff ``pick_eevdf`` would now choose the wakee
        — ignoring (and then cancelling) curr's protection when the wakee's slice is shorter
        (PREEMPT_SHORT); a shorter-slice wakee that does not preempt shrinks curr's protection
        to the shortest queued slice (RUN_TO_PARITY; 6.17–6.18 do this only for a shorter
        wakee, 6.19 for every non-fork wakee). A fork is checked like any wakee (6.18; 6.19
        returns early for most forks); it only never becomes the next buddy."""
        if self.next_buddy and not fork and not wakee.sched_delayed:
            set_buddy(wakee, "next")
        if resched_pending or not self.wakeup_preemption:
            return False
        short = self.preempt_short and se.slice < curr.slice
        if self.pick_eevdf(cfs_rq, curr, protect=not short) is se:
            if short:
                self.cancel_protect_slice(curr)
            return True
        if self.run_to_parity and short:
            self.update_protect_slice(cfs_rq, curr)
        return False
