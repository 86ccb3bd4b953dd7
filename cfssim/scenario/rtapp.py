"""rt-app workloads (JSON, as rt-app and LISA write them) read as cfssim workloads.

`load_rtapp(path)` (what `load_workload` calls for JSON) reads rt-app's grammar (doc/tutorial.txt of
scheduler-tools/rt-app): ``global`` (``duration`` s, ``default_policy``, ``mem_buffer_size``),
``tasks`` with ``instance``, ``delay`` (µs), ``loop`` (−1 = forever), ``phases`` (an object of
ordered phases, or the events inline), events ``run``/``runtime``/``sleep`` (µs), ``timer`` ``{ref,
period, mode}``, ``mem``/``memrun`` (bytes written to the thread's buffer), ``iorun`` (bytes
written to ``io_device``), properties ``policy``,
``priority`` (the nice value for SCHED_OTHER/BATCH, the RT priority for FIFO/RR), ``dl-runtime``
(µs; on SCHED_OTHER the EEVDF custom slice), ``cpus`` and ``taskgroup`` (a path, or ``{"path",
"cpu.max", "cpu.weight", …}``). Keys are matched by prefix as rt-app does, so workgen's
``run0``/``sleep1`` work; duplicate keys are kept in order; C comments and trailing commas (accepted
by rt-app's json-c) are allowed. Each rt-app task becomes a process of ``instance`` threads named
``<task>/<i>``.

The result is an `RtappWorkload`: its `Scenario` (the YAML view, for ``cfssim convert``) and, for
the constructs the YAML has no step for, exact Python behaviours used by `Workload.run`:

- ``timer`` sleeps until the timer's next period boundary (rt-app's ``run_event``: ``t_next``
  starts at the thread's start, advances by ``period`` at each use; when already past it, the
  ``relative`` default re-anchors to now, ``absolute`` keeps the grid and catches up missed
  periods without sleeping). Refs starting with ``unique`` are per thread, others shared by
  every thread using them. When a task's timers are one per-thread timer (one ref, private to
  each thread, one mode), the YAML view writes them as ``timer`` steps: exactly in relative
  mode; in absolute mode with a warning, since the step skips missed periods where rt-app
  catches them up. Other timers become the sleep that reaches the boundary when nothing
  delays the thread, with a warning.
- a phase that changes ``priority`` (nice) or ``taskgroup`` applies it when the phase starts.
- ``mem`` grows the thread's resident memory up to ``mem_buffer_size`` (the YAML view allocates
  that growth when the thread starts).
- ``iorun`` is rt-app's ``ioload``: ``write(2)`` calls of at most ``mem_buffer_size`` bytes to
  ``io_device`` (/dev/null), each costing the host's `HostModel.null_write_ns` of the thread's CPU
  time whatever its size (docs/kernel-facts.md#devnull-write; free on the ideal machine). The
  YAML view leaves that CPU time out, with a warning.

- ``lock``/``unlock``, ``wait``/``signal``/``broad``/``sync``, ``barrier``, ``suspend``/``resume``,
  ``fork`` (instance-0 tasks are fork templates), ``yield``, ``runtime`` (wall time) and
  per-phase ``cpus`` become the scenario's synchronisation and thread steps (`cfssim.sync`).

Everything cfssim does not model (an ``io_device`` other than /dev/null, SCHED_DEADLINE, uclamp,
NUMA binding, phase-level policy/slice changes, unknown keys) is reported in `Workload.warnings`,
one line per key, ``file:line:col: path: …`` — never silently dropped — and refused with
``strict``.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import _json
from .._errors import describe, name_list
from ..behaviour import Behaviour, TimerClock, execute, repetitions
from ..cgroup import files as cgfiles
from ..cgroup.files import CgroupConfig, CgroupFileError
from ..host import HostModel
from ..task import RT_POLICIES, SCHED_NAMES
from ..units import NSEC_PER_SEC, NSEC_PER_USEC
from .checks import Limits
from .errors import ScenarioError
from .model import Scenario
from .steps import (
    BarrierWait,
    Broadcast,
    CondWait,
    Fork,
    Lock,
    Resume,
    Run,
    Runtime,
    SetCpus,
    Signal,
    Sleep,
    Suspend,
    Timer,
    TimerMode,
    Unlock,
    Yield,
)
from .workload import Workload
from .yaml_io import error_message, exact_size, read_source, step_data

DEFAULT_MEM_BUFFER_BYTES = 4 * 1024 * 1024  # rt-app's mem_buffer_size default (4 MB)
DEFAULT_CPUS = 2
DEFAULT_RT_PRIORITY = 10  # rt-app's default priority for SCHED_FIFO / SCHED_RR

#: rt-app's policy names (the kernel's; SCHED_OTHER listed first, as rt-app's documentation
#: does) → cfssim's; deadline is not modelled and runs as normal
_POLICIES = {"SCHED_OTHER": "normal", **SCHED_NAMES, "SCHED_DEADLINE": "deadline"}
_FAIR = ("normal", "batch")
#: rt-app's ``io_device`` default: the one device whose writes are modelled (`IoWrite`)
DEV_NULL = "/dev/null"
#: rt-app's synchronisation and thread events (prefix → the step they become, `_sync_event`)
_SYNC_EVENTS = (
    "lock",
    "unlock",
    "wait",
    "signal",
    "broad",
    "sync",
    "barrier",
    "suspend",
    "resume",
    "yield",
    "fork",
)
#: event prefixes, longest first where one is a prefix of another (rt-app matches prefixes)
_EVENTS = ("runtime", "run", "sleep", "timer", "memrun", "mem", "iorun", *_SYNC_EVENTS)
_UNMODELLED_PROPERTIES = {
    "dl-period": "SCHED_DEADLINE period",
    "dl-deadline": "SCHED_DEADLINE deadline",
    "util_min": "utilization clamping",
    "util_max": "utilization clamping",
    "membind_nodes": "NUMA memory binding",
}
_SETTINGS = ("policy", "priority", "cpus", "taskgroup", "dl-runtime")
_TASK_ONLY = ("instance", "delay", "phases", "loop")
_GLOBAL_IGNORED = (
    "calibration",
    "pi_enabled",
    "lock_pages",
    "logdir",
    "log_basename",
    "log_size",
    "ftrace",
    "gnuplot",
    "cumulative_slack",
)
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:+-]")

Pairs = list[tuple[str, Any]]
#: A path of JSON keys into the rt-app document (`cfssim.scenario.JsonPath` is the YAML one).
JsonPath = tuple[str, ...]


# ---- the parsed workload ------------------------------------------------------------------------
@dataclass(frozen=True)
class RtTimer:
    """A ``timer`` event: sleep until the next `period_ns` boundary of timer `ref`."""

    ref: str
    period_ns: int
    relative: bool = True

    @property
    def unique(self) -> bool:
        """rt-app: a ref starting with "unique" is private to each thread."""
        return self.ref.startswith("unique")


@dataclass(frozen=True)
class MemWrite:
    """A ``mem``/``memrun`` event: write `nbytes` into the thread's buffer."""

    nbytes: int


@dataclass(frozen=True)
class IoWrite:
    """An ``iorun`` event: write `nbytes` from the thread's buffer to ``io_device`` (/dev/null)."""

    nbytes: int

    def calls(self, buffer_bytes: int) -> int:
        """rt-app's ``ioload``: one ``write(2)`` per `buffer_bytes` (the last one shorter);
        /dev/null takes every write whole."""
        return -(-self.nbytes // buffer_bytes)

    def cpu_ns(self, buffer_bytes: int, host: HostModel) -> int:
        """The writing thread's CPU time (ns): its calls at `host`'s cost of one."""
        return self.calls(buffer_bytes) * host.null_write_ns


SyncEvent = (
    Lock
    | Unlock
    | CondWait
    | Signal
    | Broadcast
    | BarrierWait
    | Suspend
    | Resume
    | Fork
    | Yield
    | Runtime
)
Event = Run | Sleep | RtTimer | MemWrite | IoWrite | SyncEvent


@dataclass(frozen=True)
class Settings:
    """Scheduling settings a task or phase gives (None: not given)."""

    policy: str | None = None
    priority: int | None = None
    cpus: tuple[int, ...] | None = None
    cgroup: str | None = None
    slice_us: int | None = None

    def over(self, base: Settings) -> Settings:
        """These settings on top of `base` (given fields win)."""
        return Settings(
            *(
                mine if mine is not None else theirs
                for mine, theirs in zip(
                    dataclasses.astuple(self), dataclasses.astuple(base), strict=True
                )
            )
        )


@dataclass(frozen=True)
class Phase:
    name: str
    loop: int | None  # None = forever
    events: tuple[Event, ...]
    keys: tuple[str, ...]  # the JSON key of each event
    settings: Settings
    where: JsonPath


@dataclass(frozen=True)
class RtTask:
    """One rt-app task: `threads` instances of `phases`, run `loop` times (None = forever)."""

    name: str
    threads: int
    start_ns: int
    loop: int | None
    phases: tuple[Phase, ...]
    settings: Settings  # the effective settings when the thread starts (task, then phase 0)
    base: Settings  # the task-level settings (phases without cpus fall back to its cpus)


@dataclass
class RtappWorkload(Workload):
    """An rt-app workload: its scenario (the YAML view) plus its tasks, run exactly."""

    tasks: tuple[RtTask, ...] = ()
    mem_buffer_bytes: int = DEFAULT_MEM_BUFFER_BYTES

    def behaviours(self) -> dict[str, Behaviour]:
        """Fresh exact behaviours (shared timers start unset) for the processes that need them."""
        shared: dict[str, _TimerState] = {}
        return {
            task.name: _task_behaviour(task, shared, self.mem_buffer_bytes)
            for task in self.tasks
            if _needs_behaviour(task)
        }


# ---- exact behaviours ---------------------------------------------------------------------------
@dataclass
class _TimerState:
    next_ns: int | None = None


def _needs_behaviour(task: RtTask) -> bool:
    changes = any(_phase_changes(task, phase) for phase in task.phases)
    special = any(
        isinstance(event, (RtTimer, MemWrite, IoWrite))
        for phase in task.phases
        for event in phase.events
    )
    return changes or special


def _phase_changes(task: RtTask, phase: Phase) -> dict[str, Any]:
    """The nice / cgroup a phase sets (applied at every start of the phase, as rt-app does)."""
    effective = phase.settings.over(task.settings)
    changes: dict[str, Any] = {}
    if effective.policy in _FAIR and phase.settings.priority is not None:
        changes["nice"] = effective.priority
    if phase.settings.cgroup is not None:
        changes["cgroup"] = phase.settings.cgroup
    if any(p.settings.cpus is not None for p in task.phases):  # set_thread_affinity
        changes["cpus"] = phase.settings.cpus or task.base.cpus
    return changes


def _task_behaviour(task: RtTask, shared: dict[str, _TimerState], buffer_bytes: int) -> Behaviour:
    """rt-app's ``thread_body``: loop over phases, phase loops and their events."""
    phase_changes = [_phase_changes(task, phase) for phase in task.phases]

    def behaviour(thread: Any) -> Generator[Any, Any, None]:
        sim, process = thread.sim, thread.process
        index = process.threads.index(thread)
        t_first = thread.now
        clock = TimerClock.starting(t_first)  # for `execute`; rt-app timers use `_timer`
        private: dict[str, _TimerState] = {}
        nice, cgroup, cpus = thread.nice, process.cgroup, task.settings.cpus
        all_cpus = tuple(range(sim.tun.cpus))
        written = resident = 0
        for _ in repetitions(task.loop):
            for phase, changes in zip(task.phases, phase_changes, strict=True):
                for _ in repetitions(phase.loop):
                    if changes.get("nice", nice) != nice:
                        nice = changes["nice"]
                        sim.set_nice(process.name, nice, thread=index)
                    if changes.get("cgroup", cgroup) != cgroup:
                        cgroup = changes["cgroup"]
                        sim.move(process.name, cgroup, thread=index)
                    if "cpus" in changes and changes["cpus"] != cpus:
                        cpus = changes["cpus"]
                        sim.set_affinity(process.name, cpus or all_cpus, thread=index)
                    for event in phase.events:
                        if isinstance(event, RtTimer):
                            timers = private if event.unique else shared
                            yield from _timer(
                                thread, timers.setdefault(event.ref, _TimerState()), event, t_first
                            )
                        elif isinstance(event, MemWrite):  # pages of the buffer touched
                            written = min(buffer_bytes, written + event.nbytes)
                            pages = -(-written // cgfiles.PAGE_SIZE) * cgfiles.PAGE_SIZE
                            if pages > resident:
                                yield thread.alloc(pages - resident)
                                resident = pages
                        elif isinstance(event, IoWrite):  # write_null: CPU time per call
                            cpu_ns = event.cpu_ns(buffer_bytes, sim.host)
                            if cpu_ns:
                                yield thread.run(cpu_ns)
                        else:
                            yield from execute(thread, (event,), clock)

    return behaviour


def _timer(
    thread: Any, state: _TimerState, timer: RtTimer, t_first: int
) -> Generator[Any, Any, None]:
    """rt-app ``run_event`` case ``rtapp_timer``."""
    if state.next_ns is None:
        state.next_ns = t_first
    state.next_ns += timer.period_ns
    now = thread.now
    if now < state.next_ns:
        yield thread.sleep(state.next_ns - now)
    elif timer.relative:
        state.next_ns = now


# ---- JSON reading -------------------------------------------------------------------------------
_COMMENT_OR_STRING = re.compile(r'"(?:\\.|[^"\\])*"|/\*.*?\*/|//[^\n]*', re.S)
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")


def _blank(match: re.Match[str]) -> str:
    text = match.group(0)
    if text.startswith('"'):
        return text
    return re.sub(r"[^\n]", " ", text)  # keep line and column positions


#: The most µs a time may be: its ns must fit 64 bits.
_MAX_USEC = _json.INT64_MAX // NSEC_PER_USEC


def relax_json(text: str) -> str:
    """rt-app's json-c dialect → JSON: C comments blanked out, trailing commas dropped."""
    text = _COMMENT_OR_STRING.sub(_blank, text)
    return _TRAILING_COMMA.sub(lambda m: " " + m.group(1), text)


class _Reader:
    """Parses one rt-app document, collecting errors and warnings with their JSON location."""

    def __init__(self, text: str, origin: str) -> None:
        self.text, self.origin = text, origin
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.refused: list[str] = []  # what cfssim does not model
        self.view_refused: list[str] = []  # what only the YAML view approximates
        self.fork_targets: set[str] = set()  # task names fork events start
        self.cgroups: dict[str, dict[str, Any]] = {}
        self.cgroup_where: dict[str, JsonPath] = {}
        self.io_device: tuple[JsonPath, str] | None = None  # a global io_device not /dev/null

    # -- messages
    def position(self, where: JsonPath) -> tuple[int, int]:
        """Line and column of the last key of `where`, found by searching its keys in order."""
        pos = 0
        for key in where:
            match = re.compile('"' + re.escape(key) + r'"\s*:').search(self.text, pos)
            if match is None:
                break
            pos = match.start()
        line = self.text.count("\n", 0, pos) + 1
        return line, pos - (self.text.rfind("\n", 0, pos) + 1) + 1

    def message(self, where: JsonPath, text: str) -> str:
        line, col = self.position(where)
        return f"{self.origin}:{line}:{col}: {'.'.join(where) or 'document'}: {text}"

    def error(self, where: JsonPath, expected: str, found: Any) -> None:
        self.errors.append(self.message(where, f"expected {expected}, found {describe(found)}"))

    def warn(self, where: JsonPath, text: str) -> None:
        self.warnings.append(self.message(where, text))

    def unmodelled(self, where: JsonPath, text: str) -> None:
        """A warning about something cfssim does not model (refused with `strict`)."""
        message = self.message(where, text)
        self.warnings.append(message)
        self.refused.append(message)

    def view(self, where: JsonPath, text: str) -> None:
        """A warning about the YAML view only (``cfssim run`` on the JSON is exact): refused by
        ``convert --strict``."""
        message = self.message(where, text)
        self.warnings.append(message)
        self.view_refused.append(message)

    # -- values
    def integer(
        self,
        where: JsonPath,
        value: Any,
        expected: str,
        low: int | None = None,
        high: int | None = None,
    ) -> int | None:
        number = value if type(value) is int else None
        if isinstance(value, float) and value.is_integer():
            number = int(value)
        high = _json.INT64_MAX if high is None else high  # json-c's integers are int64
        if (
            number is None
            or (low is not None and number < low)
            or number > high
            or number < _json.INT64_MIN
        ):
            self.error(where, expected, value)
            return None
        return number

    def usec(self, where: JsonPath, value: Any) -> int | None:
        number = self.integer(where, value, "a non-negative integer of µs", low=0)
        if number is not None and number > _MAX_USEC:
            self.error(where, f"at most {_MAX_USEC} µs (its ns must fit 64 bits)", value)
            return None
        return None if number is None else number * NSEC_PER_USEC

    def mapping(self, where: JsonPath, value: Any, expected: str) -> Pairs | None:
        if isinstance(value, list) and all(isinstance(p, tuple) for p in value):
            return value
        self.error(where, expected, _plain(value))
        return None

    # -- document
    def document(self, data: Any) -> tuple[int | None, Settings, int, list[RtTask]]:
        top = self.mapping((), data, "an object with 'tasks' (and 'global')") or []
        keys = dict(top)
        duration, default, buffer = self.global_options(keys.get("global"))
        for key, _ in top:
            if key not in ("tasks", "global", "resources"):
                self.unmodelled((key,), "unknown top-level key (ignored)")
        tasks_pairs = self.mapping(
            ("tasks",), keys.get("tasks"), 'an object of tasks, such as {"thread0": {"run": 10000}}'
        )
        parsed = [
            task
            for name, body in tasks_pairs or []
            if (task := self.task(name, body, default)) is not None
        ]
        tasks = []
        for task in parsed:  # instance 0: a thread only fork events start
            if task.threads == 0 and task.name not in self.fork_targets:
                self.warn(
                    ("tasks", task.name),
                    "creates no thread (instance is 0 and no fork event starts it); left out",
                )
            else:
                tasks.append(task)
        writes = any(isinstance(e, IoWrite) for t in tasks for p in t.phases for e in p.events)
        if self.io_device is not None and writes:
            where, device = self.io_device
            self.unmodelled(
                where,
                f"iorun writes to {describe(device)}: only {DEV_NULL} is modelled (a file or "
                "device's page cache and I/O are not); they cost what writes to /dev/null do",
            )
        if tasks_pairs is not None and not tasks and not self.errors:
            self.error(("tasks",), "at least one task that creates a thread", _plain(tasks_pairs))
        return duration, default, buffer, tasks

    def global_options(self, raw: Any) -> tuple[int | None, Settings, int]:
        duration: int | None = None
        policy = "normal"
        buffer = DEFAULT_MEM_BUFFER_BYTES
        if raw is None:
            return duration, Settings(policy=policy), buffer
        for key, value in self.mapping(("global",), raw, "an object") or []:
            where = ("global", key)
            if key == "duration":
                seconds = self.integer(where, value, "a whole number of seconds, or -1", low=-1)
                duration = seconds * NSEC_PER_SEC if seconds and seconds > 0 else None
            elif key == "default_policy":
                policy = self.policy(where, value) or policy
            elif key == "mem_buffer_size":
                buffer = self.integer(where, value, "a positive number of bytes", low=1) or buffer
            elif key == "io_device":
                if not isinstance(value, str) or not value:
                    self.error(where, 'a file path, such as "/dev/null"', _plain(value))
                elif value != DEV_NULL:
                    self.io_device = (where, value)
            elif key not in _GLOBAL_IGNORED:
                self.unmodelled(where, "unknown global option (ignored)")
        return duration, Settings(policy=policy), buffer

    def policy(self, where: JsonPath, value: Any) -> str | None:
        if value == "SCHED_DEADLINE":
            self.unmodelled(where, "SCHED_DEADLINE is not modelled; the thread runs as SCHED_OTHER")
        if value not in _POLICIES:
            self.error(where, f"one of {', '.join(_POLICIES)}", value)
            return None
        return _POLICIES[value]

    def task(self, raw_name: str, body: Any, default: Settings) -> RtTask | None:
        where: JsonPath = ("tasks", raw_name)
        pairs = self.mapping(where, body, "an object describing the thread")
        if pairs is None:
            return None
        name = _NAME_CHARS.sub("_", raw_name) or "task"
        if name != raw_name:
            self.warn(
                where,
                f"task name renamed to {name!r} (cfssim names use letters, digits and _ . : + -)",
            )
        keys = dict(pairs)
        threads = self.integer(
            (*where, "instance"), keys.get("instance", 1), "a thread count ≥ 0", low=0
        )
        start = self.usec((*where, "delay"), keys.get("delay", 0))
        loop = self.loop((*where, "loop"), keys.get("loop", -1))
        settings = self.settings(where, pairs)
        if "phases" in keys:
            phase_pairs = self.mapping(
                (*where, "phases"),
                keys["phases"],
                'an object of phases, such as {"p1": {"run": 10}}',
            )
            phases = [
                self.phase((*where, "phases", phase_name), phase_name, phase_body, name)
                for phase_name, phase_body in phase_pairs or []
            ]
            inline = [key for key, _ in pairs if _event_kind(key)]
            for key in inline:
                self.warn((*where, key), "event beside 'phases' (ignored, as rt-app does)")
        else:
            phases = [self.phase(where, "inline", pairs, name, inline=True)]
        valid = [phase for phase in phases if phase is not None]
        if threads is None or start is None or self.errors or len(valid) != len(phases):
            return None
        if loop == 0:
            self.warn(where, "creates no thread (loop is 0); left out")
            return None
        if not valid:
            self.error((*where, "phases"), "at least one phase", [])
            return None
        effective = valid[0].settings.over(settings).over(default)
        task = RtTask(name, threads, start, loop, tuple(valid), effective, settings)
        self.check_phase_settings(task)
        if loop is None and not any(_takes_time(p) for p in valid):
            self.error(
                where, "a run, sleep or timer that takes time in a task that loops forever", "none"
            )
            return None
        return task

    def loop(self, where: JsonPath, value: Any) -> int | None:
        number = self.integer(where, value, "a loop count ≥ 0, or -1 for forever", low=-1)
        return None if number == -1 else (number if number is not None else 1)

    def phase(
        self, where: JsonPath, name: str, body: Any, task: str, inline: bool = False
    ) -> Phase | None:
        pairs = self.mapping(where, body, "an object of events and properties")
        if pairs is None:
            return None
        loop = 1 if inline else self.loop((*where, "loop"), dict(pairs).get("loop", 1))
        if loop == 0:
            self.error((*where, "loop"), "a phase loop count ≥ 1, or -1 for forever", 0)
        events: list[Event] = []
        keys: list[str] = []
        for key, value in pairs:
            kind = _event_kind(key)
            if kind is not None:
                for event in self.event((*where, key), kind, value, task):
                    events.append(event)
                    keys.append(key)
            elif key in _UNMODELLED_PROPERTIES:
                self.unmodelled(
                    (*where, key), f"{_UNMODELLED_PROPERTIES[key]} is not modelled (ignored)"
                )
            elif key not in _SETTINGS and not (key in _TASK_ONLY and (inline or key == "loop")):
                self.unmodelled((*where, key), "unknown key (ignored)")
        if not events and not any(_event_kind(key) for key, _ in pairs):
            self.errors.append(
                self.message(
                    where,
                    'expected at least one event (rt-app: "No events found. Task must have '
                    "events or it's useless\"), found none",
                )
            )
            return None
        settings = Settings() if inline else self.settings(where, pairs)
        return Phase(name, loop, tuple(events), tuple(keys), settings, where)

    def event(self, where: JsonPath, kind: str, value: Any, task: str) -> list[Event]:
        """The steps of one event (``sync`` is two); `task` names the thread (for ``suspend``
        without a name, which workgen fills with the thread's own)."""
        if kind in _SYNC_EVENTS:
            return self.sync_event(where, kind, value, task)
        one = self.time_event(where, kind, value)
        return [] if one is None else [one]

    def sync_event(self, where: JsonPath, kind: str, value: Any, task: str) -> list[Event]:
        """rt-app's ``lock``/``unlock`` (a mutex name), ``wait``/``sync`` ({ref, mutex}:
        ``sync`` signals then waits), ``signal``/``broad`` (a condition name), ``barrier``,
        ``suspend`` (a name; empty: the thread's own), ``resume`` (a thread name), ``fork`` (a
        task name), ``yield`` (any value)."""
        if kind == "yield":
            return [Yield()]
        if kind in ("wait", "sync"):
            pairs = self.mapping(where, value, 'an object {"ref": condition, "mutex": mutex}')
            keys = dict(pairs or [])
            ref, mutex = keys.get("ref"), keys.get("mutex")
            if (
                pairs is None
                or not isinstance(ref, str)
                or not ref
                or not isinstance(mutex, str)
                or not mutex
            ):
                if pairs is not None:
                    self.error(
                        where,
                        'an object {"ref": condition, "mutex": mutex} of two names',
                        _plain(value),
                    )
                return []
            wait = CondWait(cond=ref, mutex=mutex)
            return [wait] if kind == "wait" else [Signal(signal=ref), wait]
        if not isinstance(value, str) or (not value and kind != "suspend"):
            self.error(where, "a name (a string)", _plain(value))
            return []
        if kind in ("resume", "fork", "suspend"):
            value = _NAME_CHARS.sub("_", value or task)
        if kind == "fork":
            self.fork_targets.add(value)
        model: dict[str, Any] = {
            "lock": Lock,
            "unlock": Unlock,
            "signal": Signal,
            "broad": Broadcast,
            "barrier": BarrierWait,
            "suspend": Suspend,
            "resume": Resume,
            "fork": Fork,
        }
        alias = {"broad": "broadcast"}.get(kind, kind)
        event: SyncEvent = model[kind].model_validate({alias: value})
        return [event]

    def time_event(self, where: JsonPath, kind: str, value: Any) -> Event | None:
        if kind == "runtime":
            ns = self.usec(where, value)
            return None if ns is None else Runtime(runtime=ns)
        if kind == "run":
            ns = self.usec(where, value)
            return None if ns is None else Run.model_validate({"run": ns})
        if kind == "sleep":
            ns = self.usec(where, value)
            return None if ns is None else Sleep.model_validate({"sleep": ns})
        if kind in ("mem", "memrun", "iorun"):
            nbytes = self.integer(where, value, "a non-negative number of bytes", low=0)
            if nbytes is None:
                return None
            return IoWrite(nbytes) if kind == "iorun" else MemWrite(nbytes)
        return self.timer(where, value)

    def timer(self, where: JsonPath, value: Any) -> RtTimer | None:
        pairs = self.mapping(where, value, 'an object {"ref": …, "period": µs}')
        if pairs is None:
            return None
        keys = dict(pairs)
        ref = keys.get("ref", "unknown")
        period = self.usec((*where, "period"), keys.get("period", 0))
        mode = keys.get("mode", "relative")
        if mode not in ("relative", "absolute"):
            self.error((*where, "mode"), "'relative' or 'absolute'", mode)
            return None
        for key in keys:
            if key not in ("ref", "period", "mode"):
                self.unmodelled((*where, key), "unknown timer key (ignored)")
        if not isinstance(ref, str):
            self.error((*where, "ref"), "a timer name", ref)
            return None
        return None if period is None else RtTimer(ref, period, mode == "relative")

    def settings(self, where: JsonPath, pairs: Pairs) -> Settings:
        keys = dict(pairs)
        policy = self.policy((*where, "policy"), keys["policy"]) if "policy" in keys else None
        priority = None
        if "priority" in keys:
            priority = self.integer((*where, "priority"), keys["priority"], "an integer")
        cpus = None
        if "cpus" in keys:
            raw = keys["cpus"]
            if isinstance(raw, list) and raw and all(type(c) is int and c >= 0 for c in raw):
                cpus = tuple(sorted(set(raw)))
            else:
                self.error(
                    (*where, "cpus"), "a non-empty array of CPU numbers, such as [0, 2]", raw
                )
        slice_us = None
        if "dl-runtime" in keys:
            slice_us = self.integer(
                (*where, "dl-runtime"), keys["dl-runtime"], "a non-negative integer of µs", low=0
            )
        cgroup = (
            self.taskgroup((*where, "taskgroup"), keys["taskgroup"])
            if "taskgroup" in keys
            else None
        )
        return Settings(policy, priority, cpus, cgroup, slice_us)

    def taskgroup(self, where: JsonPath, value: Any) -> str | None:
        """A path string (v1 style), or ``{"path": …, "<cgroup file>": value, …}``."""
        files: dict[str, Any] = {}
        if isinstance(value, list):
            keys = dict(value)
            path = keys.pop("path", None)
            files = {key: _plain(val) for key, val in keys.items()}
        else:
            path = value
        if path == "":
            return None
        if not isinstance(path, str):
            self.error(
                where,
                'a cgroup path such as "/tg1" or {"path": "/tg1", "cpu.max": "50000 100000"}',
                _plain(value),
            )
            return None
        path = cgfiles.normalise_path(path)
        try:
            cgfiles.check_path(path)
        except ValueError as problem:
            self.errors.append(self.message(where, str(problem)))
            return None
        config = CgroupConfig()
        for file, file_value in files.items():
            try:
                config = cgfiles.apply_write(config, file, file_value, is_root=path == "/")
            except CgroupFileError as problem:
                self.error((*where, file), problem.expected, file_value)
        known = self.cgroups.get(path)
        if files and known and known != files:
            self.error(
                where,
                f"the same files as the earlier taskgroup {path} "
                f"({'.'.join(self.cgroup_where[path])})",
                files,
            )
        elif path != "/" and (files or path not in self.cgroups):
            self.cgroups[path] = files
            self.cgroup_where[path] = where
        return path

    def check_phase_settings(self, task: RtTask) -> None:
        """Warn about phase-level changes only the start of a thread can take."""
        for phase in task.phases[1:]:
            effective = phase.settings.over(task.settings)
            for key, changed in (
                ("policy", effective.policy != task.settings.policy),
                ("dl-runtime", effective.slice_us != task.settings.slice_us),
            ):
                if changed:
                    self.unmodelled(
                        (*phase.where, key),
                        f"phase {phase.name} changes {key}, "
                        "which is "
                        "not modelled; the thread keeps its first phase's",
                    )


def _plain(value: Any) -> Any:
    """Pairs lists (the reader's objects) → dicts, for messages and cgroup files."""
    if isinstance(value, list) and value and all(isinstance(p, tuple) for p in value):
        return {key: _plain(val) for key, val in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _event_kind(key: str) -> str | None:
    if key in _SETTINGS or key in _TASK_ONLY or key in _UNMODELLED_PROPERTIES:
        return None
    return next((kind for kind in _EVENTS if key.startswith(kind)), None)


_SYNC_STEP_TYPES = (
    Lock,
    Unlock,
    CondWait,
    Signal,
    Broadcast,
    BarrierWait,
    Suspend,
    Resume,
    Fork,
    Yield,
    Runtime,
)


def _wall(event: Event) -> int:
    """Wall time an event takes when nothing delays the thread (ns)."""
    return event.ns or 0 if isinstance(event, (Run, Sleep, Runtime)) else 0


def _takes_time(phase: Phase) -> bool:
    return any(
        _wall(event) > 0 or (isinstance(event, RtTimer) and event.period_ns > 0)
        for event in phase.events
    )


# ---- the YAML view ------------------------------------------------------------------------------
def _timers(task: RtTask) -> list[RtTimer]:
    return [event for phase in task.phases for event in phase.events if isinstance(event, RtTimer)]


def _why_not_timer_steps(task: RtTask, ref_tasks: Counter[str]) -> str | None:
    """Why `task`'s timers are not one per-thread timer like the YAML ``timer`` step (None:
    they are). `ref_tasks`: how many tasks use each ref."""
    timers = _timers(task)
    refs = sorted({timer.ref for timer in timers})
    if len(refs) > 1:
        return f"the thread uses several timers ({name_list(refs)})"
    if len({timer.relative for timer in timers}) > 1:
        return "the timer is used in both modes"
    if any(timer.period_ns == 0 for timer in timers):
        return "a zero period"
    if timers and not timers[0].unique and (task.threads > 1 or ref_tasks[refs[0]] > 1):
        return f"timer {refs[0]!r} is shared by threads"
    return None


def _yaml_steps(
    phase: Phase, reader: _Reader, approximate_because: str | None
) -> list[dict[str, Any]]:
    """A phase's events as YAML steps; memory writes are allocated when the thread starts (see
    `_memory_bytes`). Timers become ``timer`` steps, or, when `approximate_because` says why
    they cannot, the sleep that ends on the boundary when nothing delays the thread (the time
    since the previous timer, cyclically)."""
    steps: list[dict[str, Any]] = []
    timers = [i for i, event in enumerate(phase.events) if isinstance(event, RtTimer)]
    elapsed = sum(_wall(event) for event in phase.events[timers[-1] + 1 :]) if timers else 0
    for event, key in zip(phase.events, phase.keys, strict=True):
        where = (*phase.where, key)
        if isinstance(event, RtTimer) and approximate_because is None:
            mode: TimerMode = "relative" if event.relative else "absolute"
            steps.append(step_data(Timer(period=event.period_ns, mode=mode)))
            if not event.relative:
                reader.view(
                    where,
                    "absolute timer written as a timer step, which skips the "
                    "periods a late thread missed where rt-app catches them up without "
                    "sleeping (the same wakeups while the thread keeps up; `cfssim "
                    "run` on the JSON models rt-app exactly)",
                )
        elif isinstance(event, RtTimer):
            steps.append({"sleep": max(0, event.period_ns - elapsed)})
            reader.view(
                where,
                f"timer written as a sleep ({approximate_because}) that "
                "reaches its period boundary only when nothing delays the thread "
                "(`cfssim run` on the JSON models the timer exactly)",
            )
            elapsed = 0
        elif isinstance(event, (Run, Sleep, *_SYNC_STEP_TYPES)):
            steps.append(step_data(event))
            elapsed += _wall(event)
        elif isinstance(event, IoWrite):
            reader.view(
                where,
                "iorun left out of the YAML view: its CPU time (one write(2) to /dev/null per "
                "mem_buffer_size bytes, at the host profile's null_write_ns_per_call) depends "
                "on the machine (`cfssim run` on the JSON runs it)",
            )
    return steps


def _memory_bytes(task: RtTask, buffer_bytes: int) -> int:
    """Resident bytes a thread's mem events reach: min(buffer, all bytes written) in pages."""
    per_pass = 0
    for phase in task.phases:
        written = sum(e.nbytes for e in phase.events if isinstance(e, MemWrite))
        if written and (phase.loop is None or task.loop is None):
            return buffer_bytes
        per_pass += written * (phase.loop or 1)
    written = min(buffer_bytes, per_pass * (task.loop or 1))
    return -(-written // cgfiles.PAGE_SIZE) * cgfiles.PAGE_SIZE


def _changes_after_start(task: RtTask) -> bool:
    """Whether a later phase sets a nice level or taskgroup other than the starting one."""
    start = {"nice": task.settings.priority, "cgroup": task.settings.cgroup}
    return any(
        value != start[key]
        for phase in task.phases[1:]
        for key, value in _phase_changes(task, phase).items()
        if key in start
    )


def _process(
    task: RtTask, reader: _Reader, buffer_bytes: int, ref_tasks: Counter[str], ncpus: int
) -> dict[str, Any]:
    """The scenario's process for `task` (its YAML view); `ref_tasks`: tasks using each timer."""
    where: JsonPath = ("tasks", task.name)
    settings = task.settings
    policy = "normal" if settings.policy in (None, "deadline") else settings.policy
    data: dict[str, Any] = {
        "name": task.name,
        "threads": task.threads,
        "policy": policy,
        "start": task.start_ns,
        "repeat": "forever" if task.loop is None else task.loop,
    }
    if policy in _FAIR and settings.priority is not None:
        if not -20 <= settings.priority <= 19:
            reader.error(
                (*where, "priority"), f"a nice value -20..19 for {policy}", settings.priority
            )
        data["nice"] = settings.priority
    if policy in RT_POLICIES:
        data["rt_priority"] = (
            DEFAULT_RT_PRIORITY if settings.priority is None else settings.priority
        )
    if settings.slice_us:
        if settings.policy in _FAIR:
            data["slice"] = settings.slice_us * NSEC_PER_USEC
        else:
            reader.unmodelled(
                (*where, "dl-runtime"), f"dl-runtime is not modelled for {policy} (ignored)"
            )
    if settings.cpus is not None:
        data["cpus"] = list(settings.cpus)
    if settings.cgroup is not None:
        data["cgroup"] = settings.cgroup
    if _changes_after_start(task):
        reader.view(
            where,
            "phases change nice or taskgroup: the YAML view keeps the first "
            "phase's (`cfssim run` on the JSON applies each)",
        )
    program: list[dict[str, Any]] = []
    memory = _memory_bytes(task, buffer_bytes)
    if memory:
        program.append({"alloc": memory})
        reader.view(
            where,
            f"mem events: the YAML view allocates the {exact_size(memory)} they "
            "make resident when the thread starts (`cfssim run` on the JSON grows it "
            "event by event); their CPU cost is not modelled",
        )
    approximate_because = _why_not_timer_steps(task, ref_tasks)
    for phase in task.phases:
        steps = _yaml_steps(phase, reader, approximate_because)
        cpus = _phase_changes(task, phase).get("cpus", False)
        if cpus is not False:  # set_thread_affinity at every start of the phase
            steps.insert(0, step_data(SetCpus(cpus=tuple(cpus or range(ncpus)))))
        if steps and phase.loop == 1:
            program.extend(steps)
        elif steps:
            program.append(
                {
                    "loop": {
                        "repeat": "forever" if phase.loop is None else phase.loop,
                        "program": steps,
                    }
                }
            )
    data["program"] = program or [{"sleep": 0}]
    return data


def _machine_cpus(tasks: Sequence[RtTask], cpus: int | None) -> int:
    used = [
        cpu
        for task in tasks
        for settings in (task.base, *(p.settings for p in task.phases))
        for cpu in settings.cpus or ()
    ]
    return cpus if cpus is not None else max(DEFAULT_CPUS, max(used, default=0) + 1)


def load_rtapp(
    source: str | Path,
    *,
    cpus: int | None = None,
    duration_ns: int | None = None,
    name: str | None = None,
    limits: Limits | None = None,
    strict: bool | str = False,
) -> RtappWorkload:
    """An `RtappWorkload` from an rt-app JSON file (or JSON text).

    `cpus` sets machine.cpus (default: 2, or enough for the highest CPU named); `duration_ns`
    is needed when ``global.duration`` is -1 or absent (and replaces it when given). `strict`
    refuses what cfssim does not model (``"convert"``: also what the YAML view approximates).
    Raises `ScenarioError` (messages
    ``file:line:col: path: expected …, found …``).
    """
    text, origin, stem = read_source(
        source, "rt-app JSON", max_bytes=(limits or Limits()).max_file_bytes
    )
    relaxed = relax_json(text)
    try:
        data = _json.loads(relaxed, object_pairs_hook=list)
    except _json.JsonInputError as problem:
        expected = "valid rt-app JSON" if problem.expected == "valid JSON" else problem.expected
        raise ScenarioError(
            [
                f"{origin}:{problem.line}:{problem.col}: document: expected "
                f"{expected}, found {problem.found}"
            ]
        ) from None
    reader = _Reader(relaxed, origin)
    duration, _, buffer, tasks = reader.document(data)
    if duration is None and duration_ns is None and not reader.errors:
        reader.error(
            ("global", "duration"),
            "a positive duration in seconds (cfssim runs a fixed time; pass a duration for -1)",
            "-1 or no duration",
        )
    ref_tasks = Counter(ref for task in tasks for ref in {timer.ref for timer in _timers(task)})
    ncpus = _machine_cpus(tasks, cpus)
    processes = [_process(task, reader, buffer, ref_tasks, ncpus) for task in tasks]
    if reader.errors:
        raise ScenarioError(reader.errors)
    scenario_data = {
        "name": name or _NAME_CHARS.sub("_", stem or "rt-app"),
        "description": f"converted from rt-app workload {Path(origin).name}",
        "duration": duration_ns or duration,
        "machine": {"cpus": ncpus},
        "cgroups": reader.cgroups,
        "processes": processes,
    }
    try:
        scenario = Scenario.model_validate(scenario_data, context={"limits": limits or Limits()})
    except ValidationError as problem:
        raise ScenarioError(
            [
                _validation_message(reader, tasks, error)
                for error in problem.errors()
                if not _echo_of_failed_items(error)
            ]
        ) from None
    refused = reader.refused + (reader.view_refused if strict == "convert" else [])
    if strict and refused:
        raise ScenarioError([f"{message} — refused by --strict" for message in refused])
    return RtappWorkload(scenario, reader.warnings, tuple(tasks), buffer)


def _echo_of_failed_items(error: Any) -> bool:
    """pydantic's "too short" about a list whose items failed (reported one by one)."""
    return error["type"] == "too_short" and len(error.get("input") or ()) >= error["ctx"].get(
        "min_length", 0
    )


def _validation_message(reader: _Reader, tasks: Sequence[RtTask], error: Any) -> str:
    """A scenario validation error of the YAML view, placed at the rt-app task it comes from
    (``processes.<i>…`` → ``tasks.<name>``), or at the document."""
    loc = tuple(error["loc"])
    where: JsonPath = ()
    if len(loc) >= 2 and loc[0] == "processes" and isinstance(loc[1], int) and loc[1] < len(tasks):
        where, loc = ("tasks", tasks[loc[1]].name), loc[2:]
    inner = ".".join(map(str, loc))
    return reader.message(where, f"{inner + ': ' if inner else ''}{error_message(error)}")
