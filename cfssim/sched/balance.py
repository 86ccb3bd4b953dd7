# mypy: disable-error-code="misc"
# (a Machine mixin: its methods annotate `self: Machine`, which mypy flags as [misc])
"""SMP: where a waking task runs, and load balancing between CPUs.

A mixin of `cfssim.sched.core.Machine` mirroring ``select_task_rq_fair`` and the 6.10+ balancer:
``sched_balance_newidle``, ``sched_balance_rq`` (``load_balance`` before 6.10; with
``sched_balance_find_src_rq``, ``detach_tasks``' ``can_migrate_task`` and the
``nr_balance_failed`` relaxation) run by ``sched_balance_domains``, and the nohz idle-balance
kick. Affinity (and the cpuset) is
always honoured; every migration is counted and recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mypy_extensions import trait

from .newidle import newidle_src_rq
from .policy import ENQUEUE_MIGRATED
from .rt import RT_POLICIES

if TYPE_CHECKING:
    from ..task import Task
    from .core import Machine, Rq

CACHE_NICE_TRIES = 1  # sd->cache_nice_tries of the MC (multi-core) domain


@trait  # mypyc: Machine's mixins must be traits (no multiple inheritance of native classes)
class LoadBalancing:
    """CPU selection and balancing (a `Machine` mixin)."""

    def select_task_rq(self: Machine, task: Task, new: bool) -> int:
        """``select_task_rq_fair``: the previous CPU if idle, else an idle allowed CPU
        (scanning from the previous one, like ``select_idle_sibling``), else — for a wakeup —
        the previous CPU, and for a fork the least loaded (``find_idlest_cpu``).

        Fast path: only CPUs running nothing (``idle_rqs``, a superset of the idle ones) can be
        idle, so with none there is no scan, and when they are few the scan visits them alone,
        in the scan's order."""
        allowed = task.allowed
        prev = task.cpu
        rqs = self.rqs
        candidates = self.idle_rqs
        if not new and prev in candidates and prev in allowed and rqs[prev].idle:
            return prev
        if candidates:
            start = prev + 1 if prev >= 0 else 0
            n = self.ncpus
            if self.fast_forward and len(candidates) * 8 < n:
                best = -1
                best_distance = n
                for cpu in candidates:
                    distance = (cpu - start) % n
                    if distance < best_distance and cpu in allowed and rqs[cpu].idle:
                        best, best_distance = cpu, distance
                if best >= 0:
                    return best
            else:
                for i in range(n):
                    cpu = (start + i) % n
                    if cpu in allowed and rqs[cpu].idle:
                        return cpu
        if not new and prev in allowed:
            return prev
        return min(task.allowed_order, key=lambda c: (rqs[c].cfs.h_nr_running, rqs[c].cfs.load, c))

    def task_h_load(self: Machine, task: Task) -> int:
        """``task_h_load``: the task's weight as seen at the root of its CPU."""
        se = task.se
        load = se.weight
        while se.parent is not None:
            q = se.rq_of
            assert q is not None
            load = load * se.parent.weight // max(1, q.load)
            se = se.parent
        return load

    def _can_migrate(self: Machine, task: Task, src: Rq, dst: Rq) -> bool:
        """``can_migrate_task`` minus cache hotness: queued, not running, allowed on `dst`, and
        neither end of the move throttled (``throttled_lb_pair``)."""
        return task is not src.curr and self._may_queue_on(task, dst)

    def _may_queue_on(self: Machine, task: Task, dst: Rq) -> bool:
        """`_can_migrate` but for whether `task` runs: queued, allowed on `dst`, neither end
        throttled."""
        return (
            dst.cpu in task.allowed
            and task.se.on_rq
            and not task.se.rq_of.throttle_count  # type: ignore[union-attr]
            and not task.group.cfs_rq[dst.cpu].throttle_count  # type: ignore[union-attr]
        )

    def _movable(self: Machine, src: Rq, dst: Rq) -> list[Task]:
        """Tasks that may move from `src` to `dst`, coldest first (``detach_tasks`` walks
        ``cfs_tasks`` from its tail)."""
        movable = [t for t in src.tasks.values() if self._can_migrate(t, src, dst)]
        movable.sort(key=lambda t: (t.last_ran, t.tid))
        return movable

    def _scan_movable(self: Machine, src: Rq, dst: Rq) -> bool:
        """`_can_migrate` for each task of `src` until one holds (inlined: hot at many CPUs)."""
        curr = src.curr
        cpu = dst.cpu
        for t in src.tasks.values():
            se = t.se
            if (
                not se.rq_of.throttle_count  # type: ignore[union-attr]  # fails most: first
                and t is not curr
                and cpu in t.allowed
                and se.on_rq
                and not t.group.cfs_rq[cpu].throttle_count  # type: ignore[union-attr]
            ):
                return True
        return False

    def move_queued_task(self: Machine, task: Task, src: Rq, dst: Rq, preempt: bool = True) -> None:
        """``detach_task`` + ``attach_task``: migrate a queued task between CPUs."""
        self.update_curr(src)
        self.update_curr(dst)
        if task.policy in RT_POLICIES:  # an RT task off a CPU it may no longer use
            src.rt.dequeue(task)
            self.set_task_cpu(task, dst.cpu)
            dst.rt.enqueue(task)
            if dst.rt.preempts(task, dst.curr):
                dst.need_resched = True
            self.touch(src)
            self.touch(dst)
            return
        self.dequeue_task_fair(src, task, sleep=False)
        self.policy.migrate_out(task.se.rq_of, task.se)  # type: ignore[arg-type]
        self.set_task_cpu(task, dst.cpu)
        self.enqueue_task_fair(dst, task, ENQUEUE_MIGRATED)
        if preempt:
            self.wakeup_preempt(dst, task)
        self.touch(src)
        self.touch(dst)

    def sched_balance_find_src_rq(
        self: Machine, rq: Rq, key: Callable[[Rq], tuple[int, int]]
    ) -> Rq | None:
        """``sched_balance_find_src_rq``: the other CPU with waiting tasks and the greatest `key`.
        Exact ties happen here only because we have no PELT noise; in the kernel they are
        broken by that noise, here by a seeded draw (never by CPU number, which would pin the
        same pairs of tasks together forever). Newidle balancing has its own search, which
        also skips CPUs with nothing it may take (`cfssim.sched.newidle.newidle_src_rq`)."""
        keyed = [
            (key(other), other)
            for other in self.rqs
            if other is not rq and other.cfs.h_nr_running >= 2
        ]
        if not keyed:
            return None
        best = max(k for k, _ in keyed)
        tied = [other for k, other in keyed if k == best]
        if len(tied) == 1:
            return tied[0]
        return tied[int(self.rng.integers(len(tied)))]

    def sched_balance_newidle(self: Machine, rq: Rq) -> bool:
        """``sched_balance_newidle``: a CPU about to idle pulls one task from the busiest CPU."""
        busiest = newidle_src_rq(self, rq)  # sched_balance_find_src_rq, newidle's key
        if busiest is None:
            return False
        self.move_queued_task(self._movable(busiest, rq)[0], busiest, rq, preempt=False)
        return True

    def sched_balance_rq(self: Machine, rq: Rq) -> None:
        """Periodic ``sched_balance_rq``: pull weighted load from the busiest CPU toward the
        average; a task heavier than the imbalance moves only after failed attempts
        (``shr_bound(load, nr_balance_failed)``), which rotates N hogs over M < N CPUs."""
        self.refresh_group_weights()
        this_load = rq.cfs.load
        busiest = self.sched_balance_find_src_rq(
            rq, lambda other: (other.cfs.load, other.cfs.h_nr_running)
        )
        if busiest is None or busiest.cfs.load <= this_load:
            rq.nr_balance_failed = 0
            return
        if not any(self._may_queue_on(task, rq) for task in busiest.tasks.values()):
            # nothing there may come here, whichever task runs (all pinned away, say): the
            # same failed attempt as below, without reading a replaying CPU's running state
            rq.nr_balance_failed += 1
            return
        self.leave_replays()  # about to read the tasks' last runs, and maybe move some
        imbalance = (busiest.cfs.load - this_load) // 2
        moved = 0
        now = self.now
        cache_cold = rq.nr_balance_failed > CACHE_NICE_TRIES
        for task in self._movable(busiest, rq):
            # can_migrate_task → task_hot: a task that ran within sched_migration_cost is left
            # where its cache is, until balancing has failed more than cache_nice_tries times
            if not cache_cold and now - task.last_ran < self.tun.sched_migration_cost_ns:
                continue
            load = self.task_h_load(task)
            if load >> min(rq.nr_balance_failed, 31) > imbalance:
                continue
            self.move_queued_task(task, busiest, rq)
            imbalance -= load
            moved += 1
            if imbalance <= 0:
                break
        rq.nr_balance_failed = 0 if moved else rq.nr_balance_failed + 1

    def refresh_group_weights(self: Machine) -> None:
        """What each CPU's tick does for its running hierarchy (``entity_tick`` →
        ``update_curr``, ``update_cfs_group``): bring group-entity weights up to date before
        comparing loads. Between events a CPU's weights may lag other CPUs' changes, as between
        ticks. A CPU with nothing to refresh (`group_levels_stale`: weights and slices current,
        no quota to charge) is left alone: the balancer reads loads, never a remote CPU's
        running time (``update_sd_lb_stats``). A refresh changes group loads, and with them
        other CPUs' group weights, which a replaying CPU would not re-derive at its ticks: the
        replays end first."""
        for rq in self.rqs:
            task = rq.curr
            if task is not None and self.group_levels_stale(task):
                self.leave_replays()
                self.update_curr(rq)
                self.entity_tick_groups(task)

    def _balance_interval(self: Machine) -> int:
        low, high = self.balance_range
        return int(self.rng.integers(low // self.tick_ns, high // self.tick_ns + 1)) * self.tick_ns

    def _arm_balance(self: Machine, rq: Rq, delay: int) -> None:
        rq.balance_timer.start(self.now + self.tick_after(rq.cpu, delay))

    def sched_balance_domains(self: Machine, rq: Rq) -> None:
        if rq.curr is not None:
            self.sched_balance_rq(rq)
            self.flush()
        self._arm_balance(rq, self._balance_interval())

    def nohz_balancer_kick(self: Machine, busy: Rq) -> None:
        """``nohz_balancer_kick``: a CPU with waiting work wakes an idle CPU that can take
        some at the next tick."""
        if not self._any_movable_to_idle(busy):
            return
        self.nohz_timer.start(self.now + self.tick_after(busy.cpu, 0))

    def _any_movable_to_idle(self: Machine, busy: Rq) -> bool:
        """Whether some task of `busy` may move to some CPU that runs nothing (`_can_migrate`
        for each pair, with the task's own conditions tested once), once the counters
        (`may_pull_from`) leave some idle CPU a candidate."""
        idle = self.idle_rqs
        rqs = self.rqs
        for cpu in idle:
            if self.may_pull_from(busy, rqs[cpu]):
                break
        else:
            return False
        for task in busy.tasks.values():
            if task is busy.curr or not task.se.on_rq or task.se.rq_of.throttle_count:  # type: ignore[union-attr]
                continue
            group_rqs = task.group.cfs_rq  # type: ignore[union-attr]
            for cpu in idle:
                if cpu in task.allowed and not group_rqs[cpu].throttle_count:
                    return True
        return False

    def nohz_idle_balance(self: Machine) -> None:
        for cpu in sorted(self.idle_rqs):
            rq = self.rqs[cpu]
            if rq.idle and self.sched_balance_newidle(rq):
                rq.need_resched = True
                self.touch(rq)
        self.flush()
