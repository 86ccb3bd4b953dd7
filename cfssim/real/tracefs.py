"""``--trace``: the kernel's ``sched_switch``/``sched_wakeup`` events of a real run, from tracefs,
turned into the simulator's ``segments``, ``wakeups`` and ``migrations`` tables.

Nothing global is touched: the events are recorded in a private ring buffer, the tracefs instance
``instances/cfssim-<pid>-<n>`` (named like the run's cgroups), limited to the scenario's tids by
event filters on the events' own fields (``prev_pid``/``next_pid`` of ``sched_switch``, ``pid`` of
the wakeup and migration events). ``set_event_pid`` is not used: on this 6.18 kernel it dropped
the switch from the idle task to a listed task woken by a timer interrupt. The instance uses
``trace_clock`` ``mono`` (CLOCK_MONOTONIC, the clock of the run's t0), is read once after the
run (no reader perturbs it) and removed afterwards. When tracefs is not mounted, it is mounted at
/sys/kernel/tracing (and left there, as tracing tools do: unmounting could pull it from under
another user).

The text format prints timestamps in µs, so traced times have 1 µs resolution (stored as int ns).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..trace import Recorder
from .errors import TracefsUnavailable

MOUNT_POINTS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
EVENTS = ("sched_switch", "sched_wakeup", "sched_wakeup_new", "sched_migrate_task")
BUFFER_KB_PER_CPU = 8192

#: One line of the ``trace`` file: task-pid, [cpu], flags, seconds.micros, event: fields.
LINE = re.compile(r"^\s*.+?-(\d+)\s+\[(\d+)\]\s+\S+\s+(\d+)\.(\d{6}):\s+(\w+):\s+(.*)$")
FIELD = re.compile(r"(\w+)=(\S*)")


@dataclass(frozen=True)
class Event:
    """One traced event: time (CLOCK_MONOTONIC ns), CPU, name, and its numeric fields."""

    time_ns: int
    cpu: int
    name: str
    fields: dict[str, int]


def parse_trace(text: str) -> Iterator[Event]:
    """The events of a ``trace`` file's text (comment lines and lost-event notes skipped)."""
    for line in text.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        _pid, cpu, secs, micros, name, rest = match.groups()
        # comm=... may precede; keep the numeric fields (pids, prios, cpus)
        values = {k: int(v) for k, v in FIELD.findall(rest.replace(" ==> ", " ")) if _isint(v)}
        yield Event(int(secs) * 1_000_000_000 + int(micros) * 1000, int(cpu), name, values)


def _isint(text: str) -> bool:
    return text.lstrip("-").isdigit()


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
            recorder.add("wakeups", *row)
        for row in self.migrations:
            recorder.add("migrations", *row)


def events_to_tables(events: Iterable[Event], tasks: dict[int, int], t0: int, end: int) -> Tables:
    """Tables for `tasks` (tid → task index) from the events, times made relative to `t0` (ns
    on the events' clock) and clipped to [0, `end`). A run with no switch-in seen (the task ran
    when tracing began) is dropped: tracing starts before t0, while every worker waits at the
    barrier, so no part of the run is lost."""
    tables = Tables()
    running: dict[int, tuple[int, int]] = {}  # cpu → (task index, start)
    woken: dict[int, int] = {}  # task index → wakeup time
    for event in sorted(events, key=lambda e: e.time_ns):
        time = event.time_ns - t0
        if event.name == "sched_switch":
            prev = tasks.get(event.fields.get("prev_pid", -1))
            nxt = tasks.get(event.fields.get("next_pid", -1))
            if prev is not None and running.get(event.cpu, (-1, 0))[0] == prev:
                task, start = running.pop(event.cpu)
                _add_segment(tables, event.cpu, task, start, time, end)
            if nxt is not None:
                running[event.cpu] = (nxt, time)
                if nxt in woken:
                    wake = woken.pop(nxt)
                    if 0 <= wake < end:
                        tables.wakeups.append((nxt, event.cpu, wake, time - wake))
        elif event.name in ("sched_wakeup", "sched_wakeup_new"):
            woken_task = tasks.get(event.fields.get("pid", -1))
            if woken_task is not None:
                woken[woken_task] = time
        elif event.name == "sched_migrate_task":
            moved = tasks.get(event.fields.get("pid", -1))
            if moved is not None and 0 <= time < end:
                src, dst = event.fields.get("orig_cpu", -1), event.fields.get("dest_cpu", -1)
                tables.migrations.append((moved, time, src, dst))
    for cpu, (task, start) in running.items():
        _add_segment(tables, cpu, task, start, end, end)
    tables.segments.sort(key=lambda row: (row[2], row[0]))
    return tables


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
    """The tracefs filter keeping `event` only for `tids` (runs of tids as ranges)."""
    fields = ("prev_pid", "next_pid") if event == "sched_switch" else ("pid",)
    clauses = []
    for first, last in _runs(sorted(set(tids))):
        for name in fields:
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


@dataclass
class TraceSession:
    """A private tracefs instance ``instances/<name>`` recording the scheduler events of
    `tids`. `name` is the run's ``cfssim-<pid>-<n>``."""

    name: str
    tids: list[int]
    buffer_kb: int = BUFFER_KB_PER_CPU
    instance: Path | None = field(init=False, default=None)

    def start(self) -> None:
        """Mount if needed, make the instance, filter to `tids`, enable the events."""
        instance = mount_tracefs() / "instances" / self.name
        try:
            instance.mkdir()
        except OSError as exc:
            raise TracefsUnavailable(f"cannot create tracefs instance {instance}: {exc}") from exc
        self.instance = instance
        events = instance / "events" / "sched"
        missing = [e for e in EVENTS if not (events / e / "enable").exists()]
        if missing:
            raise TracefsUnavailable(f"tracefs lacks the events {', '.join(missing)}")
        self._write("tracing_on", "0")
        self._write("trace_clock", "mono")
        self._write("buffer_size_kb", str(self.buffer_kb))
        for event in EVENTS:
            self._write(f"events/sched/{event}/filter", event_filter(event, self.tids))
            self._write(f"events/sched/{event}/enable", "1")
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
    """Stop and rmdir a tracefs instance (the kernel frees its buffer and events with it)."""
    with contextlib.suppress(OSError):
        (instance / "tracing_on").write_text("0\n")
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(instance)


def leftover_instances(prefix: str) -> list[Path]:
    """The instances named ``<prefix>*`` (crashed runs' buffers; none without tracefs)."""
    root = find_tracefs()
    return [] if root is None else sorted((root / "instances").glob(prefix + "*"))
