"""`HrTimer`: a one-shot timer on the simulated clock that can be re-armed and cancelled — the
kernel's ``hrtimer`` (kernel/time/hrtimer.c), reduced to what the scheduler uses.

SimPy events cannot be cancelled. An `HrTimer` remembers the one SimPy event that stands for its
current expiry and ignores every other firing, so ``hrtimer_start`` (which replaces a pending
expiry) and ``hrtimer_cancel`` cost O(1): the superseded event still fires, and does nothing.
Times are absolute int ns.
"""

from __future__ import annotations

from collections.abc import Callable

import simpy


class HrTimer:
    """Calls `function` (no arguments) at the expiry it was last started for."""

    __slots__ = ("_env", "_event", "expires", "function")

    def __init__(self, env: simpy.Environment, function: Callable[[], None]) -> None:
        self._env = env
        self.function = function
        self._event: simpy.Event | None = None
        self.expires = -1  # the pending expiry (ns); meaningful while `active`

    @property
    def active(self) -> bool:
        """``hrtimer_active``: an expiry is pending."""
        return self._event is not None

    def start(self, expires: int) -> None:
        """``hrtimer_start`` (HRTIMER_MODE_ABS): fire at `expires` ns — now, if that has passed —
        replacing any pending expiry."""
        env = self._env
        now: int = env._now  # type: ignore[assignment]  # only int delays are scheduled
        if expires < now:
            expires = now
        event = env.timeout(expires - now)
        event.callbacks.append(self._expire)
        self._event = event
        self.expires = expires

    def cancel(self) -> None:
        """``hrtimer_cancel``: forget the pending expiry (its SimPy event fires as a no-op)."""
        self._event = None

    def _expire(self, event: simpy.Event) -> None:
        if event is self._event:
            self._event = None
            self.function()
