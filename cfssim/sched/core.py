"""`Machine`: the CPUs and the scheduling core — what kernel/sched/core.c does: ``__schedule``,
``try_to_wake_up``, blocking, ``wakeup_preempt``, the context switch and the tick, driven by
exact timers.

Each CPU (`Rq`) has a root `CfsRunQueue`; task groups add a group entity and a queue per CPU
(`cfssim.cgroup.tree.TaskGroup`). The fair policy (`Cfs`, `Eevdf`) decides placement, picking and
preemption at one level; the fair class's hierarchy of queues and their bandwidth throttling
(`cfssim.sched.fair`), the RT class and fair server (`cfssim.sched.rt`), and CPU selection and
load balancing (`cfssim.sched.balance`) are mixins of `Machine`.

No CPU is polled every tick. After every scheduling event a CPU arms *one* timer for the next
moment something must happen to its running task — demand done, slice used up (timed exactly, as
HRTICK does), a condition the kernel checks only at ticks (rounded up to the tick grid), local
bandwidth runtime exhausted (noticed at the next tick, as ``update_curr`` at ``sched_tick``
does). Re-arming the timer replaces its expiry (`cfssim.hrtimer.HrTimer`).

Operations mark the CPUs they disturb (`touch`); `flush` then reschedules those that need it and
re-arms their timers, so one wakeup or throttle costs one pass per affected CPU. The machine's
public mutations (wakeups, blocking, renice, group moves, bandwidth writes) flush by themselves;
a compound change made of several runs inside `batch`, which flushes once at its end.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import simpy
from mypy_extensions import mypyc_attr

from ..host import Draws, HostModel, TickGrid
from ..hrtimer import Calendar, HrTimer
from ..task import Task, TaskState
from ..trace import Recorder
from .balance import LoadBalancing
from .cfs import Cfs
from .eevdf import Eevdf
from .entity import SchedEntity
from .fair import FairClass
from .policy import (
    ENQUEUE_INITIAL,
    ENQUEUE_MIGRATED,
    ENQUEUE_WAKEUP,
    NEVER,
    FairPolicy,
    SchedTunables,
    clear_buddies,
)
from .replay import FIRST_BACKOFF, Cycle, Replaying
from .rt import RT_POLICIES, FairServer, RealTimeClass, RtRunQueue
from .runqueue import CfsRunQueue
from .weights import NICE_0_LOAD, WMULT_SHIFT

if TYPE_CHECKING:
    from ..cgroup.tree import TaskGroup

LIVELOCK_FIRES = 10_000
#: the environment variable that turns cycle replays off (``0``) for a comparison
REPLAY_VARIABLE = "CFSSIM_REPLAY"
#: the `Draws` stream of sleep timers' latencies
SLEEP_TIMER_STREAM = 0x51EE
MAX_SETTLE_ROUNDS = 64  # same-instant steps a settle waits for (programs must let time pass)
HRTICK_MIN_NS = 10_000


@mypyc_attr(native_class=False)  # mypyc: a RuntimeError subclass cannot be a native class
class SimulationError(RuntimeError):
    """The simulation reached a state it cannot leave (a bug, reported with context)."""


#: the fair policies by name (``policy:`` in a scenario)
FAIR_POLICIES: dict[str, type[FairPolicy]] = {"eevdf": Eevdf, "cfs": Cfs}


def _nothing() -> None:
    """An unset timer function."""


class Rq:
    """One CPU: ``struct rq`` with only what the model needs."""

    __slots__ = (
        "balance_timer",
        "busy",
        "cfs",
        "cpu",
        "curr",
        "curr_rt",
        "cycle",
        "cycle_backoff",
        "cycle_wait",
        "dirty",
        "exec_start",
        "fires_now",
        "last_fire",
        "listed_unthrottled",
        "need_resched",
        "nr_balance_failed",
        "rt",
        "seg_start",
        "server",
        "server_timer",
        "settle_rounds",
        "settle_timer",
        "settling",
        "tasks",
        "throttled_groups",
        "timer",
        "timer_level",
        "timer_resched",
    )

    def __init__(self, calendar: Calendar, cpu: int, cfs: CfsRunQueue, server: FairServer) -> None:
        self.cpu = cpu
        self.cfs = cfs
        self.rt = RtRunQueue()  # SCHED_FIFO/RR tasks, above the fair class
        self.server = server  # the fair server (6.12+ dl_server) against RT starvation
        self.curr: Task | None = None
        self.curr_rt = False  # curr is a real-time task
        self.tasks: dict[int, Task] = {}  # fair tasks enqueued here (curr included), by tid
        #: task group → how many of `tasks` sit on its queue here while neither it nor a level
        #: above it is throttled (``throttle_count`` 0); groups with none are left out
        #: (`list_task`)
        self.listed_unthrottled: dict[TaskGroup, int] = {}
        #: the task groups whose queue here is throttled (``throttle_count`` > 0)
        self.throttled_groups: set[TaskGroup] = set()
        self.exec_start = 0
        self.seg_start = 0
        self.busy = 0  # ns spent running tasks
        self.need_resched = False
        self.dirty = False
        self.settling: Task | None = None  # curr finished a request; its next one is pending
        self.settle_rounds = 0  # settles deferred at this instant (`Machine.settle`)
        self.timer = HrTimer(calendar, _nothing)  # the CPU's one scheduling timer (`Machine.arm`)
        self.settle_timer = HrTimer(calendar, _nothing)  # after a run request completes (`settle`)
        self.balance_timer = HrTimer(calendar, _nothing)  # periodic load balancing
        self.server_timer = HrTimer(calendar, _nothing)  # the fair server's (dl_server's) timer
        self.timer_resched = False  # the armed timer ends the running task's slice
        self.timer_level: SchedEntity | None = None  # the level whose tick check fires
        self.last_fire = -1  # livelock guard: timer firings at one instant
        self.fires_now = 0
        self.nr_balance_failed = 0
        self.cycle: Cycle | None = None  # the search for, or replay of, a round robin's cycle
        self.cycle_wait = 0  # switches before a new search (`Replaying.observe_cycle`)
        self.cycle_backoff = FIRST_BACKOFF

    @property
    def idle(self) -> bool:
        return self.curr is None and self.cfs.h_nr_running == 0 and not self.rt.nr_running


class Machine(FairClass, RealTimeClass, LoadBalancing, Replaying):
    """`ncpus` CPUs sharing one fair policy, one root task group and one recorder."""

    def __init__(
        self,
        env: simpy.Environment,
        tunables: SchedTunables,
        policy: str,
        root: TaskGroup,
        recorder: Recorder,
        seed: int = 1,
        host: HostModel | None = None,
        fast_forward: bool = True,
    ) -> None:
        self.env = env
        #: the fast paths (`fast_forward`): timers in the machine's own calendar, drained
        #: between SimPy's events, and idle-CPU bookkeeping for wakeups; off, every timer is a
        #: SimPy timeout and CPUs are scanned — the same decisions, the same trace
        self.fast_forward = fast_forward
        self.calendar = Calendar(env, fast_forward)
        self.tun = tunables
        self.ncpus = tunables.cpus
        self.root = root
        self.rec = recorder
        period = tunables.sched_rt_period_us * 1000
        server_ns = max(0, period - tunables.sched_rt_runtime_us * 1000)
        if tunables.sched_rt_runtime_us < 0:  # -1: no RT limit asked for
            server_ns = 0
        self.rqs = [
            Rq(self.calendar, cpu, root.cfs_rq[cpu], FairServer(server_ns, period))
            for cpu in range(self.ncpus)
        ]
        if policy not in FAIR_POLICIES:
            known = ", ".join(FAIR_POLICIES)
            raise ValueError(f"unknown policy {policy!r} (expected one of {known})")
        self.policy = FAIR_POLICIES[policy](tunables, [rq.cfs for rq in self.rqs])
        #: 6.18's task-based bandwidth throttle (`cfssim.sched.fair`); ≤ 6.17's group dequeue
        #: for the `cfs` policy or with the TASK_THROTTLE feature off
        self.task_throttle = policy == "eevdf" and tunables.features.get("TASK_THROTTLE", True)
        self.tick_ns = tunables.tick_ns
        self.tick_offset = tunables.tick_offset_ns
        self.precise = tunables.precise  # slice ends timed exactly (read at every `arm`)
        self.host = host or HostModel()
        self.ticks = TickGrid(self.tick_ns, self.tick_offset, self.ncpus, self.host, seed)
        latency = self.host.timer_latency
        #: how late a sleep's timer that fires alone wakes its task (the interrupt's latency)
        self.sleep_timer_latency = (
            None if latency is None else Draws(latency, seed, SLEEP_TIMER_STREAM)
        )
        self.dirty: list[Rq] = []
        self.idle_rqs: set[int] = set(range(self.ncpus))
        self.nohz_timer = HrTimer(self.calendar, self.nohz_idle_balance)  # a busy CPU's kick
        self._batch = Batch(self)
        self.context_switches = 0
        #: round-robin cycles replayed (`cfssim.sched.replay`): a fast path, off with the others
        #: or alone (``CFSSIM_REPLAY=0``)
        self.replay_enabled = fast_forward and os.environ.get(REPLAY_VARIABLE, "1") != "0"
        self.replay_bound = 0  # replays end before this time (ns): `Replaying.foreign_bound`
        self.replayed_switches = 0  # context switches played back by a `Cycle`
        for rq in self.rqs:
            rq.timer.function = partial(self.sched_tick, rq)
            rq.settle_timer.function = partial(self.settle, rq)
            rq.balance_timer.function = partial(self.sched_balance_domains, rq)
            rq.server_timer.function = partial(self.server_timer, rq)
        # A busy CPU balances every busy_factor (16) × balance_interval, which the kernel keeps
        # between the domain's min_interval (its weight in ms) and max_interval (twice that).
        # Which of the two, and the phase against other CPUs, depends on history and noise we
        # do not model; a seeded draw stands for it, so N hogs on M CPUs rotate fairly.
        weight_ms = max(1, min(self.ncpus, 64)) * 1_000_000
        self.balance_range = (16 * weight_ms, 32 * weight_ms)
        self.rng = np.random.default_rng([seed, 0x5EED])
        if self.ncpus > 1:
            for rq in self.rqs:
                self._arm_balance(rq, self._balance_interval())

    @property
    def now(self) -> int:
        """Simulated time (int ns). Read from SimPy's clock field directly: this is the hottest
        read of the simulator, and only int delays are ever scheduled."""
        return self.env._now  # type: ignore[return-value]

    # ==== accounting ======================================================================
    def update_curr(self, rq: Rq) -> None:
        """``update_curr`` at every level of the running task's hierarchy: sum_exec, vruntime,
        min_vruntime, cpuacct and bandwidth runtime all advance by the same wall delta."""
        now: int = self.env._now  # type: ignore[assignment]  # `now`, inlined: the hottest read
        delta = now - rq.exec_start
        rq.exec_start = now
        task = rq.curr
        if task is None or delta <= 0:
            return
        task.sum_exec += delta
        if task.remaining is not None:
            task.remaining -= delta
        cpu = rq.cpu
        for usage in task.acct:
            usage[cpu] += delta
        if rq.curr_rt:  # update_curr_rt: cpuacct (above) counts RT tasks, bandwidth does not
            rq.rt.account(task, delta)
            return
        if rq.server.armed:
            self.server_consumed(rq, delta)
        policy = self.policy
        se: SchedEntity | None = task.se
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            se.sum_exec += delta
            if se.weight == NICE_0_LOAD:  # calc_delta_fair, inlined: the hottest call
                se.vruntime += delta
            else:
                se.vruntime += (delta * NICE_0_LOAD * se.inv_weight) >> WMULT_SHIFT
            cfs_rq.update_min_vruntime()
            if policy.update_curr(cfs_rq, se):
                rq.need_resched = True
            if cfs_rq.runtime_enabled:
                self.account_cfs_rq_runtime(rq, cfs_rq, delta)
            se = se.parent

    # ==== moving tasks ======================================================================
    def move_group(self, task: Task, attach: Callable[[], None]) -> None:
        """Move `task` to another task group (`attach` re-attaches it) and let the machine react."""
        with self.batch():
            self.sched_move_task(task, attach)

    def sched_move_task(self, task: Task, attach: Callable[[], None]) -> None:
        """``sched_move_task``: take the task off its queues, re-attach it to a new task group
        (`attach`), and queue it again with its vruntime carried relative (``ENQUEUE_MOVE``)."""
        self.finish_delayed_dequeue(task)
        if task.state is not TaskState.RUNNABLE or task.cpu < 0 or task.policy in RT_POLICIES:
            if task.cpu >= 0 and not task.vruntime_relative:
                self.policy.migrate_out(task.se.rq_of, task.se)  # type: ignore[arg-type]
                task.vruntime_relative = True
            attach()
            return
        rq = self.rqs[task.cpu]
        self.update_curr(rq)
        running = rq.curr is task
        if running:
            self.put_prev_task_fair(task)
        self.dequeue_task_fair(rq, task, sleep=False)
        self.policy.migrate_out(task.se.rq_of, task.se)  # type: ignore[arg-type]
        attach()
        self.enqueue_task_fair(rq, task, ENQUEUE_MIGRATED)
        if running:
            rq.need_resched = True
        self.touch(rq)

    def detach_running(self, task: Task) -> None:
        """Switch a running task out so it can be migrated (the stopper's job in the kernel)."""
        rq = self.rqs[task.cpu]
        if rq.curr is not task:
            return
        self.update_curr(rq)
        if not rq.curr_rt:
            self.put_prev_task_fair(task)
        self.context_switch(rq, task, None)
        rq.need_resched = True
        self.touch(rq)

    def set_task_cpu(self, task: Task, cpu: int) -> None:
        """``set_task_cpu`` / ``set_task_rq``: attach the task's entity to `cpu`'s queues."""
        group = task.group
        assert group is not None
        if task.cpu >= 0 and task.cpu != cpu:
            task.nr_migrations += 1
            self.rec.add("migrations", task.tid, self.now, task.cpu, cpu)
        task.cpu = cpu
        task.se.rq_of = group.cfs_rq[cpu]
        task.se.parent = group.se[cpu]
        task.se.depth = 0 if task.se.parent is None else task.se.parent.depth + 1

    # ==== wakeups and blocking =============================================================

    def wake_up(self, task: Task, new: bool = False) -> None:
        """Wake (or, with `new`, start) `task` and let the machine react (`try_to_wake_up`,
        then a flush unless batched: nothing under it batches or flushes, so it needs no
        `batch` of its own)."""
        self.try_to_wake_up(task, new)
        self.flush_unless_batched()

    def try_to_wake_up(self, task: Task, new: bool = False) -> None:
        """``try_to_wake_up`` / ``wake_up_new_task``: choose a CPU, enqueue, maybe preempt.
        A delayed sleeper is still queued: it wakes in place (``ttwu_runnable``)."""
        if not new:  # the wakeup happens where the task slept: its sleep's timer fires there
            curr = self.rqs[task.cpu].curr if task.cpu >= 0 else None
            task.waker = -1 if curr is None else curr.tid
        if task.policy in RT_POLICIES:
            self.wake_up_rt(task, new)
            return
        if task.se.sched_delayed:
            rq = self.rqs[task.cpu]
            self.update_curr(rq)
            self.policy.requeue_delayed_entity(task.se.rq_of, task.se)  # type: ignore[arg-type]
            self.list_task(rq, task)
            self._woken(task, new)
            self.wakeup_preempt(rq, task)
            self.touch(rq)
            return
        cpu = self.select_task_rq(task, new)
        flags = ENQUEUE_INITIAL if new else ENQUEUE_WAKEUP
        if task.cpu != cpu:
            if task.cpu >= 0 and not task.vruntime_relative:
                self.policy.migrate_out(task.se.rq_of, task.se)  # type: ignore[arg-type]
                task.vruntime_relative = True
            self.set_task_cpu(task, cpu)
        if task.vruntime_relative:
            flags |= ENQUEUE_MIGRATED
            task.vruntime_relative = False
        rq = self.rqs[cpu]
        self.update_curr(rq)
        self._woken(task, new)
        self.enqueue_task_fair(rq, task, flags)
        self.wakeup_preempt(rq, task, fork=new)
        self.touch(rq)

    def _woken(self, task: Task, new: bool) -> None:
        """The task becomes runnable: its state and wakeup statistics."""
        now: int = self.env._now  # type: ignore[assignment]
        task.state = TaskState.RUNNABLE
        task.wait_start = now
        if not new:
            task.nr_wakeups += 1
            task.wake_time = now
        else:
            self.rec.add("forks", task.tid, now)

    def tick_after(self, cpu: int, delay: int) -> int:
        """Delay (ns from now) to `cpu`'s first tick at or after now + max(delay, 1) — strictly
        after now: a condition due now was seen by this instant's tick, or will be by the next
        (`cfssim.host.TickGrid`: skew, jitter, late handlers)."""
        now: int = self.env._now  # type: ignore[assignment]  # `now`, inlined: hot
        return self.ticks.at_or_after(cpu, now + (delay if delay > 1 else 1)) - now

    def hrtimer_delay(self, task: Task, ns: int) -> int:
        """When a sleep of `ns` started now by `task` ends (ns from now): its hrtimer may fire
        anywhere in [soft, soft + slack] (``hrtimer_set_expires_range_ns`` with the task's
        ``timer_slack_ns``, 0 for RT tasks). If the CPU is busy and one of its ticks' interrupt
        handlers runs in that range, the timer expires there (``__hrtimer_run_queues`` runs
        every timer whose soft expiry passed) and the task joins that tick's decisions — it is
        woken at the tick's switch instant, a `tick_switch_ns` after the kernel's
        ``sched_wakeup`` (the handler's), so that it takes part in that pick; else it fires
        alone at the hard expiry, its handler late by the host's timer latency."""
        slack = 0 if task.policy in RT_POLICIES else self.tun.timer_slack_ns
        if slack > 0 and task.cpu >= 0 and not self.rqs[task.cpu].idle:
            soft = self.now + ns
            tick = self.ticks.first_handler_in(task.cpu, soft + 1, soft + slack)
            if tick is not None:
                return tick - self.now
        late = self.sleep_timer_latency.next() if self.sleep_timer_latency is not None else 0
        return ns + slack + late

    def block(self, task: Task, state: TaskState = TaskState.SLEEPING) -> None:
        """`task` stops being runnable (sleep, wait, exit, kill) and the machine reacts
        (`block_task`, then a flush unless batched, as `wake_up`)."""
        self.block_task(task, state)
        self.flush_unless_batched()

    def block_task(self, task: Task, state: TaskState = TaskState.SLEEPING) -> None:
        """``block_task``: the task stops being runnable — ``dequeue_task(DEQUEUE_SLEEP)``."""
        if task.state is TaskState.RUNNABLE and task.cpu >= 0:
            rq = self.rqs[task.cpu]
            now: int = self.env._now  # type: ignore[assignment]
            if rq.exec_start != now:  # nothing to account when the timer just did (a run ended)
                self.update_curr(rq)
            if task.policy in RT_POLICIES:
                rq.rt.dequeue(task)
                if not rq.rt.nr_running:
                    self.server_stop(rq)
            elif task.se.on_rq:
                self.dequeue_task_fair(rq, task, sleep=True)
            elif task.throttled:  # leaves its limbo list (the kernel would wait for unthrottle)
                self.dequeue_throttled_task(task)
                task.throttled = False
            elif task.tid in rq.tasks:
                self.unlist_task(rq, task)
            if rq.settling is task:
                rq.settling = None
            if rq.curr is task:
                rq.need_resched = True
            self.rec.block(task.tid, now)
            self.sample_entity(task, now)
            self.touch(rq)
        task.state = state
        task.remaining = None
        task.forever = False

    def wakeup_preempt(self, rq: Rq, task: Task, fork: bool = False) -> None:
        """``wakeup_preempt``: fair `task` was just queued on `rq` — an idle CPU reschedules, a
        fair curr is checked by its class (``check_preempt_wakeup_fair``), an RT curr starts
        the fair server."""
        curr = rq.curr
        if curr is None:
            rq.need_resched = True
            return
        if curr is task:
            return
        if rq.curr_rt:  # a fair task waits behind RT: the fair server starts
            self.server_start(rq)
            return
        self.check_preempt_wakeup_fair(rq, curr, task, fork)

    # ==== the scheduler ====================================================================
    def schedule(self, rq: Rq) -> None:
        """``__schedule``: put the running task back, pick the next, switch if it differs."""
        prev = rq.curr
        if rq.exec_start != self.env._now:  # nothing to account when the timer just did
            self.update_curr(rq)
        if prev is not None and not rq.curr_rt:
            # with no RT task queued, the fair pick follows at once: lone levels may stay curr
            self.put_prev_task_fair(prev, keep_alone=not rq.rt.nr_running)
        nxt = self.pick_next_rt(rq) if rq.rt.nr_running else None
        if nxt is None:
            nxt = self.pick_next_task_fair(rq)
        if nxt is None and self.sched_balance_newidle(rq):
            nxt = self.pick_next_task_fair(rq)
        rq.need_resched = False
        curr = rq.curr  # prev, unless a throttled pick switched a task in and out (fair.py)
        if nxt is not curr:
            self.context_switch(rq, curr, nxt)

    def context_switch(self, rq: Rq, prev: Task | None, nxt: Task | None) -> None:
        """Record the segment that ends and account the switch (schedstat, sched figures)."""
        now: int = self.env._now  # type: ignore[assignment]
        if prev is not None:
            self.rec.segment(rq.cpu, prev.tid, rq.seg_start, now)
            rq.busy += now - rq.seg_start
            prev.last_ran = now
            if prev.state is TaskState.RUNNABLE:
                prev.nivcsw += 1
                self.sample_entity(prev, now)
            else:
                prev.nvcsw += 1
        else:
            self.idle_rqs.discard(rq.cpu)
        if nxt is not None:
            nxt.pcount += 1
            nxt.run_delay += now - nxt.wait_start
            if nxt.wake_time >= 0:
                latency = now - nxt.wake_time
                nxt.latencies.append(latency)
                self.rec.wakeup(nxt.tid, rq.cpu, nxt.wake_time, latency, nxt.waker)
                nxt.wake_time = -1
            rq.curr_rt = nxt.policy in RT_POLICIES
        else:
            self.idle_rqs.add(rq.cpu)
            rq.curr_rt = False
        rq.seg_start = now
        rq.exec_start = now
        rq.curr = nxt
        self.context_switches += 1

    def sample_entity(self, task: Task, now: int) -> None:
        """Record `task`'s vruntime (and, under EEVDF, its lag, deadline and eligibility) as
        it leaves the CPU or its queue."""
        if self.policy.samples_lag:
            self.rec.eevdf(task.tid, now, task.se.vruntime, *self.policy.lag_sample(task.se))
        else:
            self.rec.vruntime(task.tid, now, task.se.vruntime)

    # ==== timers ===========================================================================
    def touch(self, rq: Rq) -> None:
        """Mark `rq` for rescheduling/re-arming at the next `flush`."""
        if not rq.dirty:
            rq.dirty = True
            self.dirty.append(rq)

    def flush(self) -> None:
        """Reschedule the CPUs that need it and re-arm the timers of every touched CPU."""
        dirty = self.dirty
        while dirty:
            rq = dirty.pop()
            rq.dirty = False
            if rq.settling is not None:
                continue
            if rq.need_resched or (rq.curr is None and (rq.cfs.h_nr_running or rq.rt.nr_running)):
                self.schedule(rq)
            self.arm(rq)
            if self.idle_rqs and rq.cfs.h_nr_running >= 2 and not self.nohz_timer.active:
                self.nohz_balancer_kick(rq)

    def arm(self, rq: Rq) -> None:
        """Arm the CPU's one timer for the next decision about its running task, and note
        whether that decision is a reschedule (slice or request used up, or a tick-checked
        condition) so the firing need not re-derive it."""
        task = rq.curr
        if task is None:
            rq.timer.cancel()
            return
        if rq.curr_rt:
            self.arm_rt(rq, task)
            return
        precise = self.precise
        policy = self.policy
        exact_due = NEVER  # reschedule at exactly this delay (HRTICK)
        tick_due = NEVER  # reschedule at the first tick at or after this delay
        bandwidth_due = NEVER  # local runtime runs out: noticed at the next tick's update_curr
        tick_level: SchedEntity | None = None
        se: SchedEntity | None = task.se
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            if cfs_rq.nr_running <= 1 and se.my_q is not None and not cfs_rq.runtime_enabled:
                se = se.parent  # a lone group entity: neither policy preempts it
                continue
            exact, ticked = policy.preempt_after(cfs_rq, se)
            if exact is not None:
                if precise:  # hrtick_start: never sooner than 10 µs ("timer DoS")
                    if exact < HRTICK_MIN_NS:
                        exact = HRTICK_MIN_NS
                    if exact < exact_due:
                        exact_due = exact
                elif exact < tick_due:
                    tick_due = exact
            if ticked is not None and ticked < tick_due:
                tick_due, tick_level = ticked, se
            if (
                cfs_rq.runtime_enabled
                and not cfs_rq.throttled
                and cfs_rq.runtime_remaining < bandwidth_due
            ):
                bandwidth_due = cfs_rq.runtime_remaining
            se = se.parent
        now: int = self.env._now  # type: ignore[assignment]  # `now`, inlined: hot
        if rq.rt.nr_running and rq.server.boosting:  # RT takes over when the server is spent
            exact_due = min(exact_due, rq.server.runtime)
        due = exact_due
        remaining = task.remaining
        if remaining is not None and remaining < due:  # the run request's demand is done
            due = remaining
        # a tick-checked condition is seen at the first tick at or after it, the local runtime's
        # end at the first tick at or after that end: neither is sooner than its unrounded
        # delay, so each is rounded only when it may come first (a tie: the tick-checked one)
        if tick_due <= due and tick_due < NEVER:  # tick_after, inlined (twice): hot
            tick_due = self.ticks.at_or_after(rq.cpu, now + (tick_due if tick_due > 1 else 1)) - now
            if tick_due <= due:
                due = tick_due
        if bandwidth_due < due:
            bandwidth_due = self.ticks.at_or_after(
                rq.cpu, now + (bandwidth_due if bandwidth_due > 1 else 1)
            )
            if bandwidth_due - now < due:
                due = bandwidth_due - now
        if due == tick_due:
            self.set_timer(rq, due, True, tick_level)
        else:
            self.set_timer(rq, due, due == exact_due, None)

    def set_timer(self, rq: Rq, due: int, resched: bool, level: SchedEntity | None) -> None:
        """Arm the CPU's timer `due` ns from now (NEVER: none); `resched` when it ends a slice."""
        timer = rq.timer
        if due >= NEVER:
            timer.cancel()
            return
        rq.timer_resched = resched
        rq.timer_level = level
        when: int = self.env._now  # type: ignore[assignment]
        if due > 0:
            when += due
        if timer.expires == when and timer.active:  # pending at that time already
            return
        timer.start(when)

    def sched_tick(self, rq: Rq) -> None:
        """The CPU's timer — the tick (``sched_tick``) or an HRTICK expiry, whichever `arm` found
        due first: account (``update_curr`` — which also charges bandwidth runtime and runs
        ``update_deadline``), then act on what was due: a reschedule (the slice used up, or a
        tick-checked ``check_preempt_tick``), the end of a run request. A CPU replaying a
        round-robin cycle only plays the switch back (`cfssim.sched.replay`)."""
        cycle = rq.cycle
        if cycle is not None:
            if cycle.replaying:
                cycle.step()
                return
            cycle.mark()
        now: int = self.env._now  # type: ignore[assignment]
        if now == rq.last_fire:
            rq.fires_now += 1
            if rq.fires_now > LIVELOCK_FIRES:
                raise SimulationError(
                    f"CPU {rq.cpu} decided {rq.fires_now} times at t={now} ns without time "
                    f"passing (running {rq.curr}); this is a simulator bug, please report it"
                )
        else:
            rq.last_fire, rq.fires_now = now, 0
        self.update_curr(rq)
        task = rq.curr
        if task is None:
            return
        if rq.curr_rt and rq.rt.task_tick(task):
            rq.need_resched = True
        if rq.timer_resched:
            rq.need_resched = True
            level = rq.timer_level
            if level is not None and level.rq_of is not None:
                self.policy.tick_preempted(level.rq_of, level)
        if not rq.curr_rt and self.ticks.is_tick(rq.cpu, now):
            self.entity_tick_groups(task)
        if task.remaining is not None and task.remaining <= 0:
            self.complete_run(rq, task)
        elif (
            rq.need_resched
            and self.fast_forward
            and not self.dirty
            and rq.settling is None
            and not rq.curr_rt
            and not rq.rt.nr_running
            and self.switch_round_robin(rq, task)
        ):
            if self.replay_enabled:
                self.observe_cycle(rq)
            return
        if rq.cycle is not None:
            self.drop_cycle(rq)
        self.touch(rq)
        self.flush()

    def switch_round_robin(self, rq: Rq, prev: Task) -> bool:
        """The fast path of a tick that ends `prev`'s slice, when `prev` shares its own queue
        with others and every level above is a lone entity kept running (the chain
        `put_prev_task_fair` keeps; no bandwidth on the way): what `flush` → `schedule` →
        `put_prev_task_fair` → `pick_next_task_fair` → `arm` do, without their generic walks
        and checks. The lone levels are re-picked by the same policy calls (both policies pick
        a lone queue's curr, CFS clearing its buddies), the pick goes on generically from the
        task's queue (`pick_down`: a group picked there, a ``sched_delayed`` entity). False,
        with nothing changed, when the state does not qualify."""
        tse = prev.se
        cfs_rq = tse.rq_of
        assert cfs_rq is not None
        if (
            cfs_rq.nr_running < 2
            or cfs_rq.runtime_enabled
            or cfs_rq.curr is not tse
            or not tse.on_rq
            or tse.sched_delayed
        ):
            return False
        se = tse.parent
        while se is not None:
            level = se.rq_of
            assert level is not None
            if (
                level.nr_running != 1
                or level.curr is not se
                or not se.on_rq
                or se.sched_delayed
                or level.runtime_enabled
            ):
                return False
            se = se.parent
        now: int = self.env._now  # type: ignore[assignment]
        policy = self.policy
        # put_prev_task_fair: the task back into its tree; the lone levels stay curr
        cfs_rq.insert(tse, policy.key(tse))
        cfs_rq.curr = None
        prev.wait_start = now
        # pick_next_task_fair: the lone levels from the root down, then on from the task's queue
        ran = tse if policy.uses_prev_curr else None
        self._mark_prev_curr(ran, mark=True)
        path: list[SchedEntity] = []
        upper = tse.parent
        if upper is not None:
            self._pick_lone(upper, path)
        picked = self.pick_down(rq, path, ran)
        rq.need_resched = False
        if picked is not rq.curr:
            self.context_switch(rq, rq.curr, picked)
        self.arm(rq)
        if self.idle_rqs and rq.cfs.h_nr_running >= 2 and not self.nohz_timer.active:
            self.nohz_balancer_kick(rq)
        return True

    def _pick_lone(self, se: SchedEntity, path: list[SchedEntity]) -> None:
        """`pick_next_task_fair` on the chain of lone levels from the root down to `se`: each
        re-picks its curr, appended to `path` (root first)."""
        parent = se.parent
        if parent is not None:
            self._pick_lone(parent, path)
        level = se.rq_of
        assert level is not None
        picked = self.policy.pick_next_entity(level)
        assert picked is se
        path.append(se)

    def complete_run(self, rq: Rq, task: Task) -> None:
        """The running task received its demand: resume its behaviour before deciding more.

        The behaviour's next request (run, sleep…) arrives at this same instant; a zero-delay
        settle (`settle`) afterwards blocks the task if it asked for something else.
        """
        task.remaining = None
        event = task.run_event
        task.run_event = None
        rq.settling = task
        rq.settle_rounds = 0
        if event is not None:
            event.succeed()
        rq.settle_timer.start(self.env._now)  # type: ignore[arg-type]  # `now`, inlined

    def settle(self, rq: Rq) -> None:
        """After a completed run request, at the same instant: a task that asked for nothing
        more to run waits on some other event — a voluntary sleep. A behaviour still to resume
        at this instant is waited for first."""
        task = rq.settling
        if task is None:
            return
        if resumes_now(task) and rq.settle_rounds < MAX_SETTLE_ROUNDS:
            # the behaviour waits on an event due at this instant (a step that takes no time:
            # free, unlock, signal, yield…) and may still ask to run — look again after it
            rq.settle_rounds += 1
            rq.settle_timer.start(self.now)
            return
        rq.settling = None
        with self.batch():
            if task.remaining is None and not task.forever and task.state is TaskState.RUNNABLE:
                self.block(task)
            self.touch(rq)

    def sched_yield(self, task: Task) -> None:
        """``do_sched_yield`` by running `task`: its class gives up the CPU (``yield_task_rt``:
        to the tail of its priority; ``yield_task_fair``: buddies cleared, the policy's
        forfeit), then ``schedule()``. Nothing when it is alone on its CPU or not running."""
        if task.state is not TaskState.RUNNABLE or task.cpu < 0:
            return
        rq = self.rqs[task.cpu]
        if rq.curr is not task or rq.cfs.h_nr_running + rq.rt.nr_running <= 1:
            return
        with self.batch():
            self.update_curr(rq)
            if rq.curr_rt:
                rq.rt.requeue(task)
            else:
                cfs_rq = task.se.rq_of
                assert cfs_rq is not None
                clear_buddies(cfs_rq, task.se)
                self.policy.yield_entity(cfs_rq, task.se)
            rq.need_resched = True
            self.touch(rq)

    def resume_running(self, task: Task) -> None:
        """A settling task asked for more CPU: it simply keeps running."""
        rq = self.rqs[task.cpu]
        if rq.settling is task:
            rq.settling = None
        self.touch(rq)
        self.flush_unless_batched()

    # ==== batching ============================================================================
    def batch(self) -> Batch:
        """A compound change: ``with machine.batch(): ...`` flushes once, when the outermost
        batch ends (each public mutation flushes by itself when not in a batch)."""
        return self._batch

    def flush_unless_batched(self) -> None:
        if not self._batch.depth:
            self.flush()


def resumes_now(task: Task) -> bool:
    """Is `task`'s behaviour waiting on an event already due at this instant (triggered, not
    yet processed, no delay — a timeout of 0 or a succeeded event)?"""
    proc = task.proc
    target = None if proc is None else proc.target
    return (
        target is not None
        and target.triggered
        and target.callbacks is not None
        and not getattr(target, "_delay", 0)
    )


class Batch:
    """The context manager `Machine.batch` returns: counts nesting, flushes at the outermost
    exit (not after an exception: the machine's state is then beyond repair anyway)."""

    __slots__ = ("depth", "machine")

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.depth = 0

    def __enter__(self) -> Batch:
        self.depth += 1
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.depth -= 1
        if not self.depth and exc_type is None:
            self.machine.flush()
