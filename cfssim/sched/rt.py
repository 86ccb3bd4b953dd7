# mypy: disable-error-code="misc"
# (a Machine mixin: its methods annotate `self: Machine`, which mypy flags as [misc])
"""The real-time class (SCHED_FIFO, SCHED_RR) above the fair class, and the fair server that
keeps fair tasks from starving under it.

Mirrors kernel/sched/rt.c without RT group scheduling (as distribution kernels build it): per CPU
an `RtRunQueue` orders runnable RT tasks by priority (99 highest), FIFO within a priority; the
running RT task stays queued. A waking RT task preempts any fair task and any lower-priority RT
task at once. SCHED_RR tasks get ``sched_rr_timeslice`` (100 ms) of CPU, counted down at ticks,
then go to the tail of their priority if it has other tasks.

Starvation protection, as 6.12+ kernels do it: RT throttling (``sched_rt_runtime_us``) only acts
with RT_GROUP_SCHED; without it the per-CPU *fair server* (a deferred ``dl_server``, 50 ms every
1 s) does the job. While fair tasks wait behind RT tasks, the server stays deferred until its
zero-laxity point (period − runtime after it started), then runs the fair class above RT for its
runtime; it keeps doing so once per period for as long as the starvation lasts. We take the
server's period from ``sched_rt_period_us`` and its runtime from ``period − sched_rt_runtime_us``
(1 s and 50 ms by default, the kernel's fair_server defaults), so those tunables keep their
meaning. Times are int ns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mypy_extensions import trait
from sortedcontainers import SortedList

from ..task import RT_POLICIES
from .policy import NEVER

if TYPE_CHECKING:
    from ..task import Task
    from .core import Machine, Rq

RR_TIMESLICE_NS = 100_000_000  # sched_rr_timeslice_ms = 100


class RtRunQueue:
    """``struct rt_rq`` of one CPU: runnable RT tasks, highest priority first, FIFO within one."""

    __slots__ = ("inserted", "nodes", "nr_running", "queue", "time_slice")

    def __init__(self) -> None:
        self.queue: SortedList = SortedList()  # (−rt_priority, ±inserted, tid, task)
        self.nodes: dict[int, tuple[int, int, int, Task]] = {}
        self.time_slice: dict[int, int] = {}  # SCHED_RR: CPU ns left of the slice, by tid
        self.nr_running = 0
        self.inserted = 0  # insertions so far: FIFO within a priority, or LIFO at the head

    def enqueue(self, task: Task, head: bool = False) -> None:
        """``enqueue_task_rt``: at the tail of its priority (or the head)."""
        self.inserted += 1
        n = self.inserted
        node = (-task.rt_priority, -n if head else n, task.tid, task)
        self.nodes[task.tid] = node
        self.queue.add(node)
        self.nr_running += 1
        if task.policy == "rr" and task.tid not in self.time_slice:
            self.time_slice[task.tid] = RR_TIMESLICE_NS

    def dequeue(self, task: Task) -> None:
        """``dequeue_task_rt``."""
        self.queue.remove(self.nodes.pop(task.tid))
        self.nr_running -= 1

    def requeue(self, task: Task) -> None:
        """``requeue_task_rt``: to the tail of its priority."""
        self.dequeue(task)
        self.enqueue(task)

    def first(self) -> Task | None:
        """``pick_next_rt_entity``: the head of the highest non-empty priority."""
        return self.queue[0][3] if self.queue else None

    def alone_at_priority(self, task: Task) -> bool:
        """No other task is queued at `task`'s priority."""
        prio = -task.rt_priority
        same = self.queue.irange((prio,), (prio + 1,), inclusive=(True, False))
        return sum(1 for _ in same) <= 1

    def account(self, task: Task, delta: int) -> None:
        """Charge `delta` ns of CPU to a running SCHED_RR task's slice."""
        if task.policy == "rr":
            self.time_slice[task.tid] -= delta

    def slice_left(self, task: Task) -> int | None:
        """CPU ns until a running SCHED_RR task's slice ends (None for FIFO)."""
        return self.time_slice[task.tid] if task.policy == "rr" else None

    def task_tick(self, task: Task) -> bool:
        """``task_tick_rt`` at a used-up RR slice: a new slice; to the tail of its priority if
        it shares it. True when that asks for a reschedule."""
        if task.policy != "rr" or self.time_slice[task.tid] > 0:
            return False
        self.time_slice[task.tid] = RR_TIMESLICE_NS
        if self.alone_at_priority(task):
            return False
        self.requeue(task)
        return True

    def preempts(self, task: Task, curr: Task | None) -> bool:
        """``wakeup_preempt_rt``: an RT wakee preempts fair tasks and lower RT priorities."""
        return curr is None or curr.policy not in RT_POLICIES or task.rt_priority > curr.rt_priority


class FairServer:
    """The per-CPU deferred fair ``dl_server`` (``rq->fair_server``), reduced to what fair tasks
    see: after `period − runtime` of starvation the fair class runs above RT for `runtime`, then
    once per `period` while RT tasks keep it starved.

    ``armed``: started (fair tasks wait behind RT); ``running``: past the zero-laxity point
    (``dl_defer_running``); ``runtime``: ns left this period; ``deadline``: end of the period.
    """

    __slots__ = ("armed", "deadline", "period", "running", "runtime", "size")

    def __init__(self, runtime_ns: int, period_ns: int) -> None:
        self.size = runtime_ns
        self.period = period_ns
        self.armed = False
        self.running = False
        self.runtime = 0
        self.deadline = 0

    @property
    def boosting(self) -> bool:
        """The fair class currently runs above RT."""
        return self.running and self.runtime > 0

    def start(self, now: int) -> int | None:
        """Fair tasks start waiting behind RT (``dl_server_start``): arm a new deferred period
        unless one is under way. Returns the absolute time of the next server timer, if a
        new one is needed."""
        if self.armed and now < self.deadline:
            return None
        self.armed = True
        self.running = False
        return self.replenish(now)

    def replenish(self, now: int) -> int:
        """A fresh period of `size` ns; returns when the next timer must fire: the deferred
        zero-laxity point, or the period end while running."""
        self.runtime = self.size
        self.deadline = now + self.period
        return self.deadline if self.running else self.deadline - self.size

    def stop(self) -> None:
        """No RT task competes any more: the fair class runs on its own."""
        self.armed = False
        self.running = False

    def consume(self, delta: int, now: int) -> int | None:
        """Fair tasks ran `delta` ns while armed (``dl_server_update``). When a deferred period's
        runtime is used up before the zero-laxity point, a new period starts (its timer time is
        returned); a running server throttles until its deadline."""
        self.runtime -= delta
        if self.runtime > 0 or self.running:
            return None
        return self.replenish(now)

    def timer(self, now: int) -> int | None:
        """The server's timer fired: at the zero-laxity point the server starts running; at a
        running server's period end it is replenished. Returns the next timer time."""
        if not self.armed:
            return None
        if not self.running:
            self.running = True
            return self.deadline
        return self.replenish(now)


@trait  # mypyc: Machine's mixins must be traits (no multiple inheritance of native classes)
class RealTimeClass:
    """The RT class and the fair server on the machine's CPUs (a `Machine` mixin): RT wakeups,
    CPU choice, picking above the fair class, RR slices and the fair server's timer."""

    def wake_up_rt(self: Machine, task: Task, new: bool) -> None:
        """``try_to_wake_up`` for SCHED_FIFO/RR: queue on the CPU ``select_task_rq_rt`` finds;
        preempt a fair or lower-priority curr at once (unless the fair server is running)."""
        cpu = self.select_task_rq_rt(task)
        if task.cpu != cpu:
            self.set_task_cpu(task, cpu)
        rq = self.rqs[cpu]
        self.update_curr(rq)
        self._woken(task, new)
        rq.rt.enqueue(task)
        if rq.cfs.h_nr_running:
            self.server_start(rq)
        fair_boosted = rq.server.boosting and rq.curr is not None and not rq.curr_rt
        if rq.rt.preempts(task, rq.curr) and not fair_boosted:
            rq.need_resched = True
        self.touch(rq)

    def select_task_rq_rt(self: Machine, task: Task) -> int:
        """``select_task_rq_rt``/``find_lowest_rq``: the previous CPU if the task would run
        there at once, else the allowed CPU with the lowest top priority (idle lowest)."""
        rqs = self.rqs

        def top(cpu: int) -> int:
            head = rqs[cpu].rt.first()
            if head is not None:
                return head.rt_priority
            return -1 if rqs[cpu].curr is not None or rqs[cpu].cfs.h_nr_running else -2

        prev = task.cpu
        if prev in task.allowed and top(prev) < task.rt_priority:
            return prev
        return min(task.allowed_order, key=lambda cpu: (top(cpu), cpu))

    def pick_next_rt(self: Machine, rq: Rq) -> Task | None:
        """``pick_next_task_rt`` — unless the fair server runs the fair class above RT. Fair
        tasks left waiting start the server (``dl_server_start``)."""
        if rq.cfs.h_nr_running:
            if rq.server.boosting:
                return None
            self.server_start(rq)
        return rq.rt.first()

    def arm_rt(self: Machine, rq: Rq, task: Task) -> None:
        """The timer for a running RT task: its run request, or its RR slice (counted down at
        ticks, so rounded up to the tick grid)."""
        due = NEVER if task.remaining is None else task.remaining
        left = rq.rt.slice_left(task)
        if left is not None:
            due = min(due, self.tick_after(rq.cpu, left))
        self.set_timer(rq, due, False, None)

    def server_start(self: Machine, rq: Rq) -> None:
        """Fair tasks wait behind RT tasks: arm the fair server if it is not under way."""
        if rq.server.size:
            self._arm_server(rq, rq.server.start(self.now))

    def server_consumed(self: Machine, rq: Rq, delta: int) -> None:
        """Fair tasks ran `delta` ns while the server is armed (``dl_server_update``)."""
        server = rq.server
        self._arm_server(rq, server.consume(delta, self.now))
        if server.running and server.runtime <= 0 and rq.rt.nr_running:
            rq.need_resched = True  # the boost is spent: RT runs again

    def server_stop(self: Machine, rq: Rq) -> None:
        """No RT task competes any more (``dl_server_stop``): the server and its timer stop."""
        rq.server.stop()
        rq.server_timer.cancel()

    def _arm_server(self: Machine, rq: Rq, at: int | None) -> None:
        """(Re)start the server's timer at `at` ns, when the server asked for one."""
        if at is not None:
            rq.server_timer.start(at)

    def server_timer(self: Machine, rq: Rq) -> None:
        """The fair server's timer: zero-laxity point or replenishment; the fair class may now
        run above RT."""
        server = rq.server
        self.update_curr(rq)
        self._arm_server(rq, server.timer(self.now))
        if server.boosting and rq.cfs.h_nr_running and rq.curr_rt:
            rq.need_resched = True
        self.touch(rq)
        self.flush()
