"""`Machine`: the CPUs and the scheduling core — ``schedule``, ``update_curr``, enqueue/dequeue,
wakeups and blocking, driven by exact timers.

Each CPU (`Rq`) has a root `CfsRunQueue`; task groups add a group entity and a queue per CPU
(`cfssim.cgroup.tree.TaskGroup`). The fair policy (`Cfs`, `Eevdf`) decides placement, picking and
preemption; this module does what the kernel's core and the shared parts of fair.c do. Three
concepts live beside it as mixins of `Machine`: bandwidth throttling (`cfssim.cgroup.throttle`),
the RT class and fair server (`cfssim.sched.rt`), CPU selection and load balancing
(`cfssim.sched.balance`).

No CPU is polled every tick. After every scheduling event a CPU arms *one* timer for the next
moment something must happen to its running task — demand done, slice used up (timed exactly, as
HRTICK does), a condition the kernel checks only at ticks (rounded up to the tick grid), local
bandwidth runtime exhausted (noticed at the next tick, as ``update_curr`` at ``scheduler_tick``
does). A timer is cancelled by replacing it: a stale firing sees it is no longer ``rq.timer``.

Operations mark the CPUs they disturb (`touch`); `flush` then reschedules those that need it and
re-arms their timers, so one wakeup or throttle costs one pass per affected CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import simpy
from mypy_extensions import mypyc_attr

from .cgroup.throttle import BandwidthControl
from .sched.balance import LoadBalancing
from .sched.eevdf import Eevdf
from .sched.entity import SchedEntity
from .sched.fair import Cfs
from .sched.policy import (
    ENQUEUE_INITIAL,
    ENQUEUE_MIGRATED,
    ENQUEUE_WAKEUP,
    NEVER,
    FairPolicy,
    SchedTunables,
)
from .sched.rt import RT_POLICIES, FairServer, RealTimeClass, RtRunQueue
from .sched.runqueue import CfsRunQueue
from .sched.weights import calc_delta_fair
from .task import Task, TaskState
from .trace import Recorder

if TYPE_CHECKING:
    from .cgroup.tree import TaskGroup

LIVELOCK_FIRES = 10_000
HRTICK_MIN_NS = 10_000


@mypyc_attr(native_class=False)  # mypyc: a RuntimeError subclass cannot be a native class
class SimulationError(RuntimeError):
    """The simulation reached a state it cannot leave (a bug, reported with context)."""


POLICIES: dict[str, type[FairPolicy]] = {"eevdf": Eevdf, "cfs": Cfs}


class Rq:
    """One CPU: ``struct rq`` with only what the model needs."""

    __slots__ = (
        "busy",
        "cfs",
        "cpu",
        "curr",
        "curr_rt",
        "dirty",
        "exec_start",
        "fires_now",
        "last_fire",
        "need_resched",
        "nr_balance_failed",
        "on_settle",
        "on_timer",
        "rt",
        "seg_start",
        "server",
        "settling",
        "tasks",
        "timer",
        "timer_at",
        "timer_level",
        "timer_resched",
    )

    def __init__(self, cpu: int, cfs: CfsRunQueue, server: FairServer) -> None:
        self.cpu = cpu
        self.cfs = cfs
        self.rt = RtRunQueue()  # SCHED_FIFO/RR tasks, above the fair class
        self.server = server  # the fair server (6.12+ dl_server) against RT starvation
        self.curr: Task | None = None
        self.curr_rt = False  # curr is a real-time task
        self.tasks: dict[int, Task] = {}  # fair tasks enqueued here (curr included), by tid
        self.exec_start = 0
        self.seg_start = 0
        self.busy = 0  # ns spent running tasks
        self.need_resched = False
        self.dirty = False
        self.settling: Task | None = None  # curr finished a request; its next one is pending
        self.timer: simpy.Event | None = None
        self.timer_at = -1
        self.timer_resched = False  # the armed timer ends the running task's slice
        self.timer_level: SchedEntity | None = None  # the level whose tick check fires
        self.last_fire = -1  # livelock guard: timer firings at one instant
        self.fires_now = 0
        self.nr_balance_failed = 0
        self.on_timer: Callable[[simpy.Event], None] = lambda ev: None
        self.on_settle: Callable[[simpy.Event], None] = lambda ev: None

    @property
    def idle(self) -> bool:
        return self.curr is None and self.cfs.h_nr_running == 0 and not self.rt.nr_running


class Machine(BandwidthControl, RealTimeClass, LoadBalancing):
    """`ncpus` CPUs sharing one fair policy, one root task group and one recorder."""

    def __init__(
        self,
        env: simpy.Environment,
        tunables: SchedTunables,
        policy: str,
        root: TaskGroup,
        recorder: Recorder,
        seed: int = 1,
    ) -> None:
        self.env = env
        self.tun = tunables
        self.ncpus = tunables.cpus
        self.root = root
        self.rec = recorder
        period = tunables.sched_rt_period_us * 1000
        server_ns = max(0, period - tunables.sched_rt_runtime_us * 1000)
        if tunables.sched_rt_runtime_us < 0:  # -1: no RT limit asked for
            server_ns = 0
        self.rqs = [
            Rq(cpu, root.cfs_rq[cpu], FairServer(server_ns, period))
            for cpu in range(self.ncpus)
        ]
        if policy not in POLICIES:
            raise ValueError(f"unknown policy {policy!r} (expected one of {', '.join(POLICIES)})")
        self.policy = POLICIES[policy](tunables, [rq.cfs for rq in self.rqs])
        self.tick_ns = tunables.tick_ns
        self.tick_offset = tunables.tick_offset_ns
        self.dirty: list[Rq] = []
        self.idle_rqs: set[int] = set(range(self.ncpus))
        self.kick_pending = False
        self.context_switches = 0
        for rq in self.rqs:
            rq.on_timer = self._timer_callback(rq)
            rq.on_settle = self._settle_callback(rq)
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
        now = self.now
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
            se.vruntime += calc_delta_fair(delta, se.weight, se.inv_weight)
            cfs_rq.update_min_vruntime()
            if policy.update_curr(cfs_rq, se):
                rq.need_resched = True
            if cfs_rq.runtime_enabled:
                self.account_cfs_rq_runtime(rq, cfs_rq, delta)
            se = se.parent

    # ==== group weights ====================================================================
    def add_load(self, cfs_rq: CfsRunQueue, delta: int) -> None:
        cfs_rq.load += delta
        if cfs_rq.se is not None:
            cfs_rq.tg.load_sum += delta

    def update_cfs_group(self, se: SchedEntity) -> None:
        """``update_cfs_group``: re-derive a group entity's weight (`calc_group_shares`)."""
        my_q = se.my_q
        if my_q is None:
            return
        self.policy.update_group_slice(se)
        weight = my_q.tg.calc_group_shares(my_q.cpu)
        if weight != se.weight:
            self.reweight_entity(se, weight)

    def entity_tick_groups(self, task: Task) -> None:
        """What ``entity_tick`` does for the running `task`'s group levels: re-derive their
        weights (``update_cfs_group``)."""
        se = task.se.parent
        while se is not None:
            self.update_cfs_group(se)
            se = se.parent

    def reweight_entity(self, se: SchedEntity, weight: int) -> None:
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
        self.add_load(cfs_rq, weight - se.weight)
        self.policy.reweight_entity(cfs_rq, se, weight)
        if in_tree:
            cfs_rq.insert(se, self.policy.key(se))

    # ==== enqueue / dequeue ================================================================
    def enqueue_entity(self, cfs_rq: CfsRunQueue, se: SchedEntity, flags: int) -> None:
        """``enqueue_entity``: place, account the load, insert in the tree."""
        if se.my_q is not None:
            self.update_cfs_group(se)
        self.policy.place_entity(cfs_rq, se, flags)
        self.add_load(cfs_rq, se.weight)
        cfs_rq.nr_running += 1
        if se is not cfs_rq.curr:
            cfs_rq.insert(se, self.policy.key(se))
        se.on_rq = True
        if cfs_rq.nr_running == 1:
            self.check_enqueue_throttle(cfs_rq)
            if cfs_rq.throttled and cfs_rq.throttled_clock < 0:
                cfs_rq.throttled_clock = self.now

    def dequeue_entity(
        self, cfs_rq: CfsRunQueue, se: SchedEntity, sleep: bool, special: bool = False
    ) -> bool:
        """``dequeue_entity``: out of the tree and the load; slack goes back on the last one.
        A sleeper the policy delays (DELAY_DEQUEUE) stays queued as ``sched_delayed`` and False
        is returned; `special` (``DEQUEUE_SPECIAL``, throttling) never delays. Dequeuing an
        entity that is delayed already completes its delayed dequeue."""
        policy = self.policy
        if sleep and not special and not se.sched_delayed and policy.delay_dequeue(cfs_rq, se):
            se.sched_delayed = True
            return False
        policy.dequeue_entity(cfs_rq, se, sleep)
        if se.node is not None:
            cfs_rq.remove(se)
        se.on_rq = False
        self.add_load(cfs_rq, -se.weight)
        cfs_rq.nr_running -= 1
        if cfs_rq.runtime_enabled and cfs_rq.nr_running == 0:
            self.return_cfs_rq_runtime(cfs_rq)
        cfs_rq.update_min_vruntime()
        return True

    def enqueue_task(self, rq: Rq, task: Task, flags: int) -> None:
        """``enqueue_task_fair``: enqueue up the hierarchy until an already-queued level, or a
        throttled queue, is reached."""
        rq.tasks[task.tid] = task
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
            if cfs_rq.throttled:
                return
            flags = ENQUEUE_WAKEUP
            se = se.parent
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            self.update_cfs_group(se)
            cfs_rq.h_nr_running += 1
            if cfs_rq.throttled:
                return
            se = se.parent

    def dequeue_task(self, rq: Rq, task: Task, sleep: bool) -> None:
        """``dequeue_task_fair``: the task leaves the machine's movable set and its queues (a
        delayed sleeper stays queued until it is picked or wakes)."""
        del rq.tasks[task.tid]
        self.dequeue_entities(task.se, sleep)

    def dequeue_entities(self, se: SchedEntity, sleep: bool) -> bool:
        """``dequeue_entities``: dequeue `se`, and its ancestors while their queues become
        empty (they go to sleep, so they may be delayed); then refresh the levels above.
        Returns False when `se` itself was kept queued as ``sched_delayed``."""
        nr_tasks = 1 if se.my_q is None else 0
        first = se
        level: SchedEntity | None = se
        while level is not None:
            cfs_rq = level.rq_of
            assert cfs_rq is not None
            if not self.dequeue_entity(cfs_rq, level, sleep):
                if level is first:
                    return False
                break
            cfs_rq.h_nr_running -= nr_tasks
            if cfs_rq.throttled:
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
            if cfs_rq.throttled:
                return True
            level = level.parent
        return True

    def reweight_task(self, task: Task, weight: int) -> None:
        """``set_user_nice`` → ``reweight_task`` and ``prio_changed_fair``."""
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
            self.check_preempt_curr(rq, task)
        self.touch(rq)

    def move_group(self, task: Task, attach: Callable[[], None]) -> None:
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
            self.put_prev_task(task)
        self.dequeue_task(rq, task, sleep=False)
        self.policy.migrate_out(task.se.rq_of, task.se)  # type: ignore[arg-type]
        attach()
        self.enqueue_task(rq, task, ENQUEUE_MIGRATED)
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
            self.put_prev_task(task)
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
    def finish_delayed_dequeue(self, task: Task) -> None:
        """Complete a sleeping task's delayed dequeue now (before it changes group)."""
        if task.se.sched_delayed:
            self.update_curr(self.rqs[task.cpu])
            self.dequeue_entities(task.se, sleep=True)

    def wake_up(self, task: Task, new: bool = False) -> None:
        """``try_to_wake_up`` / ``wake_up_new_task``: choose a CPU, enqueue, maybe preempt.
        A delayed sleeper is still queued: it wakes in place (``ttwu_runnable``)."""
        if task.policy in RT_POLICIES:
            self.wake_up_rt(task, new)
            return
        if task.se.sched_delayed:
            rq = self.rqs[task.cpu]
            self.update_curr(rq)
            self.policy.requeue_delayed_entity(task.se.rq_of, task.se)  # type: ignore[arg-type]
            rq.tasks[task.tid] = task
            self._woken(task, new)
            self.check_preempt_curr(rq, task)
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
        self.enqueue_task(rq, task, flags)
        self.check_preempt_curr(rq, task, fork=new)
        self.touch(rq)

    def _woken(self, task: Task, new: bool) -> None:
        """The task becomes runnable: its state and wakeup statistics."""
        now = self.now
        task.state = TaskState.RUNNABLE
        task.wait_start = now
        if not new:
            task.nr_wakeups += 1
            task.wake_time = now

    def tick_at_or_after(self, t: int) -> int:
        """The first scheduler tick at or after `t` (ns): ticks fall at ``tick_offset_ns`` +
        k × ``tick_ns``, on every CPU at once (no ``skew_tick``)."""
        tick, offset = self.tick_ns, self.tick_offset
        return -(-(t - offset) // tick) * tick + offset

    def tick_after(self, delay: int) -> int:
        """Delay (ns from now) to the first tick strictly after now + max(delay, 0): a condition
        due now was seen by this instant's tick, or will be by the next."""
        now = self.now
        return self.tick_at_or_after(now + max(delay, 1)) - now

    def hrtimer_delay(self, task: Task, ns: int) -> int:
        """When a sleep of `ns` started now by `task` ends (ns from now): its hrtimer may fire
        anywhere in [soft, soft + slack] (``hrtimer_set_expires_range_ns`` with the task's
        ``timer_slack_ns``, 0 for RT tasks) — at the first tick of its CPU inside that range
        if the CPU is busy (``hrtimer_interrupt`` runs every timer whose soft expiry passed),
        else at the hard expiry."""
        slack = 0 if task.policy in RT_POLICIES else self.tun.timer_slack_ns
        if slack <= 0:
            return ns
        if task.cpu >= 0 and not self.rqs[task.cpu].idle:
            soft = self.now + ns
            first_tick = self.tick_at_or_after(soft + 1)
            if first_tick <= soft + slack:
                return first_tick - self.now
        return ns + slack

    def block(self, task: Task, state: TaskState = TaskState.SLEEPING) -> None:
        """The task stops being runnable (sleep, wait, exit, kill): ``dequeue_task(SLEEP)``."""
        if task.state is TaskState.RUNNABLE and task.cpu >= 0:
            rq = self.rqs[task.cpu]
            self.update_curr(rq)
            if task.policy in RT_POLICIES:
                rq.rt.dequeue(task)
                if not rq.rt.nr_running:
                    rq.server.stop()
            elif task.se.on_rq:
                self.dequeue_task(rq, task, sleep=True)
            else:
                rq.tasks.pop(task.tid, None)
            if rq.settling is task:
                rq.settling = None
            if rq.curr is task:
                rq.need_resched = True
            self.rec.vruntime(task.tid, self.now, task.se.vruntime)
            self.touch(rq)
        task.state = state
        task.remaining = None
        task.forever = False

    def check_preempt_curr(self, rq: Rq, task: Task, fork: bool = False) -> None:
        """``check_preempt_curr`` → ``check_preempt_wakeup`` at the matching level."""
        curr = rq.curr
        if curr is None:
            rq.need_resched = True
            return
        if curr is task:
            return
        if rq.curr_rt:  # a fair task waits behind RT: the fair server starts
            self.server_start(rq)
            return
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
        if self.policy.check_preempt_wakeup(
            se.rq_of, se, pse, fork, task.se, curr.se, resched_pending=rq.need_resched
        ):
            rq.need_resched = True

    # ==== the scheduler ====================================================================
    def schedule(self, rq: Rq) -> None:
        """``__schedule``: put the running task back, pick the next, switch if it differs."""
        prev = rq.curr
        self.update_curr(rq)
        if prev is not None and not rq.curr_rt:
            # with no RT task queued, the fair pick follows at once: lone levels may stay curr
            self.put_prev_task(prev, keep_alone=not rq.rt.nr_running)
        nxt = self.pick_next_rt(rq) if rq.rt.nr_running else None
        if nxt is None:
            nxt = self.pick_next_task(rq)
        if nxt is None and self.newidle_balance(rq):
            nxt = self.pick_next_task(rq)
        rq.need_resched = False
        if nxt is not prev:
            self.context_switch(rq, prev, nxt)

    def put_prev_task(self, prev: Task, keep_alone: bool = False) -> None:
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
        kept: list[SchedEntity] = []  # candidates, bottom-up, contiguous up to the current level
        se: SchedEntity | None = prev.se
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
                kept.append(se)
                se = se.parent
                continue
            if kept:  # not all the way to the root: put back as usual
                for lone in kept:
                    lone_rq = lone.rq_of
                    assert lone_rq is not None
                    lone_rq.insert(lone, policy.key(lone))
                    lone_rq.curr = None
                kept.clear()
            if cfs_rq.runtime_enabled:
                self.check_cfs_rq_runtime(cfs_rq)
            if se.on_rq and se.node is None:
                cfs_rq.insert(se, policy.key(se))
            if cfs_rq.curr is se:
                cfs_rq.curr = None
            se = se.parent
        if prev.se.on_rq:
            prev.wait_start = self.now

    def pick_next_task(self, rq: Rq) -> Task | None:
        """``pick_next_task_fair``: pick at each level down to a task (``set_next_entity``).

        While a level is picked, its ``prev_curr`` names the entity that ran there until this
        schedule (rq.curr's ancestor), so a policy can tell a re-pick from a switch. A picked
        ``sched_delayed`` entity is dequeued for good and the pick starts over from the root
        (``pick_next_entity`` in 6.12+); the levels are set only once a task is reached."""
        policy = self.policy
        ran: SchedEntity | None = None  # rq.curr's entity, whose levels get prev_curr
        if rq.curr is not None and not rq.curr_rt and policy.uses_prev_curr:
            ran = rq.curr.se
        self._mark_prev_curr(ran, mark=True)
        path: list[SchedEntity] = []
        while not path or path[-1].my_q is not None:
            cfs_rq = path[-1].my_q if path else rq.cfs
            assert cfs_rq is not None
            if not path and not cfs_rq.nr_running:
                self._mark_prev_curr(ran, mark=False)
                return None
            se = policy.pick_next_entity(cfs_rq)
            assert se is not None, f"empty pick on {cfs_rq}"
            if se.sched_delayed:
                self.dequeue_entities(se, sleep=True)
                self._forget_dequeued_curr(rq)
                path.clear()
                continue
            path.append(se)
        for se in path:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            if se.node is not None:
                cfs_rq.remove(se)
            cfs_rq.curr = se
            se.prev_sum_exec = se.sum_exec
            policy.set_next_entity(cfs_rq, se)
        self._mark_prev_curr(ran, mark=False)
        return path[-1].task

    @staticmethod
    def _mark_prev_curr(se: SchedEntity | None, mark: bool) -> None:
        """Set (or clear) ``prev_curr`` on every level `se` and its ancestors are queued on."""
        while se is not None:
            se.rq_of.prev_curr = se if mark else None  # type: ignore[union-attr]
            se = se.parent

    def _forget_dequeued_curr(self, rq: Rq) -> None:
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

    def context_switch(self, rq: Rq, prev: Task | None, nxt: Task | None) -> None:
        """Record the segment that ends and account the switch (schedstat, sched figures)."""
        now = self.now
        if prev is not None:
            self.rec.segment(rq.cpu, prev.tid, rq.seg_start, now)
            rq.busy += now - rq.seg_start
            prev.last_ran = now
            if prev.state is TaskState.RUNNABLE:
                prev.nivcsw += 1
                self.rec.vruntime(prev.tid, now, prev.se.vruntime)
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
                self.rec.add("wakeups", nxt.tid, rq.cpu, nxt.wake_time, latency)
                nxt.wake_time = -1
        else:
            self.idle_rqs.add(rq.cpu)
        rq.seg_start = now
        rq.exec_start = now
        rq.curr = nxt
        rq.curr_rt = nxt is not None and nxt.policy in RT_POLICIES
        self.context_switches += 1

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
            if self.idle_rqs and rq.cfs.h_nr_running >= 2 and not self.kick_pending:
                self._maybe_kick(rq)

    def arm(self, rq: Rq) -> None:
        """Arm the CPU's one timer for the next decision about its running task, and note
        whether that decision is a reschedule (slice or request used up, or a tick-checked
        condition) so the firing need not re-derive it."""
        task = rq.curr
        if task is None:
            rq.timer = None
            return
        if rq.curr_rt:
            self.arm_rt(rq, task)
            return
        precise = self.tun.precise
        policy = self.policy
        exact_due = NEVER  # reschedule at exactly this delay (HRTICK)
        tick_due = NEVER  # reschedule at the first tick at or after this delay
        bandwidth_due = NEVER  # local runtime runs out: noticed at the next tick's update_curr
        tick_level: SchedEntity | None = None
        se: SchedEntity | None = task.se
        while se is not None:
            cfs_rq = se.rq_of
            assert cfs_rq is not None
            exact, ticked = policy.preempt_after(cfs_rq, se)
            if exact is not None:
                if precise:  # hrtick_start: never sooner than 10 µs ("timer DoS")
                    exact_due = min(exact_due, max(exact, HRTICK_MIN_NS))
                else:
                    tick_due = min(tick_due, exact)
            if ticked is not None and ticked < tick_due:
                tick_due, tick_level = ticked, se
            if cfs_rq.runtime_enabled and not cfs_rq.throttled:
                bandwidth_due = min(bandwidth_due, cfs_rq.runtime_remaining)
            se = se.parent
        if tick_due < NEVER:
            tick_due = self.tick_after(tick_due)
        if bandwidth_due < NEVER:
            bandwidth_due = self.tick_after(bandwidth_due)
        demand_due = NEVER if task.remaining is None else task.remaining
        if rq.server.boosting and rq.rt.nr_running:  # RT takes over when the server is spent
            exact_due = min(exact_due, rq.server.runtime)
        due = min(exact_due, tick_due, bandwidth_due, demand_due)
        level = tick_level if due == tick_due else None
        self.set_timer(rq, due, due in (exact_due, tick_due), level)

    def set_timer(self, rq: Rq, due: int, resched: bool, level: SchedEntity | None) -> None:
        """Arm the CPU's timer `due` ns from now (NEVER: none); `resched` when it ends a slice."""
        now = self.now
        if due >= NEVER:
            rq.timer = None
            return
        rq.timer_resched = resched
        rq.timer_level = level
        when = now + max(0, due)
        if rq.timer is not None and rq.timer_at == when:
            return
        timer = self.env.timeout(when - now)
        timer.callbacks.append(rq.on_timer)
        rq.timer = timer
        rq.timer_at = when

    def _timer_callback(self, rq: Rq) -> Callable[[simpy.Event], None]:
        def fire(ev: simpy.Event) -> None:
            if ev is rq.timer:
                rq.timer = None
                self.on_timer(rq)

        return fire

    def on_timer(self, rq: Rq) -> None:
        """The CPU's timer: account (``update_curr`` — which also charges bandwidth runtime
        and runs ``update_deadline``), then act on what `arm` found due: a reschedule (HRTICK
        expiry or a tick-checked ``check_preempt_tick``), the end of a run request."""
        now = self.now
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
        if (now - self.tick_offset) % self.tick_ns == 0 and not rq.curr_rt:
            self.entity_tick_groups(task)
        if task.remaining is not None and task.remaining <= 0:
            self.complete_run(rq, task)
        self.touch(rq)
        self.flush()

    def complete_run(self, rq: Rq, task: Task) -> None:
        """The running task received its demand: resume its behaviour before deciding more.

        The behaviour's next request (run, sleep…) arrives at this same instant; a zero-delay
        settle event afterwards blocks the task if it asked for something else.
        """
        task.remaining = None
        event = task.run_event
        task.run_event = None
        rq.settling = task
        if event is not None:
            event.succeed()
        settle = self.env.timeout(0)
        settle.callbacks.append(rq.on_settle)

    def _settle_callback(self, rq: Rq) -> Callable[[simpy.Event], None]:
        def settle(ev: simpy.Event) -> None:
            task = rq.settling
            if task is None:
                return
            rq.settling = None
            if task.remaining is None and not task.forever and task.state is TaskState.RUNNABLE:
                self.block(task)  # waiting on some other event: a voluntary sleep
            self.touch(rq)
            self.flush()

        return settle

    def resume_running(self, task: Task) -> None:
        """A settling task asked for more CPU: it simply keeps running."""
        rq = self.rqs[task.cpu]
        if rq.settling is task:
            rq.settling = None
        self.touch(rq)


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
