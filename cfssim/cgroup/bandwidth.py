"""CFS bandwidth control: ``struct cfs_bandwidth`` — one runtime pool per task group.

Mirrors kernel/sched/fair.c (6.x) and Documentation/scheduler/sched-bwc.rst: a global pool
refilled every period by the period timer (``__refill_cfs_bandwidth_runtime``, with burst
carry-over up to quota + burst), per-CPU local runtime handed out in
``sched_cfs_bandwidth_slice`` chunks (``__assign_cfs_rq_runtime``), slack return of all but
``min_cfs_rq_runtime`` when a CPU's queue empties (``__return_cfs_rq_runtime``) with its slack
timer, and ``cpu.stat`` counted exactly as ``do_sched_cfs_period_timer`` counts. Queue operations
(throttle, unthrottle) belong to the machine; this module only decides *how much* and *when*.
All times and runtimes are int ns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..sched.runqueue import CfsRunQueue

MIN_CFS_RQ_RUNTIME = 1_000_000  # a cfs_rq keeps this much when returning slack
MIN_BANDWIDTH_EXPIRATION = 2_000_000  # no slack distribution this close to a refresh
CFS_BANDWIDTH_SLACK_PERIOD = 5_000_000  # slack timer delay


@dataclass
class CpuStat:
    """The v1 ``cpu.stat`` counters of one group (times in ns)."""

    nr_periods: int = 0
    nr_throttled: int = 0
    throttled_time: int = 0
    nr_bursts: int = 0
    burst_time: int = 0


class CfsBandwidth:
    """The bandwidth pool of one task group. ``quota_ns`` None means unlimited (−1)."""

    def __init__(self, period_ns: int, quota_ns: int | None, burst_ns: int, slice_ns: int) -> None:
        self.period = period_ns
        self.quota = quota_ns
        self.burst = burst_ns
        self.slice = slice_ns
        self.runtime = 0  # the global pool
        self.runtime_snap = 0
        self.idle = False
        self.period_active = False
        self.expires = 0  # the period timer's expiry: its grid is `set_phase` + k × period
        self.slack_started = False
        self.throttled: list[CfsRunQueue] = []  # throttled_cfs_rq, in throttle order
        self.stat = CpuStat()
        self.timer_gen = 0  # the armed period timer's token; a stale firing is ignored
        self.set(period_ns, quota_ns, burst_ns)

    def set_phase(self, phase_ns: int) -> None:
        """``init_cfs_bandwidth`` (6.4+): the period timer's first expiry, `phase_ns` ≥ 0 —
        the kernel draws it below the period to interleave groups' timers; every later
        expiry is a whole number of periods on (``hrtimer_forward_now``), so the grid is
        phase + k × period. Only before the timer is first armed."""
        if phase_ns < 0:
            raise ValueError(f"expected a period phase ≥ 0 ns, found {phase_ns}")
        if self.period_active:
            raise RuntimeError("the period timer is armed already: its phase is set")
        self.expires = phase_ns

    @property
    def enabled(self) -> bool:
        return self.quota is not None

    def set(self, period_ns: int, quota_ns: int | None, burst_ns: int) -> None:
        """``tg_set_cfs_bandwidth``: new limits and a refill; the caller restarts the period
        timer (`start`) and unthrottles every queue with its local runtime reset to 0.

        The burst lives in its own file (``cpu.cfs_burst_us``, ``cpu.max.burst``), written
        after the quota: a change of both is two ``tg_set_cfs_bandwidth`` calls, two refills,
        so a group given quota and burst together starts with a full pool of quota + burst
        (measured: a 15 ms run under 10 ms/100 ms + 10 ms burst is not throttled at start).
        """
        if burst_ns != self.burst and (period_ns, quota_ns) != (self.period, self.quota):
            self.period, self.quota = period_ns, quota_ns
            self.refill()
        self.period, self.quota, self.burst = period_ns, quota_ns, burst_ns
        self.refill()

    def refill(self) -> None:
        """``__refill_cfs_bandwidth_runtime``: add a quota, count a burst if the last period
        took more than one quota out of the pool, cap at quota + burst."""
        if self.quota is None:
            return
        self.runtime += self.quota
        overdraw = self.runtime_snap - self.runtime
        if overdraw > 0:
            self.stat.burst_time += overdraw
            self.stat.nr_bursts += 1
        self.runtime = min(self.runtime, self.quota + self.burst)
        self.runtime_snap = self.runtime

    def start(self, now: int) -> bool:
        """``start_cfs_bandwidth``: activate the period timer on its original phase grid
        (``hrtimer_forward_now``; no refill). True when it was inactive and must be armed."""
        if self.period_active:
            return False
        self.period_active = True
        self.forward(now)
        return True

    def forward(self, now: int) -> int:
        """``hrtimer_forward_now``: move the expiry past `now` by whole periods; the overrun."""
        if now < self.expires:
            return 0
        overrun = (now - self.expires) // self.period + 1
        self.expires += overrun * self.period
        return overrun

    def assign(self, cfs_rq: CfsRunQueue, target: int, now: int) -> tuple[bool, bool]:
        """``__assign_cfs_rq_runtime``: top `cfs_rq` up toward `target` ns of local runtime.

        Returns (has runtime now, the period timer must be armed).
        """
        min_amount = target - cfs_rq.runtime_remaining
        arm = False
        if self.quota is None:
            amount = min_amount
        else:
            arm = self.start(now)
            amount = 0
            if self.runtime > 0:
                amount = min(self.runtime, min_amount)
                self.runtime -= amount
                self.idle = False
        cfs_rq.runtime_remaining += amount
        return cfs_rq.runtime_remaining > 0, arm

    def give_back(self, cfs_rq: CfsRunQueue) -> bool:
        """``__return_cfs_rq_runtime``: return local runtime above 1 ms to the pool. True when
        the slack timer should be considered (pool above a slice and someone throttled)."""
        slack = cfs_rq.runtime_remaining - MIN_CFS_RQ_RUNTIME
        if slack <= 0 or self.quota is None:
            return False
        self.runtime += slack
        cfs_rq.runtime_remaining -= slack
        return self.runtime > self.slice and bool(self.throttled)

    def refresh_within(self, now: int, min_expire: int) -> bool:
        """``runtime_refresh_within``: is the next refill less than `min_expire` away?"""
        return self.expires - now < min_expire

    def distribute(self) -> list[CfsRunQueue]:
        """``distribute_cfs_runtime``: pay each throttled queue's debt + 1 ns while the pool
        lasts; returns the queues that now have runtime (the caller unthrottles them)."""
        ready = []
        for cfs_rq in self.throttled:
            if self.runtime <= 0:
                break
            amount = min(-cfs_rq.runtime_remaining + 1, self.runtime)
            self.runtime -= amount
            cfs_rq.runtime_remaining += amount
            if cfs_rq.runtime_remaining > 0:
                ready.append(cfs_rq)
        return ready

    def period_tick(self) -> tuple[bool, list[CfsRunQueue]]:
        """``do_sched_cfs_period_timer`` for one on-time expiry (overrun 1).

        Returns (the timer stays active, queues to unthrottle).
        """
        if self.quota is None:
            return False, []
        throttled = bool(self.throttled)
        self.stat.nr_periods += 1
        self.refill()
        if self.idle and not throttled:
            return False, []
        if not throttled:
            self.idle = True
            return True, []
        self.stat.nr_throttled += 1
        ready = self.distribute()
        self.idle = False
        return True, ready
