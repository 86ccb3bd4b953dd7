"""Behaviours: what a task does, as a SimPy generator of requests.

A behaviour is any callable ``behaviour(task)`` returning a generator that yields the events made
by ``task.run(ns)``, ``task.sleep(ns)``, ``task.alloc(nbytes)`` and ``task.free(nbytes)`` (or any
other SimPy event, during which the task is blocked). Research code writes these directly::

    def bursty(task):
        while True:
            yield task.run(cfssim.ms(3))
            yield task.sleep(cfssim.ms(7))

YAML programs (``program: [{run: 10ms}, {sleep: 40ms}]``) compile to the same kind of generator
through `compile_program`, and `program` builds one from Python keywords. A compiled program
gives each thread a `TimerClock` when it starts, for its ``timer`` steps.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count, cycle
from typing import Any

from mypy_extensions import mypyc_attr
from pydantic import TypeAdapter, ValidationError

from .host import quantile_at
from .scenario import Alloc, Draw, Exit, Free, Loop, PerThread, Run, Sleep, Step, Timer, Until
from .scenario.steps import (
    BarrierWait,
    Broadcast,
    CondWait,
    Fork,
    Lock,
    Resume,
    Runtime,
    SetCpus,
    Signal,
    Suspend,
    Unlock,
    Yield,
)
from .sync import sched_yield

Behaviour = Callable[[Any], Generator[Any, Any, Any]]
_STEPS: TypeAdapter[tuple[Step, ...]] = TypeAdapter(tuple[Step, ...])


class TaskExit(Exception):
    """Raised inside a behaviour by an ``exit`` step; ends the thread with `code`."""

    def __init__(self, code: int = 0) -> None:
        super().__init__(code)
        self.code = code


@mypyc_attr(native_class=False)  # mypyc: RuntimeError subclass
class BehaviourError(RuntimeError):
    """A behaviour that would spin forever without time passing."""


@dataclass
class TimerClock:
    """One thread's periodic timer (`Timer` steps): started at `start_ns`, last expired at
    `expiry_ns` (int ns, simulated or CLOCK_MONOTONIC time)."""

    start_ns: int
    expiry_ns: int

    @classmethod
    def starting(cls, now_ns: int) -> TimerClock:
        """The timer of a thread starting at `now_ns`."""
        return cls(now_ns, now_ns)

    def next_expiry(self, timer: Timer, now_ns: int) -> int:
        """Advance to `timer`'s next expiry: one period after the last; if that has passed,
        the first boundary start + k·period at or after now (absolute) or now (relative)."""
        period = timer.period_ns
        expiry = self.expiry_ns + period
        if expiry < now_ns:
            periods = -(-(now_ns - self.start_ns) // period)  # ceiling: missed ones skipped
            expiry = now_ns if timer.mode == "relative" else self.start_ns + periods * period
        self.expiry_ns = expiry
        return expiry


def repetitions(repeat: int | None) -> Iterator[int]:
    """0, 1, … `repeat` − 1 (None: without end)."""
    return count() if repeat is None else iter(range(repeat))


def execute(task: Any, steps: Iterable[Step], clock: TimerClock) -> Generator[Any, Any, None]:
    """Run `steps` in order for `task`, whose timer is `clock` (a generator to ``yield from``;
    `steps` may be endless: `repeat_steps` runs a forever loop through `itertools.cycle`)."""
    sim = task.sim  # its requests, made directly: `Task.run` and `Task.sleep` forward to them
    for step in steps:
        if isinstance(step, Run):
            yield sim.request_run(task, step.ns)
        elif isinstance(step, Sleep):
            yield sim.request_sleep(task, step.ns)
        elif isinstance(step, Timer):
            expiry = clock.next_expiry(step, task.now)
            if expiry > task.now:  # an expiry already reached does not block
                yield sim.request_sleep(task, expiry - task.now)
        elif isinstance(step, Alloc):
            yield task.alloc(step.bytes)
        elif isinstance(step, Free):
            yield task.free(step.bytes)
        elif isinstance(step, Exit):
            raise TaskExit(step.code)
        elif isinstance(step, Loop):
            yield from repeat_steps(task, step.program, step.repeat, clock)
        elif isinstance(step, Draw):
            length = draw_ns(step.values_ns, float(task.random.random()))
            if step.kind == "run":
                yield sim.request_run(task, length)
            else:
                yield sim.request_sleep(task, length)
        elif isinstance(step, Until):
            wake = clock.start_ns + step.ns
            if wake > task.now:  # a time already reached does not block
                yield sim.request_sleep(task, wake - task.now)
        elif isinstance(step, PerThread):
            index = task.process.threads.index(task)
            if index < len(step.threads):
                yield from execute(task, step.threads[index].program, clock)
        else:
            yield from execute_sync(task, step)


#: Threads a process may reach by fork steps (a fork in a fast loop would otherwise grow
#: without bound).
FORK_LIMIT = 1024


def execute_sync(task: Any, step: Step) -> Generator[Any, Any, None]:
    """One synchronisation or thread step (`cfssim.sync`) for `task`."""
    sim = task.sim
    sync = sim.sync
    if isinstance(step, Lock):
        yield sync.mutex(step.name).lock(task)
    elif isinstance(step, Unlock):
        yield sync.mutex(step.name).unlock(task)
    elif isinstance(step, CondWait):
        yield sync.cond(step.cond).wait(task, sync.mutex(step.mutex))
    elif isinstance(step, Signal):
        yield sync.cond(step.name).signal(task)
    elif isinstance(step, Broadcast):
        yield sync.cond(step.name).broadcast(task)
    elif isinstance(step, BarrierWait):
        yield sync.barrier(step.name).wait(task)
    elif isinstance(step, Suspend):
        yield from sync.suspend(task, step.name)
    elif isinstance(step, Resume):
        yield from sync.resume(task, step.name)
    elif isinstance(step, Fork):
        if len(sim.processes[step.process].threads) >= FORK_LIMIT:
            raise BehaviourError(
                f"{task.name}: fork of {step.process!r} beyond {FORK_LIMIT} threads"
            )
        sim.fork(step.process)
    elif isinstance(step, Yield):
        for _ in range(step.count):
            yield sched_yield(task)
    elif isinstance(step, SetCpus):
        sim.set_affinity(task.process.name, step.cpus, thread=task.process.threads.index(task))
    elif isinstance(step, Runtime):
        yield sim.request_runtime(task, step.ns)
    else:  # pragma: no cover - the step union is closed
        raise TypeError(f"unknown step {step!r}")


def draw_ns(values_ns: Sequence[int], u: float) -> int:
    """The length (int ns) at probability `u` ∈ [0, 1) of the distribution whose quantiles at
    equally spaced probabilities are the sorted `values_ns`: linear between neighbours."""
    last = len(values_ns) - 1
    return quantile_at([(i / last if last else 0.0, v) for i, v in enumerate(values_ns)], u)


def always_takes_time(steps: Sequence[Step]) -> bool:
    """Whether every complete pass of `steps` lets time pass: one of them runs (CPU time: the
    task's sum_exec grows) or sleeps (the clock advances) for a positive length, or runs
    forever (the pass never completes)."""
    return any(
        (isinstance(step, Run) and (step.ns is None or step.ns > 0))
        or (isinstance(step, Sleep) and step.ns > 0)
        for step in steps
    )


def repeat_steps(
    task: Any, steps: Sequence[Step], repeat: int | None, clock: TimerClock
) -> Generator[Any, Any, None]:
    """Run `steps` `repeat` times (None: forever); a forever loop must let time pass."""
    if repeat is not None:
        for _ in range(repeat):
            yield from execute(task, steps, clock)
        return
    if always_takes_time(steps):  # no pass needs watching: one endless run through them
        yield from execute(task, cycle(steps), clock)
        return
    while True:
        before = (task.now, task.sum_exec)
        yield from execute(task, steps, clock)
        if (task.now, task.sum_exec) == before:
            raise BehaviourError(
                f"{task.name}: a 'forever' loop whose iteration takes no time would never end "
                "(add a run, sleep or timer step)"
            )


def compile_program(steps: Sequence[Step], repeat: int | None = 1) -> Behaviour:
    """A behaviour running `steps` `repeat` times (None: forever) — YAML programs use this."""
    frozen = tuple(steps)

    def behaviour(task: Any) -> Generator[Any, Any, None]:
        return repeat_steps(task, frozen, repeat, TimerClock.starting(task.now))

    behaviour.steps = frozen  # type: ignore[attr-defined]
    behaviour.repeat = repeat  # type: ignore[attr-defined]
    return behaviour


def program(*steps: dict[str, Any] | Step, repeat: int | None = None, **named: Any) -> Behaviour:
    """Build a behaviour from steps, written as in YAML, repeated forever by default::

    program(run="2ms", sleep="8ms")          # keyword order is step order
    program({"run": "10ms"}, {"alloc": "4MiB"}, repeat=3)
    program(run="forever")
    """
    raw: list[Any] = list(steps) + [{key: value} for key, value in named.items()]
    if not raw:
        raise ValueError("program() needs at least one step, e.g. program(run='10ms')")
    try:
        parsed = _STEPS.validate_python(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"step {'.'.join(str(p) for p in err['loc'][:1])}: {err['msg']}" for err in exc.errors()
        )
        raise ValueError(f"invalid program: {problems}") from None
    return compile_program(parsed, repeat)
