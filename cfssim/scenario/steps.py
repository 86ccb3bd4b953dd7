"""Program steps: what a thread does, in order — ``run``, ``sleep``, ``timer``, ``alloc``,
``free``, ``exit`` and ``loop``, and for captured programs (`cfssim capture`) ``draw``,
``until`` and ``per_thread`` — each a one-key YAML mapping (``{run: 10ms}``) validated into a
frozen model, and the rules on a program's time: a program that repeats forever must let time
pass, and no loop may spin through steps without it (`instant_step_problem`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Discriminator, Field, Tag, WithJsonSchema, model_validator

from .._errors import describe, did_you_mean, name_list
from ..units import format_duration, parse_duration
from .errors import fail
from .values import (
    DURATION_PATTERN,
    Duration,
    DurationOrForever,
    FrozenModel,
    Repeat,
    Size,
    SizeOrAll,
    as_duration,
)


class Run(FrozenModel):
    """Run for `ns` of CPU time (None = forever)."""

    ns: DurationOrForever = Field(alias="run")


class Sleep(FrozenModel):
    """Sleep for `ns` of wall time."""

    ns: Duration = Field(alias="sleep")


TimerMode = Literal["absolute", "relative"]


def _period(value: Any) -> int:
    """A timer period: a positive duration → int ns."""
    try:
        period_ns = parse_duration(value)
    except (ValueError, TypeError):
        return as_duration(value)  # raises the duration message
    if period_ns <= 0:
        raise fail(f"expected a positive period such as '200ms', found {describe(value)}")
    return period_ns


class Timer(FrozenModel):
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
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "string", "pattern": DURATION_PATTERN},
                    {"type": "integer", "minimum": 1},
                ],
                "description": "a positive duration such as '200ms', or ns",
            }
        ),
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
                raise fail(
                    f"expected a period such as 200ms or a mapping {{period: …, "
                    f"mode: absolute|relative}}, found {describe(body)}"
                )
            return {"period": body}
        return data


class Alloc(FrozenModel):
    """Touch `bytes` more anonymous memory (charged to the task's memcg)."""

    bytes: Size = Field(alias="alloc")


class Free(FrozenModel):
    """Free `bytes` of the task's memory (None = all of it)."""

    bytes: SizeOrAll = Field(alias="free")


class Exit(FrozenModel):
    """Exit the thread with `code`."""

    code: int = Field(alias="exit", ge=0, le=255, strict=True)


class Loop(FrozenModel):
    """Repeat `program` `repeat` times (None = forever). YAML: ``{loop: {repeat, program}}``."""

    repeat: Repeat = 1
    program: tuple[Step, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"loop"}:
            body = data["loop"]
            if not isinstance(body, Mapping):
                raise fail(
                    f"expected a mapping {{repeat: …, program: […]}}, found {describe(body)}"
                )
            return body
        return data


# ---- synchronisation and thread steps (cfssim.sync; rt-app's events) -------------------------
#: A mutex, condition, barrier, suspend point or process name in a sync step.
SyncName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class Lock(FrozenModel):
    """Take mutex `name`, sleeping in its FIFO queue while another thread holds it."""

    name: SyncName = Field(alias="lock")


class Unlock(FrozenModel):
    """Release mutex `name` (held by this thread): the first waiter gets it and wakes."""

    name: SyncName = Field(alias="unlock")


class CondWait(FrozenModel):
    """``pthread_cond_wait``: release `mutex` (held), sleep until `cond` is signalled, then
    re-acquire `mutex`. YAML: ``{wait: {cond: c, mutex: m}}``."""

    cond: SyncName
    mutex: SyncName

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"wait"}:
            body = data["wait"]
            if not isinstance(body, Mapping):
                raise fail(f"expected a mapping {{cond: …, mutex: …}}, found {describe(body)}")
            return body
        return data


class Signal(FrozenModel):
    """Wake the first thread waiting on condition `name` (none waiting: lost)."""

    name: SyncName = Field(alias="signal")


class Broadcast(FrozenModel):
    """Wake every thread waiting on condition `name`."""

    name: SyncName = Field(alias="broadcast")


class BarrierWait(FrozenModel):
    """Meet at barrier `name`: every thread whose program uses it (threads × processes)
    arrives; the last arrival releases all (`barrier_parties`)."""

    name: SyncName = Field(alias="barrier")


class Suspend(FrozenModel):
    """Sleep until another thread's ``resume`` of `name` (a resume nobody waits for is lost)."""

    name: SyncName = Field(alias="suspend")


class Resume(FrozenModel):
    """Wake every thread suspended on `name`."""

    name: SyncName = Field(alias="resume")


class Fork(FrozenModel):
    """Start one more thread of process `process` now (its program and settings)."""

    process: SyncName = Field(alias="fork")


class Yield(FrozenModel):
    """``sched_yield`` `count` times. YAML: ``{yield: null}`` (once) or ``{yield: 3}``."""

    count: Annotated[int, BeforeValidator(lambda v: 1 if v is None else v)] = Field(
        default=1, alias="yield", ge=1, le=1000
    )


class SetCpus(FrozenModel):
    """``sched_setaffinity``: from now on run on `cpus` (a running thread on a CPU no longer
    allowed migrates)."""

    cpus: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"cpus"}:
            body = data["cpus"]
            if (
                not isinstance(body, (list, tuple))
                or not body
                or not all(type(c) is int and c >= 0 for c in body)
            ):
                raise fail(
                    f"expected a non-empty list of CPU numbers such as [0, 1], "
                    f"found {describe(body)}"
                )
            return {"cpus": tuple(sorted(set(body)))}
        return data


class Runtime(FrozenModel):
    """Stay runnable for `ns` of wall time, whatever CPU share that brings (rt-app
    ``runtime``); ``run`` counts CPU time instead."""

    ns: Duration = Field(alias="runtime")


#: The steps whose YAML is one name: ``{lock: m}``, ``{fork: p}``…
SYNC_NAMED = (Lock, Unlock, Signal, Broadcast, BarrierWait, Suspend, Resume, Fork)
SYNC_STEPS: dict[str, type[FrozenModel]] = {
    "lock": Lock,
    "unlock": Unlock,
    "wait": CondWait,
    "signal": Signal,
    "broadcast": Broadcast,
    "barrier": BarrierWait,
    "suspend": Suspend,
    "resume": Resume,
    "fork": Fork,
    "yield": Yield,
    "cpus": SetCpus,
    "runtime": Runtime,
}


# ---- captured programs (`cfssim capture`): a random draw, a wakeup time, one program per thread
#: Most points a `Draw` distribution may hold (its quantiles).
MAX_DRAW_POINTS = 1_000


class Draw(FrozenModel):
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
            if (
                not isinstance(body, Mapping)
                or len(body) != 1
                or next(iter(body)) not in ("run", "sleep")
            ):
                raise fail(
                    f"expected a mapping {{run: [durations]}} or {{sleep: [durations]}}"
                    f", found {describe(body)}"
                )
            kind, values = next(iter(body.items()))
            if not isinstance(values, (list, tuple)):
                raise fail(f"expected a list of durations, found {describe(values)}")
            return {"kind": kind, "values_ns": sorted(as_duration(v) for v in values)}
        return data


class Until(FrozenModel):
    """Sleep until `ns` after the thread's start (no sleep when that time has passed): a
    captured wakeup replayed at the time it happened. YAML: ``{until: 1.25s}``."""

    ns: Duration = Field(alias="until")


class ThreadProgram(FrozenModel):
    """One thread's own program inside `PerThread`; `name` (its comm) and `woken_by` (waker
    task name → wakeups seen, from a capture) are descriptive only."""

    name: str = ""
    woken_by: dict[str, int] = Field(default_factory=dict)
    program: tuple[Step, ...] = Field(min_length=1)


class PerThread(FrozenModel):
    """Thread i of the process runs ``threads[i].program`` (threads beyond the list run
    nothing). YAML: ``{per_thread: [{name: main, program: [...]}, ...]}``."""

    threads: tuple[ThreadProgram, ...] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _unwrap(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and set(data) == {"per_thread"}:
            return {"threads": data["per_thread"]}
        return data


def _captured_lengths(step: Draw | Until) -> tuple[int, ...]:
    """The lengths (ns) a `Draw` may take, or the time an `Until` sleeps to."""
    return step.values_ns if isinstance(step, Draw) else (step.ns,)


#: The captured-program step kinds (YAML keys), in the order error messages list them.
CAPTURED_STEPS: dict[str, type[FrozenModel]] = {
    "draw": Draw,
    "per_thread": PerThread,
    "until": Until,
}
# ---- end of captured programs --------------------------------------------------------------------


_STEP_KINDS: dict[str, type[FrozenModel]] = {
    "run": Run,
    "sleep": Sleep,
    "timer": Timer,
    "alloc": Alloc,
    "free": Free,
    "exit": Exit,
    "loop": Loop,
    **SYNC_STEPS,
    **CAPTURED_STEPS,
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
        raise fail(f"expected {expected}, found {describe(value)}")
    keys = list(value)
    if len(keys) > 1:
        raise fail(f"expected {expected}, found {len(keys)} keys ({name_list(keys)})")
    if keys[0] not in _STEP_KINDS:
        raise fail(
            f"expected {expected}{did_you_mean(keys[0], _STEP_KINDS)}, found {describe(keys[0])}"
        )
    return value


Step = Annotated[
    Annotated[Run, Tag("run")]
    | Annotated[Sleep, Tag("sleep")]
    | Annotated[Timer, Tag("timer")]
    | Annotated[Alloc, Tag("alloc")]
    | Annotated[Free, Tag("free")]
    | Annotated[Exit, Tag("exit")]
    | Annotated[Loop, Tag("loop")]
    # synchronisation and thread steps
    | Annotated[Lock, Tag("lock")]
    | Annotated[Unlock, Tag("unlock")]
    | Annotated[CondWait, Tag("wait")]
    | Annotated[Signal, Tag("signal")]
    | Annotated[Broadcast, Tag("broadcast")]
    | Annotated[BarrierWait, Tag("barrier")]
    | Annotated[Suspend, Tag("suspend")]
    | Annotated[Resume, Tag("resume")]
    | Annotated[Fork, Tag("fork")]
    | Annotated[Yield, Tag("yield")]
    | Annotated[SetCpus, Tag("cpus")]
    | Annotated[Runtime, Tag("runtime")]
    # captured programs
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
    """Every step of `program` with its loop nesting depth (1 = top level), loops included
    (a `PerThread`'s programs count as one level deeper)."""
    for step in program:
        yield step, depth
        if isinstance(step, Loop):
            yield from iter_steps(step.program, depth + 1)
        elif isinstance(step, PerThread):
            for thread in step.threads:
                yield from iter_steps(thread.program, depth + 1)


def takes_time(program: Sequence[Step]) -> bool:
    """Whether one pass of `program` can advance time (a run or sleep of non-zero length, or
    a timer: each expiry is a period after the previous one; a draw or until that can be
    non-zero)."""
    return any(
        isinstance(step, Timer)
        or (isinstance(step, (Run, Sleep, Runtime)) and step.ns != 0)
        or (isinstance(step, (Draw, Until)) and max(_captured_lengths(step)) != 0)
        for step, _ in iter_steps(program)
    )


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
        elif isinstance(step, (Run, Sleep, Runtime)):
            if step.ns is None:
                return None
            work += step.ns
        elif isinstance(step, Timer):
            timers += step.period_ns
        elif isinstance(step, Draw):
            work += step.values_ns[0]
        elif isinstance(step, PerThread):  # the least of the threads' passes
            passes = [
                times
                for thread in step.threads
                if (times := _pass_times(thread.program)) is not None
            ]
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
        (step.repeat or 1) * _steps_per_pass(step.program)
        if isinstance(step, Loop)
        else max(_steps_per_pass(t.program) for t in step.threads)
        if isinstance(step, PerThread)
        else 1
        for step in program
    )


def instant_step_problem(program: tuple[Step, ...], repeat: int | None) -> str | None:
    """What is wrong with a thread's `program` repeated `repeat` times (None = forever), or None:
    a loop (innermost first, then the whole program with its repeat) that would execute more
    than `MAX_INSTANT_STEPS` steps without letting time pass, or that repeats more often than
    that with passes averaging less than `MIN_NS_PER_STEP` per step."""
    loops = [
        (f"the loop (step {index})", step)
        for index, (step, _) in enumerate(iter_steps(program))
        if isinstance(step, Loop)
    ]
    loops.reverse()
    whole = Loop.model_validate(
        {"repeat": "forever" if repeat is None else repeat, "program": program}
    )
    loops.append(("the program", whole))
    for where, loop in loops:
        if loop.repeat is None or takes_time(loop.program):
            continue
        steps = loop.repeat * _steps_per_pass(loop.program)
        if steps > MAX_INSTANT_STEPS:
            return (
                f"expected at most {MAX_INSTANT_STEPS} steps at one instant (or a run, sleep "
                f"or timer step in {where}), found {steps} steps that take no time"
            )
    for where, loop in loops:
        steps = _steps_per_pass(loop.program)
        if loop.repeat is not None and loop.repeat * steps <= MAX_INSTANT_STEPS:
            continue
        least = _least_pass_ns(loop.program)
        if least is not None and 0 < least < MIN_NS_PER_STEP * steps:
            times = "forever" if loop.repeat is None else f"{loop.repeat} times"
            return (
                f"expected each pass of {where} (repeated {times}, {steps} steps) to take "
                f"at least {format_duration(MIN_NS_PER_STEP)} per step of runs, sleeps and "
                f"timer periods, found {format_duration(least)}"
            )
    return None


# ---- synchronisation: what one program does with its mutexes --------------------------------
#: A step's place in a program: indices and keys down from the program (``(2, "loop",
#: "program", 0)``), as in the YAML.
StepPath = tuple[int | str, ...]


def per_thread_count(program: Sequence[Step]) -> int:
    """The most thread programs any `PerThread` step of `program` lists (0: none): threads
    from this index on run the same steps."""
    return max(
        (len(step.threads) for step, _ in iter_steps(program) if isinstance(step, PerThread)),
        default=0,
    )


def sync_step_problems(
    program: Sequence[Step], repeat: int | None, thread: int = 0
) -> list[tuple[StepPath, str]]:
    """Mutex misuse thread `thread` running `program` (repeated `repeat` times) would make,
    each with its step path: locking a mutex it holds (a default pthread mutex deadlocks),
    unlocking or waiting with one it does not hold, a loop pass or the program ending with a
    mutex still held. A `PerThread` step is the thread's own program in it."""
    problems: list[tuple[StepPath, str]] = []

    def walk(steps: Sequence[Step], base: StepPath, held: set[str]) -> set[str]:
        for index, step in enumerate(steps):
            where = (*base, index)
            if isinstance(step, Lock):
                if step.name in held:
                    problems.append(
                        (
                            where,
                            f"expected mutex {step.name!r} to be free for this "
                            "thread, found it held already by the thread (deadlock)",
                        )
                    )
                held.add(step.name)
            elif isinstance(step, Unlock):
                if step.name not in held:
                    problems.append(
                        (
                            where,
                            f"expected a lock of mutex {step.name!r} before its "
                            f"unlock, found the mutex not held",
                        )
                    )
                held.discard(step.name)
            elif isinstance(step, CondWait) and step.mutex not in held:
                problems.append(
                    (
                        where,
                        f"expected mutex {step.mutex!r} held (locked before) "
                        f"when waiting on {step.cond!r}, found it not held",
                    )
                )
            elif isinstance(step, Loop):
                before = set(held)
                after = walk(step.program, (*where, "loop", "program"), set(held))
                if after != before and step.repeat != 1:
                    changed = sorted(after ^ before)
                    problems.append(
                        (
                            where,
                            f"expected each pass of the loop to release the "
                            f"mutexes it takes, found {name_list(changed)} changed",
                        )
                    )
                held = after
            elif isinstance(step, PerThread) and thread < len(step.threads):
                held = walk(
                    step.threads[thread].program, (*where, "per_thread", thread, "program"), held
                )
        return held

    left = walk(program, (), set())
    if left:
        problems.append(
            (
                (),
                f"expected the program to release the mutexes it takes, found "
                f"{name_list(sorted(left))} still held at its end",
            )
        )
    return problems


def step_paths(
    program: Sequence[Step], base: StepPath = (), thread: int | None = None
) -> Iterator[tuple[StepPath, Step]]:
    """Every step of `program` with its step path, loops and `PerThread` programs included
    (only thread `thread`'s own one when given)."""
    for index, step in enumerate(program):
        yield (*base, index), step
        if isinstance(step, Loop):
            yield from step_paths(step.program, (*base, index, "loop", "program"), thread)
        elif isinstance(step, PerThread):
            for which, own in enumerate(step.threads):
                if thread is None or thread == which:
                    yield from step_paths(
                        own.program, (*base, index, "per_thread", which, "program"), thread
                    )


def repeated_until_problems(
    program: Sequence[Step], repeat: int | None
) -> list[tuple[StepPath, str]]:
    """Each `Until` step of `program` (repeated `repeat` times, None = forever) that would run
    more than once, with its step path: its time counts from the thread's start, so it only
    sleeps the first time round and takes no time from the second pass on — a ``sleep`` or a
    ``timer`` is the step that repeats."""
    problems: list[tuple[StepPath, str]] = []

    def times(count: int | None) -> str:
        return "forever" if count is None else f"{count} times"

    def walk(steps: Sequence[Step], base: StepPath, where: str | None) -> None:
        for index, step in enumerate(steps):
            path = (*base, index)
            if isinstance(step, Until) and where is not None:
                problems.append(
                    (
                        path,
                        f"expected an until step only where it runs once (its "
                        f"time counts from the thread's start: from the second pass "
                        f"on it takes no time; use sleep or timer to repeat), found "
                        f"it in {where}",
                    )
                )
            elif isinstance(step, Loop):
                inner = where if step.repeat == 1 else (f"a loop repeated {times(step.repeat)}")
                walk(step.program, (*path, "loop", "program"), inner)
            elif isinstance(step, PerThread):
                for which, own in enumerate(step.threads):
                    walk(own.program, (*path, "per_thread", which, "program"), where)

    walk(program, (), None if repeat == 1 else f"the program repeated {times(repeat)}")
    return problems


def sync_names(program: Sequence[Step], thread: int | None = None) -> dict[str, set[str]]:
    """The names a program uses (thread `thread`'s steps only, when given), by kind:
    ``mutex``, ``wait`` (conditions waited on), ``wake`` (conditions signalled or broadcast),
    ``barrier``, ``suspend``, ``resume``, ``fork``."""
    names: dict[str, set[str]] = {
        kind: set() for kind in ("mutex", "wait", "wake", "barrier", "suspend", "resume", "fork")
    }
    for _, step in step_paths(program, thread=thread):
        if isinstance(step, (Lock, Unlock)):
            names["mutex"].add(step.name)
        elif isinstance(step, CondWait):
            names["wait"].add(step.cond)
            names["mutex"].add(step.mutex)
        elif isinstance(step, (Signal, Broadcast)):
            names["wake"].add(step.name)
        elif isinstance(step, BarrierWait):
            names["barrier"].add(step.name)
        elif isinstance(step, Suspend):
            names["suspend"].add(step.name)
        elif isinstance(step, Resume):
            names["resume"].add(step.name)
        elif isinstance(step, Fork):
            names["fork"].add(step.process)
    return names


def barrier_parties(programs: Sequence[tuple[Sequence[Step], int]]) -> dict[str, int]:
    """How many threads meet at each barrier: the threads of every (program, threads) whose
    steps use it — a `PerThread` step's program only for its own thread (rt-app counts the
    users of a barrier name the same way)."""
    parties: dict[str, int] = {}
    for program, threads in programs:
        own = min(per_thread_count(program), threads)  # threads from `own` on run alike
        for thread in range(own + 1):
            users = 1 if thread < own else threads - own
            for name in sync_names(program, thread)["barrier"] if users else ():
                parties[name] = parties.get(name, 0) + users
    return parties
