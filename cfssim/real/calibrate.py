"""``cfssim calibrate``: measure this host and write its `cfssim.profile.MachineProfile`.

One busy window (``--duration``, 5 s by default) with a pinned hog on every CPU and a second hog
on the last one, recorded by a private tracefs instance (named like the run's cgroups, removed
afterwards) with two events:

- ``timer:hrtimer_expire_entry`` filtered to the tick's hrtimer (``tick_nohz_handler``, before
  6.7 ``tick_sched_timer``): its ``now`` field is the ns at which each CPU's tick ran. With every
  CPU busy no tick is stopped (NO_HZ_IDLE), so consecutive ticks give HZ (`hz_from_ticks`), their
  earliest residue the grid phase (`tick_phase`; /proc/timer_list's armed expiry when readable),
  and the same tick on two CPUs their skew (`tick_skew`): CPU c's ``now`` minus CPU 0's.
- ``sched:sched_switch`` of every task: the two hogs sharing the last CPU hand over at the end of
  each slice (`timeslices`, `slice_ends_from`: tick-quantised or precise), and the switch a tick
  causes comes `tick_switches` after that tick's handler (``tick_switch_ns``: the handler's work
  and the interrupt's exit, where ``schedule`` runs). The host's noise is what preempts the hogs
  (`noise_preemptions`): each time a hog is switched out for tasks that are not ours, until a
  hog gets the CPU back — arrivals per second and lengths, counted only while calibrate itself
  sleeps (its set-up and read-out at the window's edges are not noise, nor are its threads and
  its ancestors', the shell or harness that started it: `own_tasks`). The base slice is
  ``se.slice`` of a nice-0 hog's /proc/<pid>/sched (the kernel's ``sysctl_sched_base_slice``;
  debugfs is locked down), else the measured median slice.

Then the C probe (``probe.c``, compiled on first use like the twin's worker) measures what a
workload thread pays, on its own CPU clock: in a memory cgroup of the run with a limit (as the
twin's allocators run), it first-touches N MiB of anonymous memory page by page as the worker's
``alloc`` does (mmap + one write per 4 KiB page) and touches it again — the difference is the fault
+ zeroing + memcg charge (`page_fault_cost`); each trial maps new memory, none reuses the pages of
the one before (those cost ~20% less to fault again here). It also times ``write(2)``s to
/dev/null, rt-app's ``iorun`` (`null_write_cost`). Timer slack, the bandwidth slice and RT
throttling are read from /proc.

Refused (a `RealRunError`, its own exit status) where it cannot measure: not Linux or not root, no
usable cgroup hierarchy, no tracefs or its events, no C compiler. Everything made — hogs, the
probe, the cgroups, the tracefs instance — is removed, on Ctrl-C and SIGTERM too.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from statistics import fmean, median
from typing import Any

import click

from .. import _signals
from ..cgroup.files import CgroupConfig
from ..profile import (
    Distribution,
    Hz,
    MachineProfile,
    NoiseCpu,
    NoiseSpec,
    SliceEnds,
    TickCpu,
    TickSpec,
    dump_profile,
)
from ..units import NSEC_PER_SEC, format_duration, parse_duration
from .cgroupfs import Driver, detect, make_driver
from .errors import RealRunError
from .procfs import ancestors, thread_ids
from .tracefs import Event, TraceSession, mount_tracefs, parse_trace
from .worker import compiled

DEFAULT_WINDOW_NS = 5 * NSEC_PER_SEC
MIN_WINDOW_NS = NSEC_PER_SEC // 2
MAX_WINDOW_NS = 60 * NSEC_PER_SEC
#: the tick's hrtimer callback: 6.7+ names it tick_nohz_handler, earlier kernels tick_sched_timer
TICK_HANDLERS = ("tick_nohz_handler", "tick_sched_timer")
HZ_CHOICES: tuple[Hz, ...] = (100, 250, 300, 1000)
#: quantiles written for distributions
QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
SKEW_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
FAULT_MIB = 32
FAULT_TRIALS = 6
#: the probe's memory cgroup: a limit above all it touches (every trial's memory stays
#: mapped), so no trial reclaims or OOMs
FAULT_GROUP = "/fault"
FAULT_HEADROOM_MIB = 32
NULL_WRITE_CALLS = 200_000
NULL_WRITE_TRIALS = 5
PROBE_TIMEOUT_S = 60  # a probe's whole run; its trials take ~1 s here
PROBE_SOURCE = Path(__file__).with_name("probe.c")
#: a hog-to-hog switch at most this share of a tick after a tick's handler is that tick's
TICK_SWITCH_SHARE = 4
HOG_START_S = 0.3  # for the hogs' interpreters to reach their loop before the window opens
#: a slice whose median length is within this share of a whole number of ticks ends at ticks
TICK_QUANTUM_TOLERANCE = 0.1
HOG = "while True: pass"
TRACE_RESOLUTION_NS = 1_000  # of the trace text's timestamps (``now`` fields are exact)


# ---- pure analysis --------------------------------------------------------------------------
def tick_times(events: Iterable[Event]) -> dict[int, list[int]]:
    """Each CPU's tick instants (the tick hrtimer's ``now``, ns), sorted, from
    ``hrtimer_expire_entry`` events already filtered to the tick handler."""
    ticks: dict[int, list[int]] = {}
    for event in events:
        if event.name == "hrtimer_expire_entry" and "now" in event.fields:
            ticks.setdefault(event.cpu, []).append(event.fields["now"])
    return {cpu: sorted(times) for cpu, times in sorted(ticks.items())}


def hz_from_ticks(ticks: Mapping[int, Sequence[int]]) -> Hz:
    """The CONFIG_HZ whose tick is nearest the median gap between consecutive ticks (a CPU's
    tick is stopped only when it idles, which the hogs prevent)."""
    gaps = [b - a for times in ticks.values() for a, b in pairwise(times) if b > a]
    if not gaps:
        raise ValueError("expected at least two ticks on one CPU, found none")
    gap = median(gaps)
    return min(HZ_CHOICES, key=lambda hz: abs(NSEC_PER_SEC / hz - gap))


def _centred(value: int, tick_ns: int) -> int:
    """`value` modulo the tick, in [−tick/2, tick/2)."""
    return (value + tick_ns // 2) % tick_ns - tick_ns // 2


def tick_phase(times: Sequence[int], tick_ns: int) -> int:
    """Where the tick grid lies (ns in [0, tick)) from one CPU's tick instants: each runs a
    little after its grid instant, never before, so the earliest residue is the grid."""
    if not times:
        raise ValueError("expected tick instants, found none")
    reference = times[0]
    earliest = min(_centred(t - reference, tick_ns) for t in times)
    return (reference + earliest) % tick_ns


def _quantiles(
    values: Sequence[int], fractions: Sequence[float], resolution: int = 1
) -> dict[float, int]:
    """Empirical quantiles (linear between order statistics, like numpy's default), rounded to
    multiples of `resolution` (ns; the trace text's timestamps have 1 µs)."""
    ordered = sorted(values)
    last = len(ordered) - 1
    out = {}
    for q in fractions:
        position = q * last
        low = int(position)
        high = min(low + 1, last)
        value = ordered[low] + (ordered[high] - ordered[low]) * (position - low)
        out[q] = round(value / resolution) * resolution
    return out


@dataclass(frozen=True)
class Skew:
    """One CPU's tick against CPU 0's, over the ticks both ran (ns): ``mean`` of
    ``now_cpu − now_cpu0``, its quantiles with the mean taken out (``jitter``), and the quantiles
    of the tick's delay after its grid instant (``delay``)."""

    ticks: int
    mean: int
    jitter: dict[float, int]
    delay: dict[float, int]


def tick_skew(ticks: Mapping[int, Sequence[int]], tick_ns: int, phase_ns: int) -> dict[int, Skew]:
    """Per CPU, its `Skew` against CPU 0 (CPU 0's own: mean 0, jitter 0). Ticks are paired by
    the grid instant they belong to, ``(now − phase) // tick``; CPUs with no common tick with
    CPU 0 are left out."""

    def by_slot(times: Sequence[int]) -> dict[int, int]:
        return {(t - phase_ns) // tick_ns: t for t in times}

    reference = by_slot(ticks.get(0, ()))
    skews = {}
    for cpu, times in sorted(ticks.items()):
        slots = by_slot(times)
        common = sorted(set(slots) & set(reference))
        if not common:
            continue
        deltas = [slots[k] - reference[k] for k in common]
        mean = round(fmean(deltas))
        delays = [slots[k] - (phase_ns + k * tick_ns) for k in common]
        skews[cpu] = Skew(
            len(common),
            mean,
            _quantiles([d - mean for d in deltas], SKEW_QUANTILES),
            _quantiles(delays, QUANTILES),  # the timer latency's whole range (its tail too)
        )
    return skews


def timeslices(events: Iterable[Event], first: int, second: int) -> list[int]:
    """Lengths (ns) of the clean turns of two hogs sharing a CPU: from a switch second → first
    to the next first → second on that CPU with no other switch between (a turn cut by another
    task is left out)."""
    turns: list[int] = []
    started: dict[int, tuple[int, int]] = {}  # cpu → (hog switched in from the other, time)
    pair = {first: second, second: first}
    for event in sorted((e for e in events if e.name == "sched_switch"), key=lambda e: e.time_ns):
        prev, nxt = event.fields.get("prev_pid"), event.fields.get("next_pid")
        begun = started.pop(event.cpu, None)
        if begun is not None and prev == begun[0] and nxt == pair[prev]:
            turns.append(event.time_ns - begun[1])
        if prev in pair and nxt == pair[prev]:
            started[event.cpu] = (nxt, event.time_ns)
    return turns


def tick_switches(
    events: Iterable[Event], first: int, second: int, cpu: int, max_gap_ns: int
) -> list[int]:
    """How long after its tick's handler each tick-driven switch between two hogs sharing `cpu`
    came (ns): for every ``sched_switch`` from one hog to the other there, the time since the
    last tick handler's ``now`` on that CPU (``hrtimer_expire_entry``), when at most
    `max_gap_ns` (a switch further from any tick was not the tick's). The tick handler's
    ``sched_tick`` finds the slice used up and sets need_resched; ``schedule`` runs at the
    interrupt's exit. The switch's time is the trace text's, truncated to µs, against the
    handler's exact ``now``: half a µs is added back (`TRACE_RESOLUTION_NS`)."""
    pair = {first: second, second: first}
    gaps: list[int] = []
    handler: int | None = None  # the `now` of the last tick handler on `cpu`
    for event in sorted((e for e in events if e.cpu == cpu), key=lambda e: e.time_ns):
        if event.name == "hrtimer_expire_entry" and "now" in event.fields:
            handler = event.fields["now"]
        elif event.name == "sched_switch" and handler is not None:
            prev, nxt = event.fields.get("prev_pid"), event.fields.get("next_pid")
            gap = event.time_ns + TRACE_RESOLUTION_NS // 2 - handler
            if prev in pair and nxt == pair[prev] and 0 <= gap <= max_gap_ns:
                gaps.append(gap)
    return gaps


def slice_ends_from(turns: Sequence[int], tick_ns: int) -> SliceEnds:
    """``"tick"`` when the median turn is a whole number (≥ 1) of ticks, within
    `TICK_QUANTUM_TOLERANCE` (a used-up slice noticed at the next tick), else ``"precise"``."""
    if not turns:
        raise ValueError("expected timeslices of two hogs on one CPU, found none")
    ticks = median(turns) / tick_ns
    return (
        "tick"
        if ticks >= 1 - TICK_QUANTUM_TOLERANCE
        and abs(ticks - round(ticks)) <= TICK_QUANTUM_TOLERANCE
        else "precise"
    )


def se_slice(sched_text: str) -> int | None:
    """``se.slice`` (ns) of a /proc/<pid>/sched text, None when the kernel does not show it."""
    for line in sched_text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "se.slice" and value.strip().isdigit():
            return int(value)
    return None


def page_fault_cost(samples: Iterable[tuple[int, int, int]]) -> int:
    """CPU ns per first-touched page: the median over trials of (first pass − second pass) ÷
    pages, each trial a (first_ns, second_ns, pages) triple; the second pass is the same loop
    without faults, so the loop's own cost cancels."""
    costs = [(first - second) / pages for first, second, pages in samples if pages > 0]
    if not costs:
        raise ValueError("expected page-fault trials, found none")
    return max(0, round(median(costs)))


def null_write_cost(samples: Iterable[tuple[int, int]]) -> int:
    """CPU ns per ``write(2)`` to /dev/null: the median over trials of cpu_ns ÷ calls, each
    trial a (cpu_ns, calls) pair (``write_null`` touches no byte: one cost per call)."""
    costs = [cpu_ns / calls for cpu_ns, calls in samples if calls > 0]
    if not costs:
        raise ValueError("expected /dev/null write trials, found none")
    return round(median(costs))


def noise_preemptions(
    events: Iterable[Event], hogs: set[int], ours: set[int], start_ns: int, end_ns: int
) -> dict[int, list[int]]:
    """Per CPU, how long (ns) each preemption of a hog by the host lasted: from a
    ``sched_switch`` taking a `hogs` pid off the CPU for a task that is neither ours (`ours`,
    the hogs included) nor idle, through any further such tasks, to the next switch to one of
    ours or to idle. Only preemptions that begin and end within [`start_ns`, `end_ns`] count:
    outside it calibrate itself runs (tracefs set-up and read-out)."""
    lengths: dict[int, list[int]] = {}
    began: dict[int, int] = {}  # cpu → start of the preemption under way
    for event in sorted((e for e in events if e.name == "sched_switch"), key=lambda e: e.time_ns):
        prev, nxt = event.fields.get("prev_pid", 0), event.fields.get("next_pid", 0)
        foreign = nxt != 0 and nxt not in ours
        if event.cpu in began:
            if not foreign:
                start = began.pop(event.cpu)
                if event.time_ns <= end_ns:
                    lengths.setdefault(event.cpu, []).append(event.time_ns - start)
        elif foreign and prev in hogs and start_ns <= event.time_ns:
            began[event.cpu] = event.time_ns
    return lengths


def noise_cpu(cpu: int, runs: Sequence[int], window_ns: int) -> NoiseCpu:
    """One CPU's noise: arrivals per second over the window, run-length quantiles (a run of
    0 ns when none was seen) and the share of the window the runs took."""
    rate = len(runs) * NSEC_PER_SEC / window_ns
    lengths = _quantiles(runs, QUANTILES, TRACE_RESOLUTION_NS) if runs else {0.0: 0}
    return NoiseCpu(
        cpu=cpu,
        rate_per_s=round(rate, 3),
        run_length=Distribution.of_quantiles(lengths),
        share=round(min(1.0, sum(runs) / window_ns), 4),
    )


def config_hz(config_text: str) -> int | None:
    """``CONFIG_HZ`` of a kernel config's text."""
    for line in config_text.splitlines():
        if line.startswith("CONFIG_HZ="):
            return int(line.partition("=")[2])
    return None


def timer_list_tick(timer_list: str, handler: str) -> dict[int, int]:
    """Each CPU's armed tick expiry (ns) in /proc/timer_list's text."""
    expiries: dict[int, int] = {}
    cpu, pending = None, False
    for line in timer_list.splitlines():
        fields = line.split()
        if fields[:1] == ["cpu:"]:
            cpu, pending = int(fields[1]), False
        elif len(fields) > 2 and fields[0].startswith("#") and fields[2] == f"{handler},":
            pending = True
        elif pending and line.lstrip().startswith("# expires at") and cpu is not None:
            expiries.setdefault(cpu, int(fields[3].split("-")[0]))
            pending = False
    return expiries


# ---- reading the host -----------------------------------------------------------------------
def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _read_int(path: str) -> int | None:
    text = _read(path)
    return int(text.split()[0]) if text and text.split()[0].lstrip("-").isdigit() else None


def kernel_config_hz() -> int | None:
    """CONFIG_HZ from /proc/config.gz or /boot/config-<release>, None when neither is there."""
    with contextlib.suppress(OSError, EOFError, gzip.BadGzipFile):
        return config_hz(gzip.decompress(Path("/proc/config.gz").read_bytes()).decode())
    text = _read(f"/boot/config-{os.uname().release}")
    return None if text is None else config_hz(text)


def tick_handler(timer_list: str | None) -> str:
    """The tick's hrtimer callback name on this kernel (from /proc/timer_list when readable)."""
    for name in TICK_HANDLERS:
        if timer_list is not None and f" {name}," in timer_list:
            return name
    return TICK_HANDLERS[0]


# ---- the measurement ------------------------------------------------------------------------
@dataclass
class Window:
    """The traced window on CLOCK_MONOTONIC (the trace clock), ns: while calibrate sleeps."""

    start_ns: int
    end_ns: int

    @property
    def length_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass(frozen=True)
class Costs:
    """The probe's trials: page faults (first_ns, second_ns, pages) and /dev/null writes
    (cpu_ns, calls)."""

    faults: list[tuple[int, int, int]]
    null_writes: list[tuple[int, int]]


def own_tasks(pid: int) -> set[int]:
    """The threads of calibrate (process `pid`) and of its ancestors below init: the shell,
    terminal or harness that started it and watches it (one polling it every 50 ms was seen on
    the development VM) run because calibrate runs, not as the host's noise."""
    return {tid for process in (pid, *ancestors(pid)) for tid in thread_ids(process)}


def hog_cpus(allowed: Iterable[int]) -> list[int]:
    """Where the hogs go: one on each CPU this process may run on (its affinity, not every
    CPU: pinning outside a restricted cpuset fails), and a second one on the last of them."""
    cpus = sorted(allowed)
    return [*cpus, cpus[-1]]


@dataclass
class Calibration:
    """One calibration run: its cgroup driver, children and tracefs instance, all removed by
    `cleanup` (always safe)."""

    window_ns: int = DEFAULT_WINDOW_NS
    fault_mib: int = FAULT_MIB
    fault_trials: int = FAULT_TRIALS
    driver: Driver = field(init=False)
    children: list[subprocess.Popen[str]] = field(init=False, default_factory=list)
    instance: TraceSession | None = field(init=False, default=None)
    notes: list[str] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.driver = make_driver(detect())

    def run(self) -> MachineProfile:
        loadavg = float((_read("/proc/loadavg") or "0").split()[0])
        mount_tracefs()  # refuse before anything runs
        probe = compiled(PROBE_SOURCE)
        groups: dict[str, Any] = {
            "/": CgroupConfig(),  # the run's own cgroup, nothing limited: the hogs
            FAULT_GROUP: CgroupConfig(
                memory_limit=(self.fault_mib * self.fault_trials + FAULT_HEADROOM_MIB) << 20
            ),
        }
        self.driver.create(groups)
        timer_list = _read("/proc/timer_list")
        handler = tick_handler(timer_list)
        placement = hog_cpus(os.sched_getaffinity(0))
        hogs = [self._spawn([sys.executable, "-S", "-c", HOG], cpu) for cpu in placement]
        time.sleep(HOG_START_S)
        self.instance = TraceSession(
            self.driver.run_name,
            [],
            self.window_ns,
            filters={
                "timer/hrtimer_expire_entry": f"function.function == {handler}",
                "sched/sched_switch": "",
            },
        )
        ours = own_tasks(os.getpid())
        self.instance.start()
        window = Window(time.monotonic_ns(), 0)  # the trace clock is CLOCK_MONOTONIC too
        time.sleep(self.window_ns / NSEC_PER_SEC)
        window.end_ns = time.monotonic_ns()
        text, lost = self.instance.stop()
        ours |= own_tasks(os.getpid())  # threads its ancestors started meanwhile too
        if lost:
            self.notes.append(f"{lost} traced events were lost to ring-buffer overruns")
        events = list(parse_trace(text))
        self.instance.close()
        sched = _read(f"/proc/{hogs[0].pid}/sched") or ""
        armed = timer_list_tick(_read("/proc/timer_list") or "", handler)
        for hog in hogs:
            hog.kill()
            hog.wait()
        costs = Costs(
            faults=[
                (a, b, c)
                for a, b, c in self._probe(probe, "fault", self.fault_mib, self.fault_trials, 3)
            ],
            null_writes=[
                (a, b)
                for a, b in self._probe(probe, "nullwrite", NULL_WRITE_CALLS, NULL_WRITE_TRIALS, 2)
            ],
        )
        return self._profile(
            events, window, hogs, ours, placement[-1], sched, armed, costs, loadavg
        )

    def _spawn(
        self, argv: list[str], cpu: int | None, path: str = "/", **kwargs: object
    ) -> subprocess.Popen[str]:
        """A child at nice 0, SCHED_OTHER, in the run's cgroup `path` (pinned to `cpu`)."""

        def child_setup() -> None:
            os.setpriority(os.PRIO_PROCESS, 0, 0)
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            if cpu is not None:
                os.sched_setaffinity(0, {cpu})

        child = subprocess.Popen(argv, preexec_fn=child_setup, text=True, **kwargs)  # type: ignore[call-overload]
        self.children.append(child)
        self.driver.attach(path, child.pid, child.pid)
        return child

    def _probe(
        self, binary: Path, probe: str, size: int, trials: int, fields: int
    ) -> list[list[int]]:
        """Run ``probe <probe> <size> <trials>`` in the fault cgroup (released once it is
        there); its output lines, `fields` integers each. A probe that hangs, fails or prints
        anything else is refused (`RealRunError`), never a traceback."""
        child = self._spawn(
            [str(binary), probe, str(size), str(trials)],
            None,
            FAULT_GROUP,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = child.communicate("go\n", timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            raise RealRunError(
                f"the {probe} probe did not finish in {PROBE_TIMEOUT_S} s (killed)"
            ) from None
        if child.returncode != 0:
            raise RealRunError(
                f"the {probe} probe failed (exit status {child.returncode}): {err.strip()}"
            )
        try:
            rows = [[int(field) for field in line.split()] for line in out.splitlines()]
        except ValueError:
            rows = []
        if not rows or any(len(row) != fields for row in rows):
            raise RealRunError(
                f"the {probe} probe printed what calibrate cannot read (expected lines of "
                f"{fields} integers): {out.strip()[:200]!r}"
            )
        return rows

    def _profile(
        self,
        events: list[Event],
        window: Window,
        hogs: Sequence[subprocess.Popen[str]],
        ours: set[int],
        shared_cpu: int,
        sched: str,
        armed: dict[int, int],
        costs: Costs,
        loadavg: float,
    ) -> MachineProfile:
        cpus = os.cpu_count() or 1
        ticks = tick_times(events)
        if 0 not in ticks:
            raise RealRunError("no tick of CPU 0 was traced (hrtimer_expire_entry)")
        hz = hz_from_ticks(ticks)
        configured = kernel_config_hz()
        if configured is not None and configured != hz:
            self.notes.append(
                f"CONFIG_HZ={configured}, but the ticks came every "
                f"{NSEC_PER_SEC // hz} ns: the measured {hz} is written"
            )
        tick_ns = NSEC_PER_SEC // hz
        phase = armed[0] % tick_ns if 0 in armed else tick_phase(ticks[0], tick_ns)
        skews = tick_skew(ticks, tick_ns, phase)
        if sorted(skews) != list(range(cpus)):
            raise RealRunError(
                f"ticks were traced on CPUs {sorted(skews)} only, not on all "
                f"{cpus} together: is some CPU offline, isolated or outside "
                f"this process's CPU affinity ({sorted(os.sched_getaffinity(0))})?"
            )
        tick_cpus = [
            TickCpu(
                cpu=cpu,
                offset=skew.mean,
                jitter=Distribution.of_quantiles(skew.jitter),
                delay=Distribution.of_quantiles(skew.delay),
            )
            for cpu, skew in skews.items()
        ]
        turns = timeslices(events, hogs[-2].pid, hogs[-1].pid)
        if not turns:
            raise RealRunError(
                f"the two hogs on CPU {shared_cpu} never handed over to each "
                "other: the host is too busy to measure slices"
            )
        base_slice = se_slice(sched)
        if base_slice is None:
            base_slice = round(median(turns))
            self.notes.append(
                "/proc/<pid>/sched shows no se.slice: the base slice is the hogs' median timeslice"
            )
        switches = tick_switches(
            events, hogs[-2].pid, hogs[-1].pid, shared_cpu, tick_ns // TICK_SWITCH_SHARE
        )
        if not switches:
            self.notes.append(
                f"no switch between the hogs on CPU {shared_cpu} came within "
                f"{format_duration(tick_ns // TICK_SWITCH_SHARE)} of a tick: tick_switch_ns 0"
            )
        pinned = {hog.pid for hog in hogs}
        runs = noise_preemptions(events, pinned, ours | pinned, window.start_ns, window.end_ns)
        return MachineProfile(
            host=socket.gethostname(),
            kernel=platform.release(),
            date=datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            loadavg=loadavg,
            cpus=cpus,
            hz=hz,
            slice_ends=slice_ends_from(turns, tick_ns),
            base_slice_ns=base_slice,
            timer_slack_ns=_read_int("/proc/self/timerslack_ns") or 0,
            page_fault_ns_per_page=page_fault_cost(costs.faults),
            null_write_ns_per_call=null_write_cost(costs.null_writes),
            tick_switch_ns=round(median(switches)) if switches else 0,
            sched_cfs_bandwidth_slice_us=_read_int("/proc/sys/kernel/sched_cfs_bandwidth_slice_us"),
            sched_rt_runtime_us=_read_int("/proc/sys/kernel/sched_rt_runtime_us"),
            sched_rt_period_us=_read_int("/proc/sys/kernel/sched_rt_period_us"),
            tick=TickSpec(phase=phase, cpus=tuple(tick_cpus)),
            noise=NoiseSpec(
                window=self.window_ns,
                cpus=tuple(
                    noise_cpu(cpu, runs.get(cpu, []), window.length_ns) for cpu in range(cpus)
                ),
            ),
        )

    def cleanup(self) -> None:
        """Remove the tracefs instance, kill and reap the children, remove the cgroups: every
        step runs even if one before it failed."""
        _signals.run_all(
            [
                None if self.instance is None else self.instance.close,
                self._kill_children,
                self.driver.remove,
            ]
        )

    def _kill_children(self) -> None:
        for child in self.children:
            with contextlib.suppress(OSError):
                child.send_signal(signal.SIGKILL)
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                child.wait(timeout=5)


def calibrate(
    window_ns: int = DEFAULT_WINDOW_NS,
    *,
    fault_mib: int = FAULT_MIB,
    fault_trials: int = FAULT_TRIALS,
    notes: list[str] | None = None,
) -> MachineProfile:
    """Measure this host (see the module docstring); raises a `RealRunError` subclass where it
    cannot. `notes` collects what the caller should be told (a fallback taken)."""
    run = Calibration(window_ns, fault_mib, fault_trials)
    with _signals.guarded(run.cleanup):  # SIGTERM unwinds like Ctrl-C; cleanup holds both off
        profile = run.run()
    if notes is not None:
        notes.extend(run.notes)
    return profile


def summary_lines(profile: MachineProfile) -> Iterator[str]:
    """A few human lines about a profile (for the command's stderr)."""
    yield (
        f"{profile.host}: Linux {profile.kernel}, {profile.cpus} CPUs, HZ={profile.hz}, "
        f"load {profile.loadavg}"
    )
    yield (
        f"slices end at the {profile.slice_ends}; base slice "
        f"{format_duration(profile.base_slice_ns)}; timer slack "
        f"{format_duration(profile.timer_slack_ns)}; page fault "
        f"{format_duration(profile.page_fault_ns_per_page)}/page; /dev/null write "
        f"{format_duration(profile.null_write_ns_per_call)}/call; a tick's switch "
        f"{format_duration(profile.tick_switch_ns)} after its handler"
    )
    if profile.tick is not None:
        for entry in profile.tick.cpus[1:]:
            low, high = entry.jitter.quantile(0.05), entry.jitter.quantile(0.95)
            yield (
                f"tick of CPU {entry.cpu} vs CPU 0: {format_duration(entry.offset_ns)} "
                f"(p5…p95 {format_duration(entry.offset_ns + low)} … "
                f"{format_duration(entry.offset_ns + high)})"
            )
    if profile.noise is not None:
        for noise in profile.noise.cpus:
            yield (
                f"noise on CPU {noise.cpu}: {noise.rate_per_s:g}/s ({noise.share or 0:.1%} of "
                f"the CPU), runs p50 "
                f"{format_duration(noise.run_length.quantile(0.5))}, p95 "
                f"{format_duration(noise.run_length.quantile(0.95))}"
            )


# ---- the command ----------------------------------------------------------------------------
def _window(ctx: click.Context, param: click.Parameter, value: str) -> int:
    try:
        window_ns = parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if not MIN_WINDOW_NS <= window_ns <= MAX_WINDOW_NS:
        raise click.BadParameter(
            f"expected {format_duration(MIN_WINDOW_NS)} to "
            f"{format_duration(MAX_WINDOW_NS)}, found {value!r}"
        )
    return window_ns


@click.command("calibrate")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the profile YAML here instead of stdout.",
)
@click.option(
    "--duration",
    "window_ns",
    default=format_duration(DEFAULT_WINDOW_NS),
    show_default=True,
    callback=_window,
    metavar="DURATION",
    help="How long the hogs run while ticks, slices and noise are traced.",
)
def calibrate_command(output: Path | None, window_ns: int) -> None:
    """Measure this host (root, cgroups, tracefs, a C compiler) and write its machine profile:
    HZ and tick phase, per-CPU tick skew and delay, slice ends and base slice, the switch after
    a tick, timer slack, page-fault and /dev/null write costs, background noise, bandwidth
    slice and RT throttling."""
    from .commands import _exits

    notes: list[str] = []
    with _exits("calibrate"):
        profile = calibrate(window_ns, notes=notes)
    header = (
        "cfssim machine profile, measured by `cfssim calibrate`",
        f"duration {format_duration(window_ns)}; 1-minute load average "
        f"{profile.loadavg} at the start",
    )
    text = dump_profile(profile, header)
    for line in [*notes, *summary_lines(profile)]:
        click.echo(line, err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
