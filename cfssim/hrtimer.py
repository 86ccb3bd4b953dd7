"""`HrTimer`: a one-shot timer on the simulated clock that can be re-armed and cancelled — the
kernel's ``hrtimer`` (kernel/time/hrtimer.c), reduced to what the scheduler uses — and the
`Calendar` that holds every machine timer.

SimPy events cannot be cancelled, and each costs an object, a heap entry and a step of the
engine. With the calendar (the fast path), timers live in a heap owned by the machine, ordered
by ``(expires, priority, sequence)`` exactly like SimPy's own queue: each ``hrtimer_start``
draws its sequence number from SimPy's event counter, as the timeout it replaces would have, so
a timer keeps its place among SimPy events at the same instant. One proxy entry in SimPy's
queue, carrying the earliest timer's key, wakes the calendar; it then runs, in key order, every
timer that precedes SimPy's next event — advancing the clock itself in between, so a CPU's run
of context switches between two external events costs no SimPy step at all. Events the timers'
functions schedule (a behaviour resumed by ``succeed``) go to SimPy's queue and bound the
drain, so the merged order is the one SimPy alone would have produced. ``hrtimer_start`` over
a pending expiry and ``hrtimer_cancel`` cost O(1): the superseded heap entry is skipped.

Without the calendar (``fast=False``, the plain path kept for comparison), each start schedules
one SimPy timeout. Times are absolute int ns.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappop, heappush

import simpy

NORMAL = 1  # SimPy's priority of timeouts and succeeded events (simpy.events.NORMAL)


def scheduled_events(env: simpy.Environment) -> int:
    """SimPy's running event id: how many events (and calendar timer starts, which draw from
    the same counter) were scheduled so far."""
    return int(repr(env._eid)[6:-1])  # itertools.count(N)


class Calendar:
    """The machine's timer heap, drained inside SimPy (`fast`), or plain SimPy timeouts."""

    __slots__ = (
        "_callbacks",
        "_eid",
        "_proxy",
        "_queue",
        "draining",
        "env",
        "fast",
        "heap",
        "proxies",
    )

    def __init__(self, env: simpy.Environment, fast: bool = True) -> None:
        self.env = env
        self.fast = fast
        self.heap: list[tuple[int, int, int, HrTimer]] = []  # (expires, NORMAL, seq, timer)
        self.proxies: list[tuple[int, int]] = []  # keys of the proxies in SimPy's queue
        self.draining = False
        self._queue: list[tuple[int, int, int, simpy.Event]] = env._queue  # type: ignore[assignment]
        self._eid = env._eid
        # the proxy: one triggered event, queued once per wake-up key; SimPy clears its
        # callbacks as it fires it, `drain` puts them back
        self._proxy = simpy.Event(env)
        self._proxy._ok = True
        self._proxy._value = None
        self._callbacks = self._proxy.callbacks = [self.drain]

    def add(self, timer: HrTimer, expires: int) -> int:
        """``enqueue_hrtimer``: queue `timer` at `expires` ns, keyed as SimPy would key it;
        returns its sequence number."""
        seq: int = next(self._eid)
        heap = self.heap
        heappush(heap, (expires, NORMAL, seq, timer))
        if not self.draining and heap[0][2] == seq:  # the earliest: SimPy must wake for it
            self._wake(expires, seq)
        return seq

    def _wake(self, expires: int, seq: int) -> None:
        """Make sure SimPy wakes the calendar no later than key (`expires`, `seq`)."""
        proxies = self.proxies
        if proxies and proxies[0] <= (expires, seq):
            return
        heappush(self._queue, (expires, NORMAL, seq, self._proxy))
        heappush(proxies, (expires, seq))

    def drain(self, proxy: simpy.Event) -> None:
        """A proxy fired: run every timer whose key precedes SimPy's next event."""
        proxy.callbacks = self._callbacks  # SimPy cleared them; more of its keys may be queued
        heappop(self.proxies)  # SimPy pops in key order: the fired proxy is the earliest
        heap = self.heap
        queue = self._queue
        env = self.env
        self.draining = True
        try:
            while heap:
                entry = heap[0]
                # SimPy's next event first if its (time, priority, seq) is smaller; a proxy
                # waking this entry has its key and, the longer tuple, compares greater
                if queue and queue[0] < entry[:3]:
                    break
                heappop(heap)
                expires, _, seq, timer = entry
                if timer._seq != seq:  # superseded or cancelled
                    continue
                timer._seq = -1
                env._now = expires
                timer.function()
        finally:
            self.draining = False
        while heap:  # superseded entries go; the earliest live one gets a wake-up
            entry = heap[0]
            if entry[3]._seq == entry[2]:
                self._wake(entry[0], entry[2])
                break
            heappop(heap)


class HrTimer:
    """Calls `function` (no arguments) at the expiry it was last started for."""

    __slots__ = ("_calendar", "_env", "_event", "_seq", "expires", "function")

    def __init__(self, calendar: Calendar, function: Callable[[], None]) -> None:
        self._calendar = calendar
        self._env = calendar.env
        self.function = function
        self._event: simpy.Event | None = None  # plain path: the SimPy event of the expiry
        self._seq = -1  # fast path: the calendar entry of the expiry (-1: none)
        self.expires = -1  # the pending expiry (ns); meaningful while `active`

    @property
    def active(self) -> bool:
        """``hrtimer_active``: an expiry is pending."""
        return self._seq >= 0 or self._event is not None

    def start(self, expires: int) -> None:
        """``hrtimer_start`` (HRTIMER_MODE_ABS): fire at `expires` ns — now, if that has passed —
        replacing any pending expiry."""
        env = self._env
        now: int = env._now  # type: ignore[assignment]  # only int delays are scheduled
        if expires < now:
            expires = now
        self.expires = expires
        calendar = self._calendar
        if calendar.fast:
            self._seq = calendar.add(self, expires)
            return
        event = env.timeout(expires - now)
        event.callbacks.append(self._expire)
        self._event = event

    def cancel(self) -> None:
        """``hrtimer_cancel``: forget the pending expiry (its entry or event fires as a no-op)."""
        self._event = None
        self._seq = -1

    def _expire(self, event: simpy.Event) -> None:
        if event is self._event:
            self._event = None
            self.function()
