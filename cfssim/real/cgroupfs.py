"""The host's cgroup filesystem: detection, the v1 and v2 drivers, cleanup of leftovers.

`detect()` finds which cgroup interface can be used (v1 with cpu, cpuacct, cpuset and memory each
mounted, or v2 with cpu and memory enabled at the root) and raises a `RealRunError` subclass that
names what is missing otherwise. A driver owns ONE fresh ``cfssim-<pid>-<n>`` directory per
hierarchy, mirrors the scenario's cgroup tree below it (scenario ``/`` is that directory itself),
writes the files translated from a `CgroupConfig`, attaches threads, reads the kernel's figures and
removes everything bottom-up. Nothing outside its own directory is ever written.

Figures are returned in the `Result` shape, v2 values renamed to their v1 keys (``usage_usec`` →
``cpuacct.usage`` ns, ``memory.current`` → ``memory.usage_in_bytes``, ``memory.peak`` →
``memory.max_usage_in_bytes``, ``memory.events`` max → ``memory.failcnt``) so both line up.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ..cgroup.files import format_cpulist, parent_path, path_depth, path_names, shares_to_weight
from . import procfs
from .errors import (
    CleanupIncomplete,
    ControllerMissing,
    NoCgroupFs,
    NotLinux,
    NotRoot,
    ReadOnlyCgroupFs,
    RealRunError,
    V2WithoutControllers,
)

PREFIX = "cfssim-"
STATS_PREFIX = "cfssim-stats-"
V1_CONTROLLERS = ("cpu", "cpuacct", "cpuset", "memory")
V2_CONTROLLERS = ("cpu", "memory")
_run_counter = itertools.count()


class CgroupSettings(Protocol):
    """What a driver needs from `cfssim.cgroup.files.CgroupConfig` (int ns, int bytes)."""

    shares: int
    idle: bool
    period_ns: int
    quota_ns: int | None
    burst_ns: int
    cpus: frozenset[int] | None
    memory_limit: int | None
    memory_high: int | None
    oom_kill_disable: bool
    oom_group: bool


# ---- detection --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """Where the usable hierarchies are: ``version`` 1 maps each controller to its mount."""

    version: int
    mounts: dict[str, Path]

    @property
    def hierarchies(self) -> list[Path]:
        """Distinct mount points (co-mounted controllers share one)."""
        return sorted(set(self.mounts.values()))


@dataclass(frozen=True)
class Mount:
    fstype: str
    point: Path
    options: frozenset[str]


def read_mounts(mounts_file: str = "/proc/self/mounts") -> list[Mount]:
    """The cgroup and cgroup2 entries of a mounts table."""
    found = []
    for line in Path(mounts_file).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            point = Path(parts[1].replace("\\040", " "))
            found.append(Mount(parts[2], point, frozenset(parts[3].split(","))))
    return found


def detect(
    mounts: list[Mount] | None = None,
    *,
    platform: str = sys.platform,
    euid: int | None = None,
) -> Layout:
    """The cgroup layout a real run can use, or a `RealRunError` naming what is missing.

    v1 is preferred when cpu, cpuacct, cpuset and memory are all mounted read-write; otherwise
    cgroup2 when its root enables cpu and memory in ``cgroup.subtree_control`` (we may not
    write the root to enable them ourselves).
    """
    if not platform.startswith("linux"):
        raise NotLinux(f"cfssim measure needs Linux cgroups; this is {platform!r}")
    if (os.geteuid() if euid is None else euid) != 0:
        raise NotRoot("cfssim measure needs root to create cgroups and move tasks (run as root)")
    mounts = read_mounts() if mounts is None else mounts
    v1 = {c: m for m in mounts if m.fstype == "cgroup" for c in V1_CONTROLLERS if c in m.options}
    v2 = next((m for m in mounts if m.fstype == "cgroup2"), None)
    if not v1 and v2 is None:
        raise NoCgroupFs("no cgroup filesystem is mounted (neither cgroup v1 nor cgroup2)")
    if len(v1) == len(V1_CONTROLLERS):
        read_only = sorted(c for c, m in v1.items() if "ro" in m.options)
        if read_only:
            raise ReadOnlyCgroupFs(
                "cgroup v1 hierarchies are mounted read-only for: " + ", ".join(read_only)
            )
        return Layout(1, {c: m.point for c, m in v1.items()})
    missing_v1 = [c for c in V1_CONTROLLERS if c not in v1]
    if v2 is not None:
        if "ro" in v2.options:
            raise ReadOnlyCgroupFs(f"cgroup2 at {v2.point} is mounted read-only")
        enabled = set(_read_words(v2.point / "cgroup.subtree_control"))
        lacking = [c for c in V2_CONTROLLERS if c not in enabled]
        if not lacking:
            return Layout(2, {c: v2.point for c in (*V2_CONTROLLERS, "cpuset")})
        if not v1:
            raise V2WithoutControllers(
                f"cgroup2 at {v2.point} does not enable {', '.join(lacking)} in its root "
                f"cgroup.subtree_control (found {sorted(enabled) or 'none'}), and no cgroup v1 "
                "hierarchy is mounted"
            )
    raise ControllerMissing(
        f"cgroup v1 controller(s) not mounted: {', '.join(missing_v1)}"
        + ("" if v2 is None else f"; cgroup2 at {v2.point} lacks enabled cpu/memory controllers")
    )


def _read_words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


# ---- kernel file parsing (shared by both drivers) --------------------------------------------
def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.oom_control, memory.events) → {key: int}."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def read_text(path: Path) -> str:
    return path.read_text()


def _ints(path: Path) -> list[int]:
    return [int(w) for w in path.read_text().split()]


def read_int(path: Path) -> int:
    word = path.read_text().split()[0]
    return -1 if word == "max" else int(word)


# ---- the drivers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One cheap reading of a cgroup: cumulative CPU usage and bandwidth counters, memory use."""

    usage_ns: int
    nr_periods: int
    nr_throttled: int
    throttled_ns: int
    memory_bytes: int


@dataclass
class Driver:
    """Common mechanics of both drivers: the owned directories, creation, removal.

    Subclasses translate `CgroupSettings` into files (`config_files`), attach tasks and read
    figures. ``warnings`` collects settings the interface cannot express.
    """

    layout: Layout
    run_name: str = field(default_factory=lambda: f"{PREFIX}{owner_tag()}-{next(_run_counter)}")
    created: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sampled: dict[tuple[str, str, str], int] = field(default_factory=dict, repr=False)

    # which hierarchy holds a controller's files, and the run's directory in it
    def base(self, controller: str) -> Path:
        return self.layout.mounts[controller] / self.run_name

    def real(self, controller: str, path: str) -> Path:
        """The directory mirroring scenario cgroup `path` in `controller`'s hierarchy."""
        return self.base(controller).joinpath(*path_names(path))

    def _write(self, file: Path, value: str) -> None:
        if self.run_name not in file.parts:  # the one rule: never write outside our subtree
            raise AssertionError(f"refusing to write outside {self.run_name}: {file}")
        try:
            file.write_text(value)
        except OSError as exc:
            raise RealRunError(f"writing {value!r} to {file} failed: {exc.strerror}") from exc

    def create(self, configs: Mapping[str, CgroupSettings]) -> None:
        """Make the run's directories (parents first) and write every cgroup's settings."""
        for hierarchy in self.layout.hierarchies:
            for path in sorted(configs, key=path_depth):
                directory = hierarchy.joinpath(self.run_name, *path_names(path))
                directory.mkdir()
                self.created.append(directory)
        for path in sorted(configs, key=path_depth):
            self.prepare(path)
            self.write_settings(path, None, configs[path])

    def write_settings(self, path: str, old: CgroupSettings | None, new: CgroupSettings) -> None:
        """Write the files whose value differs between `old` (None: freshly made) and `new`."""
        before = dict(self.config_files(old)) if old is not None else {}
        pending = [
            (self.real(controller, path) / file, value)
            for (controller, file), value in self.config_files(new)
            if before.get((controller, file)) != value
        ]
        # Some kernel checks depend on order (a burst above the current quota, a period change
        # against the quota…): retry what failed once the other writes have landed.
        for attempt in range(2):
            failed = []
            for file, value in pending:
                try:
                    self._write(file, value)
                except RealRunError:
                    if attempt:
                        raise
                    failed.append((file, value))
            pending = failed

    def prepare(self, path: str) -> None:
        """Interface-specific set-up of a fresh directory (cpuset inheritance, controllers)."""

    def config_files(self, config: CgroupSettings) -> list[tuple[tuple[str, str], str]]:
        raise NotImplementedError

    def attach(self, path: str, pid: int, tid: int, skip: str | None = None) -> None:
        """Move thread `tid` of process `pid` into scenario cgroup `path` (in every hierarchy but
        the one of controller `skip`)."""
        raise NotImplementedError

    def figures(self, path: str) -> dict[str, Any]:
        raise NotImplementedError

    def sample(self, path: str) -> Sample:
        raise NotImplementedError

    def read_sampled(self, controller: str, path: str, name: str) -> str:
        """Read file `name` of scenario cgroup `path` (in `controller`'s hierarchy) through a
        descriptor kept open for the run: ``pread`` at 0 makes kernfs render it afresh for
        ~1 µs, against 20–100 µs for an open and a close — the sampler is the twin's own
        background load, so it must stay light."""
        key = (controller, path, name)
        fd = self.sampled.get(key)
        if fd is None:
            file = self.real(controller, path) / name
            fd = self.sampled[key] = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
        return os.pread(fd, 65536, 0).decode()

    def close_sampled(self) -> None:
        """Close the sampled files' descriptors (each at most once, even if interrupted)."""
        while self.sampled:
            _, fd = self.sampled.popitem()
            with contextlib.suppress(OSError):
                os.close(fd)

    def oom_kills(self, path: str) -> tuple[int, int]:
        """(oom_kill, oom_group_kill) counters of the cgroup's memory controller."""
        raise NotImplementedError

    def remove(self) -> None:
        """Kill every task in the run's directories and remove them bottom-up (`remove_run`:
        SIGINT/SIGTERM held off, bounded in time, `CleanupIncomplete` if anything is left)."""
        try:
            self.close_sampled()
        finally:
            remove_run(hierarchy / self.run_name for hierarchy in self.layout.hierarchies)
            self.created.clear()


class V1Driver(Driver):
    """cgroup v1: one hierarchy per controller; threads are attached per tid (``tasks``)."""

    def prepare(self, path: str) -> None:
        cpuset = self.real("cpuset", path)
        for file in ("cpuset.mems", "cpuset.cpus"):  # a fresh v1 cpuset starts empty
            self._write(cpuset / file, (cpuset.parent / file).read_text().strip() or "\n")

    def config_files(self, config: CgroupSettings) -> list[tuple[tuple[str, str], str]]:
        files: list[tuple[tuple[str, str], str]] = [
            (("cpu", "cpu.shares"), str(config.shares)),
            (("cpu", "cpu.idle"), str(int(config.idle))),
            (("cpu", "cpu.cfs_period_us"), str(config.period_ns // 1000)),
            (("cpu", "cpu.cfs_quota_us"), _us_or(config.quota_ns, "-1")),
            (("cpu", "cpu.cfs_burst_us"), str(config.burst_ns // 1000)),
            (("memory", "memory.limit_in_bytes"), _or(config.memory_limit, "-1")),
            (("memory", "memory.oom_control"), str(int(config.oom_kill_disable))),
        ]
        if config.cpus is not None:
            files.append((("cpuset", "cpuset.cpus"), format_cpulist(config.cpus)))
        if config.memory_high is not None:
            self._warn("memory.high has no cgroup v1 file; it is not applied")
        if config.oom_group:
            self._warn("memory.oom.group has no cgroup v1 file; it is not applied")
        return files

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def attach(self, path: str, pid: int, tid: int, skip: str | None = None) -> None:
        for hierarchy in self.layout.hierarchies:
            if skip is None or hierarchy != self.layout.mounts[skip]:
                self._write(hierarchy.joinpath(self.run_name, *path_names(path), "tasks"), str(tid))

    def figures(self, path: str) -> dict[str, Any]:
        cpu, acct, mem = (self.real(c, path) for c in ("cpu", "cpuacct", "memory"))
        stat = parse_flat_keyed(read_text(cpu / "cpu.stat"))
        oom = parse_flat_keyed(read_text(mem / "memory.oom_control"))
        return {
            "cpu.stat": {k: stat.get(k, 0) for k in _CPU_STAT_KEYS},
            "cpuacct.usage": read_int(acct / "cpuacct.usage"),
            "cpuacct.usage_percpu": _ints(acct / "cpuacct.usage_percpu"),
            "memory.usage_in_bytes": read_int(mem / "memory.usage_in_bytes"),
            "memory.max_usage_in_bytes": read_int(mem / "memory.max_usage_in_bytes"),
            "memory.limit_in_bytes": read_int(mem / "memory.limit_in_bytes"),
            "memory.failcnt": read_int(mem / "memory.failcnt"),
            "memory.oom_control": {k: oom.get(k, 0) for k in _OOM_KEYS},
        }

    def sample(self, path: str) -> Sample:
        stat = parse_flat_keyed(self.read_sampled("cpu", path, "cpu.stat"))
        return Sample(
            int(self.read_sampled("cpuacct", path, "cpuacct.usage")),
            stat.get("nr_periods", 0),
            stat.get("nr_throttled", 0),
            stat.get("throttled_time", 0),
            int(self.read_sampled("memory", path, "memory.usage_in_bytes")),
        )

    def oom_kills(self, path: str) -> tuple[int, int]:
        oom = parse_flat_keyed(read_text(self.real("memory", path) / "memory.oom_control"))
        return oom.get("oom_kill", 0), 0


class V2Driver(Driver):
    """cgroup v2: one unified hierarchy; controllers enabled in every ``cgroup.subtree_control``.

    v2 forbids tasks in a cgroup whose controllers are enabled for children, and moves whole
    processes (per-thread placement needs threaded mode): processes are attached with
    ``cgroup.procs`` and a scenario cgroup that has children keeps its own processes in a
    ``_tasks`` leaf.
    """

    LEAF = "_tasks"
    children: set[str]

    def create(self, configs: Mapping[str, CgroupSettings]) -> None:
        self.children = {p for p in configs for q in configs if q != p and parent_path(q) == p}
        super().create(configs)

    def prepare(self, path: str) -> None:
        directory = self.real("cpu", path)
        if path in self.children or path == "/":
            enable = " ".join(f"+{c}" for c in (*V2_CONTROLLERS, "cpuset") if self._available(c))
            self._write(directory / "cgroup.subtree_control", enable)
            (directory / self.LEAF).mkdir()
            self.created.append(directory / self.LEAF)

    def _available(self, controller: str) -> bool:
        return controller in _read_words(self.base("cpu") / "cgroup.controllers")

    def config_files(self, config: CgroupSettings) -> list[tuple[tuple[str, str], str]]:
        quota = "max" if config.quota_ns is None else str(config.quota_ns // 1000)
        files = [
            (("cpu", "cpu.weight"), str(shares_to_weight(config.shares))),
            (("cpu", "cpu.max"), f"{quota} {config.period_ns // 1000}"),
            (("cpu", "cpu.max.burst"), str(config.burst_ns // 1000)),
            (("memory", "memory.max"), _or(config.memory_limit, "max")),
            (("memory", "memory.high"), _or(config.memory_high, "max")),
            (("memory", "memory.oom.group"), str(int(config.oom_group))),
        ]
        if config.idle:
            files.append((("cpu", "cpu.idle"), "1"))
        if config.cpus is not None:
            files.append((("cpuset", "cpuset.cpus"), format_cpulist(config.cpus)))
        if config.oom_kill_disable:
            self.warnings.append("oom_kill_disable has no cgroup v2 file; it is not applied")
        return files

    def task_dir(self, path: str) -> Path:
        directory = self.real("cpu", path)
        return directory / self.LEAF if (path in self.children or path == "/") else directory

    def attach(self, path: str, pid: int, tid: int, skip: str | None = None) -> None:
        if skip is not None:
            raise RealRunError("cgroup v2 has one hierarchy: a controller cannot be skipped")
        self._write(self.task_dir(path) / "cgroup.procs", str(pid))

    def figures(self, path: str) -> dict[str, Any]:
        directory = self.real("cpu", path)
        stat = parse_flat_keyed(read_text(directory / "cpu.stat"))
        events = parse_flat_keyed(read_text(directory / "memory.events"))
        return {
            "cpu.stat": {
                "nr_periods": stat.get("nr_periods", 0),
                "nr_throttled": stat.get("nr_throttled", 0),
                "throttled_time": stat.get("throttled_usec", 0) * 1000,
                "nr_bursts": stat.get("nr_bursts", 0),
                "burst_time": stat.get("burst_usec", 0) * 1000,
            },
            "cpuacct.usage": stat.get("usage_usec", 0) * 1000,
            "memory.usage_in_bytes": read_int(directory / "memory.current"),
            "memory.max_usage_in_bytes": _read_int_or(directory / "memory.peak", 0),
            "memory.limit_in_bytes": read_int(directory / "memory.max"),
            "memory.failcnt": events.get("max", 0),
            "memory.oom_control": {
                "oom_kill_disable": 0,
                "under_oom": 0,
                "oom_kill": events.get("oom_kill", 0),
            },
            "memory.events": events,
        }

    def sample(self, path: str) -> Sample:
        stat = parse_flat_keyed(self.read_sampled("cpu", path, "cpu.stat"))
        return Sample(
            stat.get("usage_usec", 0) * 1000,
            stat.get("nr_periods", 0),
            stat.get("nr_throttled", 0),
            stat.get("throttled_usec", 0) * 1000,
            int(self.read_sampled("memory", path, "memory.current")),
        )

    def oom_kills(self, path: str) -> tuple[int, int]:
        events = parse_flat_keyed(read_text(self.real("memory", path) / "memory.events"))
        return events.get("oom_kill", 0), events.get("oom_group_kill", 0)


_CPU_STAT_KEYS = ("nr_periods", "nr_throttled", "throttled_time", "nr_bursts", "burst_time")
_OOM_KEYS = ("oom_kill_disable", "under_oom", "oom_kill")


def make_driver(layout: Layout) -> Driver:
    return V1Driver(layout) if layout.version == 1 else V2Driver(layout)


def _us_or(value_ns: int | None, unlimited: str) -> str:
    return unlimited if value_ns is None else str(value_ns // 1000)


def _or(value: int | None, unlimited: str) -> str:
    return unlimited if value is None else str(value)


def _read_int_or(path: Path, default: int) -> int:
    try:
        return read_int(path)
    except OSError:
        return default


# ---- removal and leftovers --------------------------------------------------------------------
#: How long removing a run's directories may take in all, s (workers killed, rmdir retried).
REMOVE_TIMEOUT_S = 5.0
#: The command that removes what a run left (printed when its cleanup could not).
CLEANUP_COMMAND = "cfssim measure --cleanup"


def _walk_bottom_up(top: Path) -> Iterator[Path]:
    for directory, _subdirs, _files in os.walk(top, topdown=False):
        yield Path(directory)


def tasks_in(top: Path) -> set[int]:
    """Every thread id found anywhere under `top` (v1 ``tasks`` or v2 ``cgroup.threads``)."""
    found: set[int] = set()
    for directory in _walk_bottom_up(top):
        for name in ("tasks", "cgroup.threads"):
            with contextlib.suppress(OSError):
                found.update(int(w) for w in (directory / name).read_text().split())
    return found


def remove_tree(top: Path, timeout_s: float = REMOVE_TIMEOUT_S) -> None:
    """SIGKILL every task under `top`, wait for them to leave, then rmdir bottom-up (retrying
    EBUSY until `timeout_s` has passed; then `RealRunError`)."""
    if not top.is_dir():
        return
    deadline = time.monotonic() + timeout_s
    _lift_cpu_limits(top)
    while (tids := tasks_in(top)) and time.monotonic() < deadline:
        for tid in tids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(tid, signal.SIGKILL)
        time.sleep(0.01)
    for directory in _walk_bottom_up(top):
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise RealRunError(f"cannot remove {directory}: {exc.strerror}") from exc
                time.sleep(0.01)


def _lift_cpu_limits(top: Path) -> None:
    """Unlimited CPU bandwidth throughout `top` (parents first), so killed tasks of a
    throttled group exit at once instead of a slice per period (``cpu.cfs_quota_us`` -1,
    ``cpu.max`` max; a file a hierarchy lacks is skipped)."""
    for directory in reversed(list(_walk_bottom_up(top))):
        for name, unlimited in (("cpu.cfs_quota_us", "-1"), ("cpu.max", "max")):
            file = directory / name
            if file.is_file():  # never create one (a directory that is no cgroup)
                with contextlib.suppress(OSError):
                    file.write_text(unlimited)


def remove_run(tops: Iterable[Path], timeout_s: float = REMOVE_TIMEOUT_S) -> None:
    """`remove_tree` each of a run's top directories (one per hierarchy) within `timeout_s` in
    all, SIGINT and SIGTERM held off meanwhile; `CleanupIncomplete` lists whatever is left and
    the command that removes it."""
    from .. import _signals

    deadline = time.monotonic() + timeout_s
    left: list[str] = []
    with _signals.deferred():
        for top in tops:
            try:
                remove_tree(top, max(0.5, deadline - time.monotonic()))
            except (RealRunError, OSError) as exc:
                reason = exc.message if isinstance(exc, RealRunError) else str(exc)
                left.append(f"{top} ({reason}; tasks left: {len(tasks_in(top))})")
    if left:
        raise CleanupIncomplete(
            "the run's cleanup did not finish; left behind: "
            + "; ".join(left)
            + f". Remove it with: {CLEANUP_COMMAND}"
        )


# ---- leftovers of runs that died: cgroups, tracefs instances, stat directories ------------------
def owner_tag(pid: int | None = None) -> str:
    """``<pid>.<starttime>``: names a run's directories after the process that made them, in a
    way that survives PID reuse (`procfs.start_time`)."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}.{procfs.start_time(pid)}"


def make_stats_dir() -> Path:
    """A fresh private temporary directory for the workers' end-of-thread figures, named
    ``cfssim-stats-<pid>.<starttime>-*`` so that `cleanup_leftovers` can tell whose it is."""
    return Path(tempfile.mkdtemp(prefix=f"{STATS_PREFIX}{owner_tag()}-"))


@dataclass(frozen=True)
class Leftover:
    """A directory a run made: what `cleanup_leftovers` did with it ("removed", "kept": its
    run still goes on, "failed": it could not be removed), and why."""

    path: Path
    state: Literal["removed", "kept", "failed"]
    why: str


def owner_of(name: str, prefix: str) -> tuple[int, int | None] | None:
    """(pid, start time or None for names of older versions) from ``<prefix><pid>[.<start>]-…``,
    None if `name` does not carry them."""
    head = name[len(prefix) :].split("-", 1)[0]
    pid, _, start = head.partition(".")
    if not pid.isdigit() or (start and not start.isdigit()):
        return None
    return int(pid), (int(start) if start else None)


def owner_running(owner: tuple[int, int | None]) -> str | None:
    """None if the run's owner is gone, else why it counts as still running. A PID reused by
    another program is told apart by its start time (names without one: by a command line that
    mentions python or cfssim)."""
    pid, start = owner
    now = procfs.start_time(pid)
    if now is None:
        return None
    if start is not None:
        return f"PID {pid} is still running" if now == start else None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if pid != os.getpid() and (b"python" in cmdline or b"cfssim" in cmdline):
        return f"PID {pid} is still running {procfs.comm(pid) or 'a program'}"
    return None


def _leftover_note(owner: tuple[int, int | None]) -> str:
    pid = owner[0]
    name = procfs.comm(pid)
    if name is None:
        return f"leftover of PID {pid} (exited)"
    return f"leftover of PID {pid} (now reused by {name})"


def _ours(path: Path) -> bool:
    """Whether `path` is a real directory (not a symlink) owned by our effective uid."""
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()


def cleanup_leftovers(
    layout: Layout | None = None, *, include_live: bool = False, temp_dir: Path | None = None
) -> list[Leftover]:
    """Remove what runs that died (SIGKILL, a crash) left: their ``cfssim-*`` directories in
    every hierarchy, their tracefs instances (``--trace``) and their ``cfssim-stats-*``
    temporary directories (in `temp_dir`, default the system's); return each with what was
    done and why.

    Only our own user's directories are touched. A directory whose owning process still runs
    is left alone (reported) unless `include_live`; one whose PID now names another program is
    a leftover ("leftover of PID N (now reused by <comm>)").
    """
    from .tracefs import leftover_instances, remove_instance

    layout = detect() if layout is None else layout
    temp_dir = Path(tempfile.gettempdir()) if temp_dir is None else temp_dir
    found: list[Leftover] = []

    def consider(path: Path, prefix: str, remove: Callable[[Path], None]) -> None:
        owner = owner_of(path.name, prefix)
        if owner is None:  # made by a cfssim before names carried their owner
            found.append(
                Leftover(
                    path,
                    "kept",
                    "no owner PID in its name (an older cfssim "
                    "made it): remove it by hand if no cfssim run is going on",
                )
            )
            return
        running = owner_running(owner)
        if running is not None and not include_live:
            found.append(Leftover(path, "kept", running))
            return
        note = "removed although running" if running else _leftover_note(owner)
        try:
            remove(path)
        except (RealRunError, OSError) as exc:
            reason = exc.message if isinstance(exc, RealRunError) else str(exc)
            found.append(Leftover(path, "failed", f"{note}; not removed: {reason}"))
            return
        found.append(Leftover(path, "removed", note))

    for hierarchy in layout.hierarchies:
        for top in sorted(hierarchy.glob(PREFIX + "*")):
            if _ours(top):
                consider(top, PREFIX, remove_tree)
    for instance in leftover_instances(PREFIX):
        if _ours(instance):
            consider(instance, PREFIX, remove_instance)
    for stats in sorted(temp_dir.glob(STATS_PREFIX + "*")):
        if _ours(stats):
            consider(stats, STATS_PREFIX, shutil.rmtree)
    return found
