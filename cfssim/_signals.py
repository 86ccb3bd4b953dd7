"""SIGINT and SIGTERM: one exception for both, and a way to hold them off during cleanup.

The command line installs `install()` before importing anything heavy: either signal then
raises `Interrupted`, which unwinds every ``finally`` (the real twin removes its cgroups) and
ends the process with status 128 + signal number (130 for SIGINT, 143 for SIGTERM) and one line
on stderr. Inside `deferred()` (the twin's cleanup) the handlers only note the signal; it is
raised once the block is done, so a second Ctrl-C cannot cut the removal short. `guarded` puts
the two together around a run and its cleanup, and `run_all` runs every step of a cleanup even
when an earlier one fails. Only stdlib
modules are imported here: this runs before the rest of cfssim is loaded.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """SIGINT or SIGTERM arrived; `exit_status` is the shell's 128 + signal number.

    A BaseException like KeyboardInterrupt (``except Exception`` lets it through) but not one:
    click would turn a KeyboardInterrupt into "Aborted!" and status 1."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)  # args == (signum,): SimPy re-makes it as type(e)(*e.args)
        self.signum = signum
        self.name = signal.Signals(signum).name

    def __str__(self) -> str:
        return f"stopped by {self.name}"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


_owner_pid: int | None = None  # the process that called install() (forked children are not it)
_deferring = False
_pending: list[int] = []


_received: list[int] = []  # every signal `_raise` raised, in case a library swallowed it


def _raise(signum: int, _frame: FrameType | None) -> None:
    if os.getpid() != _owner_pid:  # a forked worker (sweep's process pool): end quietly
        os._exit(128 + signum)
    _received.append(signum)
    raise Interrupted(signum)


def check() -> None:
    """Raise `Interrupted` again for a signal that arrived but was swallowed (a bare
    ``except:`` in some module being imported when it landed)."""
    if _received:
        raise Interrupted(_received[-1])


def received() -> Interrupted | None:
    """The last signal `_raise` raised, as an `Interrupted` — for an error that a library made
    of it (pydantic wraps one raised while it builds a validator) — or None."""
    return Interrupted(_received[-1]) if _received else None


def _note(signum: int, _frame: FrameType | None) -> None:
    if not _pending:
        with contextlib.suppress(OSError):
            os.write(
                2,
                f"cfssim: {signal.Signals(signum).name} received, finishing the "
                "cleanup first\n".encode(),
            )
    _pending.append(signum)


def install() -> None:
    """Make SIGINT and SIGTERM raise `Interrupted` in this (main) thread; a signal the parent
    made us ignore (``nohup``, a shell's background job) stays ignored."""
    global _owner_pid
    _owner_pid = os.getpid()
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _raise)


def installed() -> bool:
    return _owner_pid == os.getpid() and signal.getsignal(signal.SIGINT) in (_raise, _note)


@contextlib.contextmanager
def raising() -> Iterator[None]:
    """`install()` for the block's duration when the command line has not (library use of
    the real twin: SIGTERM must unwind its cleanup like Ctrl-C)."""
    if installed() or threading.current_thread() is not threading.main_thread():
        yield
        return
    global _owner_pid
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    owner, _owner_pid = _owner_pid, os.getpid()
    for signum in SIGNALS:
        signal.signal(signum, _raise)
    try:
        yield
    finally:
        _owner_pid = owner
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM off during the block (they are only noted, and a line says so);
    the first one noted is delivered again when the block ends, to the handler of before
    (`Interrupted` under `install` or `raising`). The block must be
    bounded in time. Nested blocks defer to the outer one; off the main thread, a no-op."""
    global _deferring
    if _deferring or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _deferring = True
    for signum in SIGNALS:
        signal.signal(signum, _note)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _deferring = False
        if _pending:
            first = _pending[0]
            _pending.clear()
            if sys.exc_info()[0] is None:  # otherwise the exception in flight goes on
                signal.raise_signal(first)  # to the restored handler (`Interrupted` if ours)


def report(interrupted: Interrupted) -> int:
    """Print the one line for an interrupted command; return its exit status. Further signals
    are ignored from here on: the work is over, and Python's finalization would otherwise reset
    the handlers to the default (a late second Ctrl-C would end the process by SIGINT)."""
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            signal.signal(signum, signal.SIG_IGN)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"cfssim: interrupted by {interrupted.name}\n")
        sys.stderr.flush()
    return interrupted.exit_status


@contextlib.contextmanager
def guarded(cleanup: Callable[[], object]) -> Iterator[None]:
    """Run the block under `raising()`, then `cleanup()` under `deferred()` however the block
    ended (returned, raised, or was stopped by SIGINT/SIGTERM): a real run's body and the
    removal of everything it made."""
    with raising():
        try:
            yield
        finally:
            with deferred():
                cleanup()


def run_all(steps: Iterable[Callable[[], object] | None]) -> None:
    """Call every step in order (None: nothing to do) even when one raises; then raise the
    first exception, with the later ones' messages added as notes (a cleanup must not stop at
    its first failure)."""
    errors: list[BaseException] = []
    for step in steps:
        if step is None:
            continue
        try:
            step()
        except BaseException as error:  # re-raised below, once the rest ran
            errors.append(error)
    if errors:
        first = errors[0]
        for later in errors[1:]:
            first.add_note(f"and then: {type(later).__name__}: {later}")
        raise first
