"""CFS bandwidth control: ``struct cfs_bandwidth`` — one runtime pool per task group.

Mirrors kernel/sched/fair.c (6.x) and Documentation/scheduler/sched-bwc.rst: a global pool
refilled every period by the period timer (``__refill_cfs_bandwidth_runtime``, with burst
carry-over up to quota + burst), per-CPU local runtime handed out in
``sched_cfs_bandwidth_slice`` chunks (``__assign_cfs_rq_runtime``), slack return of all but
``min_cfs_rq_runtime`` when a CPU's queue empties (``__return_cfs_rq_runtime``) with its slack
timer, and ``cpu.stat`` counted exactly as ``do_sched_cfs_period_timer`` counts. Queue operations
(throttle, unthrottle) belong to the machine (`cfssim.sched.fair`), and so do the timers; this
module only decides *how much* and *when*.
All times and runtimes are int ns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

# imported at run time, not only for type checking: compiled (mypyc), `BandwidthTimers` reads
# HrTimer's native type object when this module loads, and it is NULL (a segfault) unless
# cfssim.hrtimer was initialised first
from ..hrtimer import HrTimer

if TYPE_CHECKING:
    from ..sched.runqueue import CfsRunQueue

MIN_CFS_RQ_RUNTIME = 1_000_000  # a cfs_rq keeps this much when returning slack
MIN_BANDWIDTH_EXPIRATION = 2_000_000  # no slack distribution this close to a refresh
CFS_BANDWIDTH_SLACK_PERIOD = 5_000_000  # slack timer delay


class BandwidthTimers(NamedTuple):
    """``cfs_b->period_timer`` and ``cfs_b->slack_timer`` (armed by the machine)."""

    period: HrTimer
    slack: HrTimer


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
        self.throttled: list[CfsRunQueue] = []  # throttled_cfs_rq, in throttle order
        self.stat = CpuStat()
        self.timers: BandwidthTimers | None = None  # made by the machine at first use
        self.set_limits(period_ns, quota_ns, burst_ns)

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

    def set_limits(self, period_ns: int, quota_ns: int | None, burst_ns: int) -> None:
        """New limits and a refill — the pool's part of a ``cpu.cfs_*`` write; the machine's
        ``tg_set_cfs_bandwidth`` restarts the period timer (`start_cfs_bandwidth`) and
        unthrottles every queue with its local runtime reset to 0.

        The burst lives in its own file (``cpu.cfs_burst_us``, ``cpu.max.burst``), written
        after the quota: a change of both is two kernel writes, two refills,
        so a group given quota and burst together starts with a full pool of quota + burst
        (measured: a 15 ms run under 10 ms/100 ms + 10 ms burst is not throttled at start).
        """
        if burst_ns != self.burst and (period_ns, quota_ns) != (self.period, self.quota):
            self.period, self.quota = period_ns, quota_ns
            self.refill_cfs_bandwidth_runtime()
        self.period, self.quota, self.burst = period_ns, quota_ns, burst_ns
        self.refill_cfs_bandwidth_runtime()

    def refill_cfs_bandwidth_runtime(self) -> None:
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

    def start_cfs_bandwidth(self, now: int) -> bool:
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

    def assign_runtime(self, cfs_rq: CfsRunQueue, target: int, now: int) -> tuple[bool, bool]:
        """``__assign_cfs_rq_runtime``: top `cfs_rq` up toward `target` ns of local runtime.

        Returns (has runtime now, the period timer must be armed).
        """
        min_amount = target - cfs_rq.runtime_remaining
        arm = False
        if self.quota is None:
            amount = min_amount
        else:
            arm = self.start_cfs_bandwidth(now)
            amount = 0
            if self.runtime > 0:
                amount = min(self.runtime, min_amount)
                self.runtime -= amount
                self.idle = False
        cfs_rq.runtime_remaining += amount
        return cfs_rq.runtime_remaining > 0, arm

    def return_runtime(self, cfs_rq: CfsRunQueue) -> bool:
        """``__return_cfs_rq_runtime``: return local runtime above 1 ms to the pool. True when
        the slack timer should be considered (pool above a slice and someone throttled)."""
        slack = cfs_rq.runtime_remaining - MIN_CFS_RQ_RUNTIME
        if slack <= 0 or self.quota is None:
            return False
        self.runtime += slack
        cfs_rq.runtime_remaining -= slack
        return self.runtime > self.slice and bool(self.throttled)

    def runtime_refresh_within(self, now: int, min_expire: int) -> bool:
        """``runtime_refresh_within``: is the next refill less than `min_expire` away?"""
        return self.expires - now < min_expire

    def pay_throttled(self) -> list[CfsRunQueue]:
        """What ``distribute_cfs_runtime`` pays: each throttled queue's debt + 1 ns while the
        pool lasts; returns the queues that now have runtime (the machine unthrottles them)."""
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

    def do_sched_cfs_period_timer(self) -> bool:
        """``do_sched_cfs_period_timer`` for one on-time expiry (overrun 1): count the period,
        refill, and count a throttled period; the machine then distributes the new runtime
        (``distribute_cfs_runtime``) when queues were throttled. Returns whether the timer
        stays active (False once a whole period went by idle)."""
        if self.quota is None:
            return False
        throttled = bool(self.throttled)
        self.stat.nr_periods += 1
        self.refill_cfs_bandwidth_runtime()
        if self.idle and not throttled:
            return False
        if not throttled:
            self.idle = True
            return True
        self.stat.nr_throttled += 1
        self.idle = False
        return True
