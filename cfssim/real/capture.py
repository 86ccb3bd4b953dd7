"""`cfssim capture`: record a real program's scheduling with tracefs and write it as a scenario.

`capture(command=[...])` starts the command in a fresh ``cfssim-<pid>.<start>-<n>`` cgroup
(scenario cgroup ``/app``, with the limits given); `capture(pid=PID)` attaches to a running
process and its children where they are. A private tracefs instance (a `TraceSession` named like
the run's cgroups, so that ``cfssim measure --cleanup`` removes a crashed capture's too) records
``sched_switch``, ``sched_wakeup``/``_new``, ``sched_process_fork``/``_exit``,
``sched_migrate_task`` and ``rseq_update`` for the process tree (``set_event_pid`` with the
``event-fork`` option: children join the filter as they are forked). Every
`SAMPLE_INTERVAL_NS` the threads' comm, nice (``/proc/<tid>/stat``), affinity
(``sched_getaffinity``), policy and vruntime, and each process's anonymous memory (``RssAnon``)
and peak RSS are sampled. Recording stops at the duration or when every traced thread
has exited; the command, the cgroups and the instance are removed afterwards, always (Ctrl-C and
SIGTERM included).

`build_scenario` turns what was recorded into a scenario (pure: same recording, same YAML):

- one process per real process, one thread per real thread (a ``per_thread`` step: each thread's
  own program, ``name`` its comm, ``woken_by`` the traced threads whose context woke it, with
  counts: the waker of ``sched_wakeup`` is the task the event was emitted from);
- exact replay (the default): a thread's CPU bursts and sleeps as ``run`` and ``sleep`` steps. A
  burst is the CPU time from a wakeup to the switch-out into a sleep; a switch-out with
  ``prev_state`` R (preempted) continues the burst. A sleep lasts from that switch-out to the
  wakeup (the wait after the wakeup is the scheduler's, which the simulation reproduces). The
  trace has 1 µs resolution: sleeps below `MIN_STEP_NS` join the runs around them, and runs below
  it give their CPU time to the next run and join the sleeps around them (counted in the
  description);
- ``--model``: per thread, ``draw`` steps from its empirical burst and sleep distributions
  (`MODEL_POINTS` quantiles), as many bursts as it had (forever if it was still running), drawn
  with the scenario seed;
- memory: each process's RssAnon as ``alloc``/``free`` steps of its main thread at the sampled
  times (changes below `MEMORY_RESOLUTION_BYTES` are ignored; with ``--model`` the level at the
  end is allocated at the start);
- nice and affinity: the main thread's as the process's; other threads' nice as ``nice`` events
  at 0 s; affinity and policy that differ per thread are named in the description.

What the capture cannot see: it sees on-CPU and off-CPU time, not why a thread was off the CPU —
I/O waits, page faults, lock contention and futex waits all appear as sleeps of the length they
had on this machine; kernel threads doing work on the program's behalf (writeback, kworkers) are
not traced; the wakeup chain is recorded as metadata only (the scenario model has no wait/signal
primitive: a replayed thread sleeps for the captured time whether or not its waker ran).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .. import _signals
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupConfig, CgroupFileError
from ..ftrace import FORK, SWITCH, TASK, WAKEUP, Event, parse_trace
from ..result import (
    Result,
    RunMeta,
    cgroup_figures,
    cpu_stat_figures,
    latency_figures,
    task_figures,
)
from ..scenario import (
    Scenario,
    cgroup_files,
    dump_data,
    exact_duration,
    exact_size,
    load_scenario,
)
from ..task import SCHED_POLICIES
from ..units import NSEC_PER_MSEC, NSEC_PER_SEC, format_duration
from . import procfs
from .cgroupfs import Driver, detect, make_driver, parse_flat_keyed, tasks_in
from .errors import Refused
from .measure import BACKGROUND_WARNING, MAX_DURATION_NS
from .tracefs import Tables, TraceSession, events_to_tables

APP = "/app"
SAMPLE_INTERVAL_NS = 10 * NSEC_PER_MSEC
HOLD_TIMEOUT_S = 5.0  # for the shell holding the command to stop itself
#: Shortest run or sleep written (the trace's resolution is 1 µs).
MIN_STEP_NS = 1_000
#: Smallest change of a process's anonymous memory written as an alloc or free step.
MEMORY_RESOLUTION_BYTES = 256 * 1024
#: Quantiles kept per distribution with ``--model``.
MODEL_POINTS = 33
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
_UNLIMITED_MEMORY = 1 << 62  # v1 reports "no limit" as PAGE_COUNTER_MAX pages, ~2^63 bytes
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:+-]+")


# ---- what a capture records -------------------------------------------------------------------
@dataclass
class ThreadInfo:
    """A traced thread as sampled from /proc (``tgid`` None: never seen there); `vruntime`
    (ns, ``se.vruntime``) and its process's peak RSS (bytes, VmHWM) as last sampled."""

    tid: int
    tgid: int | None = None
    comm: str = ""
    nice: int = 0
    cpus: tuple[int, ...] | None = None
    policy: str = "normal"
    vruntime: int = 0
    max_rss_bytes: int | None = None


@dataclass
class Recording:
    """Everything a capture saw: the trace text (times on CLOCK_MONOTONIC), t0 and the
    duration (ns), the threads, each process's RssAnon samples ((ns since t0, bytes)), the
    cgroup's limits and its figures (cpu.stat counted from t0)."""

    trace: str
    t0: int
    duration_ns: int
    cpus: int
    threads: dict[int, ThreadInfo]
    rss: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    limits: CgroupConfig = field(default_factory=CgroupConfig)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    command: str = ""
    hz: int = 250
    lost_events: int = 0
    background_cpu_fraction: float | None = None  # others' CPU use, of the machine's capacity

    @cached_property
    def events(self) -> list[Event]:
        """The trace's events (`cfssim.ftrace.parse_trace`), parsed once."""
        return list(parse_trace(self.trace))


# ---- from a recording to a scenario -----------------------------------------------------------
@dataclass
class Entry:
    """One step of a thread's timeline: ``run`` (CPU ns) or ``sleep`` (ns), or an instant
    ``alloc``/``free`` (bytes); `wall` is where it began (ns since t0)."""

    kind: str
    value: int
    wall: int


@dataclass
class ThreadTimeline:
    tid: int
    start: int  # first seen (ns since t0)
    entries: list[Entry] = field(default_factory=list)
    exited: bool = False
    exit_ns: int | None = None  # its sched_process_exit (ns since t0)
    running_at_end: bool = False
    woken_by: Counter[int] = field(default_factory=Counter)
    merged_runs: int = 0
    merged_sleeps: int = 0
    # the kernel's counters, from the trace (``/proc/<pid>/sched`` and ``schedstat`` names)
    timeslices: int = 0  # switch-ins (pcount): its switch-outs, and 1 if on a CPU at the end
    voluntary: int = 0  # switch-outs into a sleep (nvcsw)
    involuntary: int = 0  # switch-outs still runnable, prev_state R (nivcsw)
    wait_ns: int = 0  # runnable, not running: wakeup to switch-in, preemption to switch-in
    migrations: int = 0  # sched_migrate_task to another CPU


def thread_timelines(
    rec: Recording, tables: Tables, index: dict[int, int]
) -> dict[int, ThreadTimeline]:
    """Each traced thread's bursts and sleeps (`index`: tid → task index of `tables`)."""
    tids = {task: tid for tid, task in index.items()}
    states: dict[tuple[int, int], str] = {}  # (tid, switch-out time) → prev_state
    first: dict[int, int] = {}
    exits: dict[int, int] = {}
    wakers: dict[tuple[int, int], int] = {}  # (tid, wake time) → waker tid
    migrations: Counter[int] = Counter()
    switched_out: Counter[tuple[int, bool]] = Counter()  # (tid, still runnable) → switch-outs
    for event in rec.events:
        time_ns = event.time_ns - rec.t0
        if event.name == "sched_switch" and (switch := SWITCH.match(event.body)):
            prev, nxt = int(switch["prev_pid"]), int(switch["next_pid"])
            states[(prev, time_ns)] = switch["state"]
            if 0 <= time_ns <= rec.duration_ns:
                switched_out[(prev, switch["state"].startswith("R"))] += 1
            for tid in (prev, nxt):
                first.setdefault(tid, time_ns)
        elif event.name in ("sched_wakeup", "sched_wakeup_new") and (
            wakeup := WAKEUP.match(event.body)
        ):
            woken = int(wakeup["pid"])
            first.setdefault(woken, time_ns)
            wakers[(woken, time_ns)] = event.pid
        elif event.name == "sched_process_exit" and (gone := TASK.match(event.body)):
            exits[int(gone["pid"])] = time_ns
        elif event.name == "sched_process_fork" and (fork := FORK.match(event.body)):
            first.setdefault(int(fork["child_pid"]), time_ns)
        elif (
            event.name == "sched_migrate_task"
            and (moved := TASK.match(event.body))
            and event.fields.get("orig_cpu") != event.fields.get("dest_cpu")
        ):
            migrations[int(moved["pid"])] += 1
    segments: dict[int, list[tuple[int, int]]] = {}
    for _cpu, task, start, end in tables.segments:
        segments.setdefault(task, []).append((start, end))
    wake_of_run: dict[tuple[int, int], int] = {
        (task, wake + latency): wake for task, _cpu, wake, latency in tables.wakeups
    }
    timelines = {}
    for task, tid in tids.items():
        line = ThreadTimeline(tid, max(0, min(first.get(tid, 0), rec.duration_ns)))
        line.exited, line.exit_ns = tid in exits, exits.get(tid)
        line.migrations = migrations[tid]
        line.voluntary, line.involuntary = switched_out[(tid, False)], switched_out[(tid, True)]
        cursor, burst, burst_wall, preempted = line.start, 0, 0, 0
        in_burst = on_cpu = False
        for start, end in segments.get(task, []):
            if not in_burst:
                wake = wake_of_run.get((task, start), start)
                line.wait_ns += start - wake
                waker = wakers.get((tid, wake))
                if waker is not None and waker in index and waker != tid:
                    line.woken_by[waker] += 1
                _append(line, "sleep", wake - cursor, cursor)
                in_burst, burst, burst_wall = True, 0, start
            else:
                line.wait_ns += start - preempted
            burst += end - start
            state = states.get((tid, end))
            on_cpu = state is None and end >= rec.duration_ns
            if state is not None and state.startswith("R"):
                preempted = end
                continue  # preempted: still runnable, the burst goes on
            _append(line, "run", burst, burst_wall)
            cursor, in_burst = end, False
            line.running_at_end = on_cpu
        line.timeslices = line.voluntary + line.involuntary + on_cpu
        if in_burst:  # still runnable (preempted) at the end
            _append(line, "run", burst, burst_wall)
            line.running_at_end = True
        elif not line.exited and not line.running_at_end and cursor < rec.duration_ns:
            _append(line, "sleep", rec.duration_ns - cursor, cursor)  # asleep at the end
        timelines[tid] = line
    for line in timelines.values():
        _merge_short(line)
    return timelines


def _append(line: ThreadTimeline, kind: str, value: int, wall: int) -> None:
    if value > 0 or kind == "run":
        line.entries.append(Entry(kind, value, wall))


def _merge_short(line: ThreadTimeline) -> None:
    """Below `MIN_STEP_NS`: a sleep joins the runs around it into one; a run gives its CPU
    time to the next run (the previous one if it is the last) and the sleeps around it join."""
    merged: list[Entry] = []
    carry = 0
    for entry in line.entries:
        if (
            entry.kind == "sleep"
            and entry.value < MIN_STEP_NS
            and merged
            and merged[-1].kind == "run"
        ):
            line.merged_sleeps += 1
            continue  # the next run joins the previous one
        if entry.kind == "run":
            value = entry.value + carry
            carry = 0
            if merged and merged[-1].kind == "run":
                merged[-1].value += value
                continue
            if value < MIN_STEP_NS:
                line.merged_runs += 1
                carry = value
                continue
            merged.append(Entry("run", value, entry.wall))
        elif merged and merged[-1].kind == "sleep":
            merged[-1].value += entry.value  # a short run between two sleeps was dropped
        else:
            merged.append(Entry(entry.kind, entry.value, entry.wall))
    if carry:
        last_run = next((e for e in reversed(merged) if e.kind == "run"), None)
        if last_run is not None:
            last_run.value += carry
        else:
            merged.append(Entry("run", carry, line.start))  # its only CPU time, kept
    line.entries = merged


def memory_steps(samples: Sequence[tuple[int, int]]) -> list[Entry]:
    """``alloc``/``free`` entries following a process's RssAnon samples: a step wherever the
    level moved `MEMORY_RESOLUTION_BYTES` or more from the level written so far (whole pages)."""
    steps: list[Entry] = []
    level = 0
    for time_ns, rss in samples:
        change = (rss - level) // PAGE_BYTES * PAGE_BYTES
        if abs(change) >= MEMORY_RESOLUTION_BYTES or (not steps and change > 0):
            steps.append(Entry("alloc" if change > 0 else "free", abs(change), time_ns))
            level += change
    return steps


def insert_instants(entries: list[Entry], instants: Iterable[Entry]) -> list[Entry]:
    """`entries` with the instant steps placed at their wall times: inside a sleep it is split,
    inside a run the step follows the run."""
    out = list(entries)
    for step in instants:
        position = len(out)
        for i, entry in enumerate(out):
            if entry.wall >= step.wall:
                position = i
                break
        before = out[position - 1] if position else None
        if before is not None and before.kind == "sleep" and before.wall + before.value > step.wall:
            split = step.wall - before.wall
            rest = Entry("sleep", before.value - split, step.wall)
            before.value = split
            out[position:position] = [step, rest]
        else:
            out.insert(position, Entry(step.kind, step.value, step.wall))
    return [e for e in out if e.kind != "sleep" or e.value > 0]


def exact_program(entries: Sequence[Entry], start: int | None = None) -> list[dict[str, Any]]:
    """Entries as scenario steps (YAML shape); with the process's `start` (ns since t0), each
    sleep is an ``until`` its captured wakeup time (since the start), else a ``sleep``."""
    program: list[dict[str, Any]] = []
    for entry in entries:
        if entry.kind == "sleep" and start is not None:
            program.append({"until": exact_duration(max(0, entry.wall + entry.value - start))})
        elif entry.kind in ("run", "sleep"):
            program.append({entry.kind: exact_duration(entry.value)})
        else:
            program.append({entry.kind: exact_size(entry.value)})
    return program


def quantiles(values: Sequence[int], points: int = MODEL_POINTS) -> list[int]:
    """At most `points` quantiles of `values` at equally spaced probabilities 0..1 (all the
    sorted values when there are fewer), int ns."""
    ordered = sorted(values)
    if len(ordered) <= points:
        return ordered
    probabilities = np.linspace(0.0, 1.0, points)
    return [round(float(v)) for v in np.quantile(np.array(ordered), probabilities)]


def model_program(line: ThreadTimeline, held_bytes: int) -> list[dict[str, Any]]:
    """The thread as draws from its burst and sleep distributions (see the module docstring)."""
    entries = list(line.entries)
    program: list[dict[str, Any]] = []
    if entries and entries[0].kind == "sleep" and entries[0].wall == line.start:
        program.append({"sleep": exact_duration(entries.pop(0).value)})  # until first woken
    if held_bytes > 0:
        program.append({"alloc": exact_size(held_bytes)})
    runs = [e.value for e in entries if e.kind == "run"]
    sleeps = [e.value for e in entries if e.kind == "sleep"]
    if not runs:
        if sleeps:
            program.append({"sleep": exact_duration(sum(sleeps))})
        return program or [{"sleep": "0s"}]
    run_draw = {"draw": {"run": [exact_duration(v) for v in quantiles(runs)]}}
    if not sleeps:
        program.append({"run": "forever"} if line.running_at_end else run_draw)
        return program
    body = [run_draw, {"draw": {"sleep": [exact_duration(v) for v in quantiles(sleeps)]}}]
    repeat: int | str = "forever" if not line.exited else len(runs)
    program.append({"loop": {"repeat": repeat, "program": body}})
    return program


def _process_name(comm: str, taken: set[str]) -> str:
    base = _NAME_CHARS.sub("_", comm).strip("_") or "process"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


@dataclass
class Built:
    """`build_scenario`'s output: the YAML-shaped data, and which real tid is which task."""

    data: dict[str, Any]
    task_of_tid: dict[int, str]
    notes: list[str]


def build_scenario(
    rec: Recording,
    *,
    name: str = "captured",
    model: bool = False,
    seed: int = 1,
    absolute: bool = True,
) -> Built:
    """The scenario (YAML-shaped data) replaying `rec` (see the module docstring)."""
    threads = dict(rec.threads)
    tables, index = _tables(rec, threads)
    timelines = thread_timelines(rec, tables, index)
    parents = _fork_parents(rec.events)
    for tid, info in threads.items():  # never sampled: a thread of the one that forked it
        parent = parents.get(tid)
        while info.tgid is None and parent is not None:
            info.tgid = threads[parent].tgid if parent in threads else None
            parent = parents.get(parent)
        if info.tgid is None:
            info.tgid = tid
        if not info.comm:
            info.comm = _last_comm(rec.events, tid) or str(tid)
    groups: dict[int, list[int]] = {}
    for tid, info in sorted(threads.items()):
        assert info.tgid is not None
        groups.setdefault(info.tgid, []).append(tid)
    notes: list[str] = []
    processes: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    task_of_tid: dict[int, str] = {}
    taken: set[str] = set()
    order = sorted(groups, key=lambda tgid: (min(timelines[t].start for t in groups[tgid]), tgid))
    for tgid in order:
        members = sorted(groups[tgid], key=lambda t: (t != tgid, timelines[t].start, t))
        main = threads[members[0]]
        pname = _process_name(main.comm, taken)
        for i, tid in enumerate(members):
            task_of_tid[tid] = f"{pname}/{i}"
    for tgid in order:
        members = sorted(groups[tgid], key=lambda t: (t != tgid, timelines[t].start, t))
        main = threads[members[0]]
        pname = task_of_tid[members[0]].rsplit("/", 1)[0]
        start = min(timelines[t].start for t in members)
        rss = memory_steps(rec.rss.get(tgid, []))
        per_thread = []
        for i, tid in enumerate(members):
            line = timelines[tid]
            offset = line.start - start
            if model:
                held = sum(e.value if e.kind == "alloc" else -e.value for e in rss) if i == 0 else 0
                program = model_program(line, held)
            else:
                entries = insert_instants(line.entries, rss) if i == 0 else line.entries
                program = exact_program(entries, start if absolute else None) or [{"sleep": "0s"}]
            if offset > 0:
                program = [
                    {"until" if absolute and not model else "sleep": exact_duration(offset)},
                    *program,
                ]
            woken_by = {
                task_of_tid[w]: n for w, n in sorted(line.woken_by.items()) if w in task_of_tid
            }
            thread_data: dict[str, Any] = {"name": threads[tid].comm}
            if woken_by:
                thread_data["woken_by"] = woken_by
            thread_data["program"] = program
            per_thread.append(thread_data)
            if line.merged_runs or line.merged_sleeps:
                notes.append(
                    f"{task_of_tid[tid]}: {line.merged_runs} run(s) and "
                    f"{line.merged_sleeps} sleep(s) below "
                    f"{format_duration(MIN_STEP_NS)} merged into their neighbours"
                )
            info = threads[tid]
            if info.nice != main.nice:
                events.append(
                    {"at": "0s", "nice": {"process": pname, "thread": i, "value": info.nice}}
                )
            if info.cpus != main.cpus or info.policy != main.policy:
                notes.append(
                    f"{task_of_tid[tid]}: affinity {info.cpus} / policy {info.policy} "
                    f"differ from its process's; the scenario gives it the process's"
                )
        process: dict[str, Any] = {"name": pname, "cgroup": APP}
        if len(members) > 1:
            process["threads"] = len(members)
        if main.nice:
            process["nice"] = main.nice
        if main.policy not in ("normal", "fifo", "rr"):
            process["policy"] = main.policy
        if main.cpus is not None and len(main.cpus) < rec.cpus:
            process["cpus"] = list(main.cpus)
        if start > 0:
            process["start"] = exact_duration(start)
        process["program"] = [{"per_thread": per_thread}]
        processes.append(process)
    if rec.lost_events:
        notes.append(f"the trace buffer overran: {rec.lost_events} events lost")
    kind = (
        "fitted model"
        if model
        else "exact replay, "
        + ("wakeups at their captured times" if absolute else "captured sleep lengths")
    )
    description = (
        f"Captured from `{rec.command}` for {format_duration(rec.duration_ns)} "
        f"({kind}). "
        "I/O, page-fault and lock waits appear as sleeps; wakeup causality is "
        "recorded in woken_by only."
    )
    if notes:
        description += " Notes: " + "; ".join(notes) + "."
    data: dict[str, Any] = {
        "name": name,
        "description": description,
        "duration": exact_duration(rec.duration_ns),
        "seed": seed,
        "machine": {"cpus": rec.cpus, "policy": "eevdf", "hz": rec.hz},
        "cgroups": {"/": {}, APP: cgroup_files(rec.limits)},
        "processes": processes,
    }
    if events:
        data["events"] = events
    return Built(data, task_of_tid, notes)


def _tables(rec: Recording, threads: dict[int, ThreadInfo]) -> tuple[Tables, dict[int, int]]:
    """The run segments and wakeups of every traced thread (those in `threads` and any other
    the trace shows forked by them, added to `threads`)."""
    for tid in _fork_parents(rec.events):
        threads.setdefault(tid, ThreadInfo(tid))
    index = {tid: i for i, tid in enumerate(sorted(threads))}
    return events_to_tables(rec.events, index, rec.t0, rec.duration_ns), index


def _fork_parents(events: Iterable[Event]) -> dict[int, int]:
    """Child pid → the pid that forked it (``sched_process_fork``)."""
    return {
        int(fork["child_pid"]): int(fork["pid"])
        for e in events
        if e.name == "sched_process_fork" and (fork := FORK.match(e.body))
    }


def _last_comm(events: Iterable[Event], tid: int) -> str | None:
    """The comm `tid` last had when switched out, or None if it never was."""
    comm = None
    for event in events:
        if (
            event.name == "sched_switch"
            and (switch := SWITCH.match(event.body))
            and int(switch["prev_pid"]) == tid
        ):
            comm = switch["prev_comm"]
    return comm


def capture_result(rec: Recording, built: Built, scenario: Scenario) -> Result:
    """What the capture measured, shaped like a kernel run's `Result` (tasks by the
    scenario's names; CPU time and wakeup latencies from the trace; the cgroup figures)."""
    threads = dict(rec.threads)
    tables, index = _tables(rec, threads)
    timelines = thread_timelines(rec, tables, index)
    tid_of = {i: tid for tid, i in index.items()}
    cpu: Counter[int] = Counter()
    for _cpu, task, start, end in tables.segments:
        cpu[tid_of[task]] += end - start
    latencies: dict[int, list[int]] = {}
    for task, _cpu, _wake, latency in tables.wakeups:
        latencies.setdefault(tid_of[task], []).append(latency)
    tasks = {}
    for tid, name in sorted(built.task_of_tid.items(), key=lambda item: item[1]):
        values = latencies.get(tid, [])
        line, info = timelines[tid], threads[tid]
        tasks[name] = task_figures(
            process=name.rsplit("/", 1)[0],
            cgroup=APP,
            nice=info.nice,
            policy=info.policy,
            cpu_time_ns=cpu[tid],
            wait_time_ns=line.wait_ns,
            timeslices=line.timeslices,
            nr_switches=line.voluntary + line.involuntary,
            nr_voluntary_switches=line.voluntary,
            nr_involuntary_switches=line.involuntary,
            nr_migrations=line.migrations,
            wakeups=len(values),
            wakeup_latency_ns=latency_figures(np.array(values, dtype=np.int64)),
            vruntime=info.vruntime,
            max_rss_bytes=info.max_rss_bytes,
            exit=None if line.exit_ns is None else {"time_ns": line.exit_ns, "reason": "exited"},
        )
    meta: RunMeta = {
        "description": f"captured from `{rec.command}`",
        "kernel_release": procfs.kernel_release(),
        "hz": rec.hz,
        "t0_monotonic_ns": rec.t0,
        "wall_ns": rec.duration_ns,
        "sample_interval_ns": SAMPLE_INTERVAL_NS,
        "warnings": built.notes + _background_warning(rec),
    }
    if rec.background_cpu_fraction is not None:
        meta["background_cpu_fraction"] = rec.background_cpu_fraction
    return Result(
        source="kernel",
        scenario=scenario.name,
        policy=f"kernel-{procfs.kernel_release()}",
        cpus=rec.cpus,
        duration_ns=rec.duration_ns,
        seed=scenario.seed,
        tasks=tasks,
        cgroups={
            path: cgroup_figures(files, f'cgroups["{path}"]') for path, files in rec.figures.items()
        },
        meta=meta,
    )


def _background_warning(rec: Recording) -> list[str]:
    fraction = rec.background_cpu_fraction
    if fraction is None or fraction <= BACKGROUND_WARNING:
        return []
    return [
        f"background load was {fraction:.1%} of the machine's CPU capacity (above "
        f"{BACKGROUND_WARNING:.0%}): the capture competed with other work"
    ]


# ---- recording ----------------------------------------------------------------------------------
@dataclass
class Capture:
    """A finished capture: the recording, the scenario replaying it, and what was measured."""

    recording: Recording
    scenario: Scenario
    result: Result
    yaml: str


def capture(
    command: Sequence[str] | None = None,
    *,
    pid: int | None = None,
    duration_ns: int = 10 * NSEC_PER_SEC,
    cgroup: dict[str, str] | None = None,
    model: bool = False,
    name: str = "captured",
    seed: int = 1,
    absolute: bool = True,
    max_duration_ns: int = MAX_DURATION_NS,
) -> Capture:
    """Record `command` (run in a fresh cgroup with the `cgroup` files written) or the running
    process `pid` for `duration_ns` or until it exits; the scenario replaying it."""
    if (command is None) == (pid is None):
        raise Refused(
            "capture: expected a COMMAND or --pid, found " + ("both" if command else "neither")
        )
    if not 0 < duration_ns <= max_duration_ns:
        raise Refused(
            f"capture: duration: expected more than 0 and at most "
            f"{format_duration(max_duration_ns)}, found {format_duration(duration_ns)}"
        )
    limits = _limits(cgroup or {})
    if pid is not None and cgroup:
        raise Refused(
            "capture: --cgroup applies to a started COMMAND; a --pid process keeps "
            "its own cgroup, whose limits are read"
        )
    layout = detect()
    session = _Session(make_driver(layout), duration_ns)
    with _signals.guarded(session.cleanup):  # SIGTERM unwinds like Ctrl-C; cleanup holds both off
        rec = (
            session.record_command(command, limits)
            if command is not None
            else session.record_pid(pid or 0)
        )
    built = build_scenario(rec, name=name, model=model, seed=seed, absolute=absolute)
    text = dump_data(built.data)
    scenario = load_scenario(text)
    return Capture(rec, scenario, capture_result(rec, built, scenario), text)


def _limits(files: dict[str, str]) -> CgroupConfig:
    config = CgroupConfig()
    for file, value in files.items():
        try:
            config = cgfiles.apply_write(config, file, value, is_root=False)
        except CgroupFileError as error:
            raise Refused(
                f"--cgroup {file}={value}: expected {error.expected}, found {error.found}"
            ) from None
    return config


@dataclass
class _Session:
    driver: Driver
    duration_ns: int
    tracer: TraceSession | None = None
    child: subprocess.Popen[bytes] | None = None
    threads: dict[int, ThreadInfo] = field(default_factory=dict)
    rss: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    t0: int = 0

    # -- the two ways in
    def record_command(self, command: Sequence[str], limits: CgroupConfig) -> Recording:
        configs: dict[str, Any] = {"/": CgroupConfig(), APP: limits}  # as measure does
        self.driver.create(configs)
        # held in a shell that stops itself until traced, then execs the command (same pid)
        hold = 'kill -STOP $$; exec "$@"'
        try:
            self.child = subprocess.Popen(
                ["/bin/sh", "-c", hold, "cfssim-capture", *command], start_new_session=True
            )
        except OSError as exc:
            raise Refused(
                f"capture: cannot start /bin/sh for {command[0]!r}: {exc.strerror}"
            ) from exc
        deadline = time.monotonic() + HOLD_TIMEOUT_S
        while not procfs.stopped(self.child.pid):
            if time.monotonic() > deadline or self.child.poll() is not None:
                raise Refused(f"capture: the shell holding {command[0]!r} never stopped")
            time.sleep(0.001)
        self.driver.attach(APP, self.child.pid, self.child.pid)
        self._start_trace([self.child.pid])
        stat0 = {p: self.driver.figures(p) for p in ("/", APP)}
        busy0 = procfs.machine_busy_ns()
        self.t0 = time.monotonic_ns()
        os.kill(self.child.pid, signal.SIGCONT)
        self._sample_until(lambda: self._command_tids())
        figures = {p: _since(self.driver.figures(p), stat0[p]) for p in ("/", APP)}
        rec = self._recording(" ".join(command), limits, figures)
        background = procfs.machine_busy_ns() - busy0 - int(figures[APP]["cpuacct.usage"])
        rec.background_cpu_fraction = round(
            max(0, background) / (rec.cpus * max(1, time.monotonic_ns() - self.t0)), 4
        )
        return rec

    def record_pid(self, pid: int) -> Recording:
        tids = _process_tids(pid)
        if not tids:
            raise Refused(f"capture: --pid {pid}: no such process")
        limits, cpu_dir = _own_limits(pid)
        self._start_trace(sorted(tids))
        before = _read_cpu_stat(cpu_dir)
        self.t0 = time.monotonic_ns()
        self._sample_until(lambda: _tree_tids(pid))
        after = _read_cpu_stat(cpu_dir)
        figures = {APP: {"cpu.stat": _cpu_stat_since(after, before)}}
        command = (
            " ".join(Path(f"/proc/{pid}/cmdline").read_text().split("\0")).strip()
            if Path(f"/proc/{pid}").exists()
            else str(pid)
        )
        return self._recording(command or str(pid), limits, figures)

    # -- tracing
    def _start_trace(self, pids: Sequence[int]) -> None:
        """A private instance named like the run's cgroups, following `pids` and their forks."""
        self.tracer = TraceSession(
            self.driver.run_name, list(pids), self.duration_ns, follow_forks=True
        )
        self.tracer.start()

    # -- sampling
    def _command_tids(self) -> set[int]:
        return tasks_in(self.driver.real("cpu", APP))

    def _sample_until(self, tids_now: Any) -> None:
        end = self.t0 + self.duration_ns
        next_sample = self.t0
        while True:
            now = time.monotonic_ns()
            if now >= end:
                break
            tids = tids_now()
            if self.child is not None:
                self.child.poll()
            if not tids and (self.child is None or self.child.returncode is not None):
                break  # everything traced has exited
            self._sample(tids, now - self.t0)
            next_sample += SAMPLE_INTERVAL_NS
            time.sleep(max(0, min(next_sample, end) - time.monotonic_ns()) / NSEC_PER_SEC)
        self.duration_ns = min(self.duration_ns, time.monotonic_ns() - self.t0)

    def _sample(self, tids: Iterable[int], at: int) -> None:
        tgids: set[int] = set()
        for tid in tids:
            info = self.threads.get(tid)
            with contextlib.suppress(OSError, ValueError, IndexError):
                if info is None:
                    info = _thread_info(tid)
                    self.threads[tid] = info
                else:
                    info.comm = Path(f"/proc/{tid}/comm").read_text().strip()  # after exec
            if info is not None and info.tgid is not None:
                tgids.add(info.tgid)
                with contextlib.suppress(OSError, ValueError):
                    info.vruntime = procfs.read_thread_stats(
                        procfs.task_dir(info.tgid, tid)
                    ).vruntime
        peaks: dict[int, int] = {}
        for tgid in tgids:
            with contextlib.suppress(OSError, ValueError):
                self.rss.setdefault(tgid, []).append((at, _rss_anon(tgid)))
                peaks[tgid] = procfs.max_rss_bytes(tgid)
        for info in self.threads.values():
            if info.tgid in peaks:
                info.max_rss_bytes = peaks[info.tgid]

    def _recording(
        self, command: str, limits: CgroupConfig, figures: dict[str, dict[str, Any]]
    ) -> Recording:
        assert self.tracer is not None
        text, lost = self.tracer.stop()
        return Recording(
            text,
            self.t0,
            self.duration_ns,
            os.cpu_count() or 1,
            self.threads,
            self.rss,
            limits,
            figures,
            command,
            _hz(),
            lost,
        )

    def cleanup(self) -> None:
        """Remove the instance, kill the command (everything in its cgroup), remove the
        cgroups; safe at any point."""
        _signals.run_all(
            [
                None if self.tracer is None else self.tracer.close,
                self.driver.remove,  # SIGKILLs every task left in the run's cgroups
                self._kill_child,
            ]
        )

    def _kill_child(self) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError):
                self.child.kill()
            self.child.wait()


def _since(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """A run cgroup's figures (`Driver.figures`) with the counters counted from `before`."""
    figures = dict(after)
    if "cpu.stat" in after and "cpu.stat" in before:
        figures["cpu.stat"] = _cpu_stat_since(after["cpu.stat"], before["cpu.stat"])
    if "cpuacct.usage" in before:
        figures["cpuacct.usage"] = after["cpuacct.usage"] - before["cpuacct.usage"]
    return figures


def _cpu_stat_since(after: dict[str, int], before: dict[str, int]) -> dict[str, Any]:
    """``cpu.stat`` counted from `before` (either interface's keys; v2's µs as v1's ns)."""

    def grown(key: str) -> int:
        if key not in after and key.endswith("_time"):  # v2: throttled_usec, burst_usec
            usec = key.removesuffix("_time") + "_usec"
            return (after.get(usec, 0) - before.get(usec, 0)) * 1000
        return after.get(key, 0) - before.get(key, 0)

    return dict(
        cpu_stat_figures(
            nr_periods=grown("nr_periods"),
            nr_throttled=grown("nr_throttled"),
            throttled_time=grown("throttled_time"),
            nr_bursts=grown("nr_bursts"),
            burst_time=grown("burst_time"),
        )
    )


def _thread_info(tid: int) -> ThreadInfo:
    """comm, tgid, nice, affinity and policy of a live thread."""
    status = Path(f"/proc/{tid}/status").read_text()
    tgid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Tgid:")))
    stat = Path(f"/proc/{tid}/stat").read_text()
    nice = int(stat.rsplit(")", 1)[1].split()[16])  # field 19 of stat(5)
    cpus = tuple(sorted(os.sched_getaffinity(tid)))
    policy_code = os.sched_getscheduler(tid)
    policy = next((n for n, c in SCHED_POLICIES.items() if c == policy_code), "normal")
    comm = Path(f"/proc/{tid}/comm").read_text().strip()
    return ThreadInfo(tid, tgid, comm, nice, cpus, policy)


def _rss_anon(tgid: int) -> int:
    for line in Path(f"/proc/{tgid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _process_tids(pid: int) -> set[int]:
    with contextlib.suppress(OSError, ValueError):
        return {int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()}
    return set()


def _tree_tids(pid: int) -> set[int]:
    """The threads of `pid` and of its descendants (``/proc/<pid>/task/<tid>/children``)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        tgid = pending.pop()
        tids = _process_tids(tgid)
        found |= tids
        for tid in tids:
            with contextlib.suppress(OSError, ValueError):
                text = Path(f"/proc/{tgid}/task/{tid}/children").read_text()
                pending.extend(int(child) for child in text.split())
    return found


def _own_limits(pid: int) -> tuple[CgroupConfig, Path | None]:
    """The cpu and memory limits of the cgroups `pid` is in (v1 or v2), and its cpu cgroup."""
    layout = detect()
    config, cpu_dir = CgroupConfig(), None
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _id, controllers, path = line.split(":", 2)
        names = controllers.split(",") if controllers else ["cpu", "memory"]
        for controller in ("cpu", "memory"):
            mount = layout.mounts.get(controller)
            if controller in names and mount is not None:
                directory = mount / path.lstrip("/")
                if controller == "cpu":
                    cpu_dir = directory
                config = _read_limits(config, directory, controller)
    return config, cpu_dir


_LIMIT_FILES = {
    "cpu": ("cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares", "cpu.max", "cpu.weight"),
    "memory": ("memory.limit_in_bytes", "memory.max"),
}


def _read_limits(config: CgroupConfig, directory: Path, controller: str) -> CgroupConfig:
    for file in _LIMIT_FILES[controller]:
        with contextlib.suppress(OSError, CgroupFileError):
            value = (directory / file).read_text().strip()
            if value.isdigit() and int(value) >= _UNLIMITED_MEMORY:
                continue
            config = cgfiles.apply_write(config, file, value, is_root=False)
    return config


def _read_cpu_stat(directory: Path | None) -> dict[str, int]:
    if directory is None:
        return {}
    with contextlib.suppress(OSError):
        return parse_flat_keyed((directory / "cpu.stat").read_text())
    return {}


def _hz() -> int:
    """CONFIG_HZ from /boot/config-<release> or /proc/config.gz; 250 when neither says."""
    import gzip

    release = procfs.kernel_release()
    for path in (Path(f"/boot/config-{release}"), Path("/proc/config.gz")):
        with contextlib.suppress(OSError):
            text = (
                gzip.decompress(path.read_bytes()).decode()
                if path.suffix == ".gz"
                else path.read_text()
            )
            for line in text.splitlines():
                if line.startswith("CONFIG_HZ="):
                    return int(line.split("=")[1])
    return 250
