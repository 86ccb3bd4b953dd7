"""Thread synchronisation for behaviours: mutexes, condition variables, barriers, suspend/resume
and ``sched_yield`` — what rt-app's ``lock``/``unlock``, ``wait``/``signal``/``broad``,
``barrier``, ``suspend``/``resume`` and ``yield`` events do (and YAML's steps of the same names).

Every operation returns a SimPy event a behaviour ``yield``\\ s. A thread that must wait blocks
(it is dequeued like a sleeper, ``Simulation.request_block``) until another thread's operation
fires its event; it becomes runnable again with its next run request, at that same instant —
the same path a sleep's end takes, so wakeup latency and ``nr_wakeups`` count as for sleeps.

- `Mutex`: a FIFO wait queue; ``unlock`` hands the mutex to the first waiter (it becomes the
  owner at once, so no later locker can steal it) and wakes it.
- `CondVar`: ``wait(task, mutex)`` releases `mutex` (handing it on), sleeps until ``signal``
  (the first waiter) or ``broadcast`` (all), then re-acquires `mutex` — queueing behind its
  holder if needed — before it returns (``pthread_cond_wait``). A signal nobody waits for is
  lost, as with pthreads.
- `Barrier`: `parties` threads meet; the last one's arrival wakes the others (all continue at
  that instant) and the barrier resets for the next round.
- `SyncRegistry`: the named objects of one simulation (``sim.sync``), created on first use;
  suspend/resume are a condition variable per name (rt-app's ``suspend``: wait on it;
  ``resume``: broadcast it — a resume before the suspend is lost, as in rt-app).

Research code uses them through its simulation's registry (an object belongs to the one
simulation it is first used in; another refuses it)::

    def worker(task):
        lock = task.sim.sync.mutex("db")   # the same mutex for every thread of this simulation
        while True:
            yield lock.lock(task)          # may sleep until the holder unlocks
            yield task.run(cfssim.ms(2))    # critical section
            yield lock.unlock(task)
            yield task.sleep(cfssim.ms(8))

Times are int ns.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import simpy

from .task import TaskState


class SyncError(RuntimeError):
    """A synchronisation misuse a real program would get an error (or undefined behaviour)
    for: unlocking a mutex it does not hold, waiting with a mutex it does not hold."""


def _done(task: Any) -> simpy.Event:
    event: simpy.Event = task.sim.env.event()
    event.succeed()
    return event


class _OneSimulation:
    """A sync object is state of one simulation: the first task that uses it binds it."""

    env: Any = None

    def _bind(self, task: Any) -> None:
        env = task.sim.env
        if self.env is None:
            self.env = env
        elif self.env is not env:
            raise SyncError(
                f"{task.name}: {type(self).__name__.lower()} {getattr(self, 'name', '')!r} "
                "belongs to another simulation (take one per simulation: task.sim.sync)"
            )


@dataclass
class Mutex(_OneSimulation):
    """A sleeping lock with a FIFO queue of waiters (``pthread_mutex_t``, no priority
    inheritance)."""

    name: str
    owner: Any = None
    waiters: deque[tuple[Any, simpy.Event]] = field(default_factory=deque)
    contended: int = 0  # lock calls that had to wait

    def lock(self, task: Any) -> simpy.Event:
        """Take the mutex, or sleep in its queue until an unlock hands it over."""
        self._bind(task)
        if self.owner is None:
            self.owner = task
            return _done(task)
        if self.owner is task:
            raise SyncError(
                f"{task.name}: locks mutex {self.name!r}, which it holds already "
                "(a default pthread mutex deadlocks)"
            )
        event: simpy.Event = task.sim.env.event()
        self.contended += 1
        self.enqueue(task, event)
        return task.sim.request_block(task, event)

    def enqueue(self, task: Any, event: simpy.Event) -> None:
        """Queue `task` for the mutex; `event` fires once it owns it (at once if it is free)."""
        if self.owner is None:
            self.owner = task
            event.succeed()
        else:
            self.waiters.append((task, event))

    def unlock(self, task: Any) -> simpy.Event:
        """Release the mutex: the first live waiter becomes the owner and wakes."""
        self._bind(task)
        if self.owner is not task:
            holder = "nobody" if self.owner is None else self.owner.name
            raise SyncError(f"{task.name}: unlocks mutex {self.name!r}, held by {holder}")
        self.release()
        return _done(task)

    def release(self) -> None:
        self.owner = None
        while self.waiters:
            waiter, event = self.waiters.popleft()
            if waiter.state is not TaskState.DEAD:
                self.owner = waiter
                event.succeed()
                return


@dataclass
class CondVar(_OneSimulation):
    """A condition variable (``pthread_cond_t``): waiters in FIFO order."""

    name: str
    waiters: deque[tuple[Any, Mutex, simpy.Event]] = field(default_factory=deque)
    signals: int = 0  # signal/broadcast calls
    woken: int = 0  # waiters they woke

    def wait(self, task: Any, mutex: Mutex) -> simpy.Event:
        """``pthread_cond_wait``: release `mutex`, sleep until signalled, re-acquire `mutex`."""
        self._bind(task)
        if mutex.owner is not task:
            raise SyncError(
                f"{task.name}: waits on {self.name!r} without holding mutex {mutex.name!r}"
            )
        event: simpy.Event = task.sim.env.event()
        self.waiters.append((task, mutex, event))
        mutex.release()
        return task.sim.request_block(task, event)

    def signal(self, task: Any) -> simpy.Event:
        """``pthread_cond_signal``: the first waiter goes on to re-acquire its mutex."""
        self._bind(task)
        self._wake(1)
        return _done(task)

    def broadcast(self, task: Any) -> simpy.Event:
        """``pthread_cond_broadcast``: every waiter goes on to re-acquire its mutex."""
        self._bind(task)
        self._wake(len(self.waiters))
        return _done(task)

    def _wake(self, count: int) -> None:
        self.signals += 1
        while count > 0 and self.waiters:
            waiter, mutex, event = self.waiters.popleft()
            if waiter.state is TaskState.DEAD:
                continue
            mutex.enqueue(waiter, event)
            self.woken += 1
            count -= 1


@dataclass
class Barrier(_OneSimulation):
    """`parties` threads meet; the last arrival wakes the others and the barrier resets."""

    name: str
    parties: int
    arrived: list[tuple[Any, simpy.Event]] = field(default_factory=list)
    rounds: int = 0  # completed meetings

    def __post_init__(self) -> None:
        if self.parties < 1:
            raise ValueError(
                f"barrier {self.name!r}: expected at least 1 party, found {self.parties}"
            )

    def wait(self, task: Any) -> simpy.Event:
        """Arrive: sleep until `parties` threads have arrived (the last does not sleep)."""
        self._bind(task)
        if len(self.arrived) + 1 < self.parties:
            event: simpy.Event = task.sim.env.event()
            self.arrived.append((task, event))
            return task.sim.request_block(task, event)
        waiting, self.arrived = self.arrived, []
        self.rounds += 1
        for _, event in waiting:
            event.succeed()
        return _done(task)


class SyncRegistry:
    """One simulation's named mutexes, condition variables, barriers and suspend points."""

    def __init__(self) -> None:
        self.mutexes: dict[str, Mutex] = {}
        self.conds: dict[str, CondVar] = {}
        self.barriers: dict[str, Barrier] = {}
        self.suspends: dict[str, tuple[CondVar, Mutex]] = {}

    def mutex(self, name: str) -> Mutex:
        return self.mutexes.setdefault(name, Mutex(name))

    def cond(self, name: str) -> CondVar:
        return self.conds.setdefault(name, CondVar(name))

    def barrier(self, name: str, parties: int | None = None) -> Barrier:
        """The barrier `name`; `parties` is needed the first time."""
        if name not in self.barriers:
            if parties is None:
                raise SyncError(f"barrier {name!r} has no party count (declare it first)")
            self.barriers[name] = Barrier(name, parties)
        return self.barriers[name]

    def _suspend_point(self, name: str) -> tuple[CondVar, Mutex]:
        if name not in self.suspends:
            self.suspends[name] = (CondVar(f"suspend:{name}"), Mutex(f"suspend:{name}"))
        return self.suspends[name]

    def suspend(self, task: Any, name: str) -> Any:
        """rt-app ``suspend``: sleep until a ``resume`` of `name` (a generator to
        ``yield from``: lock, wait, unlock)."""
        cond, mutex = self._suspend_point(name)
        yield mutex.lock(task)
        yield cond.wait(task, mutex)
        yield mutex.unlock(task)

    def resume(self, task: Any, name: str) -> Any:
        """rt-app ``resume``: wake every thread suspended on `name` (lost if none is)."""
        cond, mutex = self._suspend_point(name)
        yield mutex.lock(task)
        yield cond.broadcast(task)
        yield mutex.unlock(task)


def sched_yield(task: Any) -> simpy.Event:
    """``sched_yield(2)`` by `task` (`cfssim.sched.core.Machine.sched_yield`: under EEVDF an
    eligible task forfeits the rest of its request; the legacy ``cfs`` policy's skip buddy is
    not modelled; RT goes to the tail of its priority). A task not running at that instant
    (back from a wait, not yet on a CPU) has nothing to give up."""
    task.sim.machine.sched_yield(task)
    return _done(task)
