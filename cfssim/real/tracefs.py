"""``--trace``: the kernel's scheduler events of a real run, from tracefs, turned into the
simulator's ``segments``, ``wakeups`` and ``migrations`` tables.

Nothing global is touched: the events are recorded in a private ring buffer, the tracefs instance
``instances/cfssim-<pid>-<n>`` (named like the run's cgroups, sized for the run by
`buffer_kb_for`), limited to the scenario's tids by event filters on the events' own fields
(``prev_pid``/``next_pid`` of ``sched_switch``, ``common_pid`` of ``rseq_update``, ``pid`` of
the others). The instance uses ``trace_clock`` ``mono`` (CLOCK_MONOTONIC, the clock of the run's
t0), is read once after the run (no reader perturbs it) and removed afterwards. When tracefs is
not mounted, it is mounted at /sys/kernel/tracing (and left there, as tracing tools do:
unmounting could pull it from under another user).

Switches from an idle task may be missing. On the 6.18 development VMs the idle task of CPU 1
(``swapper/1``) emits no event at all outside interrupts — no ``sched_switch``, no ``cpu_idle`` —
with or without filters or ``set_event_pid``, and ``perf`` sees none either; the events of its
interrupts (the timer's ``sched_wakeup``) and every switch *out* of a thread are recorded. So the
instance also records ``rseq_update``, which a thread emits itself when it returns to user space
after being switched in (``rseq_preempt`` at its switch-out flags it): a run whose switch-in is
missing starts at that witness — mostly 2–10 µs, at most ~40 µs, after the real switch (measured
on CPU 0, where the switch is recorded) — or, with no witness (a run that never reached user
space), at its wakeup.

Segments are wall-clock time on the CPU, so their total differs from the thread's schedstat CPU
time (``sum_exec_runtime``): that counts from the rq clock of the waking interrupt for a thread
woken on an idle CPU (``wakeup_preempt`` skips the clock update of the following ``__schedule``;
10–30 µs before the switch on these VMs), and it leaves out the time the hypervisor stole from
the vCPU meanwhile (``rq_clock_task``, PARAVIRT_TIME_ACCOUNTING; up to 2.4 ms per 10 ms run seen).

The text format prints timestamps in µs, so traced times have 1 µs resolution (stored as int ns).
Its lines are parsed by `cfssim.ftrace` (`parse_trace` and `Event` are re-exported here).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..ftrace import Event
from ..ftrace import parse_trace as parse_trace  # re-exported: the readers of a run's trace
from ..trace import Recorder
from .cgroupfs import CLEANUP_COMMAND
from .errors import CleanupIncomplete, TracefsUnavailable

MOUNT_POINTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
#: Recorded events (``events/<system>/<event>``) and the field naming the traced thread.
EVENTS = {
    "sched/sched_switch": ("prev_pid", "next_pid"),
    "sched/sched_wakeup": ("pid",),
    "sched/sched_wakeup_new": ("pid",),
    "sched/sched_migrate_task": ("pid",),
    "rseq/rseq_update": ("common_pid",),
}
#: Events without which the run segments are still complete where every switch is recorded.
OPTIONAL_EVENTS = ("rseq/rseq_update",)
#: Ring-buffer bytes one CPU fills per second, at most (an assumption; an overrun is reported):
#: a run costs a wakeup, two switches and a return to user, ~230 B, so this allows one run
#: per 55 µs of every CPU, when scenarios' runs and sleeps are milliseconds long.
BUFFER_BYTES_PER_CPU_SECOND = 4 * 1024 * 1024
#: Traced time outside the scenario's duration: from the start before t0 to the stop after it.
BUFFER_MARGIN_NS = 500_000_000
BUFFER_KB_MIN = 1024
#: Share of the available memory all CPUs' buffers may take together: 1/8.
BUFFER_MEMORY_SHARE = 8

# ---- events → tables --------------------------------------------------------------------------
Row = tuple[int, int, int, int]


@dataclass
class Tables:
    """Run segments, wakeups and migrations of the traced tids, times relative to t0 (ns)."""

    segments: list[Row] = field(default_factory=list)  # cpu, task, start, end
    wakeups: list[Row] = field(default_factory=list)  # task, cpu, time, latency
    migrations: list[Row] = field(default_factory=list)  # task, time, src, dst

    def record(self, recorder: Recorder) -> None:
        for row in self.segments:
            recorder.segment(*row)
        for row in self.wakeups:
            recorder.add("wakeups", *row, -1)  # the waker is not among the traced tids
        for row in self.migrations:
            recorder.add("migrations", *row)


@dataclass
class _Thread:
    """What the events told so far about one traced thread (times relative to t0, ns)."""

    woken: int | None = None  # wakeup not yet followed by a run
    resumed: tuple[int, int] | None = None  # (cpu, time) of its first return to user since its
    # last switch-out: the witness of a run whose switch-in is missing

    def rebuilt_start(self) -> int | None:
        """The start of a run whose switch-in was not recorded: its witness, else its wakeup;
        None when nothing shows it ran."""
        return self.woken if self.resumed is None else self.resumed[1]


def events_to_tables(events: Iterable[Event], tasks: dict[int, int], t0: int, end: int) -> Tables:
    """Tables for `tasks` (tid → task index) from the events, times made relative to `t0` (ns
    on the events' clock) and clipped to [0, `end`). A run whose switch-in was not recorded (see
    the module docstring) starts at its return to user space, or else at its wakeup; runs
    before t0 (tracing starts while every worker waits at the barrier) are clipped away."""
    tables = Tables()
    running: dict[int, tuple[int, int]] = {}  # cpu → (task index, start), switch-in recorded
    threads = {task: _Thread() for task in tasks.values()}
    for event in sorted(events, key=lambda e: e.time_ns):
        time, values = event.time_ns - t0, event.fields
        if event.name == "sched_switch":
            prev = tasks.get(values.get("prev_pid", -1))
            nxt = tasks.get(values.get("next_pid", -1))
            if prev is not None:
                if running.get(event.cpu, (-1, 0))[0] == prev:
                    _add_segment(tables, event.cpu, prev, running.pop(event.cpu)[1], time, end)
                else:
                    _add_rebuilt_run(tables, prev, threads[prev], event.cpu, time, end)
                threads[prev].resumed = None
            if nxt is not None:
                running[event.cpu] = (nxt, time)
                _add_wakeup(tables, nxt, threads[nxt], event.cpu, time, end)
        elif event.name in ("sched_wakeup", "sched_wakeup_new"):
            woken = tasks.get(values.get("pid", -1))
            # ttwu_runnable also reports a thread that is still running: no wait, no wakeup
            if (
                woken is not None
                and threads[woken].resumed is None
                and not any(task == woken for task, _ in running.values())
            ):
                threads[woken].woken = time
        elif event.name == "rseq_update":
            resumed = tasks.get(event.pid)
            if resumed is not None and threads[resumed].resumed is None:
                threads[resumed].resumed = (event.cpu, time)
        elif event.name == "sched_migrate_task":
            moved = tasks.get(values.get("pid", -1))
            if moved is not None and 0 <= time < end:
                src, dst = values.get("orig_cpu", -1), values.get("dest_cpu", -1)
                tables.migrations.append((moved, time, src, dst))
    for cpu, (task, start) in running.items():
        _add_segment(tables, cpu, task, start, end, end)
    still_running = {task for task, _ in running.values()}
    for task, thread in threads.items():
        if task not in still_running and thread.resumed is not None:
            _add_rebuilt_run(tables, task, thread, thread.resumed[0], end, end)
    tables.segments.sort(key=lambda row: (row[2], row[0]))
    tables.wakeups.sort(key=lambda row: (row[2], row[0]))
    return tables


def _add_rebuilt_run(
    tables: Tables, task: int, thread: _Thread, cpu: int, stop: int, end: int
) -> None:
    """The run of `thread` on `cpu` ending at `stop` whose switch-in was not recorded."""
    start = thread.rebuilt_start()
    if start is not None:
        _add_segment(tables, cpu, task, start, stop, end)
        _add_wakeup(tables, task, thread, cpu, start, end)


def _add_wakeup(tables: Tables, task: int, thread: _Thread, cpu: int, start: int, end: int) -> None:
    """The pending wakeup of `thread`, now that it runs from `start` on `cpu`."""
    wake, thread.woken = thread.woken, None
    if wake is not None and 0 <= wake < end:
        tables.wakeups.append((task, cpu, wake, start - wake))


def _add_segment(tables: Tables, cpu: int, task: int, start: int, stop: int, end: int) -> None:
    start, stop = max(start, 0), min(stop, end)
    if stop > start:
        tables.segments.append((cpu, task, start, stop))


# ---- the tracefs instance ---------------------------------------------------------------------
def find_tracefs() -> Path | None:
    """A mounted tracefs (the directory holding ``instances``), or None."""
    for path in MOUNT_POINTS:
        if (path / "instances").is_dir():
            return path
    return None


def event_filter(event: str, tids: Iterable[int]) -> str:
    """The tracefs filter keeping `event` (``system/name``) only for `tids` (runs of tids as
    ranges), on the fields of `EVENTS`."""
    clauses = []
    for first, last in _runs(sorted(set(tids))):
        for name in EVENTS[event]:
            if first == last:
                clauses.append(f"{name} == {first}")
            else:
                clauses.append(f"({name} >= {first} && {name} <= {last})")
    return " || ".join(clauses)


def _runs(values: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs of sorted ints as (first, last)."""
    start = prev = values[0] if values else 0
    for value in values[1:]:
        if value != prev + 1:
            yield start, prev
            start = value
        prev = value
    if values:
        yield start, prev


def mount_tracefs() -> Path:
    """The tracefs directory, mounting tracefs at /sys/kernel/tracing when it is not mounted."""
    root = find_tracefs()
    if root is not None:
        return root
    point = MOUNT_POINTS[0]
    done = subprocess.run(
        ["mount", "-t", "tracefs", "nodev", str(point)], capture_output=True, text=True
    )
    if done.returncode != 0 or find_tracefs() is None:
        raise TracefsUnavailable(
            f"tracefs is not mounted and cannot be mounted at {point}: "
            f"{done.stderr.strip() or 'no instances directory'}"
        )
    return point


def buffer_kb_for(duration_ns: int, cpus: int, available_kb: int) -> int:
    """Per-CPU ring-buffer size (KiB) for a run of `duration_ns`: every event a CPU can record
    in that time (`BUFFER_BYTES_PER_CPU_SECOND`), at least `BUFFER_KB_MIN`, and all `cpus`
    buffers within 1/`BUFFER_MEMORY_SHARE` of `available_kb` (an overrun is then reported)."""
    traced_ns = duration_ns + BUFFER_MARGIN_NS
    needed = -(-BUFFER_BYTES_PER_CPU_SECOND * traced_ns // (1024 * 1_000_000_000))
    ceiling = available_kb // (BUFFER_MEMORY_SHARE * max(cpus, 1))
    return max(BUFFER_KB_MIN, min(needed, ceiling))


def available_memory_kb() -> int:
    """``MemAvailable`` of /proc/meminfo, KiB."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, value = line.partition(":")
        if key == "MemAvailable":
            return int(value.split()[0])
    raise TracefsUnavailable("/proc/meminfo has no MemAvailable line")


#: What ``follow_forks`` sessions (`cfssim capture`) record besides `EVENTS`.
FORK_EVENTS = ("sched/sched_process_fork", "sched/sched_process_exit")


@dataclass
class TraceSession:
    """A private tracefs instance ``instances/<name>`` recording the scheduler events of
    `tids` during a run of `duration_ns`. `name` is the run's ``cfssim-<pid>.<start>-<n>``.

    With `follow_forks` the instance records processes rather than threads: `tids` are pids
    given to ``set_event_pid`` with the ``event-fork`` option (their children join as they
    are forked, from before they first run), `FORK_EVENTS` are recorded too, and no event
    filter is written. With `filters` ({``<system>/<event>``: filter, "" for none}) exactly
    those events are recorded with those filters, whatever `tids` (`cfssim calibrate`)."""

    name: str
    tids: list[int]
    duration_ns: int
    follow_forks: bool = False
    filters: dict[str, str] | None = None
    instance: Path | None = field(init=False, default=None)

    @property
    def events(self) -> list[str]:
        """The events this session records (``<system>/<event>``)."""
        if self.filters is not None:
            return list(self.filters)
        return [*EVENTS, *(FORK_EVENTS if self.follow_forks else ())]

    def event_filter(self, event: str) -> str:
        """The filter written for `event` ("": none)."""
        if self.filters is not None:
            return self.filters[event]
        return "" if self.follow_forks else event_filter(event, self.tids)

    @property
    def buffer_kb(self) -> int:
        """The per-CPU ring-buffer size for this run, KiB (`buffer_kb_for`)."""
        cpus = os.cpu_count() or 1
        return buffer_kb_for(self.duration_ns, cpus, available_memory_kb())

    def start(self) -> None:
        """Mount if needed, make the instance, filter to `tids`, enable the events."""
        instance = mount_tracefs() / "instances" / self.name
        try:
            instance.mkdir()
        except OSError as exc:
            raise TracefsUnavailable(f"cannot create tracefs instance {instance}: {exc}") from exc
        self.instance = instance
        present = [e for e in self.events if (instance / "events" / e / "enable").exists()]
        missing = [e for e in self.events if e not in present and e not in OPTIONAL_EVENTS]
        if missing:
            raise TracefsUnavailable(f"tracefs lacks the events {', '.join(missing)}")
        self._write("tracing_on", "0")
        self._write("trace_clock", "mono")
        self._write("buffer_size_kb", str(self.buffer_kb))
        if self.follow_forks:
            self._write("options/event-fork", "1")
            self._write("set_event_pid", " ".join(map(str, self.tids)))
        for event in present:
            if condition := self.event_filter(event):
                self._write(f"events/{event}/filter", condition)
            self._write(f"events/{event}/enable", "1")
        self._write("tracing_on", "1")

    def stop(self) -> tuple[str, int]:
        """Stop recording; the ``trace`` text and the number of events lost to overruns."""
        self._write("tracing_on", "0")
        assert self.instance is not None
        text = (self.instance / "trace").read_text()
        return text, self.overruns()

    def overruns(self) -> int:
        """Events the ring buffer dropped (``per_cpu/cpu*/stats`` overrun), all CPUs."""
        assert self.instance is not None
        total = 0
        for stats in sorted((self.instance / "per_cpu").glob("cpu*/stats")):
            for line in stats.read_text().splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "overrun":
                    total += int(value)
        return total

    def close(self) -> None:
        """Remove the instance; safe to call more than once."""
        if self.instance is not None:
            remove_instance(self.instance)
            self.instance = None

    def _write(self, file: str, value: str) -> None:
        assert self.instance is not None
        path = self.instance / file
        try:
            path.write_text(value + "\n")
        except OSError as exc:
            raise TracefsUnavailable(f"cannot write {value!r} to {path}: {exc}") from exc


def remove_instance(instance: Path) -> None:
    """Stop and rmdir a tracefs instance (the kernel frees its buffer and events with it); one
    already gone is fine, one the kernel keeps (EBUSY: a file of it is open) raises
    `CleanupIncomplete` naming it and the command that removes it later."""
    with contextlib.suppress(OSError):
        (instance / "tracing_on").write_text("0\n")
    try:
        os.rmdir(instance)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CleanupIncomplete(
            f"the tracefs instance {instance} could not be removed ({exc.strerror}). "
            f"Remove it with: {CLEANUP_COMMAND}"
        ) from exc


def leftover_instances(prefix: str) -> list[Path]:
    """The instances named ``<prefix>*`` (crashed runs' buffers; none without tracefs)."""
    root = find_tracefs()
    return [] if root is None else sorted((root / "instances").glob(prefix + "*"))
