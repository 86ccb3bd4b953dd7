"""The simulated cgroup hierarchy as the scheduler sees it: ``struct task_group``.

A `TaskGroup` has, per CPU, a group `SchedEntity` queued on its parent's run queue and a
`CfsRunQueue` of its own (the root group has only the per-CPU root queues). It carries the group's
``cpu.shares`` (split over CPUs by `calc_group_shares`), its `CfsBandwidth` when it has a quota,
and its ``cpuacct`` usage per CPU. Autogroups (``/proc/<pid>/autogroup``) are hidden task groups
under the root, one per session, that only schedule: they report no cgroup figures.
"""

from __future__ import annotations

from ..sched.entity import SchedEntity
from ..sched.runqueue import CfsRunQueue
from ..sched.weights import NICE_0_LOAD, WEIGHT_IDLEPRIO
from .bandwidth import CfsBandwidth
from .files import CgroupConfig
from .files import effective_cpus as files_effective_cpus

MIN_SHARES = 2


class TaskGroup:
    """One cgroup (or autogroup) on an `ncpus` machine."""

    def __init__(
        self,
        path: str,
        parent: TaskGroup | None,
        ncpus: int,
        config: CgroupConfig,
        *,
        bandwidth_slice_ns: int,
        autogroup: bool = False,
    ) -> None:
        self.path = path
        self.index = -1  # position in the trace's cgroup list (set by the simulation)
        self.parent = parent
        self.children: list[TaskGroup] = []
        self.autogroup = autogroup
        self.config = config
        self.shares = NICE_0_LOAD
        self.load_sum = 0  # Σ over CPUs of this group's queue load (our tg->load_avg)
        self.cfs_rq = [CfsRunQueue(self, cpu, path) for cpu in range(ncpus)]
        self.se: list[SchedEntity | None] = [None] * ncpus
        if parent is not None:
            parent.children.append(self)
            for cpu in range(ncpus):
                se = SchedEntity(NICE_0_LOAD, my_q=self.cfs_rq[cpu], parent=parent.se[cpu])
                se.rq_of = parent.cfs_rq[cpu]
                self.se[cpu] = se
                self.cfs_rq[cpu].se = se
        self.usage = [0] * ncpus  # cpuacct.usage_percpu (ns)
        self.bandwidth = CfsBandwidth(
            config.period_ns, config.quota_ns, config.burst_ns, bandwidth_slice_ns
        )
        self.apply_weight(config)

    # ---- shares -----------------------------------------------------------------------
    def apply_weight(self, config: CgroupConfig) -> None:
        """``sched_group_set_shares`` / ``sched_group_set_idle``."""
        self.config = config
        self.shares = WEIGHT_IDLEPRIO if config.idle else config.shares

    def calc_group_shares(self, cpu: int) -> int:
        """``calc_group_shares``: this group's weight on `cpu`, its shares split over CPUs in
        proportion to its load on each.

        The kernel divides by PELT averages (``tg->load_avg``, ``cfs_rq->avg.load_avg``), which
        lag the runnable weight by a ~32 ms half-life. We divide by the instantaneous runnable
        weight (``cfs_rq->load.weight``, which the kernel also uses as a floor), updated at every
        enqueue, dequeue and scheduling event on that CPU: identical for steady CPU-bound work,
        the case shares are about, and without a PELT clock to integrate. A group that sleeps
        therefore gives up its weight at once rather than over tens of milliseconds.
        """
        shares = self.shares
        load = self.cfs_rq[cpu].load
        if self.load_sum <= 0 or load <= 0:
            return shares
        weight = shares * load // self.load_sum
        if weight > shares:  # max(MIN_SHARES, min(shares, weight)) as conditionals: hot
            weight = shares
        return weight if weight > MIN_SHARES else MIN_SHARES

    # ---- hierarchy --------------------------------------------------------------------
    def ancestors(self) -> list[TaskGroup]:
        """This group and its parents up to the root, nearest first."""
        chain: list[TaskGroup] = []
        group: TaskGroup | None = self
        while group is not None:
            chain.append(group)
            group = group.parent
        return chain

    def subtree(self) -> list[TaskGroup]:
        """This group and all its descendants, parents before children (pre-order)."""
        out = [self]
        for child in self.children:
            out.extend(child.subtree())
        return out

    def cgroup(self) -> TaskGroup:
        """The visible cgroup a task of this group is charged to (autogroups → the root)."""
        group = self
        while group.autogroup and group.parent is not None:
            group = group.parent
        return group

    def __repr__(self) -> str:
        return f"<TaskGroup {self.path}>"


def effective_cpus(group: TaskGroup, ncpus: int) -> frozenset[int]:
    """``cpuset.cpus.effective`` of `group` on an `ncpus` machine (`files.effective_cpus`: where
    a level's requested CPUs leave none, its parent's effective CPUs stand, as in cgroup v2's
    ``compute_effective_cpumask``; cgroup v1 refuses such a write, see `Simulation.write`)."""
    machine = frozenset(range(ncpus))
    configs = {level.path: level.config for level in group.ancestors()}
    cpus = files_effective_cpus(configs, group.path)
    return machine if cpus is None else cpus & machine or machine
