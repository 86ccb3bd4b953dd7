"""Turn a finished `Simulation` into a `Result`: per-task figures named like
``/proc/<pid>/sched`` and ``schedstat``, per-cgroup figures named like the cgroup files, per-CPU
busy time, and the frozen trace. Reading only: the simulation is not advanced or changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .cgroup.files import read_file, shares_to_weight
from .result import (
    CgroupFigures,
    Result,
    TaskFigures,
    cgroup_figures,
    cpu_stat_figures,
    latency_figures,
    task_figures,
)
from .sched.rt import RT_POLICIES
from .task import TaskState
from .trace import KILL_REASONS, Trace, cpu_time_per_cpu, group_usage_curve

if TYPE_CHECKING:
    from .cgroup.tree import TaskGroup
    from .simulation import Simulation
    from .task import Task


def build_result(sim: Simulation, end: int) -> Result:
    machine = sim.machine
    pending: dict[int, int] = {}  # tid → CPU time since the last update_curr
    for rq in machine.rqs:
        if rq.curr is not None:
            pending[rq.curr.tid] = end - rq.exec_start
    trace = sim.rec.freeze([t.name for t in sim.tasks], sim.cgroup_order, machine.ncpus)
    _close_open_segments(sim, trace, end)
    _fill_period_usage(sim, trace)
    busy = cpu_time_per_cpu(trace, machine.ncpus)
    rt_tids = np.array([t.tid for t in sim.tasks if t.policy in RT_POLICIES], dtype=np.int64)
    rt_busy = cpu_time_per_cpu(trace, machine.ncpus, rt_tids)  # the rest of busy time is fair
    result = Result(
        source="simulation",
        scenario=sim.name,
        policy=sim.policy_name,
        cpus=machine.ncpus,
        duration_ns=end,
        seed=sim.seed,
        tasks={t.name: _task_figures(sim, t, end, pending.get(t.tid, 0)) for t in sim.tasks},
        cgroups={
            path: _cgroup_figures(sim, sim.groups[path], pending) for path in sim.cgroup_order
        },
        cpu={
            str(cpu): {
                "busy_ns": int(b),
                "idle_ns": int(end - b),
                "rt_ns": int(rt),
                "fair_ns": int(b - rt),
            }
            for cpu, (b, rt) in enumerate(zip(busy, rt_busy, strict=True))
        },
        kills=_kills(sim, trace),
        meta={
            "description": sim.description,
            "hz": sim.tun.hz,
            "slice_ends": sim.tun.slice_ends,
            "autogroup": sim.autogroup,
            "tunables": {
                name: getattr(sim.tun, name)
                for name in (
                    "sched_latency_ns",
                    "sched_min_granularity_ns",
                    "sched_wakeup_granularity_ns",
                    "sched_base_slice_ns",
                    "sched_cfs_bandwidth_slice_us",
                )
            },
            "context_switches": machine.context_switches,
            "events": sim.event_log,
            "warnings": sim.warnings,
        },
        trace=trace,
    )
    if not sim.host.ideal:
        result.meta["host"] = sim.host.describe(machine.ncpus)
    return result


def _close_open_segments(sim: Simulation, trace: Trace, end: int) -> None:
    """Append the segments still running at the end of the run."""
    open_rows = [
        (rq.cpu, rq.curr.tid, rq.seg_start, end)
        for rq in sim.machine.rqs
        if rq.curr and end > rq.seg_start
    ]
    if not open_rows:
        return
    seg = trace.tables["segments"]
    for index, column in enumerate(("cpu", "task", "start", "end")):
        extra = np.array([row[index] for row in open_rows], dtype=np.int64)
        seg[column] = np.concatenate((seg[column], extra))


def _fill_period_usage(sim: Simulation, trace: Trace) -> None:
    """Exact CPU usage of each recorded bandwidth period, from the run segments."""
    periods = trace.tables["periods"]
    if not len(periods["cgroup"]):
        return
    usage = periods["usage"]
    for path in sim.cgroup_order:
        group = sim.groups[path]
        rows = np.nonzero(periods["cgroup"] == group.index)[0]
        if not len(rows):
            continue
        tids = np.array(
            [
                t.tid
                for t in sim.tasks
                if t.group is not None and group in t.group.cgroup().ancestors()
            ]
        )
        start = periods["start"][rows]
        stop = start + periods["period"][rows]
        curve = group_usage_curve(trace, tids, np.concatenate((start, stop)))
        usage[rows] = curve[len(rows) :] - curve[: len(rows)]


def _task_figures(sim: Simulation, task: Task, end: int, pending: int) -> TaskFigures:
    queued_wait = (
        end - task.wait_start
        if (task.se.on_rq or task.throttled) and sim.machine.rqs[task.cpu].curr is not task
        else 0
    )
    if task.state is not TaskState.RUNNABLE:
        queued_wait = 0
    group = task.group
    assert group is not None
    return task_figures(
        process=task.process.name,
        cgroup=group.cgroup().path,
        nice=task.nice,
        policy=task.policy,
        cpu_time_ns=task.sum_exec + pending,
        wait_time_ns=task.run_delay + queued_wait,
        timeslices=task.pcount,
        nr_switches=task.nvcsw + task.nivcsw,
        nr_voluntary_switches=task.nvcsw,
        nr_involuntary_switches=task.nivcsw,
        nr_migrations=task.nr_migrations,
        wakeups=task.nr_wakeups,
        wakeup_latency_ns=latency_figures(task.latencies),
        vruntime=task.se.vruntime,
        max_rss_bytes=task.process.max_rss,
        exit=task.exit,
    )


def _cgroup_figures(sim: Simulation, group: TaskGroup, pending: dict[int, int]) -> CgroupFigures:
    usage = list(group.usage)
    for task in sim.tasks:
        if (
            task.tid in pending
            and task.group is not None
            and group in task.group.cgroup().ancestors()
        ):
            usage[task.cpu] += pending[task.tid]
    total = sum(usage)
    config = group.config
    stat = group.bandwidth.stat
    figures: dict[str, Any] = {
        "cpu.shares": group.shares,
        "cpu.weight": shares_to_weight(group.shares),
        "cpu.cfs_period_us": config.period_ns // 1000,
        "cpu.cfs_quota_us": -1 if config.quota_ns is None else config.quota_ns // 1000,
        "cpu.cfs_burst_us": config.burst_ns // 1000,
        "cpu.max": read_file(config, "cpu.max") if group.parent is not None else None,
        "cpuset.cpus": read_file(config, "cpuset.cpus"),
        "cpu.stat": cpu_stat_figures(
            nr_periods=stat.nr_periods,
            nr_throttled=stat.nr_throttled,
            throttled_time=stat.throttled_time,
            nr_bursts=stat.nr_bursts,
            burst_time=stat.burst_time,
            usage_ns=total,
        ),
        "cpuacct.usage": total,
        "cpuacct.usage_percpu": usage,
    }
    if sim.memory is not None:
        figures.update(sim.memory.stats(sim.memory[group.path]))
    return cgroup_figures(figures, f'cgroups["{group.path}"]')


def _kills(sim: Simulation, trace: Trace) -> list[dict[str, Any]]:
    kills = trace["kills"]
    return [
        {
            "time_ns": int(time),
            "task": sim.tasks[tid].name,
            "process": sim.tasks[tid].process.name,
            "cgroup": sim.cgroup_order[cg],
            "reason": KILL_REASONS[reason],
        }
        for tid, cg, time, reason in zip(
            kills["task"], kills["cgroup"], kills["time"], kills["reason"], strict=True
        )
    ]
