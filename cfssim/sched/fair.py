# mypy: disable-error-code="misc"
# (a Machine mixin: its methods annotate `self: Machine`, which mypy flags as [misc])
"""The fair class's queues: what kernel/sched/fair.c does to ``cfs_rq``s, shared by both policies.

A mixin of `cfssim.sched.core.Machine`. The fair policy (`cfssim.sched.cfs.Cfs`,
`cfssim.sched.eevdf.Eevdf`) decides placement, picking and preemption at one level; this module
walks the hierarchy: ``enqueue_entity``/``dequeue_entity`` up the task's group entities
(``enqueue_task_fair``, ``dequeue_entities`` with DELAY_DEQUEUE), group weights
(``update_cfs_group``, ``reweight_entity``), ``put_prev_task_fair`` and ``pick_next_task_fair``
down the levels, ``check_preempt_wakeup_fair`` at the matching level.

The queue side of CFS bandwidth control (CONFIG_CFS_BANDWIDTH) lives here too, as in fair.c:
`cfssim.cgroup.bandwidth.CfsBandwidth` decides how much runtime a group's pool hands out and
when; these methods charge runtime in ``update_curr`` (``account_cfs_rq_runtime``), throttle
(``throttle_cfs_rq``) and unthrottle at refill (``unthrottle_cfs_rq``), return slack, and run the
period and slack timers.

Linux 6.18 throttles per task (the default here; ``TASK_THROTTLE`` in
`cfssim.sched.policy.DEFAULT_FEATURES`, docs/kernel-facts.md#task-throttle): ``throttle_cfs_rq``
only marks the subtree; a task picked through a throttled level (``pick_task_fair``) is switched
in, returns to user mode — at once, 0 ns here: our behaviours run user code; the kernel's
kernel-mode exit took 1–18 µs, median 3 µs — and leaves for its queue's ``limbo`` list
(``throttle_cfs_rq_work``, ``DEQUEUE_THROTTLE``); ``throttled_clock`` starts with the first task
to enter limbo (``record_throttle_clock``); the refill re-enqueues the limbo tasks, not as
wakeups (``tg_unthrottle_up``). A wakeup into a throttled group therefore costs only the pick
delay, and shows as a 0 ns timeslice. ≤ 6.17 (the feature off, and always for the ``cfs``
policy, which models ≤ 6.5) takes the group entity off its parent and starts the clock at the
throttle. Not modelled: a killed task in limbo exits at once (the kernel waits for the refill).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from mypy_extensions import trait

from ..cgroup.bandwidth import (
    CFS_BANDWIDTH_SLACK_PERIOD,
    MIN_BANDWIDTH_EXPIRATION,
    BandwidthTimers,
)
from ..hrtimer import HrTimer
from ..task import TaskState
from .policy import ENQUEUE_WAKEUP
from .runqueue import count_in

if TYPE_CHECKING:
    from ..cgroup.tree import TaskGroup
    from ..task import Task
    from .core import Machine, Rq
    from .entity import SchedEntity
    from .runqueue import CfsRunQueue


@trait  # mypyc: Machine's mixins must be traits (no multiple inheritance of native classes)
class FairClass:
    """The fair class's hierarchy of run queues and their bandwidth (a `Machine` mixin)."""

    # ==== group weights ====================================================================
    def update_cfs_group(self: Machine, se: SchedEntity) -> None:
        """``update_cfs_group``: re-derive a group entity's weight (`calc_group_shares`)."""
        my_q = se.my_q
        if my_q is None:
            return
        self.policy.update_group_slice(se)
        weight = my_q.tg.calc_group_shares(my_q.cpu)
        if weight != se.weight:
            self.reweight_entity(se, weight)

    def entity_tick_groups(self: Machine, task: Task) -> None:
        """What ``entity_tick`` does for the running `task`'s group levels: re-derive their
        weights (``update_cfs_group``)."""
        se = task.se.parent
        while se is not None:
            self.update_cfs_group(se)
            se = se.parent

    def group_levels_stale(self: Machine, task: Task) -> bool:
        """Would ``entity_tick`` change something of the running `task`'s hierarchy beyond its
        running time: a group level's weight (`calc_group_shares`) or slice, or bandwidth
        runtime to charge (a level with a quota)?"""
        policy = self.policy
        if task.se.rq_of.runtime_enabled:  # type: ignore[union-attr]
            return True
        se = task.se.parent
        while se is not None:
            my_q = se.my_q
            assert my_q is not None and se.rq_of is not None
            if (
                se.rq_of.runtime_enabled
                or my_q.tg.calc_group_shares(my_q.cpu) != se.weight
                or policy.group_slice_stale(se)
            ):
                return True
            se = se.parent
        return False

    def reweight_entity(self: Machine, se: SchedEntity, weight: int) -> None:
        """``reweight_entity``: a new weight for a queued or sleeping entity. One that is not
        queued (sleeping, waiting for memory, or a task never woken, which has no queue yet)
        only takes the weight (and, under EEVDF, scales its lag): no load changes."""
        cfs_rq = se.rq_of
        if not se.on_rq:
            self.policy.reweight_entity(cfs_rq, se, weight)
            return
        assert cfs_rq is not None
        in_tree = se.node is not None
        if in_tree:
            cfs_rq.remove(se)
        delta = weight - se.weight  # add_load, inlined: hot
        cfs_rq.load += delta
        if cfs_rq.se is not None:
            cfs_rq.tg.load_sum += delta
        self.policy.reweight_entity(cfs_rq, se, weight)
        if in_tree:
            cfs_rq.insert(se, self.policy.key(se))

    # ==== enqueue / dequeue ================================================================
    def enqueue_entity(self: Machine, cfs_rq: CfsRunQueue, se: SchedEntity, flags: int) -> None:
        """``enqueue_entity``: place, account the load, insert in the tree."""
        if se.my_q is not None:
            self.update_cfs_group(se)
        self.policy.place_entity(cfs_rq, se, flags)
        cfs_rq.load += se.weight  # add_load, inlined: hot
        if cfs_rq.se is not None:
            cfs_rq.tg.load_sum += se.weight
        cfs_rq.nr_running += 1
        if se is not cfs_rq.curr:
            cfs_rq.insert(se, self.policy.key(se))
        se.on_rq = True
        if cfs_rq.nr_running == 1:
            self.check_enqueue_throttle(cfs_rq)
            if cfs_rq.throttled and cfs_rq.throttled_clock < 0 and not self.task_throttle:
                cfs_rq.throttled_clock = self.now

    def dequeue_entity(
        self: Machine, cfs_rq: CfsRunQueue, se: SchedEntity, sleep: bool, special: bool = False
    ) -> bool:
        """``dequeue_entity``: out of the tree and the load; slack goes back on the last one.
        A sleeper the policy delays (DELAY_DEQUEUE) stays queued as ``sched_delayed`` and False
        is returned; `special` (``DEQUEUE_SPECIAL``, throttling) never delays. Dequeuing an
        entity that is delayed already completes its delayed dequeue."""
        if not self.policy.dequeue_entity(
            cfs_rq, se, sleep, sleep and not special and not se.sched_delayed
        ):
            se.sched_delayed = True
            return False
        if se.node is not None:
            cfs_rq.remove(se)
        se.on_rq = False
        cfs_rq.load -= se.weight  # add_load, inlined: hot
        if cfs_rq.se is not None:
            cfs_rq.tg.load_sum -= se.weight
        cfs_rq.nr_running -= 1
        if cfs_rq.runtime_enabled and cfs_rq.nr_running == 0:
            self.return_cfs_rq_runtime(cfs_rq)
        cfs_rq.update_min_vruntime()
        return True

    def enqueue_task_fair(self: Machine, rq: Rq, task: Task, flags: int) -> None:
        """``enqueue_task_fair``: enqueue up the hierarchy until an already-queued level, or (≤
        6.17) a throttled queue, is reached. 6.18 queues through throttled levels; a task taken
        off a limbo list (a group move) goes back to limbo if its new hierarchy is throttled
        (``enqueue_throttled_task``)."""
        if task.throttled:
            cfs_rq_of = task.se.rq_of
            assert cfs_rq_of is not None
            if cfs_rq_of.throttle_count:
                cfs_rq_of.limbo.append(task)
                return
            task.throttled = False
        stop = not self.task_throttle
        self.list_task(rq, task)
        se: SchedEntity | None = task.se
        while se is not None:
            if se.on_rq:
                if se.sched_delayed:
                    self.policy.requeue_delayed_entity(se.rq_of, se)  # type: ignore[arg-type]
                break
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            self.enqueue_entity(cfs_rq, se, flags)
            cfs_rq.h_nr_running += 1
            if stop and cfs_rq.throttled:
                return
            flags = ENQUEUE_WAKEUP
            se = se.parent
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            self.update_cfs_group(se)
            cfs_rq.h_nr_running += 1
            if stop and cfs_rq.throttled:
                return
            se = se.parent

    def dequeue_task_fair(self: Machine, rq: Rq, task: Task, sleep: bool) -> None:
        """``dequeue_task_fair``: the task leaves the machine's movable set and its queues (a
        delayed sleeper stays queued until it is picked or wakes). A task in limbo only
        leaves its limbo list (``dequeue_throttled_task``) and stays marked throttled."""
        if task.throttled:
            self.dequeue_throttled_task(task)
            return
        self.unlist_task(rq, task)
        self.dequeue_entities(task.se, sleep)

    def list_task(self: Machine, rq: Rq, task: Task) -> None:
        """Add `task` to `rq`'s movable set (``rq.tasks``), counting it on its queue and, when
        no level above it is throttled, in ``rq.listed_unthrottled``."""
        rq.tasks[task.tid] = task
        cfs_rq = task.se.rq_of
        assert cfs_rq is not None
        cfs_rq.nr_listed += 1
        if not cfs_rq.throttle_count:
            listed = rq.listed_unthrottled
            listed[cfs_rq.tg] = listed.get(cfs_rq.tg, 0) + 1

    def unlist_task(self: Machine, rq: Rq, task: Task) -> None:
        """Take `task` out of `rq`'s movable set (`list_task` undone)."""
        del rq.tasks[task.tid]
        cfs_rq = task.se.rq_of
        assert cfs_rq is not None
        cfs_rq.nr_listed -= 1
        if not cfs_rq.throttle_count:
            count_in(rq.listed_unthrottled, cfs_rq.tg, -1)

    def change_throttle_count(self: Machine, cfs_rq: CfsRunQueue, change: int) -> None:
        """``throttle_count`` += `change` (±1), keeping its CPU's ``throttled_groups`` and
        ``listed_unthrottled`` as the count leaves or reaches 0."""
        before = cfs_rq.throttle_count
        cfs_rq.throttle_count = before + change
        if (before == 0) == (cfs_rq.throttle_count == 0):
            return
        rq = self.rqs[cfs_rq.cpu]
        tg = cfs_rq.tg
        if before:
            rq.throttled_groups.discard(tg)
        else:
            rq.throttled_groups.add(tg)
        listed = cfs_rq.nr_listed
        if listed:
            count_in(rq.listed_unthrottled, tg, listed if before else -listed)

    def may_pull_from(self: Machine, src: Rq, dst: Rq) -> bool:
        """A necessary condition for `_can_migrate` from `src` to `dst`, read from the counters
        (`list_task`) in O(groups) set operations: some task of `src` other than its curr sits
        on a queue throttled neither on `src` nor, for its group, on `dst`. False only when no
        task of `src` may move to `dst`; True may still find none (affinity, ``on_rq``)."""
        listed = src.listed_unthrottled
        blocked = dst.throttled_groups
        if listed.keys() <= blocked:
            return False
        curr = src.curr
        if curr is None or src.curr_rt:
            return True
        cfs_rq = curr.se.rq_of
        assert cfs_rq is not None
        if listed.get(cfs_rq.tg) != 1 or curr.tid not in src.tasks or cfs_rq.throttle_count:
            return True
        return not listed.keys() - {cfs_rq.tg} <= blocked  # curr is its group's one candidate

    def dequeue_throttled_task(self: Machine, task: Task) -> None:
        """``dequeue_throttled_task``: take `task` off its queue's limbo list."""
        cfs_rq = task.se.rq_of
        assert cfs_rq is not None
        cfs_rq.limbo.remove(task)

    def dequeue_entities(
        self: Machine, se: SchedEntity, sleep: bool, throttle: bool = False
    ) -> bool:
        """``dequeue_entities``: dequeue `se`, and its ancestors while their queues become
        empty (they go to sleep, so they may be delayed); then refresh the levels above.
        Returns False when `se` itself was kept queued as ``sched_delayed``. ≤ 6.17 stops at a
        throttled queue (its group entity is off its parent already); 6.18 goes on to the
        root, and with `throttle` (``DEQUEUE_THROTTLE``: never delayed) starts the throttled
        clock of each throttled level it passes (``record_throttle_clock``)."""
        stop = not self.task_throttle
        nr_tasks = 1 if se.my_q is None else 0
        level: SchedEntity | None = se
        while level is not None:
            cfs_rq = level.rq_of
            assert cfs_rq is not None
            if not self.dequeue_entity(cfs_rq, level, sleep, special=throttle):
                if level is se:
                    return False
                break
            cfs_rq.h_nr_running -= nr_tasks
            if throttle and cfs_rq.throttled and cfs_rq.throttled_clock < 0:
                cfs_rq.throttled_clock = self.now  # record_throttle_clock
            if stop and cfs_rq.throttled:
                return True
            level = level.parent
            if cfs_rq.load:  # the parent still has other entities: stop dequeuing
                break
            sleep = True
        while level is not None:
            cfs_rq = level.rq_of
            assert cfs_rq is not None
            self.update_cfs_group(level)
            cfs_rq.h_nr_running -= nr_tasks
            if throttle and cfs_rq.throttled and cfs_rq.throttled_clock < 0:
                cfs_rq.throttled_clock = self.now  # record_throttle_clock
            if stop and cfs_rq.throttled:
                return True
            level = level.parent
        return True

    def set_user_nice(self: Machine, task: Task, weight: int) -> None:
        """``set_user_nice``: `task` takes a new weight and the machine reacts."""
        with self.batch():
            self.reweight_task(task, weight)

    def reweight_task(self: Machine, task: Task, weight: int) -> None:
        """``reweight_task`` and ``prio_changed_fair``: the new weight, maybe a preemption."""
        rq = self.rqs[task.cpu] if task.cpu >= 0 else None
        if rq is not None and task.se.on_rq:
            self.update_curr(rq)
        lowered = weight < task.se.weight
        self.reweight_entity(task.se, weight)
        if rq is None or task.state is not TaskState.RUNNABLE:
            return
        if rq.curr is task:
            rq.need_resched = rq.need_resched or lowered
        else:
            self.wakeup_preempt(rq, task)
        self.touch(rq)

    def finish_delayed_dequeue(self: Machine, task: Task) -> None:
        """Complete a sleeping task's delayed dequeue now (before it changes group)."""
        if task.se.sched_delayed:
            self.update_curr(self.rqs[task.cpu])
            self.dequeue_entities(task.se, sleep=True)

    # ==== wakeup preemption =================================================================
    def check_preempt_wakeup_fair(
        self: Machine, rq: Rq, curr: Task, task: Task, fork: bool
    ) -> None:
        """``check_preempt_wakeup_fair``: fair `task` was queued beside fair `curr`. A SCHED_IDLE
        curr yields to any other wakee; batch and idle wakees never preempt; a wakee in a
        throttled hierarchy waits; otherwise the policy decides at the level the two share
        (``find_matching_se``)."""
        if curr.policy == "idle" and task.policy != "idle":
            rq.need_resched = True
            return
        if task.policy != "normal":
            return
        cfs_rq_of_task = task.se.rq_of
        assert cfs_rq_of_task is not None
        if cfs_rq_of_task.throttle_count:
            return
        se, pse = find_matching_se(curr.se, task.se)
        if not pse.on_rq:
            return
        assert se.rq_of is not None
        if self.policy.wakeup_preempts(
            se.rq_of, se, pse, fork, task.se, curr.se, resched_pending=rq.need_resched
        ):
            rq.need_resched = True

    # ==== put and pick =====================================================================
    def put_prev_task_fair(self: Machine, prev: Task, keep_alone: bool = False) -> None:
        """``put_prev_task_fair``: each level's curr goes back into its tree (if still queued);
        queues out of runtime are throttled here (``check_cfs_rq_runtime``).

        Fast path (`keep_alone`, only when `pick_next_task` follows at once): the kernel puts
        every level back and its pick takes the entity out again. A level whose curr is alone
        on its queue (queued, not ``sched_delayed``, no bandwidth to check), on the chain of
        such levels from the root down, is certain to be re-picked, so it simply stays curr —
        out of the tree, as the pick leaves it. Kept levels must reach up to the root (a pick
        through a busier level may go elsewhere), so candidates are held back and put back
        after all, in the same order, when a level above them does not qualify."""
        policy = self.policy
        # candidates: the levels from `kept` (bottom-up) up to the current one, contiguous
        kept: SchedEntity | None = None
        tse = prev.se
        se: SchedEntity | None = tse
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            if (
                keep_alone
                and cfs_rq.nr_running == 1
                and cfs_rq.curr is se
                and se.on_rq
                and not se.sched_delayed
                and not cfs_rq.runtime_enabled
            ):
                if kept is None:
                    kept = se
                se = se.parent
                continue
            if kept is not None:  # not all the way to the root: put back as usual
                lone: SchedEntity | None = kept
                while lone is not se:
                    assert lone is not None
                    lone_rq = lone.rq_of
                    assert lone_rq is not None
                    lone_rq.insert(lone, policy.key(lone))
                    lone_rq.curr = None
                    lone = lone.parent
                kept = None
            if cfs_rq.runtime_enabled and cfs_rq.runtime_remaining <= 0:  # its first test
                self.check_cfs_rq_runtime(cfs_rq)
            if se.on_rq and se.node is None:
                cfs_rq.insert(se, policy.key(se))
            if cfs_rq.curr is se:
                cfs_rq.curr = None
            se = se.parent
        if tse.on_rq:
            prev.wait_start = self.env._now  # type: ignore[assignment]  # int: `now`, inlined

    def pick_next_task_fair(self: Machine, rq: Rq) -> Task | None:
        """``pick_next_task_fair``: pick at each level down to a task (``set_next_entity``).

        While a level is picked, its ``prev_curr`` names the entity that ran there until this
        schedule (rq.curr's ancestor), so a policy can tell a re-pick from a switch. A picked
        ``sched_delayed`` entity is dequeued for good and the pick starts over from the root
        (``pick_next_entity`` in 6.12+); the levels are set only once a task is reached.

        6.18 (``pick_task_fair``): each level's runtime is checked on the way down
        (``check_cfs_rq_runtime``, which may throttle); a task picked through a throttled level
        is switched in, returns to user mode at once and leaves for limbo
        (`throttle_picked_task`), and the pick starts over."""
        ran: SchedEntity | None = None  # rq.curr's entity, whose levels get prev_curr
        curr = rq.curr
        if curr is not None and not rq.curr_rt and self.policy.uses_prev_curr:
            ran = curr.se
            self._mark_prev_curr(ran, mark=True)
        return self.pick_down(rq, [], ran)

    def pick_down(
        self: Machine, rq: Rq, path: list[SchedEntity], ran: SchedEntity | None
    ) -> Task | None:
        """`pick_next_task_fair` from the levels already picked (`path`, root first, none
        throttled; their ``prev_curr`` marked from `ran`) down to a task."""
        policy = self.policy
        task_throttle = self.task_throttle
        throttled = False
        cfs_rq = path[-1].my_q if path else rq.cfs
        while cfs_rq is not None:
            if not path and not cfs_rq.nr_running:
                self._mark_prev_curr(ran, mark=False)
                return None
            if (
                task_throttle
                and cfs_rq.runtime_enabled
                and cfs_rq.runtime_remaining <= 0  # check_cfs_rq_runtime's own first test
                and self.check_cfs_rq_runtime(cfs_rq)
            ):
                throttled = True
            se = policy.pick_next_entity(cfs_rq)
            assert se is not None, f"empty pick on {cfs_rq}"
            if se.sched_delayed:
                self.dequeue_entities(se, sleep=True)
                self._forget_dequeued_curr(rq)
                path.clear()
                throttled = False
                cfs_rq = rq.cfs
                continue
            path.append(se)
            cfs_rq = se.my_q
            if throttled and cfs_rq is None:
                self.throttle_picked_task(rq, se.task)
                path.clear()
                throttled = False
                cfs_rq = rq.cfs
        for se in path:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            if se.node is not None:
                cfs_rq.remove(se)
            cfs_rq.curr = se
            se.prev_sum_exec = se.sum_exec
            policy.set_next_entity(cfs_rq, se)
        if ran is not None:
            self._mark_prev_curr(ran, mark=False)
        return path[-1].task

    def throttle_picked_task(self: Machine, rq: Rq, task: Task) -> None:
        """6.18: `task` was picked through a throttled level (``task_throttle_setup_work``).
        It is switched in (a timeslice; its wakeup latency ends here), returns to user mode —
        in 0 ns: our behaviours run user code — and ``throttle_cfs_rq_work`` dequeues it
        (``DEQUEUE_THROTTLE``) onto its queue's limbo list. It stays runnable: its wait runs
        on from now (schedstat ``run_delay``)."""
        self.dequeue_entities(task.se, sleep=True, throttle=True)
        self._forget_dequeued_curr(rq)
        self.unlist_task(rq, task)
        cfs_rq = task.se.rq_of
        assert cfs_rq is not None
        cfs_rq.limbo.append(task)
        task.throttled = True
        if rq.curr is not task:
            self.context_switch(rq, rq.curr, task)
        task.wait_start = self.env._now  # type: ignore[assignment]  # int: `now`, inlined

    @staticmethod
    def _mark_prev_curr(se: SchedEntity | None, mark: bool) -> None:
        """Set (or clear) ``prev_curr`` on every level `se` and its ancestors are queued on."""
        if mark:
            while se is not None:
                se.rq_of.prev_curr = se  # type: ignore[union-attr]
                se = se.parent
        else:
            while se is not None:
                se.rq_of.prev_curr = None  # type: ignore[union-attr]
                se = se.parent

    def _forget_dequeued_curr(self: Machine, rq: Rq) -> None:
        """A delayed dequeue inside a pick may dequeue levels that `put_prev_task` kept as
        curr: they stop being curr, as the kernel's put would have left them."""
        if rq.curr is None or rq.curr_rt:
            return
        se: SchedEntity | None = rq.curr.se
        while se is not None:
            cfs_rq = se.rq_of
            if cfs_rq is not None and cfs_rq.curr is se and not se.on_rq:
                cfs_rq.curr = None
            se = se.parent

    # ==== bandwidth (CONFIG_CFS_BANDWIDTH) ====================================================
    def account_cfs_rq_runtime(self: Machine, rq: Rq, cfs_rq: CfsRunQueue, delta: int) -> None:
        """``__account_cfs_rq_runtime``: charge unweighted runtime; refill from the pool when
        it is gone; reschedule when the pool is empty too."""
        cfs_rq.runtime_remaining -= delta
        if cfs_rq.runtime_remaining > 0 or cfs_rq.throttled:
            return
        if not self.assign_cfs_rq_runtime(cfs_rq, cfs_rq.tg.bandwidth.slice) and cfs_rq.curr:
            rq.need_resched = True

    def assign_cfs_rq_runtime(self: Machine, cfs_rq: CfsRunQueue, target: int) -> bool:
        tg = cfs_rq.tg
        ok, arm = tg.bandwidth.assign_runtime(cfs_rq, target, self.now)
        if arm:
            self.bandwidth_timers(tg).period.start(tg.bandwidth.expires)
        return ok

    def check_cfs_rq_runtime(self: Machine, cfs_rq: CfsRunQueue) -> bool:
        """``check_cfs_rq_runtime``: throttle a queue whose runtime is gone (at put_prev)."""
        if not cfs_rq.runtime_enabled or cfs_rq.runtime_remaining > 0:
            return False
        if cfs_rq.throttled:
            return True
        return self.throttle_cfs_rq(cfs_rq)

    def check_enqueue_throttle(self: Machine, cfs_rq: CfsRunQueue) -> None:
        """``check_enqueue_throttle``: the first entity queued on a queue without runtime."""
        if not cfs_rq.runtime_enabled or cfs_rq.curr is not None or cfs_rq.throttled:
            return
        rq = self.rqs[cfs_rq.cpu]
        self.account_cfs_rq_runtime(rq, cfs_rq, 0)
        if cfs_rq.runtime_remaining <= 0:
            self.throttle_cfs_rq(cfs_rq)

    def throttle_cfs_rq(self: Machine, cfs_rq: CfsRunQueue) -> bool:
        """``throttle_cfs_rq``: one last try for 1 ns, then mark the subtree throttled
        (``tg_throttle_down``). False when the pool still had runtime. ≤ 6.17 also takes the
        group entity off its parent and starts the throttled clock if anything is queued;
        6.18 does neither: its tasks leave one by one when picked (`throttle_picked_task`),
        and the clock starts with the first."""
        if self.assign_cfs_rq_runtime(cfs_rq, 1):
            return False
        tg = cfs_rq.tg
        tg.bandwidth.throttled.append(cfs_rq)
        if self.task_throttle:
            for group in tg.subtree():
                self.change_throttle_count(group.cfs_rq[cfs_rq.cpu], 1)
            cfs_rq.throttled = True
            return True
        rq = self.rqs[cfs_rq.cpu]
        task_delta = cfs_rq.h_nr_running
        dequeue = True
        se = cfs_rq.se
        while se is not None:
            qcfs_rq = se.rq_of
            assert qcfs_rq is not None
            if not se.on_rq:
                break
            if dequeue:
                self.dequeue_entity(qcfs_rq, se, sleep=True, special=True)
                if qcfs_rq.load:
                    dequeue = False
            else:
                self.update_cfs_group(se)
            qcfs_rq.h_nr_running -= task_delta
            if qcfs_rq.throttled:
                break
            se = se.parent
        for group in tg.subtree():
            self.change_throttle_count(group.cfs_rq[cfs_rq.cpu], 1)
        cfs_rq.throttled = True
        if cfs_rq.nr_running:
            cfs_rq.throttled_clock = self.now
        rq.need_resched = True
        self.touch(rq)
        return True

    def unthrottle_cfs_rq(self: Machine, cfs_rq: CfsRunQueue) -> None:
        """``unthrottle_cfs_rq``: count the throttled time; ≤ 6.17 puts the group entity back,
        6.18 re-enqueues the limbo tasks of each level whose hierarchy is no longer throttled
        (``tg_unthrottle_up``)."""
        tg = cfs_rq.tg
        rq = self.rqs[cfs_rq.cpu]
        self.update_curr(rq)
        cfs_rq.throttled = False
        tg.bandwidth.throttled.remove(cfs_rq)
        now = self.now
        if cfs_rq.throttled_clock >= 0:
            tg.bandwidth.stat.throttled_time += now - cfs_rq.throttled_clock
            self.rec.add("throttles", tg.index, cfs_rq.cpu, cfs_rq.throttled_clock, now)
            cfs_rq.throttled_clock = -1
        if self.task_throttle:
            self.tg_unthrottle_up(rq, tg)
            return
        for group in tg.subtree():
            self.change_throttle_count(group.cfs_rq[cfs_rq.cpu], -1)
        if not cfs_rq.load:
            return
        task_delta = cfs_rq.h_nr_running
        enqueue = True
        se = cfs_rq.se
        while se is not None:
            qcfs_rq = se.rq_of
            assert qcfs_rq is not None
            if enqueue and se.sched_delayed:  # unfinished DELAY_DEQUEUE business first
                self.dequeue_entity(qcfs_rq, se, sleep=True)
            if se.on_rq:
                enqueue = False
            if enqueue:
                self.enqueue_entity(qcfs_rq, se, ENQUEUE_WAKEUP)
            else:
                self.update_cfs_group(se)
            qcfs_rq.h_nr_running += task_delta
            if qcfs_rq.throttled:
                break
            se = se.parent
        if rq.curr is None and rq.cfs.h_nr_running:
            rq.need_resched = True
        self.touch(rq)

    def tg_unthrottle_up(self: Machine, rq: Rq, tg: TaskGroup) -> None:
        """``walk_tg_tree_from(tg, tg_nop, tg_unthrottle_up)``: children before parents (the
        newest child first), each level's throttle count down; a level that reaches 0 puts its
        limbo tasks back, most recent first (``list_add``), with ``enqueue_task_fair(
        ENQUEUE_WAKEUP)`` — not a wakeup (no ``ttwu``: no latency sample, no preemption
        check). An idle CPU with tasks queued again reschedules."""
        cpu = rq.cpu
        for group in reversed(tg.subtree()):
            level = group.cfs_rq[cpu]
            self.change_throttle_count(level, -1)
            if level.throttle_count or not level.limbo:
                continue
            limbo = level.limbo
            level.limbo = []
            for task in reversed(limbo):
                task.throttled = False
                self.enqueue_task_fair(rq, task, ENQUEUE_WAKEUP)
        if rq.curr is None and rq.cfs.h_nr_running:
            rq.need_resched = True
        self.touch(rq)

    def return_cfs_rq_runtime(self: Machine, cfs_rq: CfsRunQueue) -> None:
        """``return_cfs_rq_runtime``: on the last dequeue, give slack back; maybe start the
        slack timer (``start_cfs_slack_bandwidth``)."""
        tg = cfs_rq.tg
        bw = tg.bandwidth
        if not bw.return_runtime(cfs_rq) or self.bandwidth_timers(tg).slack.active:
            return
        if bw.runtime_refresh_within(
            self.now, MIN_BANDWIDTH_EXPIRATION + CFS_BANDWIDTH_SLACK_PERIOD
        ):
            return
        self.bandwidth_timers(tg).slack.start(self.now + CFS_BANDWIDTH_SLACK_PERIOD)

    def do_sched_cfs_slack_timer(self: Machine, tg: TaskGroup) -> None:
        """``do_sched_cfs_slack_timer``: hand returned slack to throttled queues, unless a
        refill is near."""
        bw = tg.bandwidth
        if bw.runtime_refresh_within(self.now, MIN_BANDWIDTH_EXPIRATION):
            return
        if bw.quota is None or bw.runtime <= bw.slice:
            return
        with self.batch():
            self.distribute_cfs_runtime(tg)

    def distribute_cfs_runtime(self: Machine, tg: TaskGroup) -> None:
        """``distribute_cfs_runtime``: pay throttled queues from the pool (in throttle order)
        and unthrottle those that now have runtime."""
        for cfs_rq in tg.bandwidth.pay_throttled():
            self.unthrottle_cfs_rq(cfs_rq)

    def bandwidth_timers(self: Machine, tg: TaskGroup) -> BandwidthTimers:
        """The group's ``period_timer`` and ``slack_timer`` (made at first use)."""
        timers = tg.bandwidth.timers
        if timers is None:
            timers = BandwidthTimers(
                HrTimer(self.calendar, partial(self.sched_cfs_period_timer, tg)),
                HrTimer(self.calendar, partial(self.do_sched_cfs_slack_timer, tg)),
            )
            tg.bandwidth.timers = timers
        return timers

    def sched_cfs_period_timer(self: Machine, tg: TaskGroup) -> None:
        """``sched_cfs_period_timer``: refill, count, distribute, unthrottle
        (``do_sched_cfs_period_timer``); re-arm on the period grid or go idle."""
        bw = tg.bandwidth
        if not bw.period_active:
            return
        start = max(0, bw.expires - bw.period)  # a first expiry at phase < period: from t = 0
        throttled_now = bool(bw.throttled)
        active = bw.do_sched_cfs_period_timer()
        quota = -1 if bw.quota is None else bw.quota
        # usage is filled in from the run segments when the trace is frozen (exact, no update_curr)
        self.rec.add("periods", tg.index, start, self.now - start, 0, int(throttled_now), quota)
        with self.batch():
            if active and throttled_now:
                self.distribute_cfs_runtime(tg)
            if active:
                bw.forward(self.now)
                self.bandwidth_timers(tg).period.start(bw.expires)
            else:
                bw.period_active = False

    def tg_set_cfs_bandwidth(
        self: Machine, tg: TaskGroup, period: int, quota: int | None, burst: int
    ) -> None:
        """``tg_set_cfs_bandwidth``: new limits, refill, restart the timer, reset local
        runtime to 0 on every CPU and unthrottle everything.

        CPU time a running task used before the write is accounted first: the kernel's tick has
        done that at most one tick earlier, while our lone runners may not have been updated
        since they started."""
        for rq in self.rqs:
            self.update_curr(rq)
        bw = tg.bandwidth
        bw.set_limits(period, quota, burst)
        if bw.enabled and bw.start_cfs_bandwidth(self.now):
            self.bandwidth_timers(tg).period.start(tg.bandwidth.expires)
        for cfs_rq in tg.cfs_rq:
            cfs_rq.runtime_enabled = bw.enabled
            cfs_rq.runtime_remaining = 0
            if cfs_rq.throttled:
                self.unthrottle_cfs_rq(cfs_rq)
            self.touch(self.rqs[cfs_rq.cpu])
        self.flush()


def find_matching_se(se: SchedEntity, pse: SchedEntity) -> tuple[SchedEntity, SchedEntity]:
    """``find_matching_se``: walk both entities up until they share a run queue."""
    while se.depth > pse.depth:
        se = se.parent  # type: ignore[assignment]
    while pse.depth > se.depth:
        pse = pse.parent  # type: ignore[assignment]
    while se.rq_of is not pse.rq_of:
        se = se.parent  # type: ignore[assignment]
        pse = pse.parent  # type: ignore[assignment]
    return se, pse
