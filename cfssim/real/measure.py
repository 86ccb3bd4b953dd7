"""`measure`: run a scenario as real processes under real cgroups and return its `Result`.

The run: refuse what cannot be run safely or faithfully → make the cgroup tree → start the
workers (one per session) → place every tid in its cgroups and set nice, policy, affinity and
oom_score_adj → release all threads from one barrier at t0 → apply the timed events, sample the
cgroups every few ms, note thread ends and process exits → read every figure just before the end
→ kill the workers and remove the cgroups, always (try/finally, SIGINT and SIGTERM included).
With `trace`, a private tracefs instance records the threads' ``sched_switch``/``sched_wakeup``
events from just before t0 (`cfssim.real.tracefs`) and becomes the trace's run segments.

Times in the result are ns since t0. Cgroup paths are the scenario's ("/app"), not the host's.
Scenario ``/`` is the run's own ``cfssim-<id>`` directory, so the kernel's autogroups (which exist
only in the host's root cpu cgroup) play no part — unless `host_root` keeps root-level processes
in the host's root cpu cgroup, where each session then is its own autogroup.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _signals
from ..cgroup.files import ROOT, parent_path
from ..result import (
    Result,
    RunMeta,
    TaskFigures,
    cgroup_figures,
    cpu_stat_figures,
    latency_figures,
    task_figures,
)
from ..scenario import Alloc, Kill, Move, Nice, Write, iter_steps
from ..scenario.steps import SYNC_STEPS
from ..task import RT_POLICIES, SCHED_POLICIES
from ..trace import Recorder, Trace
from ..units import NSEC_PER_MSEC, NSEC_PER_SEC, format_duration
from . import procfs
from .capacity import capacity_problem
from .cgroupfs import (
    CgroupSettings,
    Driver,
    Layout,
    Sample,
    detect,
    make_driver,
    make_stats_dir,
)
from .errors import Refused, WorkerFailed
from .tracefs import TraceSession, events_to_tables, parse_trace
from .worker import (
    DoneReport,
    ExitReport,
    ProcessJob,
    Sessions,
    encode_program,
    unsupported_step,
    worker_binary,
)

if TYPE_CHECKING:
    from ..scenario import Scenario

MAX_DURATION_NS = 60 * NSEC_PER_SEC
SAMPLE_INTERVAL_NS = 10 * NSEC_PER_MSEC
#: How often threads that an OOM kill may end have their figures saved, whatever the sampling
#: interval: a victim reports the figures of its last save.
VICTIM_STATS_INTERVAL_NS = 10 * NSEC_PER_MSEC
START_DELAY_NS = 20 * NSEC_PER_MSEC  # from the barrier's release to t0, at least
MAX_GRID_NS = NSEC_PER_SEC  # t0 is put on the bandwidth period grid when it is this fine
FREEZE_TIMEOUT_S = 0.2  # how long the end-of-run SIGSTOP may take to stop every worker
TIMER_TRIES = 3  # quota writes to find a group's period timer (it may expire before it is read)
BACKGROUND_WARNING = 0.05  # of the machine's capacity
KILL_REASON_CODES = {"oom_kill": 0, "oom_group_kill": 1, "killed": 2}


def measure(
    scenario: Scenario,
    out_dir: str | Path | None = None,
    *,
    trace: bool = False,
    force: bool = False,
    max_duration_ns: int = MAX_DURATION_NS,
    host_root: bool = False,
    layout: Layout | None = None,
    sample_interval_ns: int = SAMPLE_INTERVAL_NS,
) -> Result:
    """Run `scenario` on this machine's kernel; save into `out_dir` when given.

    Raises a `RealRunError` subclass (with its ``exit_status``) when the machine cannot run it
    or the scenario is refused: an ``alloc`` without an enclosing memory limit (unless `force`),
    a duration above `max_duration_ns`, CPUs the machine lacks.
    """
    check_scenario(scenario, force=force, max_duration_ns=max_duration_ns, host_root=host_root)
    layout = detect() if layout is None else layout
    binary = worker_binary()
    run = RealRun(scenario, layout, binary, host_root, sample_interval_ns, trace)
    with _signals.guarded(run.cleanup):  # SIGTERM unwinds like Ctrl-C; cleanup holds both off
        result = run.execute()
    if out_dir is not None:
        result.save(out_dir)
    return result


# ---- refusals ---------------------------------------------------------------------------------
def tick_offset(t0: int, hz: int) -> int:
    """Where the scheduler ticks fall in scenario time (ns since `t0`, CLOCK_MONOTONIC): the
    kernel aligns its tick to whole multiples of TICK_NSEC (``tick_init_jiffy_update``; checked
    in /proc/timer_list: every ``tick_nohz_handler`` expiry is a multiple of 4 ms at HZ=250)."""
    return -t0 % (NSEC_PER_SEC // hz)


def as_measured(
    kernel: Result | None,
    scenario: Scenario,
    *,
    host_root: bool = False,
    profile: str | None = None,
) -> Scenario:
    """`scenario` as the twin ran it, for the simulator to run the same thing: without
    `host_root` the twin's ``/`` is its own ``cfssim-<id>`` cgroup, where the kernel's autogroups
    (root task group only) do not apply; the tick grid and every quota'd group's period grid
    have the phases the `kernel` run had, and sleeps the hrtimer slack its threads had. A
    machine `profile` (its host: tick skew, noise, fault cost) applies unless the scenario
    names its own."""
    update: dict[str, object] = {}
    if profile is not None and scenario.machine.profile is None:
        update["profile"] = profile
    if not host_root and scenario.machine.autogroup:
        update["autogroup"] = False
    meta: RunMeta = kernel.meta if kernel is not None else {}
    tick_offset = meta.get("tick_offset_ns")
    if tick_offset is not None:
        update["tick_offset_ns"] = tick_offset
    slack = meta.get("timer_slack_ns")
    if slack is not None and scenario.machine.timer_slack_ns is None:
        update["timer_slack_ns"] = slack
    phases = meta.get("period_phase_ns")
    if phases:
        update["period_phase_ns"] = dict(phases)
    if not update:
        return scenario
    return scenario.model_copy(update={"machine": scenario.machine.model_copy(update=update)})


def check_scenario(
    scenario: Scenario, *, force: bool, max_duration_ns: int, host_root: bool = False
) -> None:
    """Raise `Refused` for a scenario that cannot be run safely or faithfully."""
    if scenario.duration_ns > max_duration_ns:
        raise Refused(
            f"{_where(scenario)}duration: expected at most {format_duration(max_duration_ns)} "
            f"for a real run, found {format_duration(scenario.duration_ns)}"
        )
    online = os.cpu_count() or 1
    for proc in scenario.processes:
        if (problem := unsupported_step(proc.program)) is not None:
            raise Refused(f"{_where(scenario)}process {proc.name!r}: {problem}")
        if proc.cpus is not None and max(proc.cpus) >= online:
            raise Refused(
                f"{_where(scenario)}process {proc.name!r}: cpus {list(proc.cpus)} need a CPU this "
                f"machine lacks (it has {online})"
            )
    for proc in scenario.processes:  # the C worker runs run/sleep/timer/alloc/free/exit/loop
        for step, _ in iter_steps(proc.program):
            if isinstance(step, tuple(SYNC_STEPS.values())):
                kind = next(key for key, model in SYNC_STEPS.items() if isinstance(step, model))
                raise Refused(
                    f"{_where(scenario)}process {proc.name!r}: the real twin's worker cannot run "
                    f"'{kind}' steps (synchronisation and thread steps are simulated only); "
                    "simulate it with `cfssim run`"
                )
    if not force:
        for proc in scenario.processes:
            if _allocates(proc.program):
                for path in [proc.cgroup, *_move_targets(scenario, proc.name)]:
                    if _memory_limit_above(scenario, path) is None:
                        raise Refused(
                            f"{_where(scenario)}process {proc.name!r} allocates memory in cgroup "
                            f"{path!r}, which has no memory limit on itself or an ancestor: the "
                            "real run could exhaust the machine (add memory.limit_in_bytes or "
                            "memory.max, or pass --force)"
                        )
    problem = capacity_problem(scenario, procfs.mem_available_bytes())  # --force or not
    if problem is not None:
        raise Refused(f"{_where(scenario)}{problem}")
    if host_root:
        for event in scenario.events:
            target = event.action
            if isinstance(target, Move) and target.to == "/":
                raise Refused(
                    f"{_where(scenario)}event at {format_duration(event.at_ns)}: moving to '/' "
                    "with host_root would write the host's root cgroup, which cfssim never does"
                )


def _where(scenario: Scenario) -> str:
    return f"{scenario.source}: " if scenario.source else ""


def _allocates(program: Any) -> bool:
    return any(isinstance(step, Alloc) for step, _depth in iter_steps(program))


def _move_targets(scenario: Scenario, process: str) -> list[str]:
    moves = [e.action for e in scenario.events]
    return [m.to for m in moves if isinstance(m, Move) and m.process == process]


def _memory_limit_above(scenario: Scenario, path: str) -> int | None:
    """The nearest memory limit on `path` or its ancestors (None: unlimited all the way up)."""
    while True:
        config = scenario.cgroups.get(path)
        if config is not None and config.memory_limit is not None:
            return int(config.memory_limit)
        if path == "/":
            return None
        path = parent_path(path) or ROOT


# ---- one run ----------------------------------------------------------------------------------
@dataclass
class MeasuredThread:
    """One scenario thread as the twin runs it on the host: its worker's pid and tid, where it
    is, its figures at t0 and last read, and how it ended (the simulated thread is
    `cfssim.task.Task`)."""

    name: str
    process: int
    thread: int
    cgroup: str
    nice: int
    pid: int = 0
    tid: int = 0
    base: procfs.ThreadStats = field(default_factory=procfs.ThreadStats)
    last: procfs.ThreadStats | None = None
    exit: dict[str, Any] | None = None

    def stats(self) -> procfs.ThreadStats:
        """The thread's figures now (``/proc/<pid>/task/<tid>/schedstat`` and ``sched``)."""
        return procfs.read_thread_stats(procfs.task_dir(self.pid, self.tid))

    def keep_last_stats(self) -> None:
        """Note the thread's figures as its last known ones, if it is still there."""
        with contextlib.suppress(OSError, ValueError):
            self.last = self.stats()


def measured_task_figures(
    thread: MeasuredThread,
    process: str,
    policy: str,
    max_rss_bytes: int | None,
    latencies: np.ndarray | None = None,
) -> TaskFigures:
    """`thread`'s `TaskFigures`: its figures since t0 (the last ones read, or none), as a thread
    of the scenario's `process` under its `policy`. This kernel has no schedstats: wakeups are
    its voluntary switches (each sleep ends in one); wakeup latency comes from the traced
    ``sched_wakeup`` → switch-in pairs (`latencies`, ns; `traced_latencies`), unknown (None)
    without ``--trace``."""
    stats = (thread.last or thread.base).since(thread.base)
    return task_figures(
        process=process,
        cgroup=thread.cgroup,
        nice=thread.nice,
        policy=policy,
        cpu_time_ns=stats.cpu_time_ns,
        wait_time_ns=stats.wait_time_ns,
        timeslices=stats.timeslices,
        nr_switches=stats.nr_switches,
        nr_voluntary_switches=stats.nr_voluntary_switches,
        nr_involuntary_switches=stats.nr_involuntary_switches,
        nr_migrations=stats.nr_migrations,
        wakeups=stats.nr_voluntary_switches,
        wakeup_latency_ns=None if latencies is None else latency_figures(latencies),
        vruntime=stats.vruntime,
        max_rss_bytes=max_rss_bytes,
        exit=thread.exit,
    )


def traced_latencies(trace: Trace, task: int) -> np.ndarray:
    """Wakeup latencies (ns) of the trace's `task` (index): its ``wakeups`` rows, each a traced
    ``sched_wakeup`` to the switch-in that followed (`cfssim.real.tracefs.events_to_tables`)."""
    wakeups = trace["wakeups"]
    return wakeups["latency"][wakeups["task"] == task]


@dataclass
class RealRun:
    scenario: Scenario
    layout: Layout
    binary: Path
    host_root: bool = False
    sample_interval_ns: int = SAMPLE_INTERVAL_NS
    trace: bool = False
    driver: Driver = field(init=False)
    tracer: TraceSession | None = field(init=False, default=None)
    sessions: Sessions | None = field(init=False, default=None)
    stat_dir: Path = field(init=False)
    tasks: list[MeasuredThread] = field(init=False, default_factory=list)
    configs: dict[str, Any] = field(init=False)
    recorder: Recorder = field(init=False, default_factory=Recorder)
    kills: list[dict[str, Any]] = field(init=False, default_factory=list)
    warnings: list[str] = field(init=False, default_factory=list)
    sent_kills: set[int] = field(init=False, default_factory=set)
    oom_seen: dict[str, tuple[int, int]] = field(init=False, default_factory=dict)
    samples: dict[str, list[tuple[int, Sample]]] = field(init=False, default_factory=dict)
    t0: int = 0
    #: the normal workers' hrtimer slack (ns), as the kernel reports it after placement
    timer_slack_ns: int | None = None
    #: each quota'd group's period timer as first seen armed: (expiry, period), ns
    period_timers: dict[str, tuple[int, int]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.driver = make_driver(self.layout)
        self.configs = dict(self.scenario.cgroups)
        self.stat_dir = make_stats_dir()
        for index, proc in enumerate(self.scenario.processes):
            for thread in range(proc.threads):
                self.tasks.append(
                    MeasuredThread(f"{proc.name}/{thread}", index, thread, proc.cgroup, proc.nice)
                )
        self.paths = sorted(self.configs, key=lambda p: (p.count("/"), p))

    # ---- phases ----
    def execute(self) -> Result:
        self._create_cgroups()
        self.sessions = Sessions(self.binary, self.stat_dir, self._jobs_by_session())
        self._collect_tids()
        self._place_all()
        if self.trace:
            tids = [t.tid for t in self.tasks]
            self.tracer = TraceSession(self.driver.run_name, tids, self.scenario.duration_ns)
            self.tracer.start()
        for task in self.tasks:
            task.base = task.stats()
        busy0, usage0 = procfs.machine_busy_ns(), self.driver.sample("/").usage_ns
        self.t0 = on_period_grid(
            time.monotonic_ns() + START_DELAY_NS, self.configs.values(), self._period_anchor()
        )
        self.sessions.release(self.t0)
        # cpu.stat counts from the quota write, a period or two before t0: count from t0, as the
        # simulator (whose period timer starts at t = 0) does
        time.sleep(max(0, self.t0 - time.monotonic_ns()) / NSEC_PER_SEC)
        stat0 = {path: self.driver.figures(path).get("cpu.stat") for path in self.paths}
        self._run_until(self.t0 + self.scenario.duration_ns)
        ran = time.monotonic_ns() - self.t0
        self._freeze()
        self._keep_last_stats(self.tasks)
        wall = time.monotonic_ns() - self.t0
        figures = {path: self.driver.figures(path) for path in self.paths}
        for path, before in stat0.items():
            after = figures[path].get("cpu.stat")
            if before and after:
                figures[path]["cpu.stat"] = cpu_stat_figures(
                    **{k: v - before.get(k, 0) for k, v in after.items()}
                )
        busy = procfs.machine_busy_ns() - busy0
        usage = figures["/"]["cpuacct.usage"] - usage0
        if self.tracer is not None:  # read after the figures: parsing is no part of the run
            self._record_trace(self.tracer, ran)
        return self._result(figures, busy, usage, wall)

    def _create_cgroups(self) -> None:
        """Make the cgroup tree; then give each group its quota one at a time, noting the period
        timer that write arms (``procfs.period_timers``): since Linux 6.4 each group's periods
        end at a random phase, which t0 is then aligned to."""
        bare = {
            path: replace(config, quota_ns=None, burst_ns=0)
            for path, config in self.configs.items()
        }
        self.driver.create(bare)
        for path in self.paths:
            config = self.configs[path]
            if config == bare[path]:
                continue
            for _attempt in range(TIMER_TRIES):
                if config.quota_ns is None:
                    self.driver.write_settings(path, bare[path], config)
                    break
                if self._write_noting_timer(path, bare[path], config):
                    break
                self.driver.write_settings(path, config, bare[path])  # try again
            else:
                self.driver.write_settings(path, bare[path], config)
                self.warnings.append(
                    f"{path}: its bandwidth period timer was not found in /proc/timer_list; "
                    "the run's period phase is not aligned with the simulation's"
                )

    def _write_noting_timer(self, path: str, old: CgroupSettings, new: CgroupSettings) -> bool:
        """Write `path`'s settings; if that armed exactly one period timer, note it as the
        group's (first one only) and return True."""
        before = procfs.period_timers()
        self.driver.write_settings(path, old, new)
        armed = [e for a, e in procfs.period_timers().items() if before.get(a) != e]
        if len(armed) != 1:
            return False
        self.period_timers.setdefault(path, (armed[0], new.period_ns))
        return True

    def _period_anchor(self) -> int | None:
        """A CLOCK_MONOTONIC instant at which the first quota'd group's period ends (None: no
        timer found). Other groups' phases are random (Linux 6.4+): they are reported in
        ``meta.period_phase_ns`` and `as_measured` gives them to the simulation."""
        if not self.period_timers:
            return None
        return next(iter(self.period_timers.values()))[0]

    def cleanup(self) -> None:
        """Remove the trace instance, kill and reap the workers, remove the cgroups and the stat
        files: every step runs even if one before it failed (always safe)."""
        _signals.run_all(
            [
                None if self.tracer is None else self.tracer.close,
                None if self.sessions is None else self.sessions.kill,
                self.driver.remove,
                lambda: shutil.rmtree(self.stat_dir, ignore_errors=True),
            ]
        )

    def _jobs_by_session(self) -> list[list[ProcessJob]]:
        sessions: dict[str | None, list[ProcessJob]] = {}
        for index, proc in enumerate(self.scenario.processes):
            tokens = tuple(encode_program(proc.program, proc.repeat))
            job = ProcessJob(index, proc.threads, proc.start_ns, tokens)
            sessions.setdefault(proc.session, []).append(job)
        return list(sessions.values())

    def _collect_tids(self) -> None:
        assert self.sessions is not None
        by_key = {(t.process, t.thread): t for t in self.tasks}
        missing = len(self.tasks)
        deadline = time.monotonic() + 10
        while missing:
            if time.monotonic() > deadline or not self.sessions.open_pipes:
                raise WorkerFailed(f"{missing} worker thread(s) never reported their tid")
            for report in self.sessions.poll(0.1):
                if isinstance(report, ExitReport):
                    raise WorkerFailed(f"worker process {report.process} died before the start")
                if not isinstance(report, DoneReport):
                    task = by_key[(report.process, report.thread)]
                    task.pid, task.tid = report.pid, report.tid
                    missing -= 1

    def _place_all(self) -> None:
        for index, proc in enumerate(self.scenario.processes):
            threads = [t for t in self.tasks if t.process == index]
            _write_proc(threads[0].pid, "oom_score_adj", str(proc.oom_score_adj))
            for task in threads:
                self._attach(task, proc.cgroup)
                os.setpriority(os.PRIO_PROCESS, task.tid, proc.nice)
                if proc.policy != "normal":
                    os.sched_setscheduler(
                        task.tid, SCHED_POLICIES[proc.policy], os.sched_param(proc.rt_priority)
                    )
                if proc.cpus is not None:
                    os.sched_setaffinity(task.tid, proc.cpus)
                if proc.slice_ns is not None:
                    policy = SCHED_POLICIES[proc.policy]
                    _set_custom_slice(task.tid, policy, proc.nice, proc.slice_ns)
                self._timer_slack(task, proc.policy)

    def _timer_slack(self, task: MeasuredThread, policy: str) -> None:
        """Give the thread the scenario's ``timer_slack_ns`` if it sets one (0 becomes 1 ns: a
        write of 0 restores the default), and note the slack a normal thread has (the kernel's
        default is 50 µs)."""
        path = procfs.timer_slack_path(task.tid)
        slack = self.scenario.machine.timer_slack_ns
        try:
            if slack is not None:
                path.write_text(str(max(1, slack)))
            if policy not in RT_POLICIES and self.timer_slack_ns is None:
                self.timer_slack_ns = int(path.read_text())
        except (OSError, ValueError) as exc:
            self.warnings.append(f"{task.name}: its timer slack could not be set or read ({exc})")

    def _attach(self, task: MeasuredThread, path: str) -> None:
        if self.host_root and path == "/":
            # stay in the inherited (host root) cpu cgroup; account it in the run's cpuacct
            self.driver.attach(path, task.pid, task.tid, skip="cpu")
        else:
            self.driver.attach(path, task.pid, task.tid)
        task.cgroup = path

    def _record_trace(self, tracer: TraceSession, end_ns: int) -> None:
        """The traced events as run segments, wakeups and migrations (times since t0)."""
        text, lost = tracer.stop()
        tids = {task.tid: index for index, task in enumerate(self.tasks)}
        end = min(end_ns, self.scenario.duration_ns)
        events_to_tables(parse_trace(text), tids, self.t0, end).record(self.recorder)
        if lost:
            self.warnings.append(
                f"the trace buffer overran: {lost} scheduler events lost, run segments incomplete"
            )

    # ---- the timed part ----
    def _run_until(self, end: int) -> None:
        assert self.sessions is not None
        events = sorted(self.scenario.events, key=lambda e: e.at_ns)
        next_sample = next_save = self.t0
        processes = self.scenario.processes
        victims = [task for task in self.tasks if _allocates(processes[task.process].program)]
        save_interval = min(self.sample_interval_ns, VICTIM_STATS_INTERVAL_NS)
        while True:
            now = time.monotonic_ns()
            if now >= end or self._all_exited():
                break
            while events and self.t0 + events[0].at_ns <= now:
                self._apply(events.pop(0).action)
            if now >= next_sample:
                self._sample(now)
                next_sample += self.sample_interval_ns
            if victims and now >= next_save:
                self._keep_last_stats(victims)
                next_save += save_interval
            wake = min(
                [end, next_sample]
                + ([next_save] if victims else [])
                + ([self.t0 + events[0].at_ns] if events else [])
            )
            for report in self.sessions.poll(max(0, wake - time.monotonic_ns()) / NSEC_PER_SEC):
                self._on_report(report)
        self._sample(time.monotonic_ns())

    def _freeze(self) -> None:
        """Stop every live worker process (SIGSTOP) at the end of the run, so that the threads'
        figures and their cgroups' are read from the same instant (cleanup kills them)."""
        pids = {task.pid for task in self.tasks if task.exit is None}
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + FREEZE_TIMEOUT_S
        while time.monotonic() < deadline and not all(map(procfs.stopped, pids)):
            time.sleep(0.001)

    def _all_exited(self) -> bool:
        return all(task.exit is not None for task in self.tasks)

    def _sample(self, now: int) -> None:
        for index, path in enumerate(self.paths):
            sample = self.driver.sample(path)
            self.samples.setdefault(path, []).append((now - self.t0, sample))
            limit = self.configs[path].memory_limit
            self.recorder.add(
                "memory", index, now - self.t0, sample.memory_bytes, -1 if limit is None else limit
            )

    @staticmethod
    def _keep_last_stats(tasks: Iterable[MeasuredThread]) -> None:
        """Read the live ones of `tasks`' figures (all at the end; during the run those that may
        die by an OOM kill, so that a victim keeps its last figures)."""
        for task in tasks:
            if task.exit is None:
                task.keep_last_stats()

    def _on_report(self, report: Any) -> None:
        if isinstance(report, DoneReport):
            task = self._task(report.process, report.thread)
            task.last = procfs.read_saved_stats(self.stat_dir, report.process, report.thread)
            time_ns = report.time_ns - self.t0
            task.exit = {"time_ns": time_ns, "reason": "exited", "code": report.code}
        elif isinstance(report, ExitReport):
            self._on_exit(report)

    def _on_exit(self, report: ExitReport) -> None:
        status = report.status
        reason, code = "exited", os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        if os.WIFSIGNALED(status):
            reason = self._death_reason(report.process, os.WTERMSIG(status))
        time_ns = report.time_ns - self.t0
        threads = [t for t in self.tasks if t.process == report.process]
        for task in threads:
            if task.exit is None:
                task.exit = {"time_ns": time_ns, "reason": reason}
                if code is not None:
                    task.exit["code"] = code
                if reason in KILL_REASON_CODES:
                    self.recorder.add(
                        "kills",
                        self.tasks.index(task),
                        self.paths.index(task.cgroup),
                        time_ns,
                        KILL_REASON_CODES[reason],
                    )
        if reason in KILL_REASON_CODES:
            name = self.scenario.processes[report.process].name
            cgroup = threads[0].cgroup
            self.kills.append(
                {"process": name, "cgroup": cgroup, "time_ns": time_ns, "reason": reason}
            )

    def _death_reason(self, process: int, signum: int) -> str:
        """Tell an OOM kill from other deaths: SIGKILL we did not send, with a rise of the
        victim memcg's oom_kill (or v2 oom_group_kill) counter not yet attributed."""
        if process in self.sent_kills:
            return "killed"
        if signum != signal.SIGKILL:
            return f"signal {signal.Signals(signum).name}"
        cgroup = self._task(process, 0).cgroup
        kills, group_kills = self.driver.oom_kills(cgroup)
        seen_kills, seen_group = self.oom_seen.get(cgroup, (0, 0))
        self.oom_seen[cgroup] = (kills, group_kills)
        if group_kills > seen_group:
            return "oom_group_kill"
        if kills > seen_kills:
            return "oom_kill"
        return "killed"

    def _task(self, process: int, thread: int) -> MeasuredThread:
        return next(t for t in self.tasks if t.process == process and t.thread == thread)

    def _targets(self, process: str, thread: int | None) -> list[MeasuredThread]:
        index = next(i for i, p in enumerate(self.scenario.processes) if p.name == process)
        return [
            t
            for t in self.tasks
            if t.process == index and (thread is None or t.thread == thread) and t.exit is None
        ]

    def _apply(self, action: Any) -> None:
        """Apply one timed event (Write, Move, Nice, Kill) now."""
        if isinstance(action, Write):
            from ..cgroup.files import apply_write, format_cpulist

            old = new = self.configs[action.path]
            for file, value in action.files.items():
                text = format_cpulist(value) if isinstance(value, list) else value
                new = apply_write(new, file, text, is_root=action.path == "/")
            if old.quota_ns is None and new.quota_ns is not None:  # arms the group's timer
                if not self._write_noting_timer(action.path, old, new):
                    self.warnings.append(
                        f"{action.path}: the period timer its quota write armed was not found "
                        "in /proc/timer_list; its period phase is not given to the simulation"
                    )
            else:
                self.driver.write_settings(action.path, old, new)
            self.configs[action.path] = new
        elif isinstance(action, Move):
            for task in self._targets(action.process, action.thread):
                self._attach(task, action.to)
        elif isinstance(action, Nice):
            for task in self._targets(action.process, action.thread):
                os.setpriority(os.PRIO_PROCESS, task.tid, action.value)
                task.nice = action.value
        elif isinstance(action, Kill):
            targets = self._targets(action.process, None)
            if targets:
                if action.thread is not None:
                    self.warnings.append(
                        f"kill of {action.process}/{action.thread}: a signal kills the whole "
                        "process on Linux"
                    )
                for task in targets:  # freeze the victims' figures just before the kill
                    task.keep_last_stats()
                self.sent_kills.add(targets[0].process)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(targets[0].pid, signal.SIGKILL)
        else:
            raise TypeError(f"unknown event action {action!r}")

    # ---- the result ----
    def _result(
        self, figures: dict[str, dict[str, Any]], busy_ns: int, usage_ns: int, wall_ns: int
    ) -> Result:
        online = os.cpu_count() or 1
        background = max(0, busy_ns - usage_ns)
        fraction = background / (online * wall_ns) if wall_ns > 0 else 0.0
        if fraction > BACKGROUND_WARNING:
            self.warnings.append(
                f"background load was {fraction:.1%} of the machine's CPU capacity (above "
                f"{BACKGROUND_WARNING:.0%}): the comparison with a simulation is unreliable"
            )
        machine = self.scenario.machine
        if machine.cpus != online:
            self.warnings.append(
                f"the scenario models {machine.cpus} CPUs, this machine has {online}"
            )
        self._record_periods()
        root_percpu = figures["/"].get("cpuacct.usage_percpu", [])
        trace = self.recorder.freeze([t.name for t in self.tasks], self.paths, online)
        meta: RunMeta = {
            "kernel_release": procfs.kernel_release(),
            "cgroup_version": self.layout.version,
            "cgroup_root": {c: str(self.driver.base(c)) for c in self.layout.mounts},
            "t0_monotonic_ns": self.t0,
            "period_phase_ns": {
                path: (expiry - self.t0) % period
                for path, (expiry, period) in self.period_timers.items()
            },
            "wall_ns": wall_ns,
            "background_cpu_ns": background,
            "background_cpu_fraction": round(fraction, 4),
            "sample_interval_ns": self.sample_interval_ns,
            "host_root": self.host_root,
            "tick_offset_ns": tick_offset(self.t0, self.scenario.machine.hz),
            "timer_slack_ns": self.timer_slack_ns,
            "warnings": self.warnings + self.driver.warnings,
        }
        return Result(
            source="kernel",
            scenario=self.scenario.name,
            policy=f"kernel-{procfs.kernel_release()}",
            cpus=online,
            duration_ns=self.scenario.duration_ns,
            seed=self.scenario.seed,
            tasks={
                task.name: measured_task_figures(
                    task,
                    self.scenario.processes[task.process].name,
                    self.scenario.processes[task.process].policy,
                    self._max_rss(task),
                    traced_latencies(trace, index) if self.trace else None,
                )
                for index, task in enumerate(self.tasks)
            },
            cgroups={
                path: cgroup_figures(files, f'cgroups["{path}"]') for path, files in figures.items()
            },
            cpu={str(cpu): {"busy_ns": ns} for cpu, ns in enumerate(root_percpu)},
            kills=self.kills,
            meta=meta,
            trace=trace,
        )

    def _max_rss(self, task: MeasuredThread) -> int | None:
        with contextlib.suppress(OSError):
            return procfs.max_rss_bytes(task.pid)
        return None

    def _record_periods(self) -> None:
        """`periods` rows from the samples: a period boundary wherever nr_periods moved."""
        for index, path in enumerate(self.paths):
            quota = self.configs[path].quota_ns
            rows = self.samples.get(path, [])
            start: tuple[int, Sample] | None = None
            for time_ns, sample in rows:
                if start is None:
                    start = (time_ns, sample)
                elif sample.nr_periods > start[1].nr_periods:
                    self.recorder.add(
                        "periods",
                        index,
                        start[0],
                        time_ns - start[0],
                        sample.usage_ns - start[1].usage_ns,
                        int(sample.nr_throttled > start[1].nr_throttled),
                        -1 if quota is None else quota,
                    )
                    start = (time_ns, sample)


def on_period_grid(earliest_ns: int, configs: Iterable[Any], anchor_ns: int | None = None) -> int:
    """The first CLOCK_MONOTONIC instant ≥ `earliest_ns` that is `anchor_ns` plus a whole
    number of every bandwidth period (the lcm of the periods of groups with a quota).

    A group's period timer starts at a random expiry below the period (``init_cfs_bandwidth``,
    Linux 6.4+) and is moved on by whole periods (``start_cfs_bandwidth`` →
    ``hrtimer_forward_now``), so its periods end at that phase — measured: three fresh groups'
    timers at 16.5, 28.2 and 56.7 ms past a multiple of 100 ms. The simulator's periods end at
    multiples of the period since its t = 0: starting the real run at an expiry of the group's
    timer (`anchor_ns`) gives both the same phase (it decides, e.g., whether a burst of work
    falls into one period or straddles two). Without an anchor, the grid since boot is used.
    """
    grid = 1
    for config in configs:
        if config.quota_ns is not None:
            grid = math.lcm(grid, config.period_ns)
    if grid > MAX_GRID_NS:
        return earliest_ns
    anchor = 0 if anchor_ns is None else anchor_ns
    return anchor + -(-(earliest_ns - anchor) // grid) * grid


def _write_proc(pid: int, name: str, value: str) -> None:
    Path(f"/proc/{pid}/{name}").write_text(value)


def _set_custom_slice(tid: int, policy: int, nice: int, slice_ns: int) -> None:
    """sched_setattr(sched_runtime=slice) — the EEVDF custom slice (`__setparam_fair`)."""
    import ctypes
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    sys_sched_setattr = 314  # x86_64
    attr = struct.pack("IIQiIQQQII", 56, policy, 0, nice, 0, slice_ns, 0, 0, 0, 0)
    if libc.syscall(sys_sched_setattr, tid, attr, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"sched_setattr(slice) of tid {tid}: {os.strerror(err)}")
