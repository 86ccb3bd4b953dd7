"""Why a real run cannot happen: one exception per cause, each with its own exit status."""

from __future__ import annotations


class RealRunError(Exception):
    """A real (kernel) run is impossible or refused; `exit_status` is the CLI exit code."""

    exit_status = 20

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotLinux(RealRunError):
    exit_status = 21


class NotRoot(RealRunError):
    exit_status = 22


class NoCgroupFs(RealRunError):
    """Neither a cgroup v1 hierarchy nor a cgroup2 mount is present."""

    exit_status = 23


class ReadOnlyCgroupFs(RealRunError):
    exit_status = 24


class ControllerMissing(RealRunError):
    """A needed v1 controller is not mounted (and v2 cannot stand in)."""

    exit_status = 25


class V2WithoutControllers(RealRunError):
    """cgroup2 is mounted but cpu/memory are not enabled in the root's cgroup.subtree_control."""

    exit_status = 26


class NoCompiler(RealRunError):
    exit_status = 27


class Refused(RealRunError):
    """The scenario cannot safely or faithfully be run for real (e.g. alloc without a limit)."""

    exit_status = 28


class WorkerFailed(RealRunError):
    exit_status = 29


class TracefsUnavailable(RealRunError):
    """``--trace``: tracefs cannot be mounted, or an instance cannot be made or configured."""

    exit_status = 30


class CleanupIncomplete(RealRunError):
    """The run's cgroups (or workers) could not all be removed; the message lists what is left
    and the command that removes it."""

    exit_status = 31
