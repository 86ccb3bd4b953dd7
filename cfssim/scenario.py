"""Scenarios: the YAML contract, its validated frozen model, and errors that point at the YAML.

`load_scenario(path_or_text)` reads YAML 1.2 with ruamel.yaml (round-trip, so every key and item
keeps its line and column), validates it with pydantic into `Scenario` (units resolved: int ns,
int bytes; cgroup files resolved to `CgroupConfig`), and raises `ScenarioError` whose
``messages`` read ``file:line:col: path.to.field: expected …, found …`` — all problems found at
once where the structure allows it.

Decisions: an event or a process start after ``duration`` is an error (it could never happen);
``memory.oom_control: 1`` is the one way to set oom_kill_disable (the kernel's own write); a
scenario uses cgroup v1 files or v2 files, not both (``cpu.idle`` and ``cpuset.cpus`` fit
either); kernel files take kernel values (µs, bytes, ``100M``) and also cfssim units.
`Limits` caps the size of a run; each limit names the CLI flag that raises it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import VersionedResolver

from ._errors import describe, did_you_mean
from .cgroup import files as cgfiles
from .cgroup.files import CgroupConfig, CgroupFileError, FileValue
from .sched.policy import DEFAULT_FEATURES
from .sched.rt import RT_POLICIES
from .units import (
    NSEC_PER_SEC,
    NSEC_PER_USEC,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)

Loc = tuple[str | int, ...]
SCHEMA_FILE = "cfssim.schema.json"
_SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
_PACKAGED_SCENARIO_DIR = Path(__file__).resolve().parent / "_scenarios"


# ---- limits and errors --------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """Safety limits on the size of a scenario; each names the CLI flag that overrides it."""

    max_tasks: int = 100_000
    max_duration_ns: int = 3600 * 1_000_000_000
    max_events: int = 100_000
    max_loop_depth: int = 8
    max_alloc_bytes: int = 1 << 40


class ScenarioError(Exception):
    """Invalid scenario; ``messages``: ``file:line:col: field: expected …, found …`` each."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(self.messages))


def _fail(message: str, *, about_key: bool = False) -> PydanticCustomError:
    """A pydantic error whose text is exactly `message`; `about_key`: point at the key."""
    kind = "scenario_key" if about_key else "scenario"
    return PydanticCustomError(kind, "{message}", {"message": message})


def _issue(loc: Loc, message: str, value: Any = None, *, about_key: bool = False
           ) -> InitErrorDetails:
    return InitErrorDetails(type=_fail(message, about_key=about_key), loc=loc, input=value)


# ---- YAML-facing value types ------------------------------------------------------------------
_DURATION_PATTERN = r"^[+]?(0|(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$"
_SIZE_PATTERN = r"^\s*(\d+(\.\d*)?|\.\d+)\s*(B|KiB|MiB|GiB|TiB|kB|KB|MB|GB|TB)?\s*$"
_DURATION_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": _DURATION_PATTERN}, {"type": "integer", "minimum": 0}],
    "description": "a duration such as '100ms', '1.5s', '1m30s', or an integer of nanoseconds",
}
_SIZE_SCHEMA: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": _SIZE_PATTERN}, {"type": "integer", "minimum": 1}],
    "description": "a size such as '4MiB', '100MB' or an integer of bytes",
}
_FOREVER = {"const": "forever"}
_CPUS_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1},
        {"type": "string", "pattern": r"^\s*\d+(-\d+)?(\s*,\s*\d+(-\d+)?)*\s*$"},
        {"type": "integer", "minimum": 0},
    ],
    "description": "CPUs as a list [0, 1] or a cpulist string '0-1,3'",
}


def _duration(value: Any) -> int:
    """A non-negative duration → int ns (ints are ns)."""
    try:
        value_ns = parse_duration(value)
    except (ValueError, TypeError):
        raise _fail(f"expected a duration such as '100ms' or '1.5s' (units ns, us, ms, s, m, "
                    f"h), found {describe(value)}") from None
    if value_ns < 0:
        raise _fail(f"expected a non-negative duration, found {describe(value)}")
    return value_ns


def _duration_or_forever(value: Any) -> int | None:
    return None if value is None or value == "forever" else _duration(value)


def _size(value: Any) -> int:
    """A positive size → int bytes (ints are bytes)."""
    try:
        size = parse_size(value)
    except (ValueError, TypeError):
        raise _fail(f"expected a size such as '4MiB', '100MB' or 4096 (bytes), "
                    f"found {describe(value)}") from None
    if size <= 0:
        raise _fail(f"expected a positive size, found {describe(value)}")
    return size


def _size_or_all(value: Any) -> int | None:
    return None if value is None or value == "all" else _size(value)


def _repeat(value: Any) -> int | None:
    if value is None or value == "forever":
        return None
    if type(value) is not int or value < 1:
        raise _fail(f"expected a count ≥ 1 or 'forever', found {describe(value)}")
    return value


def _cpu_tuple(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(sorted(cgfiles.parse_cpulist("cpus", value)))
    except CgroupFileError as error:
        raise _fail(f"expected {error.expected}, found {error.found}") from None


def _cgroup_path(value: Any) -> str:
    try:
        return cgfiles.check_path(value)
    except ValueError as error:
        raise _fail(str(error)) from None


Duration = Annotated[int, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]
DurationOrForever = Annotated[
    int | None,
    BeforeValidator(_duration_or_forever),
    WithJsonSchema({"anyOf": [_DURATION_SCHEMA, _FOREVER]}),
]
Size = Annotated[int, BeforeValidator(_size), WithJsonSchema(_SIZE_SCHEMA)]
SizeOrAll = Annotated[
    int | None,
    BeforeValidator(_size_or_all),
    WithJsonSchema({"anyOf": [_SIZE_SCHEMA, {"const": "all"}]}),
]
Repeat = Annotated[
    int | None,
    BeforeValidator(_repeat),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 1}, _FOREVER]}),
]
CpuList = Annotated[
    tuple[int, ...] | None, BeforeValidator(_cpu_tuple), WithJsonSchema(_CPUS_SCHEMA)
]
CgroupPath = Annotated[
    str,
    BeforeValidator(_cgroup_path),
    WithJsonSchema({"type": "string", "pattern": r"^/([^/\s]+(/[^/\s]+)*)?$"}),
]


class _Model(BaseModel):
    """Frozen, unknown keys rejected; YAML names are aliases, Python names also accepted."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )


# ---- program steps ----------------------------------------------------------------------------
class Run(_Model):
    """Run for `ns` of CPU time (None = forever)."""

    ns: DurationOrForever = Field(alias="run")


class Sleep(_Model):
    """Sleep for `ns` of wall time."""

    ns: Duration = Field(alias="sleep")


TimerMode = Literal["absolute", "relative"]


def _period(value: Any) -> int:
    """A timer period: a positive duration → int ns."""
    try:
        period_ns = parse_duration(value)
    except (ValueError, TypeError):
        return _duration(value)  # raises the duration message
    if period_ns <= 0:
        raise _fail(f"expected a positive period such as '200ms', found {describe(value)}")
    return period_ns


class Timer(_Model):
    """Sleep until the thread's periodic timer next expires (a period boundary), in ns.

    YAML: ``{timer: 200ms}`` or ``{timer: {period: 200ms, mode: absolute|relative}}``. Each
    thread has one timer, started when the thread starts (its `start`); every timer step moves
    its expiry one period on from the previous expiry. If that expiry has already passed
    (the thread is late), ``absolute`` (the default) moves it to the first boundary
    start + k·period at or after now — the missed periods are skipped, not caught up — and
    ``relative`` (rt-app's default mode) restarts the timer at now. A thread that keeps up
    wakes at start + k·period in both modes; an expiry at or before now does not sleep.
    """

    period_ns: Annotated[
        int,
        BeforeValidator(_period),
        WithJsonSchema({"anyOf": [{"type": "string", "pattern": _DURATION_PATTERN},
                                  {"type": "integer", "minimum": 1}],
                        "description": "a positive duration such as '200ms', or ns"}),
    ] = Field(alias="period")
    mode: TimerMode = "absolute"

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"timer"}:
            body = data["timer"]
            if isinstance(body, Mapping):
                return body
            if isinstance(body, (list, tuple)):
                raise _fail(f"expected a period such as 200ms or a mapping {{period: …, "
                            f"mode: absolute|relative}}, found {describe(body)}")
            return {"period": body}
        return data


class Alloc(_Model):
    """Touch `bytes` more anonymous memory (charged to the task's memcg)."""

    bytes: Size = Field(alias="alloc")


class Free(_Model):
    """Free `bytes` of the task's memory (None = all of it)."""

    bytes: SizeOrAll = Field(alias="free")


class Exit(_Model):
    """Exit the thread with `code`."""

    code: int = Field(alias="exit", ge=0, le=255)


class Loop(_Model):
    """Repeat `program` `repeat` times (None = forever). YAML: ``{loop: {repeat, program}}``."""

    repeat: Repeat = 1
    program: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"loop"}:
            body = data["loop"]
            if not isinstance(body, Mapping):
                raise _fail(f"expected a mapping {{repeat: …, program: […]}}, "
                            f"found {describe(body)}")
            return body
        return data


# -- captured programs (`cfssim capture`): a random draw, one program per thread
#: Most points a `Draw` distribution may hold (its quantiles).
MAX_DRAW_POINTS = 1_000


class Draw(_Model):
    """Run or sleep (`kind`) for a length drawn from an empirical distribution: `values_ns`
    are its sorted quantiles at equally spaced probabilities 0..1; a uniform u from the task's
    seeded generator picks the point u·(n − 1) between them, interpolated linearly (int ns).
    YAML: ``{draw: {run: [1ms, 2ms, 2.5ms]}}`` or ``{draw: {sleep: [...]}}``."""

    kind: Literal["run", "sleep"]
    values_ns: tuple[Duration, ...] = Field(min_length=1, max_length=MAX_DRAW_POINTS)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"draw"}:
            body = data["draw"]
            if not isinstance(body, Mapping) or len(body) != 1 or next(iter(body)) not in (
                    "run", "sleep"):
                raise _fail(f"expected a mapping {{run: [durations]}} or {{sleep: [durations]}}"
                            f", found {describe(body)}")
            kind, values = next(iter(body.items()))
            if not isinstance(values, (list, tuple)):
                raise _fail(f"expected a list of durations, found {describe(values)}")
            return {"kind": kind, "values_ns": sorted(_duration(v) for v in values)}
        return data


class Until(_Model):
    """Sleep until `ns` after the thread's start (no sleep when that time has passed): a
    captured wakeup replayed at the time it happened. YAML: ``{until: 1.25s}``."""

    ns: Duration = Field(alias="until")


class ThreadProgram(_Model):
    """One thread's own program inside `PerThread`; `name` (its comm) and `woken_by` (waker
    task name → wakeups seen, from a capture) are descriptive only."""

    name: str = ""
    woken_by: dict[str, int] = Field(default_factory=dict)
    program: tuple[Step, ...] = Field(min_length=1)


class PerThread(_Model):
    """Thread i of the process runs ``threads[i].program`` (threads beyond the list run
    nothing). YAML: ``{per_thread: [{name: main, program: [...]}, ...]}``."""

    threads: tuple[ThreadProgram, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"per_thread"}:
            return {"threads": data["per_thread"]}
        return data


_STEP_KINDS: dict[str, type[_Model]] = {
    "run": Run, "sleep": Sleep, "timer": Timer, "alloc": Alloc, "free": Free, "exit": Exit,
    "loop": Loop, "draw": Draw, "per_thread": PerThread, "until": Until,
}
_STEP_TAGS = {model: tag for tag, model in _STEP_KINDS.items()}


def _step_kind(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return next(iter(value), None)
    return _STEP_TAGS.get(type(value))


def _one_key_step(value: Any) -> Any:
    expected = f"a one-key mapping with one of {', '.join(_STEP_KINDS)}, such as {{run: 10ms}}"
    if isinstance(value, tuple(_STEP_TAGS)):
        return value
    if not isinstance(value, Mapping) or not value:
        raise _fail(f"expected {expected}, found {describe(value)}")
    keys = list(value)
    if len(keys) > 1:
        raise _fail(f"expected {expected}, found {len(keys)} keys ({', '.join(map(str, keys))})")
    if keys[0] not in _STEP_KINDS:
        raise _fail(f"expected {expected}{did_you_mean(keys[0], _STEP_KINDS)}, "
                    f"found {describe(keys[0])}")
    return value


Step = Annotated[
    Annotated[Run, Tag("run")]
    | Annotated[Sleep, Tag("sleep")]
    | Annotated[Timer, Tag("timer")]
    | Annotated[Alloc, Tag("alloc")]
    | Annotated[Free, Tag("free")]
    | Annotated[Exit, Tag("exit")]
    | Annotated[Loop, Tag("loop")]
    | Annotated[Draw, Tag("draw")]
    | Annotated[PerThread, Tag("per_thread")]
    | Annotated[Until, Tag("until")],
    Discriminator(_step_kind),
    BeforeValidator(_one_key_step),
]
Loop.model_rebuild()
ThreadProgram.model_rebuild()
PerThread.model_rebuild()


def iter_steps(program: Sequence[Step], depth: int = 1) -> Iterator[tuple[Step, int]]:
    """Every step of `program` with its loop nesting depth (1 = top level), loops included."""
    for step in program:
        yield step, depth
        if isinstance(step, Loop):
            yield from iter_steps(step.program, depth + 1)
        elif isinstance(step, PerThread):
            for thread in step.threads:
                yield from iter_steps(thread.program, depth + 1)


def _step_lengths(step: Draw | Until) -> tuple[int, ...]:
    return step.values_ns if isinstance(step, Draw) else (step.ns,)


def _takes_time(program: Sequence[Step]) -> bool:
    """Whether one pass of `program` can advance time (a run or sleep of non-zero length, or
    a timer: each expiry is a period after the previous one)."""
    return any(isinstance(step, Timer) or (isinstance(step, (Run, Sleep)) and step.ns != 0)
               or (isinstance(step, (Draw, Until)) and max(_step_lengths(step)) != 0)
               for step, _ in iter_steps(program))


#: Steps a program may take at one instant (loops of steps that let no time pass, unrolled).
MAX_INSTANT_STEPS = 100_000
#: Least time per step that a loop repeating more than `MAX_INSTANT_STEPS` times (or forever)
#: must average: runs, sleeps and timer periods of a few ns would cost the simulator ~10⁹ steps
#: per simulated second (and no kernel completes a sleep in less: a system call alone takes longer).
MIN_NS_PER_STEP = 1_000


def _pass_times(program: Sequence[Step]) -> tuple[int, int] | None:
    """(runs' CPU demand + sleeps, timer periods) of one pass of `program`, loops unrolled, in
    ns — or None when a pass never ends (a run or loop forever, an exit)."""
    work = timers = 0
    for step in program:
        if isinstance(step, Loop):
            inner = _pass_times(step.program)
            if inner is None or step.repeat is None:
                return None
            work, timers = work + step.repeat * inner[0], timers + step.repeat * inner[1]
        elif isinstance(step, (Run, Sleep)):
            if step.ns is None:
                return None
            work += step.ns
        elif isinstance(step, Timer):
            timers += step.period_ns
        elif isinstance(step, Draw):
            work += step.values_ns[0]
        elif isinstance(step, PerThread):  # the least of the threads' passes
            passes = [times for thread in step.threads
                      if (times := _pass_times(thread.program)) is not None]
            if not passes:
                return None
            least = min(passes, key=max)
            work, timers = work + least[0], timers + least[1]
        elif isinstance(step, Exit):
            return None
    return work, timers


def _least_pass_ns(program: Sequence[Step]) -> int | None:
    """The least time one pass of `program` takes, or None when it never ends: a thread that
    falls behind its timer does not sleep on it, so runs and sleeps overlap timer periods."""
    times = _pass_times(program)
    return None if times is None else max(times)


def _steps_per_pass(program: Sequence[Step]) -> int:
    """How many steps one pass of `program` executes, loops unrolled (a forever loop once)."""
    return sum(
        (step.repeat or 1) * _steps_per_pass(step.program) if isinstance(step, Loop)
        else max(_steps_per_pass(t.program) for t in step.threads)
        if isinstance(step, PerThread) else 1
        for step in program
    )


# ---- processes ---------------------------------------------------------------------------------
Policy = Literal["normal", "batch", "idle", "fifo", "rr"]
_POLICY_NAMES: dict[str, Policy] = {
    "normal": "normal", "other": "normal", "batch": "batch", "idle": "idle", "fifo": "fifo",
    "rr": "rr", "sched_normal": "normal", "sched_other": "normal", "sched_batch": "batch",
    "sched_idle": "idle", "sched_fifo": "fifo", "sched_rr": "rr",
}

MIN_CUSTOM_SLICE_NS = 100_000  # __setparam_fair clamps sched_runtime to 0.1 ms..100 ms
MAX_CUSTOM_SLICE_NS = 100_000_000


def _policy(value: Any) -> Policy:
    name = str(value).lower() if isinstance(value, str) else None
    if name not in _POLICY_NAMES:
        raise _fail(f"expected one of normal, batch, idle, fifo, rr (or SCHED_OTHER, "
                    f"SCHED_BATCH, …){did_you_mean(str(value).lower(), _POLICY_NAMES)}, "
                    f"found {describe(value)}")
    return _POLICY_NAMES[name]


def _custom_slice(value: Any) -> int | None:
    """``__setparam_fair``: 0 = no custom slice, else clamped to 0.1 ms..100 ms."""
    value_ns = _duration(value)
    return None if value_ns == 0 else max(MIN_CUSTOM_SLICE_NS, min(MAX_CUSTOM_SLICE_NS, value_ns))


_NAME_PATTERN = r"^[A-Za-z0-9_.:+-]+$"


class ProcessSpec(_Model):
    """A process (thread group) of `threads` identical threads running `program`."""

    name: str = Field(pattern=_NAME_PATTERN)
    cgroup: CgroupPath = "/"
    threads: int = Field(default=1, ge=1)
    nice: int = Field(default=0, ge=-20, le=19)
    policy: Annotated[
        Policy,
        BeforeValidator(_policy),
        WithJsonSchema({"enum": [*_POLICY_NAMES, *(n.upper() for n in _POLICY_NAMES
                                                   if n.startswith("sched_"))]}),
    ] = "normal"
    rt_priority: int = Field(default=0, ge=0, le=99)
    cpus: CpuList = None
    start_ns: Duration = Field(default=0, alias="start")
    repeat: Repeat = 1
    program: tuple[Step, ...] = Field(min_length=1)
    oom_score_adj: int = Field(default=0, ge=-1000, le=1000)
    slice_ns: Annotated[
        int | None, BeforeValidator(_custom_slice), WithJsonSchema(_DURATION_SCHEMA)
    ] = Field(default=None, alias="slice")
    session: str | None = None

    @model_validator(mode="after")
    def _policy_rules(self) -> ProcessSpec:
        errors: list[InitErrorDetails] = []
        if self.policy in RT_POLICIES and not 1 <= self.rt_priority <= 99:
            errors.append(_issue(("rt_priority",), f"expected 1..99 for policy {self.policy}, "
                                 f"found {self.rt_priority}", self.rt_priority))
        if self.policy not in RT_POLICIES and self.rt_priority != 0:
            errors.append(_issue(("rt_priority",), f"expected 0 (rt_priority needs policy fifo "
                                 f"or rr), found {self.rt_priority}", self.rt_priority))
        if self.policy in RT_POLICIES and self.slice_ns is not None:
            errors.append(_issue(("slice",), "expected no custom slice for a real-time policy "
                                 "(slices belong to normal and batch tasks), found "
                                 f"{format_duration(self.slice_ns)}", self.slice_ns))
        if self.repeat is None and not _takes_time(self.program):
            errors.append(_issue(("program",), "expected a run, sleep or timer step when the "
                                 "program repeats forever, found a program that takes no time"))
        for index, (step, _) in enumerate(iter_steps(self.program)):
            if isinstance(step, Loop) and step.repeat is None and not _takes_time(step.program):
                errors.append(_issue(("program",), f"expected a run, sleep or timer step "
                                     f"inside the forever loop (step {index}), found none"))
        for index, (step, _) in enumerate(iter_steps(self.program)):
            if isinstance(step, PerThread) and len(step.threads) != self.threads:
                errors.append(_issue(("program",), f"expected one per_thread program per thread "
                                     f"({self.threads}, step {index}), found "
                                     f"{len(step.threads)}"))
        errors.extend(self._instant_step_errors())
        if errors:
            raise ValidationError.from_exception_data("ProcessSpec", errors)
        return self

    def _instant_step_errors(self) -> list[InitErrorDetails]:
        """Loops (innermost first, then the whole program with its repeat) that would execute
        more than `MAX_INSTANT_STEPS` steps without letting time pass, or repeat more often
        than that with passes averaging less than `MIN_NS_PER_STEP` per step."""
        loops = [(f"the loop (step {index})", step)
                 for index, (step, _) in enumerate(iter_steps(self.program))
                 if isinstance(step, Loop)]
        loops.reverse()
        loops.append(("the program", Loop(repeat=self.repeat, program=self.program)))
        for where, loop in loops:
            if loop.repeat is None or _takes_time(loop.program):
                continue
            steps = loop.repeat * _steps_per_pass(loop.program)
            if steps > MAX_INSTANT_STEPS:
                return [_issue(("program",), f"expected at most {MAX_INSTANT_STEPS} steps at one "
                               f"instant (or a run, sleep or timer step in {where}), found "
                               f"{steps} steps that take no time")]
        for where, loop in loops:
            steps = _steps_per_pass(loop.program)
            if loop.repeat is not None and loop.repeat * steps <= MAX_INSTANT_STEPS:
                continue
            least = _least_pass_ns(loop.program)
            if least is not None and 0 < least < MIN_NS_PER_STEP * steps:
                times = "forever" if loop.repeat is None else f"{loop.repeat} times"
                return [_issue(("program",), f"expected each pass of {where} (repeated {times}, "
                               f"{steps} steps) to take at least "
                               f"{format_duration(MIN_NS_PER_STEP)} per step of runs, sleeps and "
                               f"timer periods, found {format_duration(least)}")]
        return []


# ---- events ------------------------------------------------------------------------------------
class Write(_Model):
    """Write `files` (``{file: value}``, in order) into the cgroup at `path`."""

    path: CgroupPath
    files: dict[str, FileValue] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) != {"path", "files"}:
            if len(data) != 1:
                raise _fail("expected one cgroup path with its files, such as "
                            f"{{/app: {{cpu.max: '50000 100000'}}}}, found {describe(data)}")
            path, files = next(iter(data.items()))
            data = {"path": path, "files": files}
        files = data.get("files") if isinstance(data, Mapping) else None
        for file, value in files.items() if isinstance(files, Mapping) else ():
            plain = isinstance(value, (int, str)) and not isinstance(value, bool)
            if not plain and not (isinstance(value, list) and all(
                    type(cpu) is int for cpu in value)):
                raise _fail(f"expected {file} to be an integer, a string or a list of CPUs, "
                            f"found {describe(value)}")
        return data


class Move(_Model):
    """Move `process` (or only its `thread`) to the cgroup `to`."""

    process: str
    to: CgroupPath
    thread: int | None = Field(default=None, ge=0)


class Nice(_Model):
    """Set the nice level of `process` (or one `thread`) to `value`."""

    process: str
    value: int = Field(ge=-20, le=19)
    thread: int | None = Field(default=None, ge=0)


class Kill(_Model):
    """SIGKILL `process` (or one `thread`)."""

    process: str
    thread: int | None = Field(default=None, ge=0)


Action = Write | Move | Nice | Kill
_ACTIONS = ("write", "move", "nice", "kill")


class EventSpec(_Model):
    """At `at_ns`, exactly one action: ``write``, ``move``, ``nice`` or ``kill``."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": [name]} for name in _ACTIONS]}
    )

    at_ns: Duration = Field(alias="at")
    write: Write | None = None
    move: Move | None = None
    nice: Nice | None = None
    kill: Kill | None = None

    @model_validator(mode="after")
    def _exactly_one_action(self) -> EventSpec:
        given = [name for name in _ACTIONS if getattr(self, name) is not None]
        if len(given) != 1:
            raise _fail("expected exactly one action of write, move, nice or kill, found "
                        + (" and ".join(given) if given else "none"))
        return self

    @property
    def action(self) -> Action:
        """The one action of this event."""
        return next(getattr(self, name) for name in _ACTIONS if getattr(self, name) is not None)


# ---- machine -----------------------------------------------------------------------------------
#: kernel/sched/features.h names (classic CFS and EEVDF eras) the model implements and a
#: scenario may switch: the simulator's own list, so validation and runs agree.
KERNEL_FEATURES = frozenset(DEFAULT_FEATURES)


def _tunable(unit_ns: int, minimum: int) -> Any:
    """Parser of a kernel tunable in the unit of its suffix (ns or µs); durations converted."""
    unit = "ns" if unit_ns == 1 else "µs"

    def parse(value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, str):
            value_ns = _duration(value)
            if value_ns % unit_ns:
                raise _fail(f"expected a whole number of {unit}, found {describe(value)}")
            number = value_ns // unit_ns
        elif type(value) is int:
            number = value
        else:
            raise _fail(f"expected an integer of {unit} or a duration such as '5ms', "
                        f"found {describe(value)}")
        if number < minimum:
            raise _fail(f"expected a value ≥ {minimum} {unit}, found {describe(value)}")
        return number

    return parse


def _tunable_schema(unit: str, minimum: int) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [{"type": "integer", "minimum": minimum},
                                     {"type": "string", "pattern": _DURATION_PATTERN}],
                           "description": f"in {unit} (or a duration string)"})


NsTunable = Annotated[int | None, BeforeValidator(_tunable(1, 0)), _tunable_schema("ns", 0)]
PhaseNs = Annotated[int, BeforeValidator(_tunable(1, 0)), _tunable_schema("ns", 0)]
UsTunable = Annotated[
    int | None, BeforeValidator(_tunable(NSEC_PER_USEC, 1)), _tunable_schema("µs", 1)
]
RtRuntimeTunable = Annotated[
    int | None, BeforeValidator(_tunable(NSEC_PER_USEC, -1)), _tunable_schema("µs", -1)
]
TUNABLES = (
    "sched_latency_ns", "sched_min_granularity_ns", "sched_wakeup_granularity_ns",
    "sched_base_slice_ns", "sched_tunable_scaling", "sched_migration_cost_ns",
    "sched_cfs_bandwidth_slice_us", "sched_rt_runtime_us", "sched_rt_period_us", "timer_slack_ns",
    "tick_offset_ns",
)


class MachineSpec(_Model):
    """The simulated machine; kernel tunables are given flat under their kernel names."""

    cpus: int = Field(ge=1, le=1024)
    policy: Literal["eevdf", "cfs"] = "eevdf"
    hz: Literal[100, 250, 300, 1000] = 250
    slice_ends: Literal["precise", "tick"] = "tick"
    autogroup: bool = True
    features: dict[str, bool] = Field(default_factory=dict)
    sched_latency_ns: NsTunable = None
    sched_min_granularity_ns: NsTunable = None
    sched_wakeup_granularity_ns: NsTunable = None
    sched_base_slice_ns: NsTunable = None
    sched_tunable_scaling: Literal[0, 1, 2] | None = None
    sched_migration_cost_ns: NsTunable = None
    sched_cfs_bandwidth_slice_us: UsTunable = None
    sched_rt_runtime_us: RtRuntimeTunable = None
    sched_rt_period_us: UsTunable = None
    timer_slack_ns: NsTunable = None  # normal tasks' hrtimer slack (kernel default 50µs; here 0)
    tick_offset_ns: NsTunable = None  # where the tick grid starts (0 ≤ offset < 1/hz)
    #: where each quota'd cgroup's period grid starts (below its longest period; default 0):
    #: Linux 6.4+ gives every group's period timer its own phase; the real twin measures it
    period_phase_ns: dict[str, PhaseNs] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _rt_runtime_within_its_period(self) -> MachineSpec:
        """``sched_rt_handler``: the runtime may not exceed the period (-1: no limit) — EINVAL."""
        period = self.sched_rt_period_us or 1_000_000
        runtime = self.sched_rt_runtime_us
        if runtime is not None and runtime > period:
            raise ValidationError.from_exception_data("MachineSpec", [_issue(
                ("sched_rt_runtime_us",),
                f"expected at most sched_rt_period_us ({period} µs) or -1, found {runtime}",
                runtime)])
        return self

    @model_validator(mode="after")
    def _tick_offset_within_a_tick(self) -> MachineSpec:
        tick = NSEC_PER_SEC // self.hz
        if self.tick_offset_ns is not None and self.tick_offset_ns >= tick:
            raise ValidationError.from_exception_data("MachineSpec", [_issue(
                ("tick_offset_ns",),
                f"expected an offset below one tick ({tick} ns at hz {self.hz}), "
                f"found {self.tick_offset_ns}", self.tick_offset_ns)])
        return self

    @field_validator("features")
    @classmethod
    def _known_features(cls, features: dict[str, bool]) -> dict[str, bool]:
        unknown = [
            _issue((name,), f"expected a kernel feature cfssim models"
                   f"{did_you_mean(name, KERNEL_FEATURES)}"
                   f", found {describe(name)}", name, about_key=True)
            for name in features if name not in KERNEL_FEATURES
        ]
        if unknown:
            raise ValidationError.from_exception_data("MachineSpec", unknown)
        return features

    @property
    def tunables(self) -> dict[str, int]:
        """The kernel tunables given, by kernel name, in the unit of their suffix."""
        return {name: getattr(self, name) for name in TUNABLES if getattr(self, name) is not None}


# ---- cgroups -----------------------------------------------------------------------------------
def _resolve_cgroups(raw: Any) -> Any:
    """``{path: {file: value}}`` → ``{path: CgroupConfig}`` with "/" and implied ancestors."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise _fail(f"expected a mapping of cgroup paths to their files, found {describe(raw)}")
    configs: dict[str, CgroupConfig] = {}
    errors: list[InitErrorDetails] = []
    for path, files in raw.items():
        if isinstance(files, CgroupConfig):
            configs[path] = files
            continue
        try:
            cgfiles.check_path(path)
        except ValueError as error:
            errors.append(_issue((path,), str(error), path))
            continue
        if files is None:
            files = {}
        if not isinstance(files, Mapping):
            errors.append(_issue((path,), "expected a mapping of cgroup files to values such as "
                                 f"{{cpu.shares: 1024}}, found {describe(files)}", files))
            continue
        config = CgroupConfig()
        for file, value in files.items():
            try:
                config = cgfiles.apply_write(config, file, value, is_root=path == cgfiles.ROOT)
            except CgroupFileError as error:
                errors.append(_issue((path, file), f"expected {error.expected}, "
                                     f"found {error.found}", value,
                                     about_key=file not in cgfiles.FILES))
        configs[path] = config
    if errors:
        raise ValidationError.from_exception_data("cgroups", errors)
    for path in list(configs):
        for ancestor in cgfiles.ancestors(path):
            configs.setdefault(ancestor, CgroupConfig())
    configs.setdefault(cgfiles.ROOT, CgroupConfig())
    return {path: configs[path] for path in sorted(configs)}


def _files_schema() -> dict[str, Any]:
    value = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    properties = {
        name: {**(_CPUS_SCHEMA if name == "cpuset.cpus" else value), "description": spec.syntax}
        for name, spec in cgfiles.FILES.items()
    }
    return {"type": ["object", "null"], "properties": properties, "additionalProperties": False}


_CGROUPS_SCHEMA = {
    "type": "object",
    "propertyNames": {"pattern": r"^/([^/\s]+(/[^/\s]+)*)?$"},
    "additionalProperties": _files_schema(),
    "description": "cgroups keyed by path; each maps kernel file names (v1 or v2) to values",
}
CgroupMap = Annotated[
    dict[str, CgroupConfig], BeforeValidator(_resolve_cgroups), WithJsonSchema(_CGROUPS_SCHEMA)
]


# ---- the scenario --------------------------------------------------------------------------------
class Scenario(_Model):
    """A validated scenario: units resolved, every cgroup (with "/" and ancestors) configured."""

    name: str = Field(pattern=_NAME_PATTERN)
    description: str = ""
    duration_ns: Duration = Field(alias="duration")
    seed: int = Field(default=0, ge=0)
    machine: MachineSpec
    cgroups: CgroupMap = Field(default_factory=lambda: {cgfiles.ROOT: CgroupConfig()})
    processes: tuple[ProcessSpec, ...] = Field(min_length=1)
    events: tuple[EventSpec, ...] = ()
    _source: str | None = PrivateAttr(default=None)

    @property
    def source(self) -> str | None:
        """The file the scenario was loaded from, if any."""
        return self._source

    @property
    def interface(self) -> cgfiles.Interface:
        """The cgroup interface the scenario's files belong to ("v1" or "v2")."""
        return self.cgroups[cgfiles.ROOT].interface

    @model_validator(mode="wrap")
    @classmethod
    def _cross_checks(
        cls, data: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Scenario:
        scenario = handler(data)
        if not isinstance(scenario, Scenario):  # pragma: no cover - pydantic guarantees it
            raise TypeError("Scenario validation returned another type")
        limits = (info.context or {}).get("limits") or Limits()
        raw_cgroups = data.get("cgroups") if isinstance(data, Mapping) else None
        checker = _CrossChecker(scenario, raw_cgroups if isinstance(raw_cgroups, Mapping)
                                else {}, limits)
        return checker.run()


class _CrossChecker:
    """The checks that need more than one field; every finding carries its YAML location."""

    def __init__(self, scenario: Scenario, raw_cgroups: Mapping[str, Any], limits: Limits):
        self.scenario, self.raw_cgroups, self.limits = scenario, raw_cgroups, limits
        self.errors: list[InitErrorDetails] = []
        self.written: dict[str, list[CgroupConfig]] = {}  # each cgroup's configs after events

    def fail(self, loc: Loc, message: str, value: Any = None) -> None:
        self.errors.append(_issue(loc, message, value))

    def run(self) -> Scenario:
        configs = self.check_interface()
        self.check_hierarchy(configs, lambda path, file: ("cgroups", path, file))
        self.check_limits()
        self.check_cgroup_cpus(configs)
        self.check_processes(configs)
        self.check_events(configs)
        self.check_period_phases(configs)
        if self.errors:
            raise ValidationError.from_exception_data("Scenario", self.errors)
        events = tuple(sorted(self.scenario.events, key=lambda event: event.at_ns))
        return self.scenario.model_copy(update={"cgroups": configs, "events": events})

    # -- cgroup interface and hierarchy
    def _written_files(self) -> Iterator[tuple[Loc, str]]:
        for path, files in self.raw_cgroups.items():
            if isinstance(files, Mapping):
                for file in files:
                    yield ("cgroups", path, file), file
        for index, event in enumerate(self.scenario.events):
            if event.write is not None:
                for file in event.write.files:
                    yield ("events", index, "write", event.write.path, file), file

    def check_interface(self) -> dict[str, CgroupConfig]:
        """One file family per scenario; every group then carries that interface."""
        first: tuple[str, cgfiles.Interface] | None = None
        for loc, file in self._written_files():
            family = cgfiles.FILES[file].interface if file in cgfiles.FILES else None
            if family is None:
                continue
            if first is None:
                first = (file, family)
            elif family != first[1]:
                self.fail(loc, f"expected a cgroup {first[1]} file like {first[0]!r} (one "
                          f"interface per scenario), found {family} file {file!r}", file)
        interface = first[1] if first else "v1"
        return {path: dataclasses.replace(config, interface=interface)
                for path, config in self.scenario.cgroups.items()}

    def check_hierarchy(self, configs: Mapping[str, CgroupConfig], where: Any) -> bool:
        try:
            cgfiles.check_hierarchy(configs)
        except cgfiles.HierarchyError as error:
            self.fail(where(error.path, error.file),
                      f"expected {error.expected}, found {error.found}")
            return False
        return True

    # -- limits
    def check_limits(self) -> None:
        scenario, limits = self.scenario, self.limits
        if scenario.duration_ns <= 0:
            self.fail(("duration",), "expected a positive duration, found 0")
        if scenario.duration_ns > limits.max_duration_ns:
            self.fail(("duration",), f"expected at most {format_duration(limits.max_duration_ns)}"
                      f" (raise the limit with --max-duration), found "
                      f"{format_duration(scenario.duration_ns)}")
        tasks = sum(process.threads for process in scenario.processes)
        if tasks > limits.max_tasks:
            index = max(range(len(scenario.processes)),
                        key=lambda i: scenario.processes[i].threads)
            self.fail(("processes", index, "threads"), f"expected at most {limits.max_tasks} "
                      f"threads in all (raise the limit with --max-tasks), found {tasks}")
        if len(scenario.events) > limits.max_events:
            self.fail(("events",), f"expected at most {limits.max_events} events (raise the "
                      f"limit with --max-events), found {len(scenario.events)}")
        for index, process in enumerate(scenario.processes):
            for step, depth in iter_steps(process.program):
                if depth > limits.max_loop_depth:
                    self.fail(("processes", index, "program"), f"expected loops nested at most "
                              f"{limits.max_loop_depth} deep (raise the limit with "
                              f"--max-loop-depth), found depth {depth}")
                    break
                if isinstance(step, Alloc) and step.bytes > limits.max_alloc_bytes:
                    self.fail(("processes", index, "program"), f"expected allocations of at "
                              f"most {format_size(limits.max_alloc_bytes)} (raise the limit "
                              f"with --max-alloc), found {format_size(step.bytes)}")

    # -- processes
    def _cpus_outside(self, cpus: frozenset[int] | tuple[int, ...]) -> list[int]:
        return sorted(cpu for cpu in cpus if cpu >= self.scenario.machine.cpus)

    def check_cgroup_cpus(self, configs: Mapping[str, CgroupConfig],
                          where: Any = lambda path: ("cgroups", path, "cpuset.cpus")) -> None:
        for path, config in configs.items():
            if config.cpus is not None and self._cpus_outside(config.cpus):
                self.fail(where(path), f"expected CPUs within "
                          f"0..{self.scenario.machine.cpus - 1} (machine.cpus), found "
                          f"{cgfiles.format_cpulist(config.cpus)!r}")

    def check_processes(self, configs: Mapping[str, CgroupConfig]) -> None:
        seen: set[str] = set()
        for index, process in enumerate(self.scenario.processes):
            where: Loc = ("processes", index)
            if process.name in seen:
                self.fail((*where, "name"), f"expected a unique process name, found "
                          f"{process.name!r} again")
            seen.add(process.name)
            if process.cgroup not in configs:
                self.fail((*where, "cgroup"), self._unknown_cgroup(process.cgroup, configs))
            elif process.cpus is not None:
                self._check_affinity((*where, "cpus"), process.cpus, process.cgroup, configs)
            if process.start_ns > self.scenario.duration_ns:
                self.fail((*where, "start"), f"expected a start within the duration "
                          f"({format_duration(self.scenario.duration_ns)}), found "
                          f"{format_duration(process.start_ns)}")

    def _unknown_cgroup(self, path: str, configs: Mapping[str, CgroupConfig]) -> str:
        return (f"expected a cgroup listed under cgroups: ({', '.join(configs)})"
                f"{did_you_mean(path, configs)}, found {path!r}")

    def _check_affinity(self, loc: Loc, cpus: tuple[int, ...], cgroup: str,
                        configs: Mapping[str, CgroupConfig]) -> None:
        outside = self._cpus_outside(cpus)
        if outside:
            self.fail(loc, f"expected CPUs within 0..{self.scenario.machine.cpus - 1} "
                      f"(machine.cpus), found {cgfiles.format_cpulist(cpus)!r}")
            return
        allowed = cgfiles.effective_cpus(configs, cgroup)
        if allowed is not None and not allowed & set(cpus):
            self.fail(loc, f"expected CPUs that meet {cgroup}'s cpuset.cpus "
                      f"({cgfiles.format_cpulist(allowed)}), found "
                      f"{cgfiles.format_cpulist(cpus)!r}")

    def check_period_phases(self, configs: Mapping[str, CgroupConfig]) -> None:
        for path, phase in self.scenario.machine.period_phase_ns.items():
            where: Loc = ("machine", "period_phase_ns", path)
            if path not in configs:
                self.errors.append(_issue(where, self._unknown_cgroup(path, configs), path,
                                          about_key=True))
                continue
            seen = [configs[path], *self.written.get(path, ())]
            longest = max(config.period_ns for config in seen)
            if all(config.quota_ns is None for config in seen):
                self.errors.append(_issue(where, f"expected a cgroup given a CPU quota (at the "
                                          f"start or by an event), found {path!r} without one",
                                          path, about_key=True))
            elif phase >= longest:
                self.fail(where, f"expected a phase below {path}'s period "
                          f"({format_duration(longest)}), found {format_duration(phase)}", phase)

    # -- events
    def check_events(self, configs: Mapping[str, CgroupConfig]) -> None:
        processes = {process.name: process for process in self.scenario.processes}
        state = dict(configs)
        order = sorted(range(len(self.scenario.events)),
                       key=lambda i: self.scenario.events[i].at_ns)
        for index in order:
            event = self.scenario.events[index]
            where: Loc = ("events", index)
            if event.at_ns > self.scenario.duration_ns:
                self.fail((*where, "at"), f"expected a time within the duration "
                          f"({format_duration(self.scenario.duration_ns)}), found "
                          f"{format_duration(event.at_ns)}")
            action = event.action
            kind = _ACTIONS[[Write, Move, Nice, Kill].index(type(action))]
            if isinstance(action, Write):
                self._apply_event_write((*where, "write"), action, state)
                continue
            process = processes.get(action.process)
            if process is None:
                self.fail((*where, kind, "process"), f"expected a process named in processes: "
                          f"({', '.join(processes)}){did_you_mean(action.process, processes)}, "
                          f"found {action.process!r}")
                continue
            if action.thread is not None and action.thread >= process.threads:
                self.fail((*where, kind, "thread"), f"expected a thread index within "
                          f"0..{process.threads - 1} of {process.name}, found {action.thread}")
            if isinstance(action, Move):
                if action.to not in state:
                    self.fail((*where, kind, "to"), self._unknown_cgroup(action.to, state))
                elif process.cpus is not None:
                    self._check_affinity((*where, kind, "to"), process.cpus, action.to, state)

    def _apply_event_write(self, where: Loc, write: Write,
                           state: dict[str, CgroupConfig]) -> None:
        if write.path not in state:
            self.fail((*where, write.path), self._unknown_cgroup(write.path, state))
            return
        config = state[write.path]
        for file, value in write.files.items():
            try:
                config = cgfiles.apply_write(config, file, value,
                                             is_root=write.path == cgfiles.ROOT)
            except CgroupFileError as error:
                self.fail((*where, write.path, file), f"expected {error.expected}, "
                          f"found {error.found}", value)
                return
        candidate = {**state, write.path: dataclasses.replace(
            config, interface=state[write.path].interface)}
        if self.check_hierarchy(candidate, lambda path, file: (*where, write.path)):
            state.update(candidate)
            self.written.setdefault(write.path, []).append(config)
            self.check_cgroup_cpus({write.path: candidate[write.path]},
                                   lambda path: (*where, path, "cpuset.cpus"))


# ---- YAML reading and error locations ---------------------------------------------------------
@dataclass
class _Located:
    """Plain data parsed from YAML, with (line, col) 1-based of every key and value by path."""

    data: Any
    keys: dict[Loc, tuple[int, int]]
    values: dict[Loc, tuple[int, int]]


def _plain(node: Any, path: Loc, located: _Located) -> Any:
    """ruamel round-trip nodes → plain dict/list/scalars, recording positions on the way."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            with _NO_POSITION:
                line, col = node.lc.key(key)
                located.keys[(*path, key)] = (line + 1, col + 1)
            with _NO_POSITION:
                line, col = node.lc.value(key)
                located.values[(*path, key)] = (line + 1, col + 1)
            if isinstance(key, (Mapping, tuple, list)):  # a YAML complex key (``? {a: 1}``)
                line, col = located.keys.get((*path, key), (1, 1))  # type: ignore[arg-type]
                found = describe(dict(key) if isinstance(key, Mapping) else list(key))
                raise _YamlRefused(f"expected a plain key, found {found} as a key", line, col)
            result[_plain(key, (), located) if not isinstance(key, str) else str(key)] = \
                _plain(value, (*path, key), located)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            with _NO_POSITION:
                line, col = node.lc.item(index)
                located.values[(*path, index)] = (line + 1, col + 1)
            items.append(_plain(value, (*path, index), located))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, TaggedScalar):  # `!!str 123`: the screen lets only !!str through
        return str(node.value)
    for kind in (int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


#: merged (``<<``) keys have no position of their own; the parent's is used instead
_NO_POSITION = contextlib.suppress(KeyError, IndexError, TypeError)


#: What a scenario file may hold: nesting beyond what its loops need (each loop nests 3 levels),
#: values that aliases add, digits of a number.
YAML_DEPTH_MARGIN = 16
MAX_ALIASED_VALUES = 100_000
MAX_YAML_DIGITS = 100
_CORE_TAG = "tag:yaml.org,2002:"
_STR_TAG, _INT_TAG, _FLOAT_TAG = (f"{_CORE_TAG}{kind}" for kind in ("str", "int", "float"))
_SCALAR_TAGS = {_STR_TAG, _INT_TAG, _FLOAT_TAG, f"{_CORE_TAG}bool", f"{_CORE_TAG}null"}
_COLLECTION_TAGS = {f"{_CORE_TAG}map", f"{_CORE_TAG}seq"}


class _YamlRefused(Exception):
    """YAML refused before validation: a message and its 1-based position."""

    def __init__(self, message: str, line: int, col: int) -> None:
        super().__init__(message)
        self.line, self.col = line, col

    @classmethod
    def at(cls, event: Any, message: str) -> _YamlRefused:
        return cls(message, event.start_mark.line + 1, event.start_mark.column + 1)


def _tag_name(tag: Any) -> str:
    return str(getattr(tag, "value", tag))


def _screen_yaml(yaml: YAML, text: str, max_depth: int) -> None:
    """Walk the YAML event stream (flat: no recursion, nothing built yet) and refuse what would
    break or swamp the loader: nesting deeper than `max_depth`, aliases adding more than
    `MAX_ALIASED_VALUES` values (an "alias bomb"), plain integers of more than
    `MAX_YAML_DIGITS` digits, and explicit tags other than ``!!str``, ``!!map``, ``!!seq`` and core
    scalar tags on values of that type (``!!int 3``, ``!!float 1`` but not ``!!int 3s``)."""
    resolver = VersionedResolver(version=(1, 2))
    subtree: dict[Any, int] = {}  # anchor → values in its subtree, aliases expanded
    open_sizes: list[list[Any]] = []  # [anchor, values so far] of each open collection
    aliased = 0
    for event in yaml.parse(io.StringIO(text)):
        if not isinstance(event, NodeEvent):
            if isinstance(event, CollectionEndEvent):
                anchor, size = open_sizes.pop()
                if anchor is not None:
                    subtree[anchor] = size
                if open_sizes:
                    open_sizes[-1][1] += size
            continue
        raw_tag = getattr(event, "tag", None)
        tag = None if raw_tag is None else _tag_name(raw_tag)
        if isinstance(event, AliasEvent):
            size = subtree.get(event.anchor, 1)
            aliased += size
            if aliased > MAX_ALIASED_VALUES:
                raise _YamlRefused.at(event, f"expected aliases to add at most "
                                             f"{MAX_ALIASED_VALUES} values, found more")
        elif isinstance(event, ScalarEvent):
            size = 1
            implicit = _tag_name(resolver.resolve(ScalarNode, event.value, (True, False)))
            if tag is not None and tag != _STR_TAG:
                short = tag.replace(_CORE_TAG, "!!")
                if tag not in _SCALAR_TAGS:
                    raise _YamlRefused.at(event, f"expected plain YAML values, found the tag "
                                                 f"{short}")
                if implicit != tag and not (tag == _FLOAT_TAG and implicit == _INT_TAG):
                    raise _YamlRefused.at(event, f"expected a value that is a YAML {short}, "
                                              f"found {event.value!r} tagged {short}")
            digits = event.value.lstrip("+-")
            plain = event.style is None or tag == _INT_TAG
            if plain and implicit == _INT_TAG and len(digits) > MAX_YAML_DIGITS:
                raise _YamlRefused.at(event, f"expected a number of at most {MAX_YAML_DIGITS} "
                                          f"digits, found one of {len(digits)}")
            if event.anchor is not None:
                subtree[event.anchor] = 1
        else:
            assert isinstance(event, CollectionStartEvent)
            if tag is not None and tag not in _COLLECTION_TAGS:
                kind = "sequence" if isinstance(event, SequenceStartEvent) else "mapping"
                raise _YamlRefused.at(event, f"expected a plain {kind}, found the tag "
                                          f"{tag.replace(_CORE_TAG, '!!')}")
            if len(open_sizes) >= max_depth:
                raise _YamlRefused.at(event, f"expected nesting at most {max_depth} levels deep "
                                             "(--max-loop-depth raises it), found deeper")
            open_sizes.append([event.anchor, 1])
            size = 0  # added to its parent when it ends, with its contents
        if size and open_sizes:
            open_sizes[-1][1] += size


def _read_yaml(text: str, origin: str, max_loop_depth: int) -> _Located:
    yaml = YAML(typ="rt")
    yaml.version = (1, 2)
    located = _Located(None, {}, {})
    try:
        _screen_yaml(yaml, text, YAML_DEPTH_MARGIN + 3 * max_loop_depth)
        node = yaml.load(io.StringIO(text))
        if node is None:
            raise ScenarioError([f"{origin}:1:1: document: expected a mapping with name, "
                                 "duration, machine and processes, found an empty document"])
        if isinstance(node, CommentedMap):
            located.values[()] = (node.lc.line + 1, node.lc.col + 1)
        located.data = _plain(node, (), located)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = " ".join(part for part in (error.problem, error.context) if part)
        problem = problem.removeprefix("found ")
        raise ScenarioError([f"{origin}:{line}:{col}: document: expected valid YAML, "
                             f"found {problem or 'a syntax error'}"]) from None
    except YAMLError as error:
        raise ScenarioError([f"{origin}:1:1: document: expected valid YAML, found {error}"]) \
            from None
    except _YamlRefused as refused:  # from the screen or from `_plain`
        raise ScenarioError([f"{origin}:{refused.line}:{refused.col}: document: {refused}"]) \
            from None
    if not isinstance(located.data, dict):
        raise ScenarioError([f"{origin}:1:1: document: expected a mapping with name, duration, "
                             f"machine and processes, found {describe(located.data)}"])
    return located


def _yaml_path(data: Any, loc: Loc) -> tuple[Loc, Loc]:
    """(the part of a pydantic `loc` found in the YAML data, the path to show).

    Segments pydantic adds (union tags) are dropped; a key absent from a mapping (a missing
    or defaulted field) is still shown.
    """
    path: list[str | int] = []
    shown: list[str | int] = []
    node = data
    for part in loc:
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
            shown.append(part)
        elif isinstance(node, dict) and isinstance(part, str):
            shown.append(part)
            node = None
    return tuple(path), tuple(shown)


def _format_path(path: Loc) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "document"


_KNOWN_KEYS = sorted({
    field.alias or name
    for model in (Scenario, MachineSpec, ProcessSpec, EventSpec, Move, Nice, Kill, Loop, Run,
                  Sleep, Timer, Alloc, Free, Exit, ThreadProgram)
    for name, field in model.model_fields.items()
} | set(_ACTIONS) | set(cgfiles.FILES) | {"loop", "timer", "draw", "per_thread", "until"})


def _message(error: Any) -> str:
    """pydantic's error → ``expected …, found …``."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    found = describe(value)
    if kind in ("scenario", "scenario_key"):
        return str(ctx["message"])
    if kind == "missing":
        return f"expected a value, found no {error['loc'][-1]!r} key"
    if kind == "extra_forbidden":
        key = error["loc"][-1]
        return f"expected a known key{did_you_mean(key, _KNOWN_KEYS)}, found unknown key {key!r}"
    if kind == "literal_error":
        choices = re.findall(r"'([^']*)'", str(ctx["expected"]))
        return f"expected {ctx['expected']}{did_you_mean(value, choices)}, found {found}"
    bounds = {"greater_than_equal": ("≥", "ge"), "less_than_equal": ("≤", "le"),
              "greater_than": (">", "gt"), "less_than": ("<", "lt")}
    if kind in bounds:
        sign, key = bounds[kind]
        return f"expected a value {sign} {ctx[key]}, found {found}"
    if kind == "too_short":
        return f"expected at least {ctx['min_length']} item(s), found {found}"
    if kind == "string_pattern_mismatch":
        return ("expected a name of letters, digits and _ . : + - (no spaces or '/'), "
                f"found {found}")
    expectations = {
        ("int_type", "int_parsing", "int_from_float"): "an integer",
        ("bool_type", "bool_parsing"): "true or false",
        ("string_type",): "a string",
        ("dict_type", "model_type", "model_attributes_type", "mapping_type"): "a mapping",
        ("list_type", "tuple_type"): "a list",
    }
    for kinds, expected in expectations.items():
        if kind in kinds:
            return f"expected {expected}, found {found}"
    return f"expected valid input ({error['msg']}), found {found}"


def _position(located: _Located, path: Loc, about_key: bool) -> tuple[int, int]:
    """Where `path` sits in the file: its key or its value, else its nearest ancestor's."""
    for depth in range(len(path), -1, -1):
        prefix = path[:depth]
        first, second = (located.keys, located.values) if about_key else (located.values,
                                                                          located.keys)
        position = first.get(prefix) or second.get(prefix)
        if position:
            return position
    return (1, 1)


def _located_messages(error: ValidationError, located: _Located, origin: str) -> list[str]:
    found: list[tuple[int, int, str]] = []
    for item in error.errors():
        if item["type"] == "too_short" and len(item.get("input") or ()) >= item["ctx"].get(
                "min_length", 0):
            continue  # pydantic's echo of failed items, already reported one by one
        path, shown = _yaml_path(located.data, item["loc"])
        about_key = item["type"] in ("missing", "extra_forbidden", "scenario_key")
        line, col = _position(located, path, about_key)
        found.append((line, col, f"{origin}:{line}:{col}: {_format_path(shown)}: "
                      f"{_message(item)}"))
    return [message for _, _, message in sorted(found, key=lambda item: item[:2])]


# ---- loading -----------------------------------------------------------------------------------
def _is_file_name(source: str) -> bool:
    """Whether one-line `source` names an existing file (text too long for a name is YAML)."""
    try:
        return "\n" not in source and Path(source).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG, an embedded NUL
        return False


def _read_source(source: str | Path) -> tuple[str, str, str | None]:
    """(text, origin for messages, file name stem or None)."""
    if not isinstance(source, (str, Path)):
        raise TypeError(f"load_scenario takes YAML text or a path, not {type(source).__name__}")
    if isinstance(source, Path) or _is_file_name(source):
        path = Path(source)
        try:
            return path.read_text(encoding="utf-8"), str(path), path.stem
        except (OSError, UnicodeDecodeError) as error:
            raise ScenarioError([f"{path}:1:1: document: expected a readable UTF-8 YAML file, "
                                 f"found {error}"]) from None
    return source, "<string>", None


def load_scenario(source: str | Path, *, limits: Limits | None = None) -> Scenario:
    """A validated `Scenario` from a YAML file (a Path or an existing file name) or YAML text.

    A missing ``name`` defaults to the file's stem. Raises `ScenarioError`.
    """
    text, origin, stem = _read_source(source)
    limits = limits or Limits()
    located = _read_yaml(text, origin, limits.max_loop_depth)
    data = located.data
    if "name" not in data:
        data = {"name": stem or "scenario", **data}
    try:
        scenario = Scenario.model_validate(data, context={"limits": limits})
    except ValidationError as error:
        raise ScenarioError(_located_messages(error, located, origin)) from None
    scenario._source = origin if stem is not None else None
    return scenario


# ---- JSON Schema and bundled scenarios ---------------------------------------------------------
def _draft7(node: Any, definitions: dict[str, Any]) -> Any:
    """pydantic's 2020-12 flavour → draft-07: ``$defs`` → ``definitions``, no discriminators."""
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "discriminator":
                continue
            if key == "$ref":
                out[key] = value.replace("#/$defs/", "#/definitions/")
            else:
                out[key] = _draft7(value, definitions)
        return out
    if isinstance(node, list):
        return [_draft7(item, definitions) for item in node]
    return node


def scenario_json_schema() -> dict[str, Any]:
    """A draft-07 JSON Schema of the YAML scenario shape (for editors and `jsonschema`)."""
    schema = Scenario.model_json_schema(by_alias=True, mode="validation")
    definitions = _draft7(schema.pop("$defs", {}), {})
    loop = definitions["Loop"]
    definitions["Loop"] = {
        "type": "object", "title": "Loop", "description": loop.get("description", ""),
        "properties": {"loop": {k: v for k, v in loop.items() if k not in ("title",
                                                                           "description")}},
        "required": ["loop"], "additionalProperties": False,
    }
    timer = definitions["Timer"]
    definitions["Timer"] = {
        "type": "object", "title": "Timer", "description": timer.get("description", ""),
        "properties": {"timer": {"anyOf": [
            timer["properties"]["period"],
            {k: v for k, v in timer.items() if k not in ("title", "description")},
        ]}},
        "required": ["timer"], "additionalProperties": False,
    }
    definitions["Write"] = {
        "type": "object", "title": "Write", "description": definitions["Write"]["description"],
        "minProperties": 1, "maxProperties": 1,
        "propertyNames": _CGROUPS_SCHEMA["propertyNames"],
        "additionalProperties": {**_files_schema(), "type": "object", "minProperties": 1},
    }
    body = _draft7(schema, definitions)
    body["properties"]["name"]["description"] = "defaults to the file name without .yaml"
    body["required"] = [key for key in body.get("required", []) if key != "name"]
    return {"$schema": "http://json-schema.org/draft-07/schema#", **body,
            "definitions": definitions}


def schema_text() -> str:
    """The schema as written to ``cfssim.schema.json``."""
    return json.dumps(scenario_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def scenario_dir() -> Path:
    """The bundled scenarios: ``scenarios/`` in a checkout, ``cfssim/_scenarios`` when installed."""
    return _PACKAGED_SCENARIO_DIR if _PACKAGED_SCENARIO_DIR.is_dir() else _SCENARIO_DIR


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario name (file stem) → path, sorted by name."""
    directory = scenario_dir()
    return {path.stem: path for path in sorted(directory.glob("*.yaml"))}


def resolve_scenario(name_or_path: str | Path) -> Path:
    """A scenario file: an existing path, or the name of a bundled scenario."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = bundled_scenarios()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    raise ScenarioError([f"{name_or_path}:1:1: document: expected a YAML file or a bundled "
                         f"scenario ({', '.join(bundled)}){did_you_mean(name_or_path, bundled)}, "
                         "found neither"])
