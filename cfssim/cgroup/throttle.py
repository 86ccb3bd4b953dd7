# mypy: disable-error-code="misc"
# (a Machine mixin: its methods annotate `self: Machine`, which mypy flags as [misc])
"""Throttling: what CFS bandwidth control does to the machine's run queues.

`cfssim.cgroup.bandwidth.CfsBandwidth` decides how much runtime a group's pool hands out and when
its timers fire; this mixin of `cfssim.machine.Machine` does the queue work the kernel does in
kernel/sched/fair.c (CONFIG_CFS_BANDWIDTH): charge runtime in ``update_curr``, take a throttled
group entity off its parent (``throttle_cfs_rq``), put it back at refill
(``unthrottle_cfs_rq``), return slack, and run the period and slack timers.

Linux 6.18 throttles per task: the queue is only marked, and each of its tasks leaves for a
"limbo" list when it next returns to user mode, which for user-space code — all our behaviours
are — is at once; the throttled interval (``throttled_time``) starts then, which is when we start
it. What is not modelled: kernel-mode execution continuing until that return, and the limbo
tasks' re-enqueue as wakeups at unthrottle (we put the group entity back, as ≤ 6.17 did). For
user-space workloads both kernels' figures are the same here, so no switch selects between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mypy_extensions import trait

from ..sched.policy import ENQUEUE_WAKEUP
from .bandwidth import CFS_BANDWIDTH_SLACK_PERIOD, MIN_BANDWIDTH_EXPIRATION

if TYPE_CHECKING:
    from ..machine import Machine, Rq
    from ..sched.runqueue import CfsRunQueue
    from .tree import TaskGroup


@trait  # mypyc: Machine's mixins must be traits (no multiple inheritance of native classes)
class BandwidthControl:
    """Bandwidth throttling on the machine's queues (a `Machine` mixin)."""

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
        ok, arm = tg.bandwidth.assign(cfs_rq, target, self.now)
        if arm:
            self._arm_period_timer(tg)
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
        """``throttle_cfs_rq``: one last try for 1 ns, then take the group entity off its
        parent and mark the subtree throttled. False when the pool still had runtime."""
        if self.assign_cfs_rq_runtime(cfs_rq, 1):
            return False
        tg = cfs_rq.tg
        tg.bandwidth.throttled.append(cfs_rq)
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
            group.cfs_rq[cfs_rq.cpu].throttle_count += 1
        cfs_rq.throttled = True
        if cfs_rq.nr_running:
            cfs_rq.throttled_clock = self.now
        rq.need_resched = True
        self.touch(rq)
        return True

    def unthrottle_cfs_rq(self: Machine, cfs_rq: CfsRunQueue) -> None:
        """``unthrottle_cfs_rq``: count the throttled time, put the group entity back."""
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
        for group in tg.subtree():
            group.cfs_rq[cfs_rq.cpu].throttle_count -= 1
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

    def return_cfs_rq_runtime(self: Machine, cfs_rq: CfsRunQueue) -> None:
        """``return_cfs_rq_runtime``: on the last dequeue, give slack back; maybe start the
        slack timer (``start_cfs_slack_bandwidth``)."""
        bw = cfs_rq.tg.bandwidth
        if not bw.give_back(cfs_rq) or bw.slack_started:
            return
        if bw.refresh_within(self.now, MIN_BANDWIDTH_EXPIRATION + CFS_BANDWIDTH_SLACK_PERIOD):
            return
        bw.slack_started = True
        timer = self.env.timeout(CFS_BANDWIDTH_SLACK_PERIOD)
        tg = cfs_rq.tg
        timer.callbacks.append(lambda ev: self._slack_timer(tg))

    def _slack_timer(self: Machine, tg: TaskGroup) -> None:
        """``do_sched_cfs_slack_timer``."""
        bw = tg.bandwidth
        bw.slack_started = False
        if bw.refresh_within(self.now, MIN_BANDWIDTH_EXPIRATION):
            return
        if bw.quota is None or bw.runtime <= bw.slice:
            return
        for cfs_rq in bw.distribute():
            self.unthrottle_cfs_rq(cfs_rq)
        self.flush()

    def _arm_period_timer(self: Machine, tg: TaskGroup) -> None:
        bw = tg.bandwidth
        bw.timer_gen += 1
        gen = bw.timer_gen
        timer = self.env.timeout(bw.expires - self.now)
        timer.callbacks.append(lambda ev: self._period_timer(tg, gen))

    def _period_timer(self: Machine, tg: TaskGroup, gen: int) -> None:
        """``sched_cfs_period_timer``: refill, count, distribute, unthrottle; re-arm or stop."""
        bw = tg.bandwidth
        if gen != bw.timer_gen or not bw.period_active:
            return
        start = max(0, bw.expires - bw.period)  # a first expiry at phase < period: from t = 0
        throttled_now = bool(bw.throttled)
        active, ready = bw.period_tick()
        quota = -1 if bw.quota is None else bw.quota
        # usage is filled in from the run segments when the trace is frozen (exact, no update_curr)
        self.rec.add("periods", tg.index, start, self.now - start, 0, int(throttled_now), quota)
        for cfs_rq in ready:
            self.unthrottle_cfs_rq(cfs_rq)
        if active:
            bw.forward(self.now)
            self._arm_period_timer(tg)
        else:
            bw.period_active = False
        self.flush()

    def set_bandwidth(
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
        bw.set(period, quota, burst)
        if bw.enabled and bw.start(self.now):
            self._arm_period_timer(tg)
        for cfs_rq in tg.cfs_rq:
            cfs_rq.runtime_enabled = bw.enabled
            cfs_rq.runtime_remaining = 0
            if cfs_rq.throttled:
                self.unthrottle_cfs_rq(cfs_rq)
            self.touch(self.rqs[cfs_rq.cpu])
        self.flush()
