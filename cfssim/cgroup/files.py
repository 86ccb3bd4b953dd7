"""cgroup files: what writing and reading each cpu, cpuset and memory file does, v1 and v2.

One `CgroupConfig` holds a group's settings in kernel units (int ns, int bytes); `apply_write`
changes it the way a write to the named file changes the kernel's ``task_group``/``mem_cgroup``
(ranges, clamps, rounding, EINVAL cases — probed on the 6.18 development machine), and
`read_file` renders the kernel's text for that file. Values are ints or strings as written to
the file; time files also take duration strings (``"50ms"``), size files also take ``"64MiB"``.

Mirrors kernel/sched/core.c (``cpu_shares_write_u64``, ``cpu_weight_write_u64``,
``cpu_idle_write_s64``, ``tg_set_cfs_bandwidth``, ``cpu_period_quota_parse``,
``tg_cfs_schedulable_down``), kernel/cgroup/cpuset.c (``cpulist_parse``), cpuset-v1.c
(``cpuset1_validate_change``) and mm/memcontrol*.c
(``page_counter_memparse``, ``mem_cgroup_write``, ``mem_cgroup_oom_control_write``).
Writes to the root cgroup's files are rejected (EINVAL), as the kernel does.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from .._errors import describe, did_you_mean
from ..sched.weights import NICE_0_LOAD, PRIO_TO_WEIGHT, WEIGHT_IDLEPRIO
from ..units import NSEC_PER_USEC, parse_duration, parse_size

Interface = Literal["v1", "v2"]
FileValue = int | str | list[int]

PAGE_SIZE = 4096
MIN_SHARES = 2
MAX_SHARES = 1 << 18
CGROUP_WEIGHT_MIN = 1
CGROUP_WEIGHT_DFL = 100
CGROUP_WEIGHT_MAX = 10000
DEFAULT_PERIOD_NS = 100_000_000
MIN_CFS_QUOTA_PERIOD_NS = 1_000_000  # min_cfs_quota_period: 1 ms
MAX_CFS_QUOTA_PERIOD_NS = 1_000_000_000  # max_cfs_quota_period: 1 s
BW_SHIFT = 20
MAX_BW_US = (1 << (64 - BW_SHIFT)) - 1
MAX_CFS_RUNTIME_NS = MAX_BW_US * NSEC_PER_USEC  # max_cfs_runtime, ~203 days
PAGE_COUNTER_MAX_PAGES = (2**63 - 1) // PAGE_SIZE
#: what ``memory.limit_in_bytes`` reads when unlimited (PAGE_COUNTER_MAX pages)
UNLIMITED_MEMORY_BYTES = PAGE_COUNTER_MAX_PAGES * PAGE_SIZE
MAX_SIZE_BYTES = 2**63 - 1
ROOT = "/"


#: Files whose every write is a ``tg_set_cfs_bandwidth`` call: refill the pool, restart the
#: period timer, unthrottle.
BANDWIDTH_FILES = frozenset(
    {"cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us", "cpu.max", "cpu.max.burst"}
)


class CgroupFileError(ValueError):
    """A write the kernel would refuse; ``str()`` is ``"file: expected …, found …"``."""

    def __init__(self, file: str, expected: str, found: str) -> None:
        self.file, self.expected, self.found = file, expected, found
        super().__init__(f"{file}: expected {expected}, found {found}")


class HierarchyError(CgroupFileError):
    """A child's settings conflict with its parent's (v1 quota ratio, v1 cpuset subset)."""

    def __init__(self, path: str, parent: str, file: str, expected: str, found: str) -> None:
        self.path, self.parent = path, parent
        super().__init__(file, expected, found)


@dataclass(frozen=True)
class CgroupConfig:
    """A group's settings in kernel units. ``quota_ns``/``memory_limit`` None = unlimited."""

    shares: int = NICE_0_LOAD
    idle: bool = False
    period_ns: int = DEFAULT_PERIOD_NS
    quota_ns: int | None = None
    burst_ns: int = 0
    cpus: frozenset[int] | None = None
    memory_limit: int | None = None
    memory_high: int | None = None
    oom_kill_disable: bool = False
    oom_group: bool = False
    interface: Interface = "v1"


# ---- value parsing ----------------------------------------------------------------------------
def _integer(file: str, value: FileValue, expected: str) -> int:
    """An int as ``kstrtoll`` reads it (an int, or a decimal string)."""
    if isinstance(value, bool):
        raise CgroupFileError(file, expected, describe(value))
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise CgroupFileError(file, expected, describe(value))


def _flag(file: str, value: FileValue) -> bool:
    number = _integer(file, value, "0 or 1")
    if number not in (0, 1):
        raise CgroupFileError(file, "0 or 1", describe(value))
    return bool(number)


def _usec(file: str, value: FileValue, expected: str) -> int:
    """Microseconds: a bare int (the file's unit) or a duration string such as ``"50ms"``."""
    if isinstance(value, str) and not re.fullmatch(r"\s*[-+]?\d+\s*", value):
        try:
            value_ns = parse_duration(value)
        except ValueError:
            raise CgroupFileError(file, expected, describe(value)) from None
        if value_ns % NSEC_PER_USEC:
            raise CgroupFileError(file, f"{expected} in whole microseconds", describe(value))
        return value_ns // NSEC_PER_USEC
    return _integer(file, value, expected)


_MEMPARSE = re.compile(r"\s*(\d+)\s*([kKmMgGtTpPeE]?)\s*")


def _memory_bytes(file: str, value: FileValue, unlimited: str) -> int | None:
    """``page_counter_memparse``: bytes rounded DOWN to pages; `unlimited` (``-1``/``max``) → None.

    Accepts an int, the kernel's ``memparse`` suffixes (``100M`` = 100 MiB) and cfssim sizes
    (``"64MiB"``, ``"100MB"``). Values at or beyond PAGE_COUNTER_MAX pages mean unlimited.
    """
    expected = f"a size such as 67108864, '64M' or '64MiB', or {unlimited} for unlimited"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise CgroupFileError(file, expected, describe(value))
    if str(value).strip() == unlimited:
        return None
    size: int | None = None
    if isinstance(value, int):
        size = value
    elif match := _MEMPARSE.fullmatch(value):
        size = int(match.group(1)) << (10 * " kmgtpe".index(match.group(2).lower() or " "))
    else:
        try:
            size = parse_size(value)
        except ValueError:
            raise CgroupFileError(file, expected, describe(value)) from None
    if size < 0:
        raise CgroupFileError(file, expected, describe(value))
    if size > MAX_SIZE_BYTES:
        raise CgroupFileError(file, f"a size of at most {MAX_SIZE_BYTES} bytes", describe(value))
    pages = min(size // PAGE_SIZE, PAGE_COUNTER_MAX_PAGES)
    return None if pages == PAGE_COUNTER_MAX_PAGES else pages * PAGE_SIZE


_CPULIST_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


#: ``CONFIG_NR_CPUS`` at its x86-64 maximum: no CPU number reaches it.
NR_CPUS = 8192


def parse_cpulist(file: str, value: FileValue | list[int] | tuple[int, ...]) -> frozenset[int]:
    """``cpulist_parse``: ``"0-1,3"``, a single int, or a YAML list of ints → a non-empty set of
    CPU numbers below ``NR_CPUS``."""
    expected = "a CPU list such as '0-1,3' or [0, 1]"
    if isinstance(value, bool):
        raise CgroupFileError(file, expected, describe(value))
    if isinstance(value, (list, tuple)):
        if not value or not all(type(cpu) is int and 0 <= cpu < NR_CPUS for cpu in value):
            raise CgroupFileError(file, f"{expected} of CPUs below {NR_CPUS}", describe(value))
        return frozenset(value)
    if isinstance(value, int):
        if not 0 <= value < NR_CPUS:
            raise CgroupFileError(file, f"{expected} of CPUs below {NR_CPUS}", describe(value))
        return frozenset({value})
    cpus: set[int] = set()
    for part in str(value).replace(" ", "").split(","):
        match = _CPULIST_RANGE.fullmatch(part)
        if match is None:
            raise CgroupFileError(file, expected, describe(value))
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise CgroupFileError(file, f"{expected} with ranges low-high", describe(value))
        if last >= NR_CPUS:
            raise CgroupFileError(file, f"{expected} of CPUs below {NR_CPUS}", describe(value))
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def format_cpulist(cpus: Iterable[int]) -> str:
    """The kernel's ``%*pbl`` rendering: ``{0, 1, 3}`` → ``"0-1,3"``."""
    parts: list[str] = []
    ordered = sorted(cpus)
    start = 0
    for index in range(1, len(ordered) + 1):
        if index == len(ordered) or ordered[index] != ordered[index - 1] + 1:
            first, last = ordered[start], ordered[index - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = index
    return ",".join(parts)


# ---- weights ------------------------------------------------------------------------------------
def _div_round_closest(dividend: int, divisor: int) -> int:
    return (dividend + divisor // 2) // divisor


def weight_to_shares(weight: int) -> int:
    """``sched_weight_from_cgroup``: cpu.weight → shares, ``DIV_ROUND_CLOSEST(w*1024, 100)``."""
    return _div_round_closest(weight * NICE_0_LOAD, CGROUP_WEIGHT_DFL)


def shares_to_weight(shares: int) -> int:
    """``sched_weight_to_cgroup``: shares → cpu.weight, rounded to closest, clamped to 1..10000."""
    weight = _div_round_closest(shares * CGROUP_WEIGHT_DFL, NICE_0_LOAD)
    return max(CGROUP_WEIGHT_MIN, min(CGROUP_WEIGHT_MAX, weight))


def shares_to_nice(shares: int) -> int:
    """``cpu_weight_nice_read_s64``: the nice level whose weight is closest to `shares`.

    The kernel scans ``sched_prio_to_weight`` until the distance stops shrinking, so a tie goes
    to the lower nice level — exactly what `min` returns for the first minimal index.
    """
    index = min(range(len(PRIO_TO_WEIGHT)), key=lambda i: abs(PRIO_TO_WEIGHT[i] - shares))
    return index - 20


def _set_shares(config: CgroupConfig, file: str, shares: int) -> CgroupConfig:
    """``sched_group_set_shares``: EINVAL on an idle group, else clamp to [2, 262144]."""
    if config.idle:
        raise CgroupFileError(
            file, "cpu.idle 0 first (an idle group's weight is fixed)", "cpu.idle 1"
        )
    return dataclasses.replace(config, shares=max(MIN_SHARES, min(MAX_SHARES, shares)))


# ---- writers -----------------------------------------------------------------------------------
def _write_shares(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    shares = _integer("cpu.shares", value, "a non-negative integer such as 1024")
    if shares < 0:
        raise CgroupFileError("cpu.shares", "a non-negative integer such as 1024", describe(value))
    return _set_shares(config, "cpu.shares", shares)


def _write_weight(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    expected = f"an integer within {CGROUP_WEIGHT_MIN}..{CGROUP_WEIGHT_MAX}"
    weight = _integer("cpu.weight", value, expected)
    if not CGROUP_WEIGHT_MIN <= weight <= CGROUP_WEIGHT_MAX:
        raise CgroupFileError("cpu.weight", expected, describe(value))
    return _set_shares(config, "cpu.weight", weight_to_shares(weight))


def _write_weight_nice(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    nice = _integer("cpu.weight.nice", value, "a nice level within -20..19")
    if not -20 <= nice <= 19:
        raise CgroupFileError("cpu.weight.nice", "a nice level within -20..19", describe(value))
    return _set_shares(config, "cpu.weight.nice", PRIO_TO_WEIGHT[nice + 20])


def _write_idle(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    """``sched_group_set_idle``: idle groups weigh WEIGHT_IDLEPRIO; leaving idle resets 1024."""
    idle = _flag("cpu.idle", value)
    if idle == config.idle:
        return config
    return dataclasses.replace(config, idle=idle, shares=WEIGHT_IDLEPRIO if idle else NICE_0_LOAD)


def tg_set_cfs_bandwidth(
    config: CgroupConfig, file: str, period_ns: int, quota_ns: int | None, burst_ns: int
) -> CgroupConfig:
    """``tg_set_cfs_bandwidth``: the range checks every bandwidth write goes through (µs shown)."""
    if period_ns < MIN_CFS_QUOTA_PERIOD_NS or period_ns > MAX_CFS_QUOTA_PERIOD_NS:
        raise CgroupFileError(
            file, "a period within 1000..1000000 µs (1ms..1s)", f"{period_ns // NSEC_PER_USEC} µs"
        )
    if quota_ns is not None:
        if quota_ns < MIN_CFS_QUOTA_PERIOD_NS:
            raise CgroupFileError(
                file,
                "a quota of at least 1000 µs (1ms), or unlimited",
                f"{quota_ns // NSEC_PER_USEC} µs",
            )
        if quota_ns > MAX_CFS_RUNTIME_NS:
            raise CgroupFileError(
                file, f"a quota of at most {MAX_BW_US} µs", f"{quota_ns // NSEC_PER_USEC} µs"
            )
        if burst_ns > quota_ns:
            raise CgroupFileError(
                file,
                f"a burst no larger than the quota ({quota_ns // NSEC_PER_USEC} µs)",
                f"a burst of {burst_ns // NSEC_PER_USEC} µs",
            )
        if burst_ns + quota_ns > MAX_CFS_RUNTIME_NS:
            raise CgroupFileError(
                file,
                f"quota + burst of at most {MAX_BW_US} µs",
                f"{(burst_ns + quota_ns) // NSEC_PER_USEC} µs",
            )
    return dataclasses.replace(config, period_ns=period_ns, quota_ns=quota_ns, burst_ns=burst_ns)


def _write_period(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    period_us = _usec("cpu.cfs_period_us", value, "a period in µs within 1000..1000000")
    return tg_set_cfs_bandwidth(
        config, "cpu.cfs_period_us", period_us * NSEC_PER_USEC, config.quota_ns, config.burst_ns
    )


def _write_quota(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    """``tg_set_cfs_quota``: any negative value means unlimited (reads back -1)."""
    quota_us = _usec("cpu.cfs_quota_us", value, "-1 (unlimited) or a quota in µs ≥ 1000")
    quota_ns = None if quota_us < 0 else quota_us * NSEC_PER_USEC
    return tg_set_cfs_bandwidth(
        config, "cpu.cfs_quota_us", config.period_ns, quota_ns, config.burst_ns
    )


def _write_burst(file: str) -> Callable[[CgroupConfig, FileValue], CgroupConfig]:
    def write(config: CgroupConfig, value: FileValue) -> CgroupConfig:
        burst_us = _usec(file, value, "a burst in µs ≥ 0, no larger than the quota")
        if burst_us < 0:
            raise CgroupFileError(file, "a burst in µs ≥ 0", describe(value))
        return tg_set_cfs_bandwidth(
            config, file, config.period_ns, config.quota_ns, burst_us * NSEC_PER_USEC
        )

    return write


def _write_cpu_max(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    """``cpu_max_write`` / ``cpu_period_quota_parse``: ``"$MAX [$PERIOD]"``, MAX = max or µs."""
    expected = "'max', 'max 100000', '50000 100000' or '50000' (quota and period in µs)"
    tokens = str(value).split()
    if isinstance(value, bool) or not 1 <= len(tokens) <= 2:
        raise CgroupFileError("cpu.max", expected, describe(value))
    period_ns = config.period_ns
    if len(tokens) == 2:
        period_us = _usec("cpu.max", tokens[1], expected)
        if period_us < 0:
            raise CgroupFileError("cpu.max", expected, describe(value))
        period_ns = period_us * NSEC_PER_USEC
    quota_ns: int | None = None
    if tokens[0] != "max":
        quota_us = _usec("cpu.max", tokens[0], expected)
        if quota_us < 0:
            raise CgroupFileError("cpu.max", expected, describe(value))
        quota_ns = quota_us * NSEC_PER_USEC
    return tg_set_cfs_bandwidth(config, "cpu.max", period_ns, quota_ns, config.burst_ns)


def _write_cpus(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    return dataclasses.replace(config, cpus=parse_cpulist("cpuset.cpus", value))


def _write_limit_in_bytes(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    return dataclasses.replace(
        config, memory_limit=_memory_bytes("memory.limit_in_bytes", value, "-1")
    )


def _write_oom_control(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    """``mem_cgroup_oom_control_write``: the value written sets ``oom_kill_disable``."""
    return dataclasses.replace(config, oom_kill_disable=_flag("memory.oom_control", value))


def _write_memory_max(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    return dataclasses.replace(config, memory_limit=_memory_bytes("memory.max", value, "max"))


def _write_memory_high(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    return dataclasses.replace(config, memory_high=_memory_bytes("memory.high", value, "max"))


def _write_oom_group(config: CgroupConfig, value: FileValue) -> CgroupConfig:
    return dataclasses.replace(config, oom_group=_flag("memory.oom.group", value))


# ---- readers -----------------------------------------------------------------------------------
def _usec_text(value_ns: int) -> str:
    return str(value_ns // NSEC_PER_USEC)


def _size_text(value: int | None) -> str:
    return "max" if value is None else str(value)


def _read_cpu_max(config: CgroupConfig) -> str:
    quota = "max" if config.quota_ns is None else _usec_text(config.quota_ns)
    return f"{quota} {_usec_text(config.period_ns)}"


@dataclass(frozen=True)
class CgroupFile:
    """One kernel file: its interface (None = both), writer, reader and accepted syntax."""

    name: str
    interface: Interface | None
    write: Callable[[CgroupConfig, FileValue], CgroupConfig]
    read: Callable[[CgroupConfig], str]
    syntax: str


FILES: dict[str, CgroupFile] = {
    file.name: file
    for file in (
        CgroupFile(
            "cpu.shares",
            "v1",
            _write_shares,
            lambda c: str(c.shares),
            "relative weight, 2..262144 (values outside are clamped), default 1024",
        ),
        CgroupFile(
            "cpu.idle",
            None,
            _write_idle,
            lambda c: str(int(c.idle)),
            "0 or 1: 1 gives the group SCHED_IDLE weight (3)",
        ),
        CgroupFile(
            "cpu.cfs_period_us",
            "v1",
            _write_period,
            lambda c: _usec_text(c.period_ns),
            "bandwidth period in µs, 1000..1000000, default 100000",
        ),
        CgroupFile(
            "cpu.cfs_quota_us",
            "v1",
            _write_quota,
            lambda c: "-1" if c.quota_ns is None else _usec_text(c.quota_ns),
            "quota per period in µs, ≥ 1000 (may exceed the period), -1 = unlimited",
        ),
        CgroupFile(
            "cpu.cfs_burst_us",
            "v1",
            _write_burst("cpu.cfs_burst_us"),
            lambda c: _usec_text(c.burst_ns),
            "burst in µs, 0..quota, default 0",
        ),
        CgroupFile(
            "cpu.weight",
            "v2",
            _write_weight,
            lambda c: str(shares_to_weight(c.shares)),
            "relative weight, 1..10000, default 100 (= 1024 shares)",
        ),
        CgroupFile(
            "cpu.weight.nice",
            "v2",
            _write_weight_nice,
            lambda c: str(shares_to_nice(c.shares)),
            "the weight as a nice level, -20..19",
        ),
        CgroupFile(
            "cpu.max",
            "v2",
            _write_cpu_max,
            _read_cpu_max,
            "'$MAX $PERIOD' in µs, e.g. 'max 100000' or '50000 100000'",
        ),
        CgroupFile(
            "cpu.max.burst",
            "v2",
            _write_burst("cpu.max.burst"),
            lambda c: _usec_text(c.burst_ns),
            "burst in µs, 0..quota, default 0",
        ),
        CgroupFile(
            "cpuset.cpus",
            None,
            _write_cpus,
            lambda c: "" if c.cpus is None else format_cpulist(c.cpus),
            "CPU list such as '0-1,3' or [0, 1]",
        ),
        CgroupFile(
            "memory.limit_in_bytes",
            "v1",
            _write_limit_in_bytes,
            lambda c: str(UNLIMITED_MEMORY_BYTES if c.memory_limit is None else c.memory_limit),
            "limit in bytes ('64M', '64MiB'), rounded down to pages; -1 = unlimited",
        ),
        CgroupFile(
            "memory.oom_control",
            "v1",
            _write_oom_control,
            lambda c: read_oom_control(c),
            "0 or 1: the value written sets oom_kill_disable",
        ),
        CgroupFile(
            "memory.max",
            "v2",
            _write_memory_max,
            lambda c: _size_text(c.memory_limit),
            "hard limit in bytes ('64M', '64MiB'), rounded down to pages, or 'max'",
        ),
        CgroupFile(
            "memory.high",
            "v2",
            _write_memory_high,
            lambda c: _size_text(c.memory_high),
            "throttling limit in bytes, rounded down to pages, or 'max'",
        ),
        CgroupFile(
            "memory.oom.group",
            "v2",
            _write_oom_group,
            lambda c: str(int(c.oom_group)),
            "0 or 1: 1 = an OOM kill takes the whole group",
        ),
    )
}


def file_spec(file: str) -> CgroupFile:
    """The `CgroupFile` named `file`, or a `CgroupFileError` with a suggestion."""
    try:
        return FILES[file]
    except KeyError:
        raise CgroupFileError(
            file,
            "a known cgroup file" + (did_you_mean(file, FILES) or f" ({', '.join(FILES)})"),
            describe(file),
        ) from None


def apply_write(
    config: CgroupConfig, file: str, value: FileValue, *, is_root: bool = False
) -> CgroupConfig:
    """The config after writing `value` to `file`; raises `CgroupFileError` where the kernel would.

    A v1- or v2-only file also sets ``interface``. Writes to the root group are refused.
    """
    spec = file_spec(file)
    if is_root:
        raise CgroupFileError(
            file,
            "a non-root cgroup (the kernel refuses writes to the "
            "root group's cpu and memory files)",
            "the root cgroup '/'",
        )
    updated = spec.write(config, value)
    if spec.interface is not None and updated.interface != spec.interface:
        updated = dataclasses.replace(updated, interface=spec.interface)
    return updated


def read_file(config: CgroupConfig, file: str) -> str:
    """The kernel's text for `file` (without the trailing newline)."""
    return file_spec(file).read(config)


def read_oom_control(config: CgroupConfig, *, under_oom: bool = False, oom_kill: int = 0) -> str:
    """``memory.oom_control`` text; the two counters are run-time state, given by the caller."""
    return (
        f"oom_kill_disable {int(config.oom_kill_disable)}\n"
        f"under_oom {int(under_oom)}\noom_kill {oom_kill}"
    )


# ---- paths and hierarchy -----------------------------------------------------------------------
#: Longest directory name (NAME_MAX: the VFS refuses longer ones with ENAMETOOLONG), UTF-8 bytes.
NAME_MAX = 255
#: Name prefixes (``<prefix>.<file>``) of interface files: cgroup core's and every controller's,
#: v1 and v2. A child named like one collides with a file of its parent (mkdir: EEXIST) or with
#: one that enabling that controller creates later (cgroup-v2.rst, "Avoid Name Collisions").
CONTROLLER_PREFIXES = frozenset(
    {
        "cgroup",
        "cpu",
        "cpuacct",
        "cpuset",
        "memory",
        "memsw",
        "io",
        "blkio",
        "pids",
        "hugetlb",
        "rdma",
        "misc",
        "devices",
        "freezer",
        "net_cls",
        "net_prio",
        "perf_event",
        "dmem",
    }
)
#: cgroup v1 core files without a controller prefix (``cgroup1_base_files``).
UNPREFIXED_FILES = frozenset({"tasks", "notify_on_release", "release_agent"})


def check_cgroup_name(name: str) -> str | None:
    """Why `name` cannot be one directory of a cgroup path (None: it can).

    ``cgroup_mkdir`` refuses a ``\\n`` (EINVAL, it would make /proc/<pid>/cgroup unparsable);
    kernfs refuses a name already taken by one of the parent's files (EEXIST: ``tasks``,
    ``cgroup.procs``, ``cpu.shares``…); the VFS takes no ``/`` or NUL in a name, nor ``.`` and
    ``..``, nor more than NAME_MAX bytes. A ``<controller>.<anything>`` name is refused too: it
    is free in one v1 hierarchy but a file in another (cfssim mirrors the tree in all) or in v2.
    cfssim also refuses whitespace, which the kernel takes.
    """
    if not name:
        return "an empty name (two '/' in a row or a trailing '/')"
    if "\0" in name or "\n" in name:
        return f"name {describe(name)} holds a NUL or newline (the kernel refuses them)"
    if not _NAME.fullmatch(name):
        return f"name {describe(name)} holds whitespace or control characters"
    if name in (".", ".."):
        return f"name {name!r} is the directory itself or its parent"
    if len(name.encode()) > NAME_MAX:
        return f"a name is longer than {NAME_MAX} bytes (the kernel's NAME_MAX)"
    if name in UNPREFIXED_FILES:
        return f"name {name!r} is a cgroup v1 interface file"
    prefix = name.split(".", 1)[0]
    if "." in name and prefix in CONTROLLER_PREFIXES:
        return (
            f"name {describe(name)} collides with the interface files {prefix}.* "
            f"(rename it, e.g. '_{name[:40]}')"
        )
    return None


_NAME = re.compile(r"[^/\s\x00-\x1f\x7f]+")


def check_path(path: object) -> str:
    """A valid absolute cgroup path (``/``, ``/app/web``), or ValueError saying what is wrong
    (each name checked by `check_cgroup_name`)."""
    expected = "an absolute cgroup path such as '/' or '/app/web'"
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"expected {expected}, found {describe(path)}")
    if path == ROOT:
        return path
    for name in path[1:].split("/"):
        problem = check_cgroup_name(name)
        if problem is not None:
            raise ValueError(f"expected {expected}, found {describe(path)}: {problem}")
    return path


def parent_path(path: str) -> str | None:
    """``"/a/b"`` → ``"/a"``, ``"/a"`` → ``"/"``, ``"/"`` → None."""
    if path == ROOT:
        return None
    head = path.rsplit("/", 1)[0]
    return head or ROOT


def ancestors(path: str) -> list[str]:
    """The ancestors of `path`, nearest first, ending with ``"/"``."""
    found: list[str] = []
    parent = parent_path(path)
    while parent is not None:
        found.append(parent)
        parent = parent_path(parent)
    return found


def path_names(path: str) -> list[str]:
    """The names along `path`: ``"/a/b"`` → ``["a", "b"]``, ``"/"`` → ``[]`` (empty names of
    doubled or trailing slashes dropped)."""
    return [name for name in path.split("/") if name]


def normalise_path(path: str) -> str:
    """`path` as an absolute cgroup path: ``"a/b/"`` → ``"/a/b"``, ``""`` → ``"/"``."""
    return ROOT + "/".join(path_names(path))


def path_depth(path: str) -> int:
    """How deep `path` is below the root: ``"/"`` 0, ``"/a/b"`` 2."""
    return len(path_names(path))


def is_descendant(path: str, ancestor: str) -> bool:
    """``cgroup_is_descendant``: whether `path` is `ancestor` or lies below it."""
    return ancestor == ROOT or path == ancestor or path.startswith(ancestor.rstrip("/") + "/")


def to_ratio(period_ns: int, runtime_ns: int) -> int:
    """``to_ratio``: runtime/period in BW_SHIFT fixed point, truncated."""
    return (runtime_ns << BW_SHIFT) // period_ns


def _ratio_text(config: CgroupConfig) -> str:
    assert config.quota_ns is not None
    quota_us, period_us = config.quota_ns // NSEC_PER_USEC, config.period_ns // NSEC_PER_USEC
    return f"{quota_us}/{period_us} µs = {float(Fraction(quota_us, period_us)):.3g} CPUs"


def _by_depth(configs: Mapping[str, CgroupConfig]) -> list[str]:
    """Parents before children (the order a tree is created in), then by name."""
    return sorted(configs, key=lambda path: (path_depth(path), path))


def hierarchical_quota(configs: Mapping[str, CgroupConfig]) -> dict[str, int | None]:
    """``tg_cfs_schedulable_down`` for every group: its quota ratio bound (None = unlimited).

    v1 groups: an unlimited group inherits its parent's bound; a ratio above the parent's
    raises `HierarchyError` (the kernel's EINVAL). v2 groups: the bound is the minimum.
    """
    bound: dict[str, int | None] = {}
    for path in _by_depth(configs):
        config = configs[path]
        parent = parent_path(path)
        own = None if config.quota_ns is None else to_ratio(config.period_ns, config.quota_ns)
        if parent is None:
            bound[path] = None
            continue
        parent_bound = bound.get(parent)
        if own is None or parent_bound is None:
            bound[path] = parent_bound if own is None else own
        elif config.interface == "v2":
            bound[path] = min(own, parent_bound)
        elif own > parent_bound:
            limiter = next(
                p for p in ancestors(path) if p in configs and configs[p].quota_ns is not None
            )
            file = "cpu.cfs_quota_us"
            raise HierarchyError(
                path,
                limiter,
                file,
                f"{path}'s quota/period ratio at most that of its ancestor {limiter} "
                f"({_ratio_text(configs[limiter])}) — cgroup v1 rejects it with EINVAL",
                _ratio_text(config),
            )
        else:
            bound[path] = own
    return bound


def effective_cpus(configs: Mapping[str, CgroupConfig], path: str) -> frozenset[int] | None:
    """The CPUs `path` may use: the cpusets along the path intersected (None = all CPUs).

    An empty intersection falls back to the parent's set, like v2's ``cpuset.cpus.effective``.
    """
    effective: frozenset[int] | None = None
    for level in [*reversed(ancestors(path)), path]:
        cpus = configs[level].cpus if level in configs else None
        if cpus is None:
            continue
        narrowed = cpus if effective is None else cpus & effective
        effective = narrowed or effective
    return effective


@dataclass(frozen=True)
class CpusetRefusal:
    """A v1 ``cpuset.cpus`` write of `cpus` to `path` that ``cpuset1_validate_change`` refuses:
    `code` EBUSY (the child `other` uses CPUs `other_cpus` outside `cpus`) or EACCES (`cpus`
    lie outside the parent `other`'s `other_cpus`)."""

    path: str
    cpus: frozenset[int]
    code: int  # errno
    other: str
    other_cpus: frozenset[int]

    @property
    def expected(self) -> str:
        """What the write should have been, for a located scenario error."""
        if self.code == errno.EBUSY:
            return (
                f"CPUs that hold the child {self.other}'s cpuset "
                f"({format_cpulist(self.other_cpus)}) — cgroup v1 rejects others with EBUSY"
            )
        return (
            f"CPUs within the parent {self.other}'s cpuset ({format_cpulist(self.other_cpus)})"
            " — cgroup v1 rejects others with EACCES"
        )

    def write_error(self) -> str:
        """The failed write as a shell reports it, with why: ``/a: cpuset.cpus: write error:
        Device or resource busy (child /a/b uses CPUs 1 outside 0)``."""
        cpus, other = format_cpulist(self.cpus), format_cpulist(self.other_cpus)
        why = (
            f"child {self.other} uses CPUs {other} outside {cpus}"
            if self.code == errno.EBUSY
            else f"CPUs {cpus} outside the parent's {other}"
        )
        return f"{self.path}: cpuset.cpus: write error: {os.strerror(self.code)} ({why})"


def validate_cpuset_change(
    configs: Mapping[str, CgroupConfig], path: str, cpus: frozenset[int]
) -> CpusetRefusal | None:
    """``cpuset1_validate_change`` (kernel/cgroup/cpuset-v1.c) for writing `cpus` to `path`'s
    v1 ``cpuset.cpus`` in the tree `configs` as it is before the write: every child's CPUs must
    lie within `cpus` (else -EBUSY), and `cpus` within the parent's (else -EACCES). A group
    without a cpuset (None) constrains nothing. None when the write is accepted."""
    for child, config in configs.items():
        if parent_path(child) == path and config.cpus is not None and not config.cpus <= cpus:
            return CpusetRefusal(path, cpus, errno.EBUSY, child, config.cpus)
    parent = parent_path(path)
    allowed = None if parent is None else effective_cpus(configs, parent)
    if parent is not None and allowed is not None and not cpus <= allowed:
        return CpusetRefusal(path, cpus, errno.EACCES, parent, allowed)
    return None


def check_hierarchy(configs: Mapping[str, CgroupConfig]) -> None:
    """Raise `HierarchyError` where cgroup v1 would refuse the tree (quota ratio, cpuset subset)
    created parent first: a cpuset outside its parent's is EACCES (`validate_cpuset_change`)."""
    hierarchical_quota(configs)
    created: dict[str, CgroupConfig] = {}
    for path in _by_depth(configs):
        config = configs[path]
        if config.cpus is not None and config.interface == "v1":
            refusal = validate_cpuset_change(created, path, config.cpus)
            if refusal is not None:
                raise HierarchyError(
                    path,
                    refusal.other,
                    "cpuset.cpus",
                    refusal.expected,
                    describe(format_cpulist(config.cpus)),
                )
        created[path] = config


def effective_quota(configs: Mapping[str, CgroupConfig], path: str) -> Fraction | None:
    """The tightest quota/period along `path` and its ancestors, in CPUs (None = unlimited)."""
    ratios = [
        Fraction(configs[p].quota_ns or 0, configs[p].period_ns)
        for p in [path, *ancestors(path)]
        if p in configs and configs[p].quota_ns is not None
    ]
    return min(ratios) if ratios else None


def configure(
    files: Mapping[str, Any], *, is_root: bool = False, base: CgroupConfig | None = None
) -> CgroupConfig:
    """A config from a ``{file: value}`` mapping applied in order (first error raised)."""
    config = base or CgroupConfig()
    for file, value in files.items():
        config = apply_write(config, file, value, is_root=is_root)
    return config
