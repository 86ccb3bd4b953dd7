"""Traces out, for the tools scheduler people already use: Perfetto protobuf, Chrome trace JSON and
ftrace text (``sched_switch``/``sched_wakeup`` lines in the kernel's format), plus an ftrace text
reader so such text comes back as trace tables (its lines parsed by `cfssim.ftrace`).

All three are built from one derivation of a `Result`'s trace (simulated, or measured with
``--trace``): per-CPU `Switch` events from the run segments (adjacent segments of one task are one
stretch of running), `Wakeup` events, and `Counter` series per cgroup — CPU usage (cumulative ns,
like ``cpuacct.usage``, for the tasks the result places in the group and its descendants), the
quota left at the start and end of each bandwidth period, and memory usage. Task ids are
``pid = trace index + 1`` (pid 0 is the idle task, ``swapper/<cpu>``).

``prev_state`` of a switch: ``R+`` when the task runs again with no wakeup in between
(preempted or throttled), ``X`` when it exited then, ``D`` when it blocks in the memcg OOM path
(``mem_cgroup_oom_synchronize`` sleeps TASK_KILLABLE): inside one of the trace's ``oom_waits``,
or, for traces without them (measured ones), when it never runs again before an OOM kill ends
it; else ``S`` (it slept).

The ftrace text also has, in each tracepoint's own format (``print fmt`` of
``events/*/*/format`` on 6.18): ``sched_wakeup`` in the context of the task that ran on the
CPU when the wakeup happened (the trace's ``wakeups.waker``; ``<idle>-0`` when idle or unknown);
``sched_wakeup_new`` at a task's first run (the trace does not record its creation);
``sched_migrate_task`` from the ``migrations`` table, in the context of the source CPU;
``sched_process_exit`` as a task ends (``group_dead`` for its process's last thread); and
``oom:mark_victim`` at each OOM kill, its rss the victim cgroup's memory usage as the kill
begins (before the victim's memory is uncharged; anonymous memory: the model has no file or shmem
pages; uid 0, the twin runs as root).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .cgroup.files import is_descendant
from .ftrace import SWITCH, WAKEUP, parse_trace
from .result import Result
from .task import RT_POLICIES
from .trace import TABLES, Trace, group_usage_curve

IDLE_PID = 0
FORMATS = ("perfetto", "chrome", "ftrace")
SUFFIXES = {"perfetto": ".perfetto-trace", "chrome": ".json", "ftrace": ".txt"}
#: kernel ``prev_state`` bits (TASK_REPORT): R = 0, S = 1, X = EXIT_DEAD, R+ = TASK_REPORT_MAX
STATE_BITS = {"R": 0, "S": 0x1, "D": 0x2, "X": 0x10, "R+": 0x100}
_DEFAULT_PRIO = 120  # MAX_RT_PRIO + NICE_WIDTH / 2: a nice-0 normal task


# ---- one derivation of events and counters ------------------------------------------------------
@dataclass(frozen=True)
class Switch:
    """``sched_switch`` on `cpu` at `time` (ns): `prev` → `next` (pids; 0 = idle)."""

    time: int
    cpu: int
    prev: int
    prev_state: str
    next: int


@dataclass(frozen=True)
class Wakeup:
    """``sched_wakeup`` of `pid` at `time` (ns) onto `cpu`, in the context of `waker` (the pid
    running on `cpu` then; 0 = idle); ``sched_wakeup_new`` when `new`."""

    time: int
    cpu: int
    pid: int
    waker: int = IDLE_PID
    new: bool = False


@dataclass(frozen=True)
class Counter:
    """A counter track: `values` at `times` (ns); `unit` is "ns" or "bytes"."""

    name: str
    unit: str
    times: tuple[int, ...]
    values: tuple[int, ...]


def merged_segments(trace: Trace) -> np.ndarray:
    """Run segments as rows (cpu, task, start, end), sorted, adjacent ones of a task joined."""
    seg = trace["segments"]
    rows = np.stack([seg["cpu"], seg["task"], seg["start"], seg["end"]], axis=1)
    rows = rows[np.lexsort((rows[:, 2], rows[:, 0]))]
    merged: list[list[int]] = []
    for cpu, task, start, end in rows.tolist():
        last = merged[-1] if merged else None
        if last and last[0] == cpu and last[1] == task and last[3] == start:
            last[3] = end
        else:
            merged.append([cpu, task, start, end])
    return np.array(merged, dtype=np.int64).reshape(-1, 4)


def sched_events(result: Result) -> tuple[list[Switch], list[Wakeup]]:
    """The switches and wakeups of `result`'s trace, each sorted by (time, cpu)."""
    trace = _trace(result)
    segments = merged_segments(trace)
    wake = trace["wakeups"]
    wake_times = {
        task: np.sort(wake["time"][wake["task"] == task]) for task in range(len(trace.tasks))
    }
    ends = {index: result.task_figure(name, "exit") or {} for index, name in enumerate(trace.tasks)}
    exits = {index: end.get("time_ns") for index, end in ends.items()}
    oom_killed = {
        index for index, end in ends.items() if str(end.get("reason", "")).startswith("oom")
    }
    starts_by_task = {
        task: np.sort(segments[segments[:, 1] == task, 2]) for task in range(len(trace.tasks))
    }
    oom_waits = _oom_wait_intervals(trace)

    def state(task: int, left: int) -> str:
        if exits[task] == left:
            return "X"
        if any(begin <= left < end for begin, end in oom_waits.get(task, ())):
            return "D"
        later = starts_by_task[task][starts_by_task[task] >= left]
        if not len(later):
            return "D" if task in oom_killed else "S"
        times = wake_times[task]
        woken = np.any((times > left) & (times <= later[0]))
        return "S" if woken else "R+"

    switches: list[Switch] = []
    for cpu in range(trace.cpus):
        current, until = IDLE_PID, 0
        for _, task, start, end in segments[segments[:, 0] == cpu].tolist():
            if current != IDLE_PID and until != start:
                switches.append(Switch(until, cpu, current, state(current - 1, until), IDLE_PID))
                current = IDLE_PID
            prev_state = "R" if current == IDLE_PID else state(current - 1, start)
            switches.append(Switch(start, cpu, current, prev_state, task + 1))
            current, until = task + 1, end
        if current != IDLE_PID and until < result.duration_ns:
            switches.append(Switch(until, cpu, current, state(current - 1, until), IDLE_PID))
    wakers = wake.get("waker", np.full(len(wake["task"]), -1))  # traces before the column
    wakeups = [
        Wakeup(int(t), int(c), int(k) + 1, int(by) + 1)
        for k, c, t, by in zip(wake["task"], wake["cpu"], wake["time"], wakers, strict=True)
    ]
    for task, starts in starts_by_task.items():
        if len(starts) and not np.any(wake_times[task] <= starts[0]):
            first = segments[(segments[:, 1] == task) & (segments[:, 2] == starts[0])][0]
            cpu = int(first[0])
            wakeups.append(
                Wakeup(
                    int(starts[0]), cpu, task + 1, _running(segments, cpu, int(starts[0])), new=True
                )
            )
    return (
        sorted(switches, key=lambda s: (s.time, s.cpu)),
        sorted(wakeups, key=lambda w: (w.time, w.cpu)),
    )


def _oom_wait_intervals(trace: Trace) -> dict[int, list[tuple[int, int]]]:
    """Per task, its memcg OOM waits as [begin, end) ns (an unended wait lasts past the end)."""
    waits = trace["oom_waits"]
    out: dict[int, list[tuple[int, int]]] = {}
    open_since: dict[int, int] = {}
    for task, time, begin in zip(
        waits["task"].tolist(), waits["time"].tolist(), waits["begin"].tolist(), strict=True
    ):
        if begin:
            open_since[task] = time
        elif task in open_since:
            out.setdefault(task, []).append((open_since.pop(task), time))
    for task, since in open_since.items():
        out.setdefault(task, []).append((since, np.iinfo(np.int64).max))
    return out


def _usage_at_kill(memory: dict[str, np.ndarray], cgroup: int, time: int) -> int:
    """`cgroup`'s memory usage (bytes) as an OOM kill at `time` begins: its rows up to `time`, in
    recording order, before the first drop at `time` (the victim's exit uncharging)."""
    rows = np.flatnonzero((memory["cgroup"] == cgroup) & (memory["time"] <= time))
    usage = 0
    for row in rows.tolist():
        value = int(memory["usage"][row])
        if int(memory["time"][row]) == time and value < usage:
            break
        usage = value
    return usage


def _running(segments: np.ndarray, cpu: int, time: int) -> int:
    """The pid running on `cpu` just before `time` (merged segment rows; 0 = idle)."""
    rows = segments[(segments[:, 0] == cpu) & (segments[:, 2] < time) & (segments[:, 3] >= time)]
    return int(rows[0, 1]) + 1 if len(rows) else IDLE_PID


@dataclass(frozen=True)
class Other:
    """A line of another tracepoint: `event` with its `body`, at `time` on `cpu` in the context
    of `pid`."""

    time: int
    cpu: int
    pid: int
    event: str
    body: str


def other_events(result: Result) -> list[Other]:
    """``sched_migrate_task``, ``sched_process_exit`` and ``mark_victim`` lines (see the module
    docstring), sorted by (time, cpu)."""
    trace = _trace(result)
    segments = merged_segments(trace)
    names = _names(result)
    out: list[Other] = []
    moves = trace["migrations"]
    for task, time, src, dst in zip(
        moves["task"].tolist(),
        moves["time"].tolist(),
        moves["src"].tolist(),
        moves["dst"].tolist(),
        strict=True,
    ):
        pid = task + 1
        out.append(
            Other(
                time,
                max(src, 0),
                _running(segments, max(src, 0), time),
                "sched_migrate_task",
                f"comm={names[pid]} pid={pid} "
                f"prio={_prio(result, pid)} orig_cpu={src} dest_cpu={dst}",
            )
        )
    ended: list[tuple[int, int]] = []  # (time, task)
    for index, name in enumerate(trace.tasks):
        end = result.task_figure(name, "exit")
        if end is not None:
            ended.append((int(end["time_ns"]), index))
    process = {i: result.task_figure(name, "process", name) for i, name in enumerate(trace.tasks)}
    # the CPU of each task's last run (later rows overwrite earlier ones)
    last_cpu = {task: cpu for cpu, task, _, _ in sorted(segments.tolist(), key=lambda r: r[3])}
    for time, task in sorted(ended):
        pid = task + 1
        alive = [t for e, t in ended if e > time and process[t] == process[task]]
        alive += [
            i for i in process if process[i] == process[task] and i not in {t for _, t in ended}
        ]
        out.append(
            Other(
                time,
                last_cpu.get(task, 0),
                pid,
                "sched_process_exit",
                f"comm={names[pid]} pid={pid} prio={_prio(result, pid)} "
                f"group_dead={'false' if alive else 'true'}",
            )
        )
    kills, memory = trace["kills"], trace["memory"]
    for task, cgroup, time, reason in zip(
        kills["task"].tolist(),
        kills["cgroup"].tolist(),
        kills["time"].tolist(),
        kills["reason"].tolist(),
        strict=True,
    ):
        if reason > 1 or not 0 <= task < len(trace.tasks):
            continue  # killed by an event, not the OOM killer
        rss_kb = _usage_at_kill(memory, cgroup, time) // 1024
        cpu = last_cpu.get(task, 0)
        pid = task + 1
        out.append(
            Other(
                time,
                cpu,
                _running(segments, cpu, time),
                "mark_victim",
                f"pid={pid} comm={names[pid]} total-vm={rss_kb}kB anon-rss={rss_kb}kB "
                f"file-rss:0kB shmem-rss:0kB uid=0 pgtables=0kB oom_score_adj=0",
            )
        )
    # a task's exit is the last line of its instant (after the mark_victim that killed it)
    return sorted(out, key=lambda o: (o.time, o.cpu, o.event == "sched_process_exit"))


def counters(result: Result) -> list[Counter]:
    """Per-cgroup usage, quota left per period and memory usage series."""
    trace = _trace(result)
    series: list[Counter] = []
    segments = trace["segments"]
    for index, path in enumerate(trace.cgroups):
        inside = [
            i
            for i, name in enumerate(trace.tasks)
            if is_descendant(result.task_figure(name, "cgroup", "/"), path)
        ]
        tids = np.array(inside, dtype=np.int64)
        mask = np.isin(segments["task"], tids)
        at = np.unique(np.concatenate(([0], segments["start"][mask], segments["end"][mask])))
        usage = group_usage_curve(trace, tids, at)
        series.append(
            Counter(f"{path} cpuacct.usage", "ns", tuple(at.tolist()), tuple(usage.tolist()))
        )
        periods = trace["periods"]
        rows = np.flatnonzero((periods["cgroup"] == index) & (periods["quota"] >= 0))
        if len(rows):
            times: list[int] = []
            left: list[int] = []
            for row in rows.tolist():
                start, quota = int(periods["start"][row]), int(periods["quota"][row])
                times += [start, start + int(periods["period"][row])]
                left += [quota, max(0, quota - int(periods["usage"][row]))]
            series.append(Counter(f"{path} quota remaining", "ns", tuple(times), tuple(left)))
        memory = trace["memory"]
        rows = np.flatnonzero(memory["cgroup"] == index)
        if len(rows):
            series.append(
                Counter(
                    f"{path} memory usage",
                    "bytes",
                    tuple(memory["time"][rows].tolist()),
                    tuple(memory["usage"][rows].tolist()),
                )
            )
    return series


def _trace(result: Result) -> Trace:
    if result.trace is None:
        raise ValueError("this result has no trace (trace.npz); measured runs need --trace")
    return result.trace


def _names(result: Result) -> dict[int, str]:
    """pid → comm (the task's name; ``swapper`` for idle)."""
    return {index + 1: name for index, name in enumerate(_trace(result).tasks)}


def _prio(result: Result, pid: int) -> int:
    """The kernel's ``prio`` of a task: 120 + nice for fair tasks, 99 − rt_priority for RT."""
    if pid == IDLE_PID:
        return _DEFAULT_PRIO
    name = _trace(result).tasks[pid - 1]
    if result.task_figure(name, "policy") in RT_POLICIES:
        return 99 - int(result.task_figure(name, "rt_priority", 1))
    return _DEFAULT_PRIO + int(result.task_figure(name, "nice", 0))


# ---- ftrace text --------------------------------------------------------------------------------
_HEADER = """# tracer: nop
#
# entries-in-buffer/entries-written: {n}/{n}   #P:{cpus}
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
"""


def _stamp(time_ns: int, ns_precision: bool) -> str:
    seconds, rest = divmod(time_ns, 1_000_000_000)
    return f"{seconds:5d}.{rest:09d}" if ns_precision else f"{seconds:5d}.{rest // 1000:06d}"


def ftrace_text(result: Result, *, ns_precision: bool = False) -> str:
    """The ``trace`` file text of the run (µs timestamps as the kernel prints; ``ns_precision``:
    nine digits, as ``trace-cmd report -t``)."""
    switches, wakeups = sched_events(result)
    names = _names(result)

    def comm(pid: int, cpu: int) -> str:
        return names[pid] if pid != IDLE_PID else f"swapper/{cpu}"

    def owner(pid: int) -> str:
        return f"{names[pid] if pid != IDLE_PID else '<idle>':>16}-{pid:<7}"

    events: list[tuple[int, int, int, str]] = []
    for s in switches:
        head = f"{owner(s.prev)} [{s.cpu:03d}] d..2. {_stamp(s.time, ns_precision)}"
        prev = (
            f"prev_comm={comm(s.prev, s.cpu)} prev_pid={s.prev} prev_prio={_prio(result, s.prev)}"
        )
        nxt = f"next_comm={comm(s.next, s.cpu)} next_pid={s.next} next_prio={_prio(result, s.next)}"
        line = f"{head}: sched_switch: {prev} prev_state={s.prev_state} ==> {nxt}"
        events.append((s.time, 1, s.cpu, line))
    for w in wakeups:
        name = "sched_wakeup_new" if w.new else "sched_wakeup"
        events.append(
            (
                w.time,
                0,
                w.cpu,
                (
                    f"{owner(w.waker)} [{w.cpu:03d}] d..3. {_stamp(w.time, ns_precision)}: {name}: "
                    f"comm={names[w.pid]} pid={w.pid} prio={_prio(result, w.pid)} "
                    f"target_cpu={w.cpu:03d}"
                ),
            )
        )
    for o in other_events(result):
        events.append(
            (
                o.time,
                0,
                o.cpu,
                f"{owner(o.pid)} [{o.cpu:03d}] d..2. {_stamp(o.time, ns_precision)}: "
                f"{o.event}: {o.body}",
            )
        )
    events.sort(key=lambda event: event[:3])
    header = _HEADER.format(n=len(events), cpus=_trace(result).cpus)
    return header + "".join(line + "\n" for *_, line in events)


def read_ftrace(text: str, *, end_ns: int | None = None) -> Trace:
    """Trace tables (``segments``, ``wakeups``) from ftrace text with ``sched_switch`` and
    ``sched_wakeup``/``sched_waking`` lines (other lines are skipped). Tasks are named by their
    comm, in pid order; a task still running at the end runs until `end_ns` (default: the last
    event). Wakeup latency is the time to the task's next switch-in (-1: none)."""
    names: dict[int, str] = {}
    cpus = 0
    switches: list[tuple[int, int, int, int]] = []  # time, cpu, prev, next
    raw_wakeups: list[tuple[int, int, int, int]] = []  # time, cpu, pid, waker pid
    for event in parse_trace(text):
        time, cpu = event.time_ns, event.cpu
        cpus = max(cpus, cpu + 1)
        if event.name == "sched_switch" and (body := SWITCH.match(event.body)):
            prev, nxt = int(body["prev_pid"]), int(body["next_pid"])
            for pid, comm in ((prev, body["prev_comm"]), (nxt, body["next_comm"])):
                if pid != IDLE_PID:
                    names.setdefault(pid, comm)
            switches.append((time, cpu, prev, nxt))
        elif event.name in ("sched_wakeup", "sched_waking") and (body := WAKEUP.match(event.body)):
            names.setdefault(int(body["pid"]), body["comm"])
            raw_wakeups.append((time, int(body["cpu"]), int(body["pid"]), event.pid))
            cpus = max(cpus, int(body["cpu"]) + 1)
    order = sorted(names)
    index = {pid: i for i, pid in enumerate(order)}
    last = max([t for t, *_ in switches] + [t for t, *_ in raw_wakeups], default=0)
    end = last if end_ns is None else end_ns
    segments: list[tuple[int, int, int, int]] = []
    running: dict[int, tuple[int, int]] = {}  # cpu → (pid, since)
    switch_ins: dict[int, list[int]] = {}
    for time, cpu, prev, nxt in sorted(switches, key=lambda s: s[:2]):  # stable: file order
        if cpu in running and running[cpu][0] == prev:
            segments.append((cpu, index[prev], running.pop(cpu)[1], time))
        if nxt != IDLE_PID:
            running[cpu] = (nxt, time)
            switch_ins.setdefault(nxt, []).append(time)
    for cpu, (pid, since) in running.items():
        if end > since:
            segments.append((cpu, index[pid], since, end))
    wakeups = []
    for time, cpu, pid, waker in raw_wakeups:
        ins = [t for t in switch_ins.get(pid, []) if t >= time]
        wakeups.append(
            (index[pid], cpu, time, min(ins) - time if ins else -1, index.get(waker, -1))
        )
    segments.sort(key=lambda row: (row[0], row[2]))  # stable: equal stamps keep file order
    tables = {
        "segments": _columns(("cpu", "task", "start", "end"), segments),
        "wakeups": _columns(TABLES["wakeups"], wakeups),
    }
    return Trace(tasks=[names[pid] for pid in order], cgroups=[], cpus=cpus, tables=tables)


def _columns(names: Sequence[str], rows: Sequence[tuple[int, ...]]) -> dict[str, np.ndarray]:
    array = np.array(rows, dtype=np.int64).reshape(-1, len(names))
    return {name: array[:, i].copy() for i, name in enumerate(names)}


# ---- Chrome trace JSON --------------------------------------------------------------------------
def chrome_trace(result: Result) -> dict[str, Any]:
    """Chrome trace-event JSON: a "CPUs" process with one thread per CPU holding the run
    stretches (``X``) and wakeups (``i``), and a "cgroups" process of counters (``C``).
    Timestamps are µs (fractions keep the ns)."""
    trace = _trace(result)
    names = _names(result)
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": 0, "args": {"name": "CPUs"}},
        {"ph": "M", "name": "process_name", "pid": 1, "args": {"name": "cgroups"}},
    ]
    events += [
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": cpu, "args": {"name": f"CPU {cpu}"}}
        for cpu in range(trace.cpus)
    ]
    switches, wakeups = sched_events(result)
    for stretch in _stretches(switches, result.duration_ns):
        cpu, pid, start, end, state = stretch
        events.append(
            {
                "ph": "X",
                "name": names[pid],
                "pid": 0,
                "tid": cpu,
                "ts": start / 1000,
                "dur": (end - start) / 1000,
                "args": {"pid": pid, "prio": _prio(result, pid), "end_state": state},
            }
        )
    events += [
        {
            "ph": "i",
            "s": "t",
            "name": "sched_wakeup",
            "pid": 0,
            "tid": w.cpu,
            "ts": w.time / 1000,
            "args": {"comm": names[w.pid], "pid": w.pid},
        }
        for w in wakeups
    ]
    for counter in counters(result):
        events += [
            {"ph": "C", "name": counter.name, "pid": 1, "ts": t / 1000, "args": {counter.unit: v}}
            for t, v in zip(counter.times, counter.values, strict=True)
        ]
    return {
        "traceEvents": events,
        "displayTimeUnit": "ns",
        "otherData": {
            "scenario": result.scenario,
            "source": result.source,
            "policy": result.policy,
            "duration_ns": result.duration_ns,
        },
    }


def _stretches(switches: Sequence[Switch], end_ns: int) -> Iterator[tuple[int, int, int, int, str]]:
    """(cpu, pid, start, end, state it left in) for every stretch a task ran (end: `end_ns`)."""
    open_: dict[int, tuple[int, int]] = {}
    for s in switches:
        if s.cpu in open_:
            pid, since = open_.pop(s.cpu)
            yield s.cpu, pid, since, s.time, s.prev_state
        if s.next != IDLE_PID:
            open_[s.cpu] = (s.next, s.time)
    for cpu, (pid, since) in sorted(open_.items()):
        yield cpu, pid, since, end_ns, "R"


# ---- Perfetto protobuf --------------------------------------------------------------------------
def perfetto_trace(result: Result) -> bytes:
    """A Perfetto trace: per-CPU ftrace bundles of ``sched_switch``/``sched_wakeup`` (the UI's
    native CPU tracks), a process tree naming the threads, and counter tracks. Needs the
    ``perfetto`` extra (``pip install 'cfssim[perfetto]'``)."""
    try:
        from perfetto.trace_builder.proto_builder import TraceProtoBuilder
    except ImportError:
        raise RuntimeError(
            "Perfetto export needs the perfetto package: pip install 'cfssim[perfetto]'"
        ) from None
    builder = TraceProtoBuilder()
    trace = _trace(result)
    names = _names(result)
    tree = builder.add_packet().process_tree
    for pid, name in names.items():
        process = name.rsplit("/", 1)[0]
        leader = min(p for p, n in names.items() if n.rsplit("/", 1)[0] == process)
        if leader == pid:
            entry = tree.processes.add()
            entry.pid, entry.ppid = pid, 1
            entry.cmdline.append(process)
        thread = tree.threads.add()
        thread.tid, thread.tgid, thread.name = pid, leader, name
    switches, wakeups = sched_events(result)
    for cpu in range(trace.cpus):
        bundle = builder.add_packet().ftrace_events
        bundle.cpu = cpu
        items: list[tuple[int, int, Any]] = [(s.time, 1, s) for s in switches if s.cpu == cpu]
        items += [(w.time, 0, w) for w in wakeups if w.cpu == cpu]
        for time, _, item in sorted(items, key=lambda entry: entry[:2]):
            event = bundle.event.add()
            event.timestamp = time
            if isinstance(item, Switch):
                event.pid = item.prev
                switch = event.sched_switch
                switch.prev_comm = names.get(item.prev, f"swapper/{cpu}")
                switch.prev_pid, switch.prev_prio = item.prev, _prio(result, item.prev)
                switch.prev_state = STATE_BITS[item.prev_state]
                switch.next_comm = names.get(item.next, f"swapper/{cpu}")
                switch.next_pid, switch.next_prio = item.next, _prio(result, item.next)
            else:
                event.pid = item.waker
                wakeup = event.sched_wakeup_new if item.new else event.sched_wakeup
                wakeup.comm, wakeup.pid = names[item.pid], item.pid
                wakeup.prio, wakeup.target_cpu, wakeup.success = _prio(result, item.pid), cpu, 1
    _perfetto_counters(builder, counters(result))
    return builder.serialize()


def _perfetto_counters(builder: Any, series: Sequence[Counter]) -> None:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import (
        CounterDescriptor,
        TracePacket,
        TrackEvent,
    )

    sequence = 1
    for number, counter in enumerate(series, start=1):
        packet = builder.add_packet()
        packet.trusted_packet_sequence_id = sequence
        if number == 1:
            packet.sequence_flags = TracePacket.SEQ_INCREMENTAL_STATE_CLEARED
        descriptor = packet.track_descriptor
        descriptor.uuid, descriptor.name = number, counter.name
        descriptor.counter.unit = (
            CounterDescriptor.UNIT_SIZE_BYTES
            if counter.unit == "bytes"
            else CounterDescriptor.UNIT_TIME_NS
        )
        for time, value in zip(counter.times, counter.values, strict=True):
            point = builder.add_packet()
            point.trusted_packet_sequence_id = sequence
            point.timestamp = time
            point.track_event.type = TrackEvent.TYPE_COUNTER
            point.track_event.track_uuid = number
            point.track_event.counter_value = value


# ---- files --------------------------------------------------------------------------------------
def export(result: Result, fmt: str, path: str | Path, *, ns_precision: bool = False) -> Path:
    """Write `result`'s trace as `fmt` (perfetto, chrome or ftrace) to `path`."""
    out = Path(path)
    if fmt == "perfetto":
        out.write_bytes(perfetto_trace(result))
    elif fmt == "chrome":
        out.write_text(json.dumps(chrome_trace(result)) + "\n")
    elif fmt == "ftrace":
        out.write_text(ftrace_text(result, ns_precision=ns_precision))
    else:
        raise ValueError(f"expected a format of {', '.join(FORMATS)}, found {fmt!r}")
    return out
