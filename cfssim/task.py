"""`Task`: one thread — its scheduling entity, state, placement and the figures it accumulates.

Processes are thread groups (`Process`): threads share a name prefix, a cgroup, a session
(autogroup) and an address space (rss, the OOM killer's unit). A task's behaviour is a SimPy
process that yields the requests made by `run`, `sleep`, `alloc` and `free`
(see `cfssim.behaviour`). Times are int ns.
"""

from __future__ import annotations

from array import array
from enum import Enum
from typing import TYPE_CHECKING, Any

from .sched.entity import SchedEntity
from .sched.weights import WEIGHT_IDLEPRIO, nice_to_weight

if TYPE_CHECKING:
    import simpy

    from .cgroup.tree import TaskGroup


class TaskState(Enum):
    NEW = "new"  # created, not yet runnable
    RUNNABLE = "runnable"  # queued or running
    SLEEPING = "sleeping"
    DEAD = "dead"


#: The scheduling policies (``sched_setscheduler(2)``) by cfssim name → the kernel's number
#: (include/uapi/linux/sched.h: SCHED_NORMAL 0, SCHED_FIFO 1, SCHED_RR 2, SCHED_BATCH 3,
#: SCHED_IDLE 5), in the order they are listed to users. The one list: every other derives.
SCHED_POLICIES: dict[str, int] = {"normal": 0, "batch": 3, "idle": 5, "fifo": 1, "rr": 2}
#: The real-time policies (the rt class, above the fair class).
RT_POLICIES = ("fifo", "rr")
#: The kernel's names of the policies → cfssim's: SCHED_OTHER is POSIX's name of SCHED_NORMAL.
SCHED_NAMES: dict[str, str] = {
    "SCHED_NORMAL": "normal",
    "SCHED_OTHER": "normal",
    "SCHED_BATCH": "batch",
    "SCHED_IDLE": "idle",
    "SCHED_FIFO": "fifo",
    "SCHED_RR": "rr",
}


class Process:
    """A thread group: the unit of memory ownership and of OOM kills."""

    def __init__(self, index: int, name: str, session: str, oom_score_adj: int = 0) -> None:
        self.index = index
        self.name = name
        self.session = session
        self.oom_score_adj = oom_score_adj
        self.threads: list[Task] = []
        self.rss = 0  # resident bytes (the OOM killer's badness)
        self.max_rss = 0
        self.cgroup = "/"  # the memory cgroup new pages are charged to
        self.charged: dict[str, int] = {}  # bytes still charged, by memcg path
        self.oom_victim = False
        self.exit: dict[str, Any] | None = None

    @property
    def alive(self) -> bool:
        return any(t.state is not TaskState.DEAD for t in self.threads)


class Task:
    """A thread. ``cpu`` is the CPU it last ran on or is queued on."""

    def __init__(
        self,
        tid: int,
        name: str,
        process: Process,
        *,
        nice: int = 0,
        policy: str = "normal",
        rt_priority: int = 0,
        affinity: frozenset[int],
        slice_ns: int | None = None,
    ) -> None:
        self.sim: Any = None  # the Simulation this task belongs to (set when added)
        self.tid = tid
        self.name = name
        self.process = process
        self.nice = nice
        self.policy = policy
        self.rt_priority = rt_priority
        self.affinity = affinity  # sched_setaffinity mask
        self.allowed = affinity  # affinity ∩ cpuset (see `set_allowed`)
        self.allowed_order = tuple(sorted(affinity))
        self.acct: list[list[int]] = []  # cpuacct usage_percpu lists charged by update_curr
        self.vruntime_relative = False  # vruntime carried relative to a queue (migrate/move)
        self.se = SchedEntity(self.load_weight(), task=self)
        if slice_ns is not None:
            self.se.slice = slice_ns
            self.se.custom_slice = True
        self.group: TaskGroup | None = None
        self.state = TaskState.NEW
        self.cpu = -1
        self.remaining: int | None = None  # CPU demand left in the current run request (ns)
        self.forever = False  # the current run request never ends
        self.run_event: simpy.Event | None = None
        self.proc: simpy.Process | None = None
        # figures (/proc/<pid>/sched and schedstat names in `Result`)
        self.sum_exec = 0
        self.run_delay = 0
        self.pcount = 0
        self.nvcsw = 0
        self.nivcsw = 0
        self.nr_migrations = 0
        self.nr_wakeups = 0
        self.wait_start = 0
        self.throttled = False  # in its queue's throttled_limbo_list (6.18 task-based throttle)
        self.wake_time = -1  # set while a wakeup waits for its first run
        self.waker = -1  # tid running on its CPU when it was woken (-1: the idle task)
        self.last_ran = 0
        self.latencies = array("q")
        self.memory_wake: simpy.Event | None = None  # set while waiting for memory (OOM)
        self.random: Any = None  # numpy Generator seeded from (seed, tid), for behaviours
        self.exit: dict[str, Any] | None = None

    # ---- the behaviour API (research code yields these) -----------------------------------
    def run(self, ns: int | None = None) -> simpy.Event:
        """Fires once this task has received `ns` more ns of CPU (None: never, run forever)."""
        return self.sim.request_run(self, ns)

    def sleep(self, ns: int) -> simpy.Event:
        """Block for `ns` wall-clock ns."""
        return self.sim.request_sleep(self, ns)

    def alloc(self, nbytes: int) -> simpy.Event:
        """Fault in `nbytes` of anonymous memory (charged to the memory cgroup)."""
        return self.sim.request_alloc(self, nbytes)

    def free(self, nbytes: int | None = None) -> simpy.Event:
        """Release `nbytes` (None: everything this process holds)."""
        return self.sim.request_free(self, nbytes)

    @property
    def now(self) -> int:
        return int(self.sim.env.now)

    def set_allowed(self, cpus: frozenset[int]) -> None:
        """``cpus_ptr``: where the task may run (affinity ∩ its cgroup's effective cpuset)."""
        self.allowed = cpus
        self.allowed_order = tuple(sorted(cpus))

    def load_weight(self) -> int:
        """``set_load_weight``: SCHED_IDLE gets weight 3, others the nice table."""
        return WEIGHT_IDLEPRIO if self.policy == "idle" else nice_to_weight(self.nice)

    @property
    def on_rq(self) -> bool:
        return self.se.on_rq

    def __repr__(self) -> str:
        return f"<Task {self.name} {self.state.value} cpu={self.cpu}>"
