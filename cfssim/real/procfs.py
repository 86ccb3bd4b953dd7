"""Readers of /proc: per-thread scheduler figures, machine-wide CPU time, process memory.

`/proc/<pid>/task/<tid>/schedstat` gives ``sum_exec_runtime run_delay pcount`` (ns, ns, count);
`/proc/<pid>/task/<tid>/sched` (the `proc_sched_show_task` text) gives switch and migration counts
and ``se.vruntime`` in ms with 6 decimals. This kernel has no schedstats, so wakeups are counted as
voluntary switches (each sleep ends in one wakeup).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

USER_HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ThreadStats:
    """Cumulative scheduler figures of one thread (ns and counts)."""

    cpu_time_ns: int = 0
    wait_time_ns: int = 0
    timeslices: int = 0
    nr_switches: int = 0
    nr_voluntary_switches: int = 0
    nr_involuntary_switches: int = 0
    nr_migrations: int = 0
    vruntime: int = 0

    def since(self, base: ThreadStats) -> ThreadStats:
        """The counters accumulated after `base` (vruntime stays absolute)."""
        values = {f.name: getattr(self, f.name) - getattr(base, f.name) for f in fields(self)}
        values["vruntime"] = self.vruntime
        return ThreadStats(**values)


_SCHED_KEYS = {
    "nr_switches": "nr_switches",
    "nr_voluntary_switches": "nr_voluntary_switches",
    "nr_involuntary_switches": "nr_involuntary_switches",
    "se.nr_migrations": "nr_migrations",
}


def ms_decimal_to_ns(text: str) -> int:
    """The kernel's ``SPLIT_NS`` format ("240.986102" ms) → int ns, without float rounding."""
    negative = text.startswith("-")
    whole, _, frac = text.lstrip("-").partition(".")
    value = int(whole) * 1_000_000 + int((frac + "000000")[:6])
    return -value if negative else value


def parse_thread_stats(schedstat: str, sched: str) -> ThreadStats:
    """Figures from the texts of a thread's ``schedstat`` and ``sched`` files."""
    cpu, wait, slices = (int(w) for w in schedstat.split()[:3])
    values: dict[str, int] = {}
    for line in sched.splitlines():
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            continue
        if key in _SCHED_KEYS:
            values[_SCHED_KEYS[key]] = int(value)
        elif key == "se.vruntime":
            values["vruntime"] = ms_decimal_to_ns(value)
    return ThreadStats(cpu_time_ns=cpu, wait_time_ns=wait, timeslices=slices, **values)


def read_thread_stats(directory: Path) -> ThreadStats:
    """Figures from a directory holding ``schedstat`` and ``sched`` (a /proc task directory)."""
    return parse_thread_stats(
        (directory / "schedstat").read_text(), (directory / "sched").read_text()
    )


def stopped(pid: int) -> bool:
    """Whether no thread of process `pid` can run user code any more: each is stopped (T, t),
    dead (Z, X) or in an uninterruptible wait (D: a memcg OOM wait, which SIGSTOP does not end);
    a process or thread that is gone counts as stopped."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # the thread exited meanwhile
        if state not in ("T", "t", "Z", "X", "D"):
            return False
    return True


def timer_slack_path(tid: int) -> Path:
    """``/proc/<tid>/timerslack_ns`` (Linux 4.6+): the thread's hrtimer slack, ns; root may
    write it (CAP_SYS_NICE)."""
    return Path(f"/proc/{tid}/timerslack_ns")


def task_dir(pid: int, tid: int) -> Path:
    return Path(f"/proc/{pid}/task/{tid}")


def read_saved_stats(stat_dir: Path, process: int, thread: int) -> ThreadStats:
    """The copy a worker thread made of its own files when it ended (see worker.c)."""
    stem = stat_dir / f"{process}.{thread}"
    return parse_thread_stats(
        Path(f"{stem}.schedstat").read_text(), Path(f"{stem}.sched").read_text()
    )


def max_rss_bytes(pid: int) -> int:
    """VmHWM of a process (its peak resident set), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def machine_busy_ns(stat_text: str | None = None) -> int:
    """CPU time spent busy on all CPUs since boot (user…steal of /proc/stat's ``cpu`` line), ns.

    Idle and iowait are not busy; guest time is already inside user.
    """
    text = Path("/proc/stat").read_text() if stat_text is None else stat_text
    first = text.splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    ticks = user + nice + system + irq + softirq + steal
    return ticks * 1_000_000_000 // USER_HZ


def period_timers(timer_list: str | None = None) -> dict[str, int]:
    """The armed CFS bandwidth period timers of /proc/timer_list: hrtimer address → expiry
    (CLOCK_MONOTONIC ns).

    Since Linux 6.4 (``init_cfs_bandwidth``: "Interleave cfs bandwidth timers") a group's period
    timer starts at a random offset below the period, so its periods end at that phase, not at
    whole multiples of the period since boot; the timer is armed by the quota write.
    """
    text = Path("/proc/timer_list").read_text() if timer_list is None else timer_list
    timers: dict[str, int] = {}
    address = None
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] != ["#"] and fields[2:3] == ["sched_cfs_period_timer,"]:
            address = fields[1].rstrip(",")
        elif address is not None and line.lstrip().startswith("# expires at"):
            timers[address] = int(fields[3].split("-")[0])
            address = None
    return timers


def start_time(pid: int) -> int | None:
    """When process `pid` started, clock ticks since boot (``starttime``, field 22 of
    /proc/<pid>/stat): with the PID it names one process for good (PIDs are reused, this is
    not); None when no such process exists."""
    try:
        after_comm = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(after_comm[19])
    except (OSError, IndexError, ValueError):
        return None


def parent_pid(stat_text: str) -> int:
    """The parent's pid (``ppid``, field 4) in a /proc/<pid>/stat text."""
    return int(stat_text.rsplit(")", 1)[1].split()[1])


def ancestors(pid: int) -> list[int]:
    """The pids of `pid`'s parent, its parent's parent, … below init (pid 1), nearest first;
    a process that is gone ends the chain."""
    chain: list[int] = []
    while True:
        try:
            pid = parent_pid(Path(f"/proc/{pid}/stat").read_text())
        except (OSError, IndexError, ValueError):
            return chain
        if pid <= 1 or pid in chain:
            return chain
        chain.append(pid)


def thread_ids(pid: int) -> list[int]:
    """The tids of process `pid` (``/proc/<pid>/task``; its pid alone when unreadable)."""
    try:
        return sorted(int(tid.name) for tid in Path(f"/proc/{pid}/task").iterdir())
    except (OSError, ValueError):
        return [pid]


def comm(pid: int) -> str | None:
    """The command name of process `pid` (``/proc/<pid>/comm``), None when there is none."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def mem_available_bytes(meminfo: str | None = None) -> int | None:
    """``MemAvailable`` of /proc/meminfo (kB there), bytes: the kernel's estimate of what can
    be allocated without swapping (``si_mem_available``); None if the line is missing."""
    text = Path("/proc/meminfo").read_text() if meminfo is None else meminfo
    for line in text.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def kernel_release() -> str:
    return os.uname().release
