"""`Simulation`: build a machine, cgroups and tasks (by hand or from a `Scenario`), run the SimPy
environment, and collect a `Result`.

    sim = Simulation(cpus=2, policy="cfs", seed=1)
    sim.add_cgroup("/app", {"cpu.cfs_quota_us": 50000})
    sim.add_process("web", threads=4, behaviour=program(run="2ms", sleep="8ms"), cgroup="/app")
    result = sim.run(until="10s")

A run is a pure function of its inputs and seed: every ordering decision is deterministic and
the only randomness is each task's own ``task.random`` generator (seeded from seed and tid) for
behaviours that want it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

import numpy as np
import simpy

from ._errors import describe, did_you_mean, name_list, quoted
from .behaviour import Behaviour, BehaviourError, TaskExit, compile_program
from .cgroup.files import (
    BANDWIDTH_FILES,
    PAGE_SIZE,
    ROOT,
    CgroupConfig,
    apply_write,
    parent_path,
    validate_cpuset_change,
)
from .cgroup.memory import (
    MEMCG_CHARGE_BATCH,
    MemoryController,
    MemoryLimitBusy,
    OomAction,
    OomDecision,
    pages_for,
)
from .cgroup.tree import TaskGroup, effective_cpus
from .host import NOISE_PROCESS, HostModel, noise_behaviour
from .hrtimer import HrTimer
from .result import Result
from .scenario import Scenario
from .scenario.model import MAX_MACHINE_CPUS as MAX_CPUS
from .scenario.steps import barrier_parties
from .sched.core import Machine
from .sched.policy import SchedTunables
from .sched.weights import nice_to_weight
from .summary import build_result
from .sync import SyncRegistry
from .task import Process, Task, TaskState
from .trace import KILL_REASONS, Recorder
from .units import parse_duration

DEFAULT_SESSION = "cfssim"
#: set to ``0`` to run every simulation on the plain path (`Simulation`'s `fast_forward`)
FAST_FORWARD_VARIABLE = "CFSSIM_FAST_FORWARD"
KTHREAD_SESSION = "[kernel]"  # kernel threads: the root task group itself, never an autogroup


class Simulation:
    """One simulated machine. Times are int ns (strings like ``"10ms"`` are accepted).

    `period_phase_ns` maps cgroup paths to where their bandwidth period grid starts (ns, the
    first expiry; default 0): Linux 6.4+ gives every group's period timer its own random phase,
    which the real twin measures. `host` adds a real host's tick skew, background noise and
    page-fault cost (`cfssim.host.HostModel`; default: the ideal machine).

    `fast_forward` (default: on unless the environment variable ``CFSSIM_FAST_FORWARD`` is
    ``0``) selects the machine's fast paths — its own timer calendar drained between SimPy's
    events, idle-CPU bookkeeping for wakeups; off, the plain path gives the identical run.
    """

    def __init__(
        self,
        cpus: int = 2,
        policy: str = "eevdf",
        seed: int = 1,
        *,
        hz: int = 250,
        slice_ends: str = "tick",
        autogroup: bool = True,
        tunables: Mapping[str, int] | None = None,
        features: Mapping[str, bool] | None = None,
        period_phase_ns: Mapping[str, int | str] | None = None,
        host: HostModel | None = None,
        name: str = "custom",
        description: str = "",
        fast_forward: bool | None = None,
    ) -> None:
        if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= MAX_CPUS:
            raise ValueError(f"cpus: expected an integer from 1 to {MAX_CPUS}, found {cpus!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed: expected an integer, found {seed!r}")
        self.env = simpy.Environment()
        if fast_forward is None:
            fast_forward = os.environ.get(FAST_FORWARD_VARIABLE, "1") != "0"
        self.fast_forward = fast_forward
        self.period_phase_ns = {
            path: parse_duration(phase) for path, phase in (period_phase_ns or {}).items()
        }
        self.name = name
        self.description = description
        self.seed = seed
        self.policy_name = policy
        self.autogroup = autogroup
        self.tun = SchedTunables.for_machine(
            cpus,
            hz=hz,
            slice_ends=slice_ends,
            overrides=dict(tunables or {}),
            features=dict(features or {}),
        )
        self.rec = Recorder()
        self.groups: dict[str, TaskGroup] = {}
        self.cgroup_order: list[str] = []  # visible cgroups, trace index order
        self.root = self._new_group("/", None, CgroupConfig())
        self.host = host or HostModel()
        self.machine = Machine(
            self.env,
            self.tun,
            policy,
            self.root,
            self.rec,
            seed,
            self.host,
            fast_forward=fast_forward,
        )
        self.memory: MemoryController | None = None
        self.tasks: list[Task] = []
        self.processes: dict[str, Process] = {}
        self.behaviours: dict[str, Behaviour] = {}
        self.warnings: list[str] = []
        self.sync = SyncRegistry()
        self._thread_params: dict[str, dict[str, Any]] = {}
        self.event_log: list[dict[str, Any]] = []
        self._started = False

    # ==== building ========================================================================
    def _new_group(
        self, path: str, parent: TaskGroup | None, config: CgroupConfig, *, autogroup: bool = False
    ) -> TaskGroup:
        group = TaskGroup(
            path,
            parent,
            self.tun.cpus,
            config,
            bandwidth_slice_ns=self.tun.bandwidth_slice_ns,
            autogroup=autogroup,
        )
        group.bandwidth.set_phase(self.period_phase_ns.get(path, 0))
        self.groups[path] = group
        if not autogroup:
            group.index = len(self.cgroup_order)
            self.cgroup_order.append(path)
        return group

    def add_cgroup(
        self, path: str, config: CgroupConfig | Mapping[str, Any] | None = None
    ) -> TaskGroup:
        """Create cgroup `path` (and missing ancestors) from a `CgroupConfig` or a mapping of
        kernel file names to values (``{"cpu.shares": 2048, "memory.max": "64MiB"}``)."""
        if self._started:
            raise RuntimeError("cgroups must be added before run(); use write() for changes")
        if not path.startswith("/"):
            raise ValueError(f"cgroup paths start with '/', found {path!r}")
        if path in self.groups:
            group = self.groups[path]
        else:
            above = parent_path(path) or ROOT
            parent = self.groups.get(above) or self.add_cgroup(above)
            group = self._new_group(path, parent, CgroupConfig())
        if isinstance(config, CgroupConfig):
            group.apply_weight(config)
        elif config:
            for file, value in config.items():
                group.apply_weight(apply_write(group.config, file, value, is_root=path == "/"))
        return group

    def add_process(
        self,
        name: str,
        behaviour: Behaviour,
        *,
        threads: int = 1,
        nice: int = 0,
        cgroup: str = "/",
        cpus: Iterable[int] | None = None,
        start: int | str = 0,
        policy: str = "normal",
        rt_priority: int = 0,
        oom_score_adj: int = 0,
        slice: int | str | None = None,
        session: str | None = None,
    ) -> Process:
        """Add a process of `threads` threads, each running its own copy of `behaviour`."""
        if self._started:
            raise RuntimeError("processes must be added before run()")
        if name in self.processes:
            raise ValueError(f"a process named {name!r} exists already")
        group = self.add_cgroup(cgroup) if cgroup not in self.groups else self.groups[cgroup]
        process = Process(len(self.processes), name, session or DEFAULT_SESSION, oom_score_adj)
        process.cgroup = group.path
        self.processes[name] = process
        affinity = self._affinity(name, range(self.tun.cpus) if cpus is None else cpus)
        slice_ns = None if slice is None else parse_duration(slice)
        start_ns = parse_duration(start)
        self._thread_params[name] = {
            "nice": nice,
            "policy": policy,
            "rt_priority": rt_priority,
            "affinity": affinity,
            "slice_ns": slice_ns,
        }
        for _ in range(threads):
            self._new_thread(process, group, behaviour, start_ns)
        self.behaviours[name] = behaviour
        return process

    def _new_thread(
        self, process: Process, group: TaskGroup, behaviour: Behaviour, start_ns: int
    ) -> Task:
        task = Task(
            len(self.tasks),
            f"{process.name}/{len(process.threads)}",
            process,
            **self._thread_params[process.name],
        )
        task.sim = self
        task.random = np.random.default_rng([self.seed, task.tid])
        process.threads.append(task)
        self.tasks.append(task)
        self._attach(task, group)
        task.proc = self.env.process(self._life(task, behaviour, start_ns))
        return task

    # ==== synchronisation and thread requests (cfssim.sync; rt-app's events) ===============
    def fork(self, process: str, behaviour: Behaviour | None = None) -> Task:
        """A new thread of `process` starts now (``clone``), running `behaviour` (default: the
        process's own), with the process's settings, in the process's current cgroup."""
        proc = self.processes[process]
        return self._new_thread(
            proc, self.groups[proc.cgroup], behaviour or self.behaviours[process], 0
        )

    def request_block(self, task: Task, wake: simpy.Event) -> simpy.Event:
        """Block `task` until `wake` fires (a mutex, condition, barrier…); it becomes runnable
        with its next run request, like a sleeper."""
        return self._block_until(task, wake)

    def request_runtime(self, task: Task, ns: int) -> simpy.Event:
        """Stay runnable for `ns` of wall time (rt-app ``runtime``: a loop on the clock), however
        much CPU that brings: the request ends at now + `ns` if the task is running then, else
        the next time it runs (it must run to see the clock)."""
        done = self.env.event()
        if ns <= 0:
            done.succeed()
            return done
        self.request_run(task, None)
        task.run_event = done
        machine = self.machine

        def end(_: simpy.Event) -> None:
            if task.run_event is not done or task.state is not TaskState.RUNNABLE:
                return
            rq = machine.rqs[task.cpu]
            if rq.curr is task:
                machine.update_curr(rq)
            task.forever = False
            task.remaining = 0
            machine.touch(rq)
            machine.flush()

        self.env.timeout(ns).callbacks.append(end)
        return done

    def set_affinity(self, process: str, cpus: Iterable[int], thread: int | None = None) -> None:
        """``sched_setaffinity``: the threads may run on `cpus` (within their cpuset); a
        runnable thread on a CPU no longer allowed moves."""
        proc = self._process(process)
        affinity = self._affinity(process, cpus)
        with self.machine.batch():
            for task in self._thread(proc, thread):
                if task.state is TaskState.DEAD or task.affinity == affinity:
                    continue
                task.affinity = affinity
                if task.group is not None:
                    self._allow(task, task.group)
                self._reselect_cpu(task)

    def _affinity(self, process: str, cpus: Iterable[int]) -> frozenset[int]:
        """`cpus` as an affinity mask, refused when empty or beyond the machine's CPUs."""
        affinity = frozenset(cpus)
        if not affinity or not affinity <= frozenset(range(self.tun.cpus)):
            raise ValueError(f"{process}: cpus {sorted(affinity)} outside 0..{self.tun.cpus - 1}")
        return affinity

    def _autogroup(self, session: str) -> TaskGroup:
        path = f"/autogroup-{session}"
        return self.groups.get(path) or self._new_group(
            path, self.root, CgroupConfig(), autogroup=True
        )

    def _attach(self, task: Task, group: TaskGroup) -> None:
        """Put `task` in `group` (its session's autogroup when that is the root)."""
        if group is self.root and self.autogroup and task.process.session != KTHREAD_SESSION:
            group = self._autogroup(task.process.session)
        task.group = group
        task.acct = [g.usage for g in group.cgroup().ancestors()]
        self._allow(task, group)
        if task.cpu >= 0:
            self.machine.set_task_cpu(task, task.cpu)

    def _allow(self, task: Task, group: TaskGroup) -> None:
        """The CPUs `task` may use: its affinity within `group`'s cpuset — all of the cpuset
        when they do not meet (``cpuset_cpus_allowed_fallback``)."""
        cpuset = effective_cpus(group, self.tun.cpus)
        task.set_allowed(task.affinity & cpuset or cpuset)

    # ==== behaviour requests (called through Task.run/sleep/alloc/free) ====================
    def _life(self, task: Task, behaviour: Behaviour, start: int) -> Any:
        if start:
            try:
                yield self.env.timeout(start)
            except simpy.Interrupt:  # killed before it started: it never runs
                return
        code: int | None = 0
        try:
            yield from behaviour(task)
        except TaskExit as stop:
            code = stop.code
        except simpy.Interrupt:
            return
        except BehaviourError as err:
            self.warnings.append(str(err))
            code = None
        if task.state is not TaskState.DEAD:
            self.exit_task(task, "exited", code)

    def request_run(self, task: Task, ns: int | None) -> simpy.Event:
        event = self.env.event()
        if ns is not None and ns <= 0:
            event.succeed()
            return event
        task.run_event = event
        task.remaining = ns
        task.forever = ns is None
        machine = self.machine
        if task.state is TaskState.SLEEPING:
            machine.wake_up(task)
        elif task.state is TaskState.NEW:
            machine.wake_up(task, new=True)
        else:
            machine.resume_running(task)
        return event

    def request_sleep(self, task: Task, ns: int, hrtimer: bool = True) -> simpy.Event:
        """Block `task` for `ns`: a sleep or timer step is an hrtimer, which may fire up to the
        task's timer slack late (`Machine.hrtimer_delay`); other waits (`hrtimer` False) are
        exact."""
        machine = self.machine
        if task.state is TaskState.RUNNABLE:
            machine.block(task)
        ns = max(0, ns)
        return self.env.timeout(machine.hrtimer_delay(task, ns) if hrtimer and ns else ns)

    def request_alloc(self, task: Task, nbytes: int) -> simpy.Event:
        """Fault in `nbytes`: charge the memcg page by page; on failure run the memcg OOM
        killer, or wait (``oom_kill_disable``, a victim still exiting); memory.high delays."""
        event = self.env.event()
        self.env.process(self._alloc(task, nbytes, event))
        return event

    def _alloc(self, task: Task, nbytes: int, done: simpy.Event) -> Any:
        memory = self._memory()
        process = task.process
        fault_ns = self.host.page_fault_ns
        left = nbytes
        while left > 0:
            memcg = memory[process.cgroup]
            # page by page in the kernel, a charge batch at a time here when it matters: each
            # batch's faults (and zeroing) run on the thread, and a memory.high overage is
            # handled on the return to user space after each batch
            # (`mem_cgroup_handle_over_high` with memcg_nr_pages_over_high = one batch)
            batched = fault_ns or memory.has_high(memcg)
            batch = min(left, MEMCG_CHARGE_BATCH * PAGE_SIZE) if batched else left
            charge = memory.charge(memcg, batch)
            self._charged(process, memcg.path, charge.charged)
            left -= charge.charged
            if fault_ns and charge.charged:
                yield self.request_run(task, pages_for(charge.charged) * fault_ns)
            if charge.penalty_ns and task.state is not TaskState.DEAD:
                yield self.request_sleep(task, charge.penalty_ns, hrtimer=False)
            if task.state is TaskState.DEAD:  # killed meanwhile: its exit uncharged it all
                return
            if charge.failed is None:
                continue
            decision = memory.mem_cgroup_oom(
                charge.failed, self._mem_processes(), waiter=task, charger=process
            )
            if decision.action is OomAction.KILL:
                self._oom_kill(decision)
                if task.state is TaskState.DEAD:
                    return
                continue
            # WAIT_OOM / WAIT_VICTIM / NO_VICTIM: sleep until memory is uncharged or limits rise
            wake = self.env.event()
            task.memory_wake = wake
            self.rec.add("oom_waits", task.tid, int(self.env.now), 1)
            yield self._block_until(task, wake)
            self.rec.add("oom_waits", task.tid, int(self.env.now), 0)
            if task.state is TaskState.DEAD:
                return
            # woken, it retries the fault in its own context (``mem_cgroup_oom_synchronize``
            # returns, the fault repeats): with faults that cost CPU time it must get a CPU
            # first, and a kill it then decides comes at that moment, not at the wakeup (on
            # the ideal machine faults are free and take no turn on a CPU)
            yield self.request_run(task, fault_ns)
            if task.state is TaskState.DEAD:
                return
        done.succeed()

    def _block_until(self, task: Task, wake: simpy.Event) -> simpy.Event:
        if task.state is TaskState.RUNNABLE:
            self.machine.block(task)
        return wake

    def _wake_memory_waiters(self, woken: Iterable[object]) -> None:
        for waiter in woken:
            if isinstance(waiter, Task) and waiter.memory_wake is not None:
                event, waiter.memory_wake = waiter.memory_wake, None
                event.succeed()

    def request_free(self, task: Task, nbytes: int | None) -> simpy.Event:
        process = task.process
        self._uncharge(process, nbytes)
        event = self.env.event()
        event.succeed()
        return event

    def _memory(self) -> MemoryController:
        if self.memory is None:
            configs = {path: self.groups[path].config for path in self.cgroup_order}
            self.memory = MemoryController(configs, hz=self.tun.hz)
        return self.memory

    def _mem_processes(self) -> list[Process]:
        return list(self.processes.values())

    def _charged(self, process: Process, path: str, nbytes: int) -> None:
        if not nbytes:
            return
        process.charged[path] = process.charged.get(path, 0) + nbytes
        process.rss += nbytes
        process.max_rss = max(process.max_rss, process.rss)
        self._sample_memory(path)

    def _uncharge(self, process: Process, nbytes: int | None) -> None:
        """Release `nbytes` (None: all) of `process`'s memory, newest charges first. Like
        ``munmap``, a partial page counts whole (charges are whole pages, so rss stays a page
        multiple); freeing more than the process holds frees what it holds."""
        if self.memory is None:
            return
        want = process.rss if nbytes is None else min(pages_for(nbytes) * PAGE_SIZE, process.rss)
        woken: list[object] = []
        for path in reversed(list(process.charged)):
            if want <= 0:
                break
            take = min(want, process.charged[path])
            process.charged[path] -= take
            if not process.charged[path]:
                del process.charged[path]
            process.rss -= take
            want -= take
            woken.extend(self.memory.uncharge(self.memory[path], take))
            self._sample_memory(path)
        self._wake_memory_waiters(woken)

    def _sample_memory(self, path: str) -> None:
        assert self.memory is not None
        now = int(self.env.now)
        for memcg in self.memory[path].lineage():
            limit = memcg.limit
            self.rec.add(
                "memory",
                self.groups[memcg.path].index,
                now,
                memcg.usage,
                -1 if limit is None else limit,
            )

    # ==== life and death ==================================================================
    def exit_task(self, task: Task, reason: str, code: int | None = 0) -> None:
        """The thread ends (``do_exit``); the last thread of a process frees its memory."""
        if task.state is TaskState.DEAD:
            return
        self.machine.block(task, TaskState.DEAD)
        task.exit = {"time_ns": int(self.env.now), "reason": reason, "code": code}
        process = task.process
        if not process.alive:
            process.exit = task.exit
            self._uncharge(process, None)
            if self.memory is not None:  # an exiting victim wakes waiters even with rss 0
                self._wake_memory_waiters(self.memory.uncharge(self.memory[process.cgroup], 0))

    def kill_process(self, process: Process, reason: str = "killed") -> None:
        """SIGKILL every thread of `process` (the OOM killer's ``oom_kill_process``)."""
        if not process.alive:
            return
        for task in process.threads:
            self._kill_thread(task, reason)

    def _kill_thread(self, task: Task, reason: str) -> None:
        """SIGKILL one thread: recorded, exited, its behaviour stopped (an exited thread:
        nothing, as ``tgkill`` gives ESRCH)."""
        if task.state is TaskState.DEAD:
            return
        group = self.groups[task.process.cgroup]
        self.rec.add("kills", task.tid, group.index, int(self.env.now), KILL_REASONS.index(reason))
        proc = task.proc
        self.exit_task(task, reason, None)
        if proc is not None and proc.is_alive and proc is not self.env.active_process:
            proc.interrupt("killed")

    # ==== runtime changes (scenario events, or research code) ==============================
    def at(self, time: int | str, action: Callable[[], None]) -> None:
        """Call `action` at simulated time `time` (now, if that has passed); the machine then
        acts on whatever the action disturbed."""

        def fire() -> None:
            action()
            self.machine.flush_unless_batched()

        HrTimer(self.machine.calendar, fire).start(parse_duration(time))

    def _group(self, path: str, argument: str) -> TaskGroup:
        """The cgroup at `path`, or a ValueError naming `argument` and the cgroups there are."""
        return _lookup(self.groups, path, argument, "cgroup", self.cgroup_order)

    def _process(self, name: str) -> Process:
        """The process `name`, or a ValueError naming the processes there are."""
        return _lookup(self.processes, name, "process", "process", list(self.processes))

    @staticmethod
    def _thread(proc: Process, thread: int | None) -> list[Task]:
        """The threads an action applies to: all of `proc`'s, or its `thread`-th."""
        if thread is None:
            return list(proc.threads)
        if (
            isinstance(thread, bool)
            or not isinstance(thread, int)
            or not 0 <= thread < len(proc.threads)
        ):
            raise ValueError(
                f"thread: expected a thread index from 0 to "
                f"{len(proc.threads) - 1} of {proc.name!r}, found {thread!r}"
            )
        return [proc.threads[thread]]

    def _log(self, kind: str, process: str, thread: int | None, value: Any) -> None:
        """One entry of ``meta.events``: ``{"time_ns": …, kind: {process[/thread]: value}}``."""
        who = process if thread is None else f"{process}/{thread}"
        self.event_log.append({"time_ns": int(self.env.now), kind: {who: value}})

    def write(self, path: str, files: Mapping[str, Any]) -> None:
        """Write cgroup files now, with the kernel's effects (``echo V > path/file``)."""
        group = self._group(path, "path")
        if not isinstance(files, Mapping):
            raise ValueError(
                f"files: expected a mapping of cgroup file names to values, such "
                f"as {{'cpu.shares': 512}}, found {describe(files)}"
            )
        old = group.config
        config = old
        for file, value in files.items():
            config = apply_write(config, file, value, is_root=path == "/")
        if config.cpus != old.cpus and config.interface == "v1":
            refused = self._cpuset_refused(group, config.cpus)
            if refused is not None:
                self.event_log.append(
                    {"time_ns": int(self.env.now), "path": path, "error": refused}
                )
                config = dataclasses.replace(config, cpus=old.cpus)
        if self.memory is not None:
            try:
                self._wake_memory_waiters(self.memory.apply_config(self.memory[path], config))
            except MemoryLimitBusy as busy:
                self.event_log.append(
                    {"time_ns": int(self.env.now), "path": path, "error": str(busy)}
                )
                config = config.__class__(**{**config.__dict__, "memory_limit": old.memory_limit})
            self._enforce_memory_max(path)
        group.apply_weight(config)
        if BANDWIDTH_FILES.intersection(files):  # every such write refills and unthrottles
            self.machine.tg_set_cfs_bandwidth(
                group, config.period_ns, config.quota_ns, config.burst_ns
            )
        if config.shares != old.shares or config.idle != old.idle:
            for se in group.se:
                if se is not None:
                    self.machine.update_cfs_group(se)
        if config.cpus != old.cpus:
            for task in self.tasks:
                if task.group is not None and group in task.group.ancestors():
                    self._attach(task, task.group)
                    self._reselect_cpu(task)
        self.event_log.append({"time_ns": int(self.env.now), "write": {path: dict(files)}})
        self.machine.flush_unless_batched()

    def _cpuset_refused(self, group: TaskGroup, cpus: frozenset[int] | None) -> str | None:
        """cgroup v1 ``validate_change`` for a ``cpuset.cpus`` write (`validate_cpuset_change`:
        EBUSY, EACCES); a refused write changes nothing. Returns the write error, or None. (v2
        accepts any set: children fall back to their parent's CPUs, see `effective_cpus`.)"""
        if cpus is None:
            return None
        configs = {path: tg.config for path, tg in self.groups.items()}
        refusal = validate_cpuset_change(configs, group.path, cpus)
        return None if refusal is None else refusal.write_error()

    def _enforce_memory_max(self, path: str) -> None:
        """v2 ``memory.max`` below usage: OOM-kill until usage fits (``memory_max_write``)."""
        assert self.memory is not None
        memcg = self.memory[path]
        while True:
            decision = self.memory.enforce_max(memcg, self._mem_processes())
            if decision is None or decision.action is not OomAction.KILL:
                return
            self._oom_kill(decision)

    def _oom_kill(self, decision: OomDecision) -> None:
        """``oom_kill_process``: SIGKILL the chosen victims (the whole group with oom.group)."""
        reason = KILL_REASONS[1] if decision.oom_group else KILL_REASONS[0]
        for victim in decision.victims:
            assert isinstance(victim, Process)
            self.kill_process(victim, reason)

    def _reselect_cpu(self, task: Task) -> None:
        """Move a runnable task off a CPU it may no longer use; a sleeper still queued there
        (DELAY_DEQUEUE) completes its dequeue, so that its wakeup chooses an allowed CPU."""
        if task.cpu in task.allowed:
            return
        if task.state is not TaskState.RUNNABLE:
            if task.se.sched_delayed:
                with self.machine.batch():
                    self.machine.finish_delayed_dequeue(task)
            return
        machine = self.machine
        src = machine.rqs[task.cpu]
        machine.detach_running(task)
        dst = machine.rqs[machine.select_task_rq(task, new=True)]
        machine.move_queued_task(task, src, dst)

    def move(self, process: str, to: str, thread: int | None = None) -> None:
        """``echo pid > /sys/fs/cgroup/<to>/cgroup.procs`` (or one thread's tid)."""
        proc = self._process(process)
        group = self._group(to, "to")
        threads = self._thread(proc, thread)
        with self.machine.batch():
            for task in threads:
                if task.state is not TaskState.DEAD:
                    self.machine.move_group(task, partial(self._attach, task, group))
                    self._reselect_cpu(task)
        if thread is None:
            proc.cgroup = to  # new pages are charged here; old charges stay where they were
        self._log("move", process, thread, to)

    def set_nice(self, process: str, value: int, thread: int | None = None) -> None:
        """``setpriority``/``renice``: a new weight for the threads."""
        proc = self._process(process)
        threads = self._thread(proc, thread)
        if isinstance(value, bool) or not isinstance(value, int) or not -20 <= value <= 19:
            raise ValueError(f"value: expected a nice level from -20 to 19, found {value!r}")
        with self.machine.batch():
            for task in threads:
                task.nice = value
                if task.policy != "idle":
                    self.machine.set_user_nice(task, nice_to_weight(value))
        self._log("nice", process, thread, value)

    def kill(self, process: str, thread: int | None = None) -> None:
        """``kill -9`` the process (or ``tgkill`` one thread); recorded in ``meta.events``."""
        proc = self._process(process)
        threads = self._thread(proc, thread)
        self._log("kill", process, thread, "SIGKILL")
        if thread is None:
            self.kill_process(proc, "killed")
        else:
            self._kill_thread(threads[0], "killed")

    # ==== running =========================================================================
    def run(self, until: int | str, progress: Callable[[int, int], None] | None = None) -> Result:
        """Run to simulated time `until` and return the `Result`. `progress(now, until)` is
        called every simulated 1% when given."""
        end = parse_duration(until)
        if end <= 0:
            raise ValueError(f"the run must last a positive time, found {until!r}")
        self._start()
        if progress is None:
            self.env.run(until=end)
        else:
            step = max(1, end // 100)
            for mark in range(step, end + step, step):
                self.env.run(until=min(mark, end))
                progress(int(self.env.now), end)
        # each replay ended before the run's end: its bound (`Replaying.foreign_bound`) is at
        # latest the run's own stop event
        assert not any(rq.cycle is not None and rq.cycle.replaying for rq in self.machine.rqs)
        return build_result(self, end)

    def _start(self) -> None:
        if self._started:
            return
        self._add_host_noise()
        self._started = True
        self._check_period_phases()
        for group in self.groups.values():
            config = group.config
            if config.quota_ns is not None:
                self.machine.tg_set_cfs_bandwidth(
                    group, config.period_ns, config.quota_ns, config.burst_ns
                )
        self._memory()

    def _add_host_noise(self) -> None:
        """The host's background activity: one kernel-thread-like task pinned to each CPU (in
        the root task group, after the workload's tasks so their ids do not change)."""
        host = self.host
        for cpu in range(self.tun.cpus):
            noise = host.of_cpu(host.noise, cpu, None)
            if noise is not None:
                name = NOISE_PROCESS.format(cpu=cpu)
                behaviour = noise_behaviour(noise)
                self.add_process(name, behaviour, cpus=[cpu], session=KTHREAD_SESSION)

    def _check_period_phases(self) -> None:
        for path in self.period_phase_ns:
            if path not in self.groups or path == "/":
                raise ValueError(
                    f"period_phase_ns: expected a cgroup below / (one of "
                    f"{', '.join(p for p in self.cgroup_order if p != '/')}), found {path!r}"
                )


_Found = TypeVar("_Found")


def _lookup(
    table: Mapping[str, _Found], key: str, argument: str, noun: str, names: list[str]
) -> _Found:
    """``table[key]``, or a ValueError naming `argument`, the `names` there are and the
    nearest."""
    found = table.get(key) if isinstance(key, str) else None
    if found is None:
        raise ValueError(
            f"{argument}: expected a {noun} of this simulation ({name_list(names)}), found "
            f"{quoted(key)}{did_you_mean(key, names)}"
        )
    return found


def from_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    policy: str | None = None,
    behaviours: Mapping[str, Behaviour] | None = None,
) -> Simulation:
    """Build a `Simulation` from a validated `Scenario`; `behaviours` replaces the compiled
    program of the processes it names (e.g. rt-app's exact periodic timers)."""
    behaviours = behaviours or {}
    machine = scenario.machine
    profile = scenario.machine_profile()
    # a profile's figures (hz, slice ends, tunables) unless the scenario gives its own
    measured = profile.machine_settings() if profile is not None else {}
    given = machine.model_fields_set
    sim = Simulation(
        cpus=machine.cpus,
        policy=policy or machine.policy,
        seed=scenario.seed if seed is None else seed,
        hz=machine.hz if "hz" in given else measured.get("hz", machine.hz),
        slice_ends=machine.slice_ends
        if "slice_ends" in given
        else measured.get("slice_ends", machine.slice_ends),
        autogroup=machine.autogroup,
        tunables={
            **{k: v for k, v in measured.items() if k not in ("hz", "slice_ends")},
            **machine.tunables,
        },
        features=machine.features,
        period_phase_ns=machine.period_phase_ns,
        host=machine.host_model(profile),
        name=scenario.name,
        description=scenario.description,
    )
    for path, config in scenario.cgroups.items():
        if path != "/":
            sim.add_cgroup(path, config)
        else:
            sim.root.apply_weight(config)
    for spec in scenario.processes:
        sim.add_process(
            spec.name,
            behaviours.get(spec.name) or compile_program(spec.program, spec.repeat),
            threads=spec.threads,
            nice=spec.nice,
            cgroup=spec.cgroup,
            cpus=spec.cpus,
            start=spec.start_ns,
            policy=spec.policy,
            rt_priority=spec.rt_priority,
            oom_score_adj=spec.oom_score_adj,
            slice=spec.slice_ns,
            session=spec.session,
        )
    parties = barrier_parties([(spec.program, spec.threads) for spec in scenario.processes])
    for name, count in parties.items():
        sim.sync.barrier(name, count)
    for event in scenario.events:
        sim.at(event.at_ns, _event_action(sim, event))
    return sim


def _event_action(sim: Simulation, event: Any) -> Callable[[], None]:
    if event.write is not None:
        return lambda: sim.write(event.write.path, event.write.files)
    if event.move is not None:
        return lambda: sim.move(event.move.process, event.move.to, event.move.thread)
    if event.nice is not None:
        return lambda: sim.set_nice(event.nice.process, event.nice.value, event.nice.thread)
    return lambda: sim.kill(event.kill.process, event.kill.thread)


def run_scenario(
    scenario: Scenario,
    *,
    seed: int | None = None,
    policy: str | None = None,
    duration_ns: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    behaviours: Mapping[str, Behaviour] | None = None,
) -> Result:
    """Simulate `scenario` (optionally overriding seed, policy, duration and behaviours)."""
    sim = from_scenario(scenario, seed=seed, policy=policy, behaviours=behaviours)
    return sim.run(duration_ns or scenario.duration_ns, progress=progress)
